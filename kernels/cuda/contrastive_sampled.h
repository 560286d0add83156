#pragma once
// The fused contrastive loss with sampled candidates on the GPU (ContrastiveSpec::
// row_candidates), the contract of kernels/cpu/contrastive_sampled.h: only the (R, S)
// scores are held; dC is gathered per column over a column-sorted index built on the
// host (the indices are host memory), so it needs no atomics and is deterministic.
#include <cstdint>

#include "kernels/cuda/contrastive.h"

namespace cpc::cuda {

ContrastiveOutcome contrastive_sampled(const CudaContext& ctx, HostStaging& staging, const float* A, const float* C,
                                       int64_t R, int64_t M, int64_t D, const ContrastiveSpec& spec, float* dA,
                                       float* dC);

}  // namespace cpc::cuda
