#pragma once
// Conv1d through oneDNN's convolution primitives (ncw / oiw, f32).
//
// Chosen by measurement as the CPU default (cpu_options.h): at the seed-004 sizes
// (batch 8, 20480 samples, 512 channels) the conv stack's fwd+bwd takes ~620 ms on
// 2 threads, im2col + oneDNN sgemm ~640 ms, im2col + OpenBLAS (Haswell kernels, as
// these machines pin) ~1700 ms. The im2col path (conv1d.h) stays as the
// double-precision reference of the gradient checks and as a selectable fallback.
//
// Primitives are created once per shape and cached; each call only swaps data
// pointers, so a steady-state step allocates nothing. oneDNN overwrites its outputs:
// a first input gradient (accumulate = false) is written in place; otherwise backward
// results go through a scratch buffer and are added (gradients accumulate in this
// engine). 256+ channel layers channels-last run conv1d_gemm.h instead.
#include <cstdint>
#include <memory>

#include "kernels/cpu/conv1d.h"
#include "kernels/cpu/cpu_options.h"

namespace cpc::cpu {

class OneDnnConv1d {
 public:
  OneDnnConv1d();
  ~OneDnnConv1d();
  void forward(const float* x, const float* w, const float* bias, const Conv1dDims& d, float* y);
  // dx += conv_transpose(dy, w); dx = ... when !accumulate
  void backward_data(const float* dy, const float* w, const Conv1dDims& d, float* dx, bool accumulate = true);
  // dw += ..., dbias += ... (dbias may be null)
  void backward_weights(const float* x, const float* dy, const Conv1dDims& d, float* dw, float* dbias);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cpc::cpu
