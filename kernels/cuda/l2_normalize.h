#pragma once
// Launchers of l2_normalize.cu (same semantics as kernels/cpu/elementwise.h); each
// returns the launch status; backward accumulates into dx.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace cpc::cuda {

// Rows of x (N, D): y = x / max(||x||, eps); backward accumulates into dx.
cudaError_t launch_l2_normalize_forward(const float* x, float* y, int64_t N, int64_t D, float eps, cudaStream_t s);
cudaError_t launch_l2_normalize_backward(const float* x, const float* dy, float* dx, int64_t N, int64_t D, float eps,
                                         cudaStream_t s);

}  // namespace cpc::cuda
