#pragma once
// NT-Xent (SimCLR) and multi-positive SupCon over one set of embeddings (N, D).
// Each embedding is an anchor against all others (itself excluded); its positives
// are the other view of the same sample, or every embedding with the same label.
// Fused: the (N, N) similarity matrix is never stored (ops::contrastive_loss).
#include <cstdint>
#include <utility>
#include <vector>

#include "engine/core/autograd.h"

namespace cpc {

struct NtXentOptions {
  // cosine: a.b / (|a| |b|); dot: a.b; neg_l2: -||a - b|| (inverted Euclidean distance,
  // larger = more similar). All are divided by the temperature.
  enum class Similarity { cosine, dot, neg_l2 } similarity = Similarity::cosine;
  float temperature = 0.1f;
  // With several positives: supcon = logsumexp(all) - mean(positives) (Khosla et al.);
  // logsumexp = logsumexp(all) - logsumexp(positives) (seed 003). Equal for one positive.
  enum class MultiPositive { supcon, logsumexp } form = MultiPositive::supcon;
  float cosine_eps = 1e-8f;  // norm clamp: zero vectors give similarity 0, finite gradients
  float l2_eps = 1e-12f;     // neg_l2 uses sqrt(||a - b||^2 + l2_eps): duplicates stay differentiable
};

struct NtXentResult {
  Var* loss = nullptr;  // mean over anchors with at least one positive (0 if none has)
  double accuracy = 0;  // anchors whose most similar candidate is a positive / anchors used
  int64_t anchors_used = 0;
  int64_t anchors_skipped = 0;  // anchors without any positive: skipped, counted here
};

class NtXentLoss {
 public:
  explicit NtXentLoss(const NtXentOptions& o) : options_(o) {}
  // SimCLR pairing: rows i and i + N/2 are two views of sample i.
  const NtXentResult& forward_views(Var* embeddings);
  // Label pairing; excluded (anchor, candidate) pairs are dropped from both the
  // positives and the negatives of that anchor (seed 003's target -1).
  const NtXentResult& forward_labels(Var* embeddings, const std::vector<int32_t>& labels,
                                     const std::vector<std::pair<int32_t, int32_t>>& excluded = {});
  const NtXentOptions& options() const { return options_; }

 private:
  NtXentOptions options_;
  NtXentResult result_;
  std::vector<int32_t> labels_, index_, keep_, excl_offsets_, excl_cols_;
  const NtXentResult& run(Var* embeddings, bool has_exclusions);
};

}  // namespace cpc
