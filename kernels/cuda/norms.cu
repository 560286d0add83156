// Channel LayerNorm and the BatchNorm pieces outside cuDNN. Channel LayerNorm runs one
// thread per (b, l) walking C in the CPU's order (float sums, two passes), so its
// statistics match the CPU's to the last bit up to FMA contraction; the per-channel
// parameter gradients are block reductions in double, as the CPU's.
#include <cmath>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/norms.h"

namespace cpc::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void channel_norm_forward_kernel(const float* __restrict__ x, const float* __restrict__ gamma,
                                            const float* __restrict__ beta, float eps, NormDims d,
                                            float* __restrict__ save_mean, float* __restrict__ save_invstd,
                                            float* __restrict__ y) {
  for (int64_t e = global_index(); e < d.B * d.L; e += global_stride()) {
    const int64_t b = e / d.L, l = e % d.L;
    const float* xb = x + b * d.C * d.L + l;
    float m = 0.f;
    for (int64_t c = 0; c < d.C; ++c) m += xb[c * d.L];
    m /= static_cast<float>(d.C);
    float v = 0.f;
    for (int64_t c = 0; c < d.C; ++c) {
      const float t = xb[c * d.L] - m;
      v += t * t;
    }
    const float is = 1.f / sqrtf(v / static_cast<float>(d.C) + eps);
    save_mean[e] = m;
    save_invstd[e] = is;
    float* yb = y + b * d.C * d.L + l;
    for (int64_t c = 0; c < d.C; ++c) yb[c * d.L] = (xb[c * d.L] - m) * is * gamma[c] + beta[c];
  }
}

__global__ void channel_norm_backward_data_kernel(const float* __restrict__ x, const float* __restrict__ dy,
                                                  const float* __restrict__ gamma, const float* __restrict__ mean,
                                                  const float* __restrict__ invstd, NormDims d,
                                                  float* __restrict__ dx) {
  for (int64_t e = global_index(); e < d.B * d.L; e += global_stride()) {
    const int64_t b = e / d.L, l = e % d.L, base = b * d.C * d.L + l;
    const float m = mean[e], is = invstd[e];
    float s1 = 0.f, s2 = 0.f;  // means over C of g = dy * gamma and of g * xhat
    for (int64_t c = 0; c < d.C; ++c) {
      const int64_t i = base + c * d.L;
      const float g = dy[i] * gamma[c];
      s1 += g;
      s2 += g * (x[i] - m) * is;
    }
    s1 /= static_cast<float>(d.C);
    s2 /= static_cast<float>(d.C);
    for (int64_t c = 0; c < d.C; ++c) {
      const int64_t i = base + c * d.L;
      const float xhat = (x[i] - m) * is;
      dx[i] += is * (dy[i] * gamma[c] - s1 - xhat * s2);
    }
  }
}

// One block per channel: sum over (b, l) of dy * xhat and of dy. `stat_per_bl`: the
// mean / invstd are (B, L) (channel LayerNorm) rather than one value per channel.
template <bool kStatPerBl>
__global__ void norm_param_grad_kernel(const float* __restrict__ x, const float* __restrict__ dy,
                                       const float* __restrict__ mean, const float* __restrict__ invstd, NormDims d,
                                       float* __restrict__ dgamma, float* __restrict__ dbeta) {
  __shared__ double sh[32];
  const int64_t n = d.B * d.L;
  for (int64_t c = blockIdx.x; c < d.C; c += gridDim.x) {
    double sg = 0.0, sb = 0.0;
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x) {
      const int64_t b = k / d.L, l = k % d.L, i = (b * d.C + c) * d.L + l;
      const float m = kStatPerBl ? mean[k] : mean[c], is = kStatPerBl ? invstd[k] : invstd[c];
      sg += static_cast<double>(dy[i] * ((x[i] - m) * is));
      sb += static_cast<double>(dy[i]);
    }
    sg = block_sum(sg, sh);
    sb = block_sum(sb, sh);
    if (threadIdx.x == 0) {
      if (dgamma) dgamma[c] += static_cast<float>(sg);
      if (dbeta) dbeta[c] += static_cast<float>(sb);
    }
  }
}

__global__ void batchnorm_eval_invstd_kernel(const float* __restrict__ rv, float eps, int64_t C,
                                             float* __restrict__ invstd) {
  for (int64_t c = global_index(); c < C; c += global_stride())
    invstd[c] = static_cast<float>(1.0 / sqrt(static_cast<double>(rv[c]) + static_cast<double>(eps)));
}

