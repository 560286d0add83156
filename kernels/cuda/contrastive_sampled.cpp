#include "kernels/cuda/contrastive_sampled.h"

#include <climits>
#include <vector>

#include "engine/core/error.h"
#include "kernels/cuda/contrastive_kernels.h"
#include "kernels/cuda/contrastive_sampled_kernels.h"
#include "kernels/cuda/runtime/cuda_check.h"

namespace cpc::cuda {

ContrastiveOutcome contrastive_sampled(const CudaContext& ctx, HostStaging& staging, const float* A, const float* C,
                                       int64_t R, int64_t M, int64_t D, const ContrastiveSpec& hp, float* dA,
                                       float* dC) {
  const cudaStream_t s = ctx.stream;
  const int64_t S = hp.candidates_per_row, n = R * S;
  CPC_CHECK(n <= INT_MAX && M < INT_MAX, "contrastive_loss on cuda: ", R, " anchors x ", S,
            " sampled candidates exceed the int32 index range");
  const bool grad = dA || dC;
  // The column-sorted entry index for dC's gather (host: the indices are host memory).
  std::vector<int32_t> col_first, col_entry;
  if (dC) {
    col_first.assign(static_cast<size_t>(M) + 1, 0);
    col_entry.resize(static_cast<size_t>(n));
    for (int64_t e = 0; e < n; ++e) ++col_first[static_cast<size_t>(hp.row_candidates[e]) + 1];
    for (int64_t j = 0; j < M; ++j) col_first[j + 1] += col_first[j];
    std::vector<int32_t> fill(col_first.begin(), col_first.end() - 1);
    for (int64_t e = 0; e < n; ++e) col_entry[static_cast<size_t>(fill[hp.row_candidates[e]]++)] = static_cast<int32_t>(e);
  }
  const int64_t n_idx = n + R + M + static_cast<int64_t>(col_first.size() + col_entry.size());
  DeviceScratch idx = ctx.scratch(sizeof(int32_t) * static_cast<size_t>(n_idx));
  int32_t* cursor = idx.get<int32_t>();
  auto upload = [&](const int32_t* host, int64_t count) -> const int32_t* {
    int32_t* dst = cursor;
    if (count) staging.copy_to_device(dst, host, sizeof(int32_t) * static_cast<size_t>(count), s);
    cursor += count;
    return dst;
  };
  SampledDeviceProblem p;
  p.A = A, p.C = C, p.R = R, p.M = M, p.D = D, p.S = S, p.scale = hp.scale;
  p.form = hp.logsumexp_positives ? math::MultiPositiveForm::logsumexp : math::MultiPositiveForm::supcon;
  p.cand = upload(hp.row_candidates, n);
  p.row_label = upload(hp.row_label, R);
  p.col_label = upload(hp.col_label, M);
  const int32_t* first = dC ? upload(col_first.data(), M + 1) : nullptr;
  const int32_t* entry = dC ? upload(col_entry.data(), n) : nullptr;

  DeviceScratch score_s = ctx.scratch(sizeof(float) * static_cast<size_t>(n + 2 * R));
  float* score = score_s.get<float>();
  ContrastiveRowState st;
  st.row_loss = score + n;
  st.row_flag = reinterpret_cast<int32_t*>(st.row_loss + R);
  CPC_CUDA_CHECK(launch_sampled_rows(p, grad, score, st.row_loss, st.row_flag, s));
  ContrastiveDeviceProblem rows;  // the row reduction needs R only
  rows.R = R;
  const ContrastiveOutcome out = reduce_and_read_stats(ctx, rows, st, false);
  if (!grad) return out;
  // Gradients of the mean over used rows: scale / used folded into one factor.
  const float g = out.used ? hp.scale / static_cast<float>(out.used) : 0.f;
  if (dA) CPC_CUDA_CHECK(cudaMemsetAsync(dA, 0, sizeof(float) * static_cast<size_t>(R * D), s));
  if (dC && dC != dA) CPC_CUDA_CHECK(cudaMemsetAsync(dC, 0, sizeof(float) * static_cast<size_t>(M * D), s));
  if (dA) CPC_CUDA_CHECK(launch_sampled_anchor_grad(p, score, g, dA, s));
  if (dC) CPC_CUDA_CHECK(launch_sampled_candidate_grad(p, score, first, entry, g, dC, s));
  return out;
}

}  // namespace cpc::cuda
