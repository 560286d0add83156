#include "losses/info_nce_loss.h"

#include <random>

#include "engine/core/error.h"
#include "engine/ops/ops.h"
#include "losses/negative_sampler.h"

namespace cpc {

namespace {
template <class E>
E pick(const nlohmann::json& j, const std::string& where, const std::string& key,
       std::initializer_list<std::pair<const char*, E>> choices) {
  CPC_CHECK(j.is_string(), where, ".", key, ": expected a string, found ", j.dump());
  std::string names;
  for (const auto& [name, value] : choices) {
    if (j.get<std::string>() == name) return value;
    names += std::string(names.empty() ? "" : ", ") + name;
  }
  fail(where, ".", key, ": '", j.get<std::string>(), "' is not one of ", names);
}
}  // namespace

InfoNceOptions InfoNceOptions::from_json(const nlohmann::json& j, const std::string& where) {
  CPC_CHECK(j.is_object(), where, ": expected an object, found ", j.dump());
  InfoNceOptions o;
  using O = InfoNceOptions;
  for (const auto& [key, v] : j.items()) {
    if (key == "t_mode")
      o.t_mode = pick<O::TMode>(v, where, key,
                                {{"last", O::TMode::last}, {"random", O::TMode::random}, {"all", O::TMode::all}});
    else if (key == "normalize")
      o.normalize = pick<O::Normalize>(
          v, where, key,
          {{"over_latents", O::Normalize::over_latents}, {"over_predictions", O::Normalize::over_predictions}});
    else if (key == "negatives")
      o.negatives =
          pick<O::Negatives>(v, where, key,
                             {{"batch", O::Negatives::batch},
                              {"batch_time", O::Negatives::batch_time},
                              {"sequence", O::Negatives::sequence}});
    else if (key == "score")
      o.score = pick<O::Score>(
          v, where, key, {{"dot", O::Score::dot}, {"scaled_dot", O::Score::scaled_dot}, {"cosine", O::Score::cosine}});
    else if (key == "accuracy")
      o.accuracy = pick<O::Accuracy>(
          v, where, key, {{"per_row", O::Accuracy::per_row}, {"seed004_column", O::Accuracy::seed004_column}});
    else if (key == "negatives_from")
      o.negatives_from = pick<O::NegativesFrom>(
          v, where, key, {{"local", O::NegativesFrom::local}, {"global", O::NegativesFrom::global}});
    else if (key == "exclude_own_sequence") {
      CPC_CHECK(v.is_boolean(), where, ".", key, ": expected true or false, found ", v.dump());
      o.exclude_own_sequence = v.get<bool>();
    } else if (key == "negatives_count") {
      CPC_CHECK(v.is_number_integer() && v.get<int64_t>() >= 0, where, ".", key,
                ": expected an integer >= 0 (0: every candidate), found ", v.dump());
      o.negatives_count = v.get<int64_t>();
    } else if (key == "temperature") {
      CPC_CHECK(v.is_number() && v.get<double>() > 0, where, ".", key, ": expected a number > 0, found ", v.dump());
      o.temperature = v.get<float>();
    } else {
      fail(where, ": unknown key '", key,
           "' (expected t_mode, normalize, negatives, negatives_count, negatives_from, exclude_own_sequence, score, "
           "temperature, accuracy)");
    }
  }
  return o;
}

const InfoNceResult& InfoNceLoss::forward(Var* c, Var* z, const std::vector<LinearPredictor>& predictors,
                                          Generator* rng, int64_t t_random) {
  check_rank(c->value, 3, "InfoNCE context c", "(B, T, Dc)");
  check_rank(z->value, 3, "InfoNCE latents z", "(B, T, Dz)");
  const int64_t B = c->value.size(0), T = c->value.size(1), Dz = z->value.size(2);
  const int64_t K = static_cast<int64_t>(predictors.size());
  CPC_CHECK(z->value.size(0) == B && z->value.size(1) == T, "InfoNCE: c ", c->value.shape(), " and z ",
            z->value.shape(), " must share (B, T)");
  CPC_CHECK(K >= 1, "InfoNCE: no predictors (K = 0)");
  CPC_CHECK(T >= K + 1, "InfoNCE: ", T, " time steps are too few for K = ", K, " (need at least K + 1)");
  CPC_CHECK(B >= 1, "InfoNCE: empty batch");

  // The selected steps: always a contiguous range [t0, t0 + nt).
  int64_t t0 = 0, nt = 1;
  switch (options_.t_mode) {
    case InfoNceOptions::TMode::last:
      t0 = T - K - 1;
      break;
    case InfoNceOptions::TMode::random:
      if (t_random >= 0) {
        CPC_CHECK(t_random < T - K, "InfoNCE: t = ", t_random, " out of range [0, ", T - K, ")");
        t0 = t_random;
      } else {
        CPC_CHECK(rng != nullptr, "InfoNCE: t_mode random needs a generator");
        t0 = static_cast<int64_t>(std::uniform_int_distribution<int64_t>(0, T - K - 1)(rng->engine()));
      }
      break;
    case InfoNceOptions::TMode::all:
      nt = T - K;
      break;
  }
  const bool sequence = options_.negatives == InfoNceOptions::Negatives::sequence;
  if (sequence) {
    CPC_CHECK(nt >= 2, "InfoNCE: negatives 'sequence' scores each prediction against the other selected steps of its "
              "own sequence, and t_mode ", options_.t_mode == InfoNceOptions::TMode::last ? "last" : "random",
              " selects one step: there is none. Use t_mode 'all'");
    CPC_CHECK(!options_.exclude_own_sequence, "InfoNCE: exclude_own_sequence contradicts negatives 'sequence'");
    CPC_CHECK(options_.accuracy != InfoNceOptions::Accuracy::seed004_column,
              "InfoNCE: accuracy seed004_column is not defined for negatives 'sequence'");
    CPC_CHECK(options_.negatives_from == InfoNceOptions::NegativesFrom::local,
              "InfoNCE: negatives 'sequence' take no candidates from other ranks; set negatives_from 'local'");
  }
  const int64_t R = nt * B;  // rows ordered (t, b); (b, t) for sequence negatives
  // Global negatives: candidates come from every rank's batch, gathered along b (rank
  // order = the global batch's order); this rank's rows keep their global indices.
  const bool global = options_.negatives_from == InfoNceOptions::NegativesFrom::global && comm_ && comm_->world() > 1;
  const int64_t W = global ? comm_->world() : 1, rank = global ? comm_->rank() : 0, BG = W * B, M = nt * BG;
  CPC_CHECK(!global || options_.accuracy != InfoNceOptions::Accuracy::seed004_column,
            "InfoNCE: accuracy seed004_column (an argmax over all rows) is not available with negatives_from global");

  // Labels: the positive of row (t, b) is the column of (t, rank * B + b). Groups: the
  // (global) sequence, for exclusion.
  labels_.resize(static_cast<size_t>(R));
  groups_.resize(static_cast<size_t>(R));
  for (int64_t i = 0; i < R; ++i) {
    const int64_t t = i / B, b = rank * B + i % B;
    labels_[i] = static_cast<int32_t>(sequence ? i : t * BG + b), groups_[i] = static_cast<int32_t>(b);
  }
  col_labels_.resize(static_cast<size_t>(M));
  col_groups_.resize(static_cast<size_t>(M));
  for (int64_t j = 0; j < M; ++j) col_labels_[j] = static_cast<int32_t>(j), col_groups_[j] = static_cast<int32_t>(j % BG);
  ContrastiveSpec spec;
  spec.row_label = labels_.data();
  spec.col_label = col_labels_.data();
  const bool batch_time = options_.negatives == InfoNceOptions::Negatives::batch_time;
  spec.blocks = sequence ? B : batch_time ? 1 : nt;  // sequence: one nt x nt block per sequence
  if (batch_time && options_.exclude_own_sequence) {
    spec.row_group = groups_.data();
    spec.col_group = col_groups_.data();
    spec.row_keep = labels_.data();  // one's own positive stays
  }
  switch (options_.score) {
    case InfoNceOptions::Score::dot:
      spec.scale = 1.f;
      break;
    case InfoNceOptions::Score::scaled_dot:
      spec.scale = 1.f / static_cast<float>(Dz);
      break;
    case InfoNceOptions::Score::cosine:
      spec.scale = 1.f / options_.temperature;
      break;
  }
  spec.column_argmax = options_.accuracy == InfoNceOptions::Accuracy::seed004_column;

  // Sampled negatives: each row lists its positive and N draws from its mode's pool.
  const int64_t N = options_.negatives_count;
  uint64_t sample_seed = 0;
  NegativePool pool;
  if (N > 0) {
    CPC_CHECK(!spec.column_argmax, "InfoNCE: accuracy seed004_column is not defined with negatives_count");
    using Kind = NegativePool::Kind;
    pool.kind = sequence ? Kind::same_sequence
                : batch_time ? (options_.exclude_own_sequence ? Kind::other_sequences : Kind::all_steps)
                             : Kind::same_step;
    pool.steps = nt, pool.batch = B, pool.global_batch = BG, pool.rank = rank;
    CPC_CHECK(pool.size() >= 1, "InfoNCE: negatives_count ", N, " draws from an empty pool: negatives '",
              sequence ? "sequence" : batch_time ? "batch_time" : "batch", "' with ", BG, " sequence(s) and ", nt,
              " selected step(s) leaves no candidate besides the positive");
    if (given_.empty()) {
      CPC_CHECK(rng != nullptr, "InfoNCE: negatives_count needs a generator");
      sample_seed = rng->next();
    } else {
      CPC_CHECK(static_cast<int64_t>(given_.size()) == K, "InfoNCE: ", given_.size(), " candidate lists for K = ", K);
    }
    spec.blocks = 1;
    spec.row_group = spec.col_group = spec.row_keep = nullptr;
    spec.candidates_per_row = N + 1;
    candidates_.resize(static_cast<size_t>(K));
  } else {
    candidates_.clear();
  }

  const bool over_latents = options_.normalize == InfoNceOptions::Normalize::over_latents;
  // Steps [first, first + nt) of a (B, T, D) tensor as (nt * B, D) rows (t, b); for
  // sequence negatives rows (b, t), so that each sequence's rows and candidates form one
  // block. Rows (t, b) come from the tensor made time-major (T, B, D) once: each of the
  // K + 1 selections is then a view of whole leading rows (no narrow or transpose copy per
  // k: they had cost ecg12 ~5 ms a step).
  auto source = [&](Var* v) { return sequence ? v : ops::transpose(v, 0, 1); };
  auto rows = [&](Var* src, int64_t first, int64_t b) {
    const int64_t d = src->value.size(2);
    return ops::reshape(ops::narrow(src, sequence ? 1 : 0, first, nt), {nt * b, d});
  };
  Var* c_sel = rows(source(c), t0, B);
  // Candidates of every rank: the latents (over_latents) or the contexts whose
  // predictions are scored (over_predictions).
  Var* z_src = source(global && over_latents ? ops::all_gather(z, *comm_) : z);
  Var* c_all_sel = global && !over_latents ? rows(source(ops::all_gather(c, *comm_)), t0, BG) : c_sel;
  result_.accuracy_per_k.assign(static_cast<size_t>(K), 0.0);
  Var* total = nullptr;
  for (int64_t k = 1; k <= K; ++k) {
    const LinearPredictor& p = predictors[static_cast<size_t>(k - 1)];
    Var* pred = ops::linear(over_latents ? c_sel : c_all_sel, p.weight, p.bias);  // (R or M, Dz)
    Var* target = rows(z_src, t0 + k, over_latents ? BG : B);  // (M or R, Dz)
    if (options_.score == InfoNceOptions::Score::cosine) {
      pred = ops::l2_normalize(pred, options_.cosine_eps);
      target = ops::l2_normalize(target, options_.cosine_eps);
    }
    if (N > 0) {
      std::vector<int32_t>& cand = candidates_[static_cast<size_t>(k - 1)];
      if (given_.empty()) {
        sample_negatives(pool, sample_seed, k, N, cand);
      } else {
        cand = given_[static_cast<size_t>(k - 1)];
        CPC_CHECK(static_cast<int64_t>(cand.size()) == R * (N + 1), "InfoNCE: the given candidates for k = ", k,
                  " hold ", cand.size(), " entries, expected ", R, " x ", N + 1);
      }
      spec.row_candidates = cand.data();
    }
    ContrastiveStats st;
    Var* lk =
        over_latents ? ops::contrastive_loss(pred, target, spec, &st) : ops::contrastive_loss(target, pred, spec, &st);
    result_.accuracy_per_k[static_cast<size_t>(k - 1)] =
        spec.column_argmax ? static_cast<double>(st.column_correct) / static_cast<double>(R)
                           : static_cast<double>(st.correct) / static_cast<double>(R);
    total = total ? ops::add(total, lk) : lk;
  }
  // Every k has R rows: the mean over all (k, t, b) rows is the mean of the K means.
  // With global negatives this is this rank's share; the mean over ranks is the loss of
  // the global batch (equal local batches).
  result_.loss = ops::scale(total, 1.f / static_cast<float>(K));
  double acc = 0;
  for (double a : result_.accuracy_per_k) acc += a;
  result_.accuracy = acc / static_cast<double>(K);
  result_.t_first = t0;
  result_.num_t = nt;
  return result_;
}

}  // namespace cpc