__global__ void batchnorm_backward_eval_data_kernel(const float* __restrict__ dy, const float* __restrict__ gamma,
                                                    const float* __restrict__ invstd, NormDims d,
                                                    float* __restrict__ dx) {
  for (int64_t e = global_index(); e < d.B * d.C * d.L; e += global_stride()) {
    const int64_t c = (e / d.L) % d.C;
    dx[e] += gamma[c] * invstd[c] * dy[e];
  }
}

__global__ void batchnorm_stats_kernel(const float* __restrict__ x, NormDims d, float* __restrict__ mean,
                                       float* __restrict__ var) {
  __shared__ double sh[32];
  const int64_t n = d.B * d.L;
  for (int64_t c = blockIdx.x; c < d.C; c += gridDim.x) {
    double s = 0.0;
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x) s += x[((k / d.L) * d.C + c) * d.L + k % d.L];
    const double m = block_sum(s, sh) / static_cast<double>(n);
    double ss = 0.0;
    for (int64_t k = threadIdx.x; k < n; k += blockDim.x) {
      const double v = x[((k / d.L) * d.C + c) * d.L + k % d.L] - m;
      ss += v * v;
    }
    ss = block_sum(ss, sh);
    if (threadIdx.x == 0) mean[c] = static_cast<float>(m), var[c] = static_cast<float>(ss / static_cast<double>(n));
  }
}

__global__ void channel_affine_kernel(const float* __restrict__ x, const float* __restrict__ scale,
                                      const float* __restrict__ shift, NormDims d, float* __restrict__ y) {
  for (int64_t e = global_index(); e < d.B * d.C * d.L; e += global_stride()) {
    const int64_t c = (e / d.L) % d.C;
    y[e] += scale[c] * x[e] + shift[c];
  }
}

}  // namespace

cudaError_t launch_channel_norm_forward(const float* x, const float* gamma, const float* beta, float eps,
                                        const NormDims& d, float* save_mean, float* save_invstd, float* y,
                                        cudaStream_t s) {
  const int64_t n = d.B * d.L;
  if (n == 0) return cudaSuccess;
  channel_norm_forward_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(x, gamma, beta, eps, d, save_mean, save_invstd,
                                                                         y);
  return cudaGetLastError();
}

cudaError_t launch_channel_norm_backward(const float* x, const float* dy, const float* gamma, const float* mean,
                                         const float* invstd, const NormDims& d, float* dx, float* dgamma,
                                         float* dbeta, cudaStream_t s) {
  if (d.B * d.C * d.L == 0) return cudaSuccess;
  if (dgamma || dbeta) {
    norm_param_grad_kernel<true><<<grid_for(d.C, 1), kThreads, 0, s>>>(x, dy, mean, invstd, d, dgamma, dbeta);
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
  }
  if (dx)
    channel_norm_backward_data_kernel<<<grid_for(d.B * d.L, kThreads), kThreads, 0, s>>>(x, dy, gamma, mean, invstd, d,
                                                                                         dx);
  return cudaGetLastError();
}

cudaError_t launch_batchnorm_eval_invstd(const float* running_var, float eps, int64_t C, float* invstd,
                                         cudaStream_t s) {
  if (C == 0) return cudaSuccess;
  batchnorm_eval_invstd_kernel<<<grid_for(C, kThreads), kThreads, 0, s>>>(running_var, eps, C, invstd);
  return cudaGetLastError();
}

cudaError_t launch_batchnorm_backward_eval(const float* x, const float* dy, const float* gamma, const float* mean,
                                           const float* invstd, const NormDims& d, float* dx, float* dgamma,
                                           float* dbeta, cudaStream_t s) {
  const int64_t n = d.B * d.C * d.L;
  if (n == 0) return cudaSuccess;
  if (dgamma || dbeta) {
    norm_param_grad_kernel<false><<<grid_for(d.C, 1), kThreads, 0, s>>>(x, dy, mean, invstd, d, dgamma, dbeta);
    const cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return e;
  }
  if (dx) batchnorm_backward_eval_data_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(dy, gamma, invstd, d, dx);
  return cudaGetLastError();
}

cudaError_t launch_batchnorm_stats(const float* x, const NormDims& d, float* mean, float* var, cudaStream_t s) {
  if (d.C == 0) return cudaSuccess;
  batchnorm_stats_kernel<<<grid_for(d.C, 1), kThreads, 0, s>>>(x, d, mean, var);
  return cudaGetLastError();
}

cudaError_t launch_channel_affine(const float* x, const float* scale, const float* shift, const NormDims& d, float* y,
                                  cudaStream_t s) {
  const int64_t n = d.B * d.C * d.L;
  if (n == 0) return cudaSuccess;
  channel_affine_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(x, scale, shift, d, y);
  return cudaGetLastError();
}

}  // namespace cpc::cuda
