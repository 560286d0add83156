#pragma once
// Conv1d through cuDNN's convolution API as a 2-D convolution with H = 1:
// x (B, Cin, 1, L), w (Cout, Cin, 1, K), y (B, Cout, 1, Lout), padding / stride /
// dilation along W only. Per shape (and math mode) the descriptors are built once and
// each direction's algorithm is chosen on first use and cached: cudnnFind* (measured)
// by default, cudnnGet*_v7 (heuristic, no benchmark runs) with
// CPC_CUDA_CONV_SEARCH=heuristic. Among the candidates the fastest deterministic one
// wins (runs repeat exactly), else the fastest. Workspace comes from the caching
// allocator. Math: CUDNN_FMA_MATH (no TF32) unless CudaContext::tf32.
//
// bf16 (CudaContext::bf16): the inputs of each direction are rounded to bf16 copies
// (kernels/common/bf16.h) and cuDNN runs its PSEUDO_BFLOAT16 configuration (x, w, y
// bf16, fp32 compute, tensor cores allowed). The legacy API has no bf16-in / fp32-out
// configuration, so y, dx and dw come out in bf16 and are widened into the fp32 tensors
// (dx, dw accumulate): one more rounding than the CPU backend's oneDNN (fp32 outputs),
// the same as PyTorch's CUDA autocast.
//
// Bias add and bias gradient run as our own kernels (layout.h: deterministic, double
// sums); backward data and weights accumulate (beta = 1), as the Backend requires.
#include <cudnn.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

#include "engine/core/op_dims.h"
#include "kernels/cuda/runtime/cuda_context.h"

namespace cpc::cuda {

using ::cpc::Conv1dDims;  // engine/core/op_dims.h, shared with the CPU backend

class CudnnConv1d {
 public:
  CudnnConv1d();
  ~CudnnConv1d();
  CudnnConv1d(const CudnnConv1d&) = delete;
  CudnnConv1d& operator=(const CudnnConv1d&) = delete;

  void forward(const CudaContext& ctx, const float* x, const float* w, const float* bias, const Conv1dDims& d, float* y);
  void backward_data(const CudaContext& ctx, const float* dy, const float* w, const Conv1dDims& d, float* dx);
  void backward_weights(const CudaContext& ctx, const float* x, const float* dy, const Conv1dDims& d, float* dw,
                        float* dbias);

  size_t peak_workspace() const { return peak_workspace_; }
  // "find" or "heuristic" and the number of cached shapes.
  std::string describe() const;

 private:
  struct Entry;
  using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, bool>;
  std::mutex mu_;
  std::map<Key, std::unique_ptr<Entry>> cache_;
  bool heuristic_ = false;
  size_t peak_workspace_ = 0;

  Entry& entry(const CudaContext& ctx, const Conv1dDims& d);
};

}  // namespace cpc::cuda
