// Layout copies, middle-axis reductions, bias add / gradient and row L2 normalisation.
// Each output element is computed in the CPU backend's order where the CPU sums
// sequentially (mean and max over an axis: one thread per output walks the axis), so
// those results agree bit for bit; bias_grad and l2_normalize sum in a tree.
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

cudaError_t launch_scale(float* y, int64_t n, float alpha, cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  scale_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(y, n, alpha);
  return cudaGetLastError();
}

}  // namespace cpc::cuda
