#pragma once
// The fused contrastive loss with sampled candidates (ContrastiveSpec::row_candidates):
// row i is scored against exactly the S columns listed for it (a column listed twice
// counts twice, as sampling with replacement draws it), positives by label as
// everywhere else. Only the (R, S) scores are held, never (R, M): each row's S dot
// products, its two passes (kernels/common/contrastive_row.h), and d(loss)/d(score) in
// place. dA is a gather per row; dC a scatter, done per column over a column-sorted
// index (no atomics), so the result does not depend on the thread count. R * S and M
// fit int32 (the backend's front checks).
#include <algorithm>
#include <cstdint>

#include "kernels/common/contrastive_row.h"
#include "kernels/cpu/contrastive.h"
#include "kernels/cpu/parallel.h"

namespace cpc::cpu {

// Elements of T the sampled path needs: scores (R, S), row loss and flags, and dC's
// column-sorted entry index (M + 1 offsets, R * S entries, M cursors; int32 in T-sized
// slots), so a step allocates nothing.
inline int64_t sampled_workspace(int64_t R, int64_t S, int64_t M) { return R * S + 2 * R + (2 * M + 1 + R * S); }

template <class T>
ContrastiveResult contrastive_sampled(const T* A, const T* C, const ContrastiveProblem& p, T* ws, T* dA, T* dC) {
  const int64_t R = p.R, M = p.M, D = p.D, S = p.candidates_per_row;
  const int32_t* cand = p.row_candidates;
  const bool grad = dA || dC;
  T* score = ws;  // (R, S): scores, then e = exp(s - max), then d(row loss)/d(score)
  T* row_loss = score + R * S;
  T* row_flag = row_loss + R;  // 0 skipped, 1 used, 2 used and correct
  const T scale = T(p.scale);
  parallel_for(R, R * S * D > 32768, [&](int64_t i) {
    const T* a = A + i * D;
    T* s = score + i * S;
    const int32_t* ci = cand + i * S;
    const int32_t label = p.row_label[i];
    math::RowPass1<T> p1;
    for (int64_t j = 0; j < S; ++j) {
      const T* c = C + static_cast<int64_t>(ci[j]) * D;
      T dot = 0;
      for (int64_t d = 0; d < D; ++d) dot += a[d] * c[d];
      s[j] = scale * dot;
      p1.push(s[j], label == p.col_label[ci[j]]);
    }
    row_flag[i] = p1.used() ? (p1.best_is_pos ? 2 : 1) : 0;
    row_loss[i] = 0;
    if (!p1.used()) {
      for (int64_t j = 0; j < S; ++j) s[j] = 0;
      return;
    }
    T sum_neg = 0, sum_pos = 0;
    for (int64_t j = 0; j < S; ++j) {
      const bool pos = label == p.col_label[ci[j]];
      s[j] = math::row_exp(s[j], pos, p1);
      (pos ? sum_pos : sum_neg) += s[j];
    }
    const math::RowStats<T> st = math::row_stats(p1, sum_neg, sum_pos, p.form());
    row_loss[i] = st.loss;
    if (!grad) return;
    const math::RowGradFactors<T> f = math::row_grad_factors(p1, st, p.form());
    for (int64_t j = 0; j < S; ++j) s[j] = math::row_score_grad(s[j], label == p.col_label[ci[j]], f);
  });
  ContrastiveResult res;
  detail::reduce_rows(row_flag, row_loss, R, res);
  if (!grad) return res;
  // The mean over used rows, folded into the GEMM-free gradients' factor.
  const T g = res.used ? scale / static_cast<T>(res.used) : T(0);
  if (dA) std::fill(dA, dA + R * D, T(0));
  if (dC && dC != dA) std::fill(dC, dC + M * D, T(0));
  if (dA)
    parallel_for(R, R * S * D > 32768, [&](int64_t i) {
      T* da = dA + i * D;
      for (int64_t j = 0; j < S; ++j) {
        const T w = g * score[i * S + j];
        const T* c = C + static_cast<int64_t>(cand[i * S + j]) * D;
        for (int64_t d = 0; d < D; ++d) da[d] += w * c[d];
      }
    });
  if (dC) {  // entries sorted by column (counting sort keeps row order within a column)
    int32_t* first = reinterpret_cast<int32_t*>(row_flag + R);  // M + 1
    int32_t* fill = reinterpret_cast<int32_t*>(row_flag + R + M + 1);  // M
    int32_t* entry = reinterpret_cast<int32_t*>(row_flag + R + 2 * M + 1);  // R * S
    std::fill(first, first + M + 1, 0);
    for (int64_t e = 0; e < R * S; ++e) ++first[cand[e] + 1];
    for (int64_t j = 0; j < M; ++j) first[j + 1] += first[j];
    std::copy(first, first + M, fill);
    for (int64_t e = 0; e < R * S; ++e) entry[fill[cand[e]]++] = static_cast<int32_t>(e);
    parallel_for(M, R * S * D > 32768, [&](int64_t j) {
      T* dc = dC + j * D;
      for (int32_t k = first[j]; k < first[j + 1]; ++k) {
        const int64_t e = entry[k];
        const T w = g * score[e];
        const T* a = A + (e / S) * D;
        for (int64_t d = 0; d < D; ++d) dc[d] += w * a[d];
      }
    });
  }
  return res;
}

}  // namespace cpc::cpu
