#include "losses/nt_xent_loss.h"

#include <algorithm>

#include "engine/core/error.h"
#include "engine/ops/ops.h"

namespace cpc {

const NtXentResult& NtXentLoss::forward_views(Var* e) {
  check_rank(e->value, 2, "NT-Xent embeddings", "(N, D)");
  const int64_t N = e->value.size(0);
  CPC_CHECK(N >= 2 && N % 2 == 0,
            "NT-Xent: view pairing needs an even number of embeddings (2 views per sample), found ", N);
  labels_.resize(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) labels_[i] = static_cast<int32_t>(i % (N / 2));
  return run(e, false);
}

const NtXentResult& NtXentLoss::forward_labels(Var* e, const std::vector<int32_t>& labels,
                                               const std::vector<std::pair<int32_t, int32_t>>& excluded) {
  check_rank(e->value, 2, "NT-Xent embeddings", "(N, D)");
  const int64_t N = e->value.size(0);
  CPC_CHECK(static_cast<int64_t>(labels.size()) == N, "NT-Xent: ", labels.size(), " labels for ", N, " embeddings");
  labels_ = labels;
  if (!excluded.empty()) {
    std::vector<std::pair<int32_t, int32_t>> pairs = excluded;
    for (const auto& [i, j] : pairs)
      CPC_CHECK(0 <= i && i < N && 0 <= j && j < N, "NT-Xent: excluded pair (", i, ", ", j, ") out of range [0, ", N,
                ")");
    std::sort(pairs.begin(), pairs.end());
    excl_offsets_.assign(static_cast<size_t>(N + 1), 0);
    excl_cols_.clear();
    for (const auto& [i, j] : pairs) {
      excl_cols_.push_back(j);
      ++excl_offsets_[static_cast<size_t>(i + 1)];
    }
    for (int64_t i = 0; i < N; ++i) excl_offsets_[i + 1] += excl_offsets_[i];
  }
  return run(e, !excluded.empty());
}

const NtXentResult& NtXentLoss::run(Var* e, bool has_exclusions) {
  const int64_t N = e->value.size(0);
  CPC_CHECK(options_.temperature > 0.f, "NT-Xent: temperature must be > 0, found ", options_.temperature);
  index_.resize(static_cast<size_t>(N));
  keep_.assign(static_cast<size_t>(N), -1);
  for (int64_t i = 0; i < N; ++i) index_[i] = static_cast<int32_t>(i);
  ContrastiveSpec spec;
  spec.row_label = spec.col_label = labels_.data();
  spec.row_group = spec.col_group = index_.data();  // an anchor is never its own candidate
  spec.row_keep = keep_.data();
  if (has_exclusions) spec.excl_offsets = excl_offsets_.data(), spec.excl_cols = excl_cols_.data();
  spec.scale = 1.f / options_.temperature;
  spec.logsumexp_positives = options_.form == NtXentOptions::MultiPositive::logsumexp;
  spec.neg_l2 = options_.similarity == NtXentOptions::Similarity::neg_l2;
  spec.l2_eps = options_.l2_eps;
  Var* x = options_.similarity == NtXentOptions::Similarity::cosine ? ops::l2_normalize(e, options_.cosine_eps) : e;
  ContrastiveStats st;
  result_.loss = ops::contrastive_loss(x, x, spec, &st);
  result_.anchors_used = st.used;
  result_.anchors_skipped = st.skipped;
  result_.accuracy = st.used ? static_cast<double>(st.correct) / static_cast<double>(st.used) : 0.0;
  return result_;
}

}  // namespace cpc
