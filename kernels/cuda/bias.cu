// The bias pair of linear and conv layers on CUDA: y (O, C, inner) += bias[c] and
// dbias[c] += sum over o, i of dy, deterministic (fixed-order double sums).
#include <cfloat>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/bias.h"

namespace cpc::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void add_bias_kernel(float* __restrict__ y, const float* __restrict__ bias, int64_t O, int64_t C,
                                int64_t inner) {
  for (int64_t e = global_index(); e < O * C * inner; e += global_stride()) y[e] += bias[(e / inner) % C];
}

// inner == 1: dy is (O, C); a block sums 32 adjacent columns, its 32 rows of threads
// walk the rows (coalesced loads), then a shared-memory reduction over those rows.
__global__ void column_sum_kernel(const float* __restrict__ dy, float* __restrict__ dbias, int64_t O, int64_t C) {
  __shared__ double part[32][33];
  const int64_t c = static_cast<int64_t>(blockIdx.x) * 32 + threadIdx.x;
  double acc = 0.0;
  if (c < C)
    for (int64_t o = threadIdx.y; o < O; o += blockDim.y) acc += dy[o * C + c];
  part[threadIdx.y][threadIdx.x] = acc;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    double s = 0.0;
    for (int k = 0; k < static_cast<int>(blockDim.y); ++k) s += part[k][threadIdx.x];
    dbias[c] += static_cast<float>(s);
  }
}

// inner > 1: one block per channel.
__global__ void channel_sum_kernel(const float* __restrict__ dy, float* __restrict__ dbias, int64_t O, int64_t C,
                                   int64_t inner) {
  __shared__ double sh[32];
  for (int64_t c = blockIdx.x; c < C; c += gridDim.x) {
    double acc = 0.0;
    for (int64_t k = threadIdx.x; k < O * inner; k += blockDim.x) {
      const int64_t o = k / inner, i = k % inner;
      acc += dy[(o * C + c) * inner + i];
    }
    const double s = block_sum(acc, sh);
    if (threadIdx.x == 0) dbias[c] += static_cast<float>(s);
  }
}

}  // namespace

cudaError_t launch_add_bias(float* y, const float* bias, int64_t O, int64_t C, int64_t inner, cudaStream_t s) {
  const int64_t n = O * C * inner;
  if (n == 0) return cudaSuccess;
  add_bias_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(y, bias, O, C, inner);
  return cudaGetLastError();
}

cudaError_t launch_bias_grad(const float* dy, float* dbias, int64_t O, int64_t C, int64_t inner, cudaStream_t s) {
  if (C == 0) return cudaSuccess;
  if (inner == 1) {
    column_sum_kernel<<<static_cast<unsigned>((C + 31) / 32), dim3(32, 32), 0, s>>>(dy, dbias, O, C);
  } else {
    channel_sum_kernel<<<grid_for(C, 1), kThreads, 0, s>>>(dy, dbias, O, C, inner);
  }
  return cudaGetLastError();
}

}  // namespace cpc::cuda
