// Layout copies (transposes, narrow) and middle-axis reductions. Each output element
// is computed in the CPU backend's order where the CPU sums sequentially (mean and max
// over an axis: one thread per output walks the axis), so those results agree bit for
// bit. The bias pair is bias.cu, row L2 normalisation l2_normalize.cu.
#include <cfloat>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/layout.h"

namespace cpc::cuda {
namespace {

constexpr int kThreads = 256;
constexpr int kTile = 32;

__global__ void transpose_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t O, int64_t M, int64_t N,
                                 float beta) {
  __shared__ float tile[kTile][kTile + 1];  // +1: no bank conflicts on the transposed read
  const int64_t tm = (M + kTile - 1) / kTile, tn = (N + kTile - 1) / kTile, total = O * tm * tn;
  for (int64_t t = blockIdx.x; t < total; t += gridDim.x) {
    const int64_t o = t / (tm * tn), rem = t % (tm * tn);
    const int64_t m0 = (rem / tn) * kTile, n0 = (rem % tn) * kTile;
    for (int k = threadIdx.y; k < kTile; k += blockDim.y) {
      const int64_t m = m0 + k, n = n0 + threadIdx.x;
      if (m < M && n < N) tile[k][threadIdx.x] = x[(o * M + m) * N + n];
    }
    __syncthreads();
    for (int k = threadIdx.y; k < kTile; k += blockDim.y) {
      const int64_t n = n0 + k, m = m0 + threadIdx.x;
      if (m < M && n < N) {
        float* dst = y + (o * N + n) * M + m;
        const float v = tile[threadIdx.x][k];
        *dst = beta == 0.f ? v : v + beta * *dst;
      }
    }
    __syncthreads();
  }
}

__global__ void swap_axes_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t O, int64_t M, int64_t N,
                                 int64_t I, float beta) {
  const int64_t total = O * N * M * I;
  for (int64_t e = global_index(); e < total; e += global_stride()) {  // e indexes y (o, n, m, i)
    const int64_t i = e % I;
    int64_t r = e / I;
    const int64_t m = r % M;
    r /= M;
    const int64_t n = r % N, o = r / N;
    const float v = x[((o * M + m) * N + n) * I + i];
    y[e] = beta == 0.f ? v : v + beta * y[e];
  }
}

__global__ void narrow_copy_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t O, int64_t N, int64_t I,
                                   int64_t start, int64_t len) {
  const int64_t row = len * I, total = O * row;
  for (int64_t e = global_index(); e < total; e += global_stride()) {
    const int64_t o = e / row, k = e % row;
    y[e] = x[(o * N + start) * I + k];
  }
}

__global__ void narrow_add_kernel(const float* __restrict__ dy, float* __restrict__ dx, int64_t O, int64_t N, int64_t I,
                                  int64_t start, int64_t len) {
  const int64_t row = len * I, total = O * row;
  for (int64_t e = global_index(); e < total; e += global_stride()) {
    const int64_t o = e / row, k = e % row;
    dx[(o * N + start) * I + k] += dy[e];
  }
}

__global__ void mean_axis_forward_kernel(const float* __restrict__ x, float* __restrict__ y, int64_t O, int64_t N,
                                         int64_t I) {
  for (int64_t e = global_index(); e < O * I; e += global_stride()) {
    const int64_t o = e / I, i = e % I;
    float s = 0.f;
    for (int64_t n = 0; n < N; ++n) s += x[(o * N + n) * I + i];
    y[e] = s / static_cast<float>(N);
  }
}

__global__ void mean_axis_backward_kernel(const float* __restrict__ dy, float* __restrict__ dx, int64_t O, int64_t N,
                                          int64_t I) {
  const float scale = 1.f / static_cast<float>(N);
  for (int64_t e = global_index(); e < O * N * I; e += global_stride()) {
    const int64_t i = e % I, o = e / (N * I);
    dx[e] += dy[o * I + i] * scale;
  }
}

__global__ void max_axis_forward_kernel(const float* __restrict__ x, float* __restrict__ y, float* __restrict__ argmax,
                                        int64_t O, int64_t N, int64_t I) {
  for (int64_t e = global_index(); e < O * I; e += global_stride()) {
    const int64_t o = e / I, i = e % I;
    int64_t best = 0;
    float v = x[o * N * I + i];
    for (int64_t n = 1; n < N; ++n) {
      const float c = x[(o * N + n) * I + i];
      if (c > v || c != c) v = c, best = n;  // first maximum; NaN propagates (as the CPU and PyTorch)
    }
    y[e] = v;
    argmax[e] = static_cast<float>(best);
  }
}

