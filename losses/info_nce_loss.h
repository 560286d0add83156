#pragma once
// InfoNCE for CPC (van den Oord et al.), with the seeds' variants as named options.
// For each step k = 1..K and each selected time t, the prediction W_k c_t (+ b_k) of
// sequence b is scored against the latent z_{t+k} of b (the positive) and against
// negatives; the loss is the mean cross-entropy of the positive over all rows, the
// score matrices are never materialised (ops::contrastive_loss).
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/core/autograd.h"
#include "engine/distributed/communicator.h"
#include "engine/core/random.h"

namespace cpc {

struct InfoNceOptions {
  // last: t = T - K - 1 (seed 000); random: one t for the batch, uniform in [0, T - K)
  // (seed 004); all: every t in [0, T - K), averaged (modern CPC).
  enum class TMode { last, random, all } t_mode = TMode::all;
  // over_latents: each prediction is scored against all candidate latents (seed 000);
  // over_predictions: each true latent against all predictions (seed 004: LogSoftmax
  // over dim 1 of z_k . pred_k^T).
  enum class Normalize { over_latents, over_predictions } normalize = Normalize::over_latents;
  // batch: candidates are the other sequences at the same target step (the seeds);
  // batch_time: also every other selected step (identical to batch for one t);
  // sequence: only the other selected steps of the same sequence (CPC_audio's
  // samesequence; needs t_mode all), so sequences never serve as each other's negatives.
  enum class Negatives { batch, batch_time, sequence } negatives = Negatives::batch;
  bool exclude_own_sequence = false;  // batch_time: drop one's own sequence's other steps
  // 0: every candidate of the mode (the seeds). N > 0: N negatives per row drawn
  // uniformly with replacement from that pool (positive excluded), as CPC_audio's
  // negativeSamplingExt; fresh draws per k, keyed by (step, k, row): resume stays exact
  // and global negatives over N ranks draw what one process would.
  int64_t negatives_count = 0;
  // Data parallel: local = candidates from this rank's batch only; global = from every
  // rank's batch (all-gathered), so the loss equals that of the concatenated global batch.
  enum class NegativesFrom { local, global } negatives_from = NegativesFrom::local;
  // dot (seeds), scaled_dot (dot / Dz, as CPC_audio), cosine (dot of unit vectors / temperature).
  enum class Score { dot, scaled_dot, cosine } score = Score::dot;
  float temperature = 0.1f;  // cosine only
  float cosine_eps = 1e-8f;  // norms clamped here: a zero vector scores 0, without NaN
  // per_row: a row is correct when its argmax is its positive (default). seed004_column:
  // seed 004's argmax over dim 0, i.e. per column of its z_k . pred_k^T matrix.
  enum class Accuracy { per_row, seed004_column } accuracy = Accuracy::per_row;

  // Reads {"t_mode": "all", ...}; unknown keys and bad values are errors naming `where`.
  static InfoNceOptions from_json(const nlohmann::json& j, const std::string& where);
};

struct LinearPredictor {  // W_k (Dz, Dc) and b_k (Dz) or null, as nn.Linear(Dc, Dz)
  Var* weight;
  Var* bias;
};

struct InfoNceResult {
  Var* loss = nullptr;
  std::vector<double> accuracy_per_k;  // k = 1..K
  double accuracy = 0;                 // mean over k
  int64_t t_first = 0, num_t = 0;      // the selected steps [t_first, t_first + num_t)
};

class InfoNceLoss {
 public:
  explicit InfoNceLoss(const InfoNceOptions& options) : options_(options) {}
  // negatives_from global gathers candidates over this communicator (world > 1).
  void set_communicator(Communicator* comm) { comm_ = comm; }
  // c (B, T, Dc), z (B, T, Dz). rng draws t in random mode; t_random >= 0 fixes it.
  const InfoNceResult& forward(Var* c, Var* z, const std::vector<LinearPredictor>& predictors, Generator* rng,
                               int64_t t_random = -1);
  const InfoNceOptions& options() const { return options_; }
  // negatives_count: the last forward's candidates, per k (R, 1 + N) column indices of
  // the score matrix (positive first).
  const std::vector<std::vector<int32_t>>& candidates() const { return candidates_; }
  // Tests: forwards use these candidates instead of drawing (PyTorch gets the same).
  void set_candidates(std::vector<std::vector<int32_t>> per_k) { given_ = std::move(per_k); }

 private:
  InfoNceOptions options_;
  Communicator* comm_ = nullptr;
  InfoNceResult result_;
  std::vector<int32_t> labels_, groups_, col_labels_, col_groups_;  // reused across steps
  std::vector<std::vector<int32_t>> candidates_, given_;
};

}  // namespace cpc
