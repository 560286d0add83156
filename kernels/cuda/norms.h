#pragma once
// Launchers for the normalisation kernels of norms.cu: channel LayerNorm (statistics
// over C at each (b, l) of x (B, C, L)), the BatchNorm pieces cuDNN does not cover
// (eval-mode backward, running-variance invstd) and synchronised BatchNorm's local
// statistics and affine step. Same semantics as kernels/cpu/norms.h; backward
// launchers accumulate. Each returns the launch status.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "engine/core/op_dims.h"

namespace cpc::cuda {

using ::cpc::NormDims;  // engine/core/op_dims.h, shared with the CPU backend

// save_mean / save_invstd (B, L).
cudaError_t launch_channel_norm_forward(const float* x, const float* gamma, const float* beta, float eps,
                                        const NormDims& d, float* save_mean, float* save_invstd, float* y,
                                        cudaStream_t s);
// dx, dgamma, dbeta may each be null.
cudaError_t launch_channel_norm_backward(const float* x, const float* dy, const float* gamma, const float* mean,
                                         const float* invstd, const NormDims& d, float* dx, float* dgamma,
                                         float* dbeta, cudaStream_t s);

// invstd[c] = 1 / sqrt(running_var[c] + eps), in double as the CPU.
cudaError_t launch_batchnorm_eval_invstd(const float* running_var, float eps, int64_t C, float* invstd, cudaStream_t s);
// Eval-mode backward (statistics are constants): dx += gamma * invstd * dy;
// dgamma += sum dy * (x - mean) * invstd; dbeta += sum dy. Any output may be null.
cudaError_t launch_batchnorm_backward_eval(const float* x, const float* dy, const float* gamma, const float* mean,
                                           const float* invstd, const NormDims& d, float* dx, float* dgamma,
                                           float* dbeta, cudaStream_t s);
// Per-channel mean and biased variance over B and L (double, two passes).
cudaError_t launch_batchnorm_stats(const float* x, const NormDims& d, float* mean, float* var, cudaStream_t s);
// y[b, c, l] += scale[c] * x[b, c, l] + shift[c].
cudaError_t launch_channel_affine(const float* x, const float* scale, const float* shift, const NormDims& d, float* y,
                                  cudaStream_t s);

}  // namespace cpc::cuda
