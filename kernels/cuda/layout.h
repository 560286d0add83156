#pragma once
// Launchers for the layout and reduction kernels of layout.cu (same semantics
// as kernels/cpu/elementwise.h and the CPU backend's bias loops). Plain pointers and
// a stream; each returns the launch status. Backward launchers accumulate.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace cpc::cuda {

// x (O, M, N) -> y (O, N, M): y = transpose(x) + beta * y (y is not read when beta == 0).
cudaError_t launch_transpose_last2(const float* x, float* y, int64_t O, int64_t M, int64_t N, float beta,
                                   cudaStream_t s);
// x (O, M, N, I) -> y (O, N, M, I): y = permuted x + beta * y.
cudaError_t launch_swap_axes(const float* x, float* y, int64_t O, int64_t M, int64_t N, int64_t I, float beta,
                             cudaStream_t s);
// x (O, N, I) -> y (O, len, I) = x[:, start:start+len, :]; narrow_add: dx[:, start:start+len, :] += dy.
cudaError_t launch_narrow_copy(const float* x, float* y, int64_t O, int64_t N, int64_t I, int64_t start, int64_t len,
                               cudaStream_t s);
cudaError_t launch_narrow_add(const float* dy, float* dx, int64_t O, int64_t N, int64_t I, int64_t start, int64_t len,
                              cudaStream_t s);
// Reductions over the middle axis of (O, N, I) into (O, I); argmax holds float indices.
cudaError_t launch_mean_axis_forward(const float* x, float* y, int64_t O, int64_t N, int64_t I, cudaStream_t s);
cudaError_t launch_mean_axis_backward(const float* dy, float* dx, int64_t O, int64_t N, int64_t I, cudaStream_t s);
cudaError_t launch_max_axis_forward(const float* x, float* y, float* argmax, int64_t O, int64_t N, int64_t I,
                                    cudaStream_t s);
cudaError_t launch_max_axis_backward(const float* dy, const float* argmax, float* dx, int64_t O, int64_t N, int64_t I,
                                     cudaStream_t s);
// y *= alpha (n elements).
cudaError_t launch_scale(float* y, int64_t n, float alpha, cudaStream_t s);

}  // namespace cpc::cuda
