// Rows scaled to unit L2 norm (F.normalize) on CUDA, forward and backward.
#include <cfloat>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/l2_normalize.h"

namespace cpc::cuda {
namespace {

constexpr int kThreads = 256;

// One warp per row.
__global__ void l2_normalize_forward_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t N, int64_t D,
                                            float eps) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x >> 5);
  for (int64_t r = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5; r < N; r += warps) {
    const float* xr = x + r * D;
    float ss = 0.f;
    for (int64_t d = lane; d < D; d += 32) ss += xr[d] * xr[d];
    ss = __shfl_sync(kFullMask, warp_sum(ss), 0);
    const float inv = 1.f / fmaxf(sqrtf(ss), eps);
    for (int64_t d = lane; d < D; d += 32) y[r * D + d] = xr[d] * inv;
  }
}

__global__ void l2_normalize_backward_kernel(const float* __restrict__ x, const float* __restrict__ dy,
                                             float* __restrict__ dx, int64_t N, int64_t D, float eps) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x >> 5);
  for (int64_t r = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5; r < N; r += warps) {
    const float* xr = x + r * D;
    const float* dyr = dy + r * D;
    float ss = 0.f, xdy = 0.f;
    for (int64_t d = lane; d < D; d += 32) ss += xr[d] * xr[d], xdy += xr[d] * dyr[d];
    ss = __shfl_sync(kFullMask, warp_sum(ss), 0);
    xdy = __shfl_sync(kFullMask, warp_sum(xdy), 0);
    const float norm = sqrtf(ss);
    if (norm <= eps) {  // the clamp is a constant: the gradient is dy / eps
      for (int64_t d = lane; d < D; d += 32) dx[r * D + d] += dyr[d] / eps;
      continue;
    }
    const float ydy = xdy / norm;  // y . dy
    for (int64_t d = lane; d < D; d += 32) dx[r * D + d] += (dyr[d] - xr[d] / norm * ydy) / norm;
  }
}

}  // namespace

cudaError_t launch_l2_normalize_forward(const float* x, float* y, int64_t N, int64_t D, float eps, cudaStream_t s) {
  if (N == 0) return cudaSuccess;
  l2_normalize_forward_kernel<<<grid_for(N * 32, kThreads), kThreads, 0, s>>>(x, y, N, D, eps);
  return cudaGetLastError();
}

cudaError_t launch_l2_normalize_backward(const float* x, const float* dy, float* dx, int64_t N, int64_t D, float eps,
                                         cudaStream_t s) {
  if (N == 0) return cudaSuccess;
  l2_normalize_backward_kernel<<<grid_for(N * 32, kThreads), kThreads, 0, s>>>(x, dy, dx, N, D, eps);
  return cudaGetLastError();
}

}  // namespace cpc::cuda
