#pragma once
// Kernels of the fused contrastive loss with sampled candidates
// (contrastive_sampled_kernels.cu); the orchestration is contrastive_sampled.cpp, the
// CPU twin kernels/cpu/contrastive_sampled.h. Row i is scored against the S columns
// cand[i * S + j]; only the (R, S) scores exist.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/common/contrastive_row.h"

namespace cpc::cuda {

struct SampledDeviceProblem {
  const float* A = nullptr;  // (R, D)
  const float* C = nullptr;  // (M, D)
  int64_t R = 0, M = 0, D = 0, S = 0;
  float scale = 1.f;
  math::MultiPositiveForm form = math::MultiPositiveForm::supcon;
  const int32_t* cand = nullptr;       // (R, S) device
  const int32_t* row_label = nullptr;  // (R) device
  const int32_t* col_label = nullptr;  // (M) device
};

// One block per row: S dot products (a warp each), then the row's two passes; score
// (R, S) ends as d(row loss)/d(score) when grad, else exp(s - max). row_flag: 0
// skipped, 1 used, 2 used and correct.
cudaError_t launch_sampled_rows(const SampledDeviceProblem& p, bool grad, float* score, float* row_loss,
                                int32_t* row_flag, cudaStream_t s);
// dA[i] += g * sum_j score[i, j] C[cand[i, j]] (one block per row).
cudaError_t launch_sampled_anchor_grad(const SampledDeviceProblem& p, const float* score, float g, float* dA,
                                       cudaStream_t s);
// dC[c] += g * sum over entries e listed for column c of score[e] A[e / S], entries
// (flat indices into (R, S)) sorted by column: col_first (M + 1), col_entry (R * S).
cudaError_t launch_sampled_candidate_grad(const SampledDeviceProblem& p, const float* score, const int32_t* col_first,
                                          const int32_t* col_entry, float g, float* dC, cudaStream_t s);

}  // namespace cpc::cuda
