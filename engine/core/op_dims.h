#pragma once
// The dimensions of the ops with several extents, computed once by the checked front
// (backend_checks.cpp) and shared by every backend's kernels, CPU and CUDA alike.
// Plain structs of integers: the CUDA sources include this header too.
#include <cstdint>

#include <climits>

namespace cpc {

// Extents every library we call takes as int (cuBLAS, cuDNN, OpenBLAS's blasint).
inline bool fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

// The arithmetic of a step (train.precision), carried by its tape and passed to every
// op that has a mixed-precision form: bf16 = the inputs of convolutions and of the
// batched GEMMs rounded to bfloat16, fp32 accumulation and outputs.
enum class Precision : uint8_t { fp32, bf16 };
inline const char* precision_name(Precision p) { return p == Precision::bf16 ? "bf16" : "fp32"; }

struct Conv1dGeometry {
  int64_t stride = 1;
  int64_t padding = 0;
  int64_t dilation = 1;
  Precision precision = Precision::fp32;
  // Activations (B, L, C) instead of (B, C, L); the weight stays (Cout, Cin, K). The
  // CPU backend's oneDNN kernels run ~1.7x faster on it (README "Benchmarks").
  bool channels_last = false;
  // Output length for input length L and kernel size K (PyTorch's formula).
  int64_t out_length(int64_t L, int64_t K) const { return (L + 2 * padding - dilation * (K - 1) - 1) / stride + 1; }
};

// Conv1d: x (B, Cin, L), w (Cout, Cin, K), y (B, Cout, Lout); channels_last: x (B, L, Cin),
// y (B, Lout, Cout).
struct Conv1dDims {
  int64_t B, Cin, L, Cout, K, Lout, stride, padding, dilation;
  Precision precision = Precision::fp32;
  bool channels_last = false;
  // x arrives as bf16 values, rounded once by its producer (Backend::conv1d_rounded_input);
  // set by the forward and weight-gradient calls, never by backward_data.
  bool x_bf16 = false;
  bool bf16() const { return precision == Precision::bf16; }
  int64_t x_numel() const { return B * Cin * L; }
  int64_t w_numel() const { return Cout * Cin * K; }
  int64_t y_numel() const { return B * Cout * Lout; }
  bool is_pointwise() const { return K == 1 && stride == 1 && padding == 0; }
};

// BatchNorm and the channel norm: x (B, C, L).
struct NormDims {
  int64_t B, C, L;
};

// One GRU layer: x (B, T, Din), hidden size H.
struct GruDims {
  int64_t B, T, Din, H;
  Precision precision = Precision::fp32;  // bf16: the batched GEMMs; the per-step recurrence stays fp32
  bool bf16() const { return precision == Precision::bf16; }
};

}  // namespace cpc
