#pragma once
// Launchers of bias.cu (same semantics as the CPU backend's bias loops); each returns
// the launch status.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace cpc::cuda {

// y (O, C, inner) += bias[c]; dbias[c] += sum over o, i of dy (O, C, inner).
cudaError_t launch_add_bias(float* y, const float* bias, int64_t O, int64_t C, int64_t inner, cudaStream_t s);
cudaError_t launch_bias_grad(const float* dy, float* dbias, int64_t O, int64_t C, int64_t inner, cudaStream_t s);

}  // namespace cpc::cuda
