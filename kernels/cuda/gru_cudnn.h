#pragma once
// One GRU layer through cuDNN's RNN v8 API (cudnnRNNForward, cudnnRNNBackwardData_v8,
// cudnnRNNBackwardWeights_v8): the alternative to gru.h (cuBLAS GEMMs + the shared
// fused cell), selected with the backend option gru = cudnn or CPC_CUDA_GRU=cudnn.
//
// Configuration: CUDNN_GRU, CUDNN_RNN_DOUBLE_BIAS (b_ih and b_hh one-to-one, as
// PyTorch), CUDNN_LINEAR_INPUT, CUDNN_UNIDIRECTIONAL, one layer, fp32 data and math,
// CUDNN_RNN_ALGO_STANDARD, no dropout (a p = 0 descriptor), padded I/O enabled (the
// unpacked layouts need it) with x (B, T, Din) and y (B, T, H) in
// CUDNN_RNN_DATA_LAYOUT_BATCH_MAJOR_UNPACKED, every sequence T steps long, h0 (1, B, H).
// Math: CUDNN_FMA_MATH (no TF32) unless CudaContext::tf32 (then CUDNN_DEFAULT_MATH).
// Precision bf16 does not apply: this GRU runs fp32 throughout.
//
// cuDNN's GRU is PyTorch's: r = sigma(W_r x + b_Wr + R_r h + b_Rr), z (cuDNN's update
// gate u) likewise, n = tanh(W_n x + b_Wn + r * (R_n h + b_Rn)), h' = (1 - z) n + z h.
// Weights: cuDNN wants one packed weight space. cudnnGetRNNWeightParams (pseudo-layer
// 0) gives each linear layer's matrix and bias address; linLayerID 0, 1, 2 are the
// input matrices of r, z, n and 3, 4, 5 the recurrent ones, so
//   linLayerID g     <- w_ih rows [g*H, (g+1)*H) (an H x Din row-major block), b_ih[g*H, (g+1)*H)
//   linLayerID 3 + g <- w_hh rows [g*H, (g+1)*H) (an H x H block),            b_hh[g*H, (g+1)*H)
// for g = 0 (r), 1 (z), 2 (n): PyTorch's gate order and row blocks. The descriptors
// cuDNN returns are checked to be (1, H, Din or H) row-major and (1, H, 1); anything
// else fails with a message. The offsets are cached per shape and adjacent blocks
// merged, so a call copies about four runs.
//
// The reserve tensor (gru_reserve_shape: 1-D, reserve_floats() floats) holds, from its
// first 256-byte aligned address, the packed weight space the forward ran with
// (rounded up to 256 bytes), then cuDNN's opaque reserve space. Keeping the weights
// there lets the backward pass cuDNN exactly the forward's weights (the Backend's
// backward gets no biases) without another copy; 256 bytes of slack cover the
// alignment. Forward and backward must therefore see the same reserve tensor, and a
// reserve made by the other implementation (the gru option changed in between) has
// another size and is rejected. cuDNN's backward writes into its reserve space, so a
// forward supports one backward (the engine's tape runs each once). Changing the tf32
// option in between is not detected (same reserve size, another math type): don't.
//
// Backward: cudnnRNNBackwardData_v8 (dy zeros when absent, dh_n or null), dx and dh0
// into scratch and added into the caller's tensors; then, when a weight gradient is
// wanted, cudnnRNNBackwardWeights_v8 (CUDNN_WGRAD_MODE_ADD) into a zeroed scratch
// weight space, whose blocks are added into dw_ih, dw_hh, db_ih, db_hh. cuDNN's
// backward writes into the reserve space (BackwardData leaves intermediate results
// there for BackwardWeights).
//
// Descriptors, sizes, weight offsets and a device copy of the sequence lengths are
// built once per (B, T, Din, H, TF32) and kept for the process (the device array of B
// ints is never freed, like the library handles). Workspace and scratch come from the
// caching allocator.
#include <cudnn.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

#include "kernels/cuda/runtime/cuda_context.h"
#include "kernels/cuda/gru.h"

namespace cpc::cuda {

// CPC_CUDA_GRU: "cudnn" -> true, "cells" or unset -> false; any other value warns on
// stderr and keeps cells (read at the backend's construction: no throwing there).
bool gru_cudnn_from_env();

class CudnnGru {
 public:
  CudnnGru();
  ~CudnnGru();
  CudnnGru(const CudnnGru&) = delete;
  CudnnGru& operator=(const CudnnGru&) = delete;

  // Floats of the reserve tensor for these dims (builds the shape's descriptors; needs
  // ctx.dnn). All dims must be >= 1 and fit cuDNN's int.
  int64_t reserve_floats(const CudaContext& ctx, const GruDims& d);

  // h0 may be null (zeros). reserve has reserve_floats(ctx, d) floats.
  void forward(const CudaContext& ctx, const float* x, const float* h0, const float* w_ih, const float* w_hh,
               const float* b_ih, const float* b_hh, const GruDims& d, float* y, float* reserve);

  // The forward's x, h0, y and reserve. dy and dh_n may be null (zeros). Accumulates
  // into dx, dh0, dw_ih, dw_hh, db_ih, db_hh (each may be null).
  void backward(const CudaContext& ctx, const float* x, const float* h0, const float* y, float* reserve,
                const float* dy, const float* dh_n, const GruDims& d, float* dx, float* dh0, float* dw_ih, float* dw_hh,
                float* db_ih, float* db_hh);

  size_t peak_workspace() const { return peak_workspace_; }
  std::string describe() const;

 private:
  struct Entry;
  using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, bool>;
  std::mutex mu_;
  std::map<Key, std::unique_ptr<Entry>> cache_;
  size_t peak_workspace_ = 0;

  // The shape's entry, built on first use. Entries are immutable once built and never
  // erased, so the reference stays valid without the lock.
  const Entry& entry(const CudaContext& ctx, const GruDims& d);
};

}  // namespace cpc::cuda
