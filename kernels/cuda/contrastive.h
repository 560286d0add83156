#pragma once
// The fused contrastive loss on the GPU, the contract of kernels/cpu/contrastive.h:
// anchors A (R, D) against candidates C (M, D) in `blocks` equal blocks, tiles of whole
// rows so each row's logsumexp is final while its scores are resident, gradients of the
// mean loss computed in the same pass into dA / dC (overwritten; one buffer when A and
// C are one tensor). Per tile: a (strided-batched) cuBLAS GEMM of scores into a bounded
// workspace, the row kernel (kernels/common/contrastive_row.h), the column argmax, the
// score-gradient kernel, then two GEMMs for dA and dC. Never the (R, M) matrix: a tile
// holds at most max(tile_elements, M / blocks) scores. Loss and counts are reduced in
// double on the device and copied back once.
#include <cstdint>

#include "engine/core/backend.h"  // ContrastiveSpec: the problem, index arrays in host memory
#include "kernels/common/contrastive_row.h"
#include "kernels/cuda/contrastive_kernels.h"
#include "kernels/cuda/runtime/cuda_context.h"
#include "kernels/cuda/runtime/host_staging.h"

namespace cpc::cuda {

struct ContrastiveOutcome {
  double loss = 0;
  int64_t used = 0, skipped = 0, correct = 0, column_correct = 0;
};

// The score-tile budget in elements when none is set.
constexpr int64_t kDefaultContrastiveTile = int64_t{1} << 23;  // 32 MiB of floats

// The row reduction (loss sum and counts) of st's R rows on the device, copied back
// once: the op's one synchronisation. Both contrastive paths end with it.
ContrastiveOutcome reduce_and_read_stats(const CudaContext& ctx, const ContrastiveDeviceProblem& p,
                                         const ContrastiveRowState& st, bool column_argmax);

ContrastiveOutcome contrastive_forward(const CudaContext& ctx, HostStaging& staging, const float* A, const float* C,
                                       int64_t R, int64_t M, int64_t D, const ContrastiveSpec& spec, float* dA,
                                       float* dC, int64_t tile_elements = kDefaultContrastiveTile);

}  // namespace cpc::cuda