__global__ void max_axis_backward_kernel(const float* __restrict__ dy, const float* __restrict__ argmax,
                                         float* __restrict__ dx, int64_t O, int64_t N, int64_t I) {
  for (int64_t e = global_index(); e < O * I; e += global_stride()) {
    const int64_t o = e / I, i = e % I;
    const int64_t n = static_cast<int64_t>(argmax[e]);
    dx[(o * N + n) * I + i] += dy[e];
  }
}

__global__ void scale_kernel(float* y, int64_t n, float alpha) {
  for (int64_t e = global_index(); e < n; e += global_stride()) y[e] *= alpha;
}

}  // namespace

cudaError_t launch_transpose_last2(const float* x, float* y, int64_t O, int64_t M, int64_t N, float beta,
                                   cudaStream_t s) {
  const int64_t tiles = O * ((M + kTile - 1) / kTile) * ((N + kTile - 1) / kTile);
  if (tiles == 0) return cudaSuccess;
  transpose_kernel<<<grid_for(tiles, 1), dim3(kTile, 8), 0, s>>>(x, y, O, M, N, beta);
  return cudaGetLastError();
}

cudaError_t launch_swap_axes(const float* x, float* y, int64_t O, int64_t M, int64_t N, int64_t I, float beta,
                             cudaStream_t s) {
  const int64_t n = O * M * N * I;
  if (n == 0) return cudaSuccess;
  swap_axes_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(x, y, O, M, N, I, beta);
  return cudaGetLastError();
}

cudaError_t launch_narrow_copy(const float* x, float* y, int64_t O, int64_t N, int64_t I, int64_t start, int64_t len,
                               cudaStream_t s) {
  const int64_t n = O * len * I;
  if (n == 0) return cudaSuccess;
  narrow_copy_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(x, y, O, N, I, start, len);
  return cudaGetLastError();
}

cudaError_t launch_narrow_add(const float* dy, float* dx, int64_t O, int64_t N, int64_t I, int64_t start, int64_t len,
                              cudaStream_t s) {
  const int64_t n = O * len * I;
  if (n == 0) return cudaSuccess;
  narrow_add_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(dy, dx, O, N, I, start, len);
  return cudaGetLastError();
}

cudaError_t launch_mean_axis_forward(const float* x, float* y, int64_t O, int64_t N, int64_t I, cudaStream_t s) {
  if (O * I == 0) return cudaSuccess;
  mean_axis_forward_kernel<<<grid_for(O * I, kThreads), kThreads, 0, s>>>(x, y, O, N, I);
  return cudaGetLastError();
}

cudaError_t launch_mean_axis_backward(const float* dy, float* dx, int64_t O, int64_t N, int64_t I, cudaStream_t s) {
  if (O * N * I == 0) return cudaSuccess;
  mean_axis_backward_kernel<<<grid_for(O * N * I, kThreads), kThreads, 0, s>>>(dy, dx, O, N, I);
  return cudaGetLastError();
}

cudaError_t launch_max_axis_forward(const float* x, float* y, float* argmax, int64_t O, int64_t N, int64_t I,
                                    cudaStream_t s) {
  if (O * I == 0) return cudaSuccess;
  max_axis_forward_kernel<<<grid_for(O * I, kThreads), kThreads, 0, s>>>(x, y, argmax, O, N, I);
  return cudaGetLastError();
}

cudaError_t launch_max_axis_backward(const float* dy, const float* argmax, float* dx, int64_t O, int64_t N, int64_t I,
                                     cudaStream_t s) {
  if (O * I == 0) return cudaSuccess;
  max_axis_backward_kernel<<<grid_for(O * I, kThreads), kThreads, 0, s>>>(dy, argmax, dx, O, N, I);
  return cudaGetLastError();
}

cudaError_t launch_scale(float* y, int64_t n, float alpha, cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  scale_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(y, n, alpha);
  return cudaGetLastError();
}

}  // namespace cpc::cuda
