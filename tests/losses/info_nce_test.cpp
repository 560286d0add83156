// InfoNCE against PyTorch for every option combination (3 t modes x 2 normalisations
// x 3 negative sets x 3 scores, and sequence negatives with t_mode all x 2 x 3), and
// against the seeds' own functions.
#include <gtest/gtest.h>

#include "engine/ops/ops.h"
#include "losses/info_nce_loss.h"
#include "tests/support/reference_case.h"

namespace cpc::test {
namespace {

struct Predictors {
  std::vector<std::unique_ptr<Parameter>> params;
  std::vector<LinearPredictor> list;
  std::vector<std::string> names;
};

Predictors load_predictors(const ReferenceCase& c, int K, bool bias) {
  Predictors p;
  for (int k = 0; k < K; ++k) {
    const std::string w = "Wk." + std::to_string(k) + ".weight", b = "Wk." + std::to_string(k) + ".bias";
    p.params.push_back(std::make_unique<Parameter>(c.tensor("param/" + w)));
    Parameter* weight = p.params.back().get();
    Parameter* bp = nullptr;
    if (bias) {
      p.params.push_back(std::make_unique<Parameter>(c.tensor("param/" + b)));
      bp = p.params.back().get();
    }
    p.list.push_back({weight, bp});
    p.names.push_back(w);
    if (bias) p.names.push_back(b);
  }
  return p;
}

// The case's config as InfoNCE options (without the test's own keys t_random and K).
nlohmann::json loss_options(const ReferenceCase& c) {
  nlohmann::json opts = c.config();
  opts.erase("t_random");
  opts.erase("K");
  return opts;
}

// Loss, per-k accuracy, and (after backward) the gradients of c, z and every W_k, b_k
// against the PyTorch reference.
void expect_matches_reference(const ReferenceCase& c, const InfoNceResult& r, Tape& tape, Var* cv, Var* zv,
                              const Predictors& pr) {
  const double expected = c.expected("out/loss").values[0];
  EXPECT_NEAR(r.loss->value.to_vector()[0], expected, 1e-5 * std::fabs(expected));
  const H5Array acc = c.expected("out/accuracy_per_k");
  ASSERT_EQ(r.accuracy_per_k.size(), acc.values.size());
  for (size_t k = 0; k < acc.values.size(); ++k)
    EXPECT_DOUBLE_EQ(r.accuracy_per_k[k], acc.values[k]) << "k = " << k + 1;
  tape.backward(r.loss);
  expect_close(cv->grad, c.expected("grad/in/c"), 1e-4, c.name() + " dc");
  expect_close(zv->grad, c.expected("grad/in/z"), 1e-4, c.name() + " dz");
  // Under over_predictions the predictor biases shift a whole row's scores: their
  // gradient is exactly 0 and only rounding (~1e-8) remains, hence the 1e-6 floor.
  for (size_t i = 0; i < pr.params.size(); ++i)
    expect_close(pr.params[i]->grad, c.expected("grad/param/" + pr.names[i]), 1e-4, c.name() + " d" + pr.names[i],
                 1e-6);
}

class InfoNceParity : public ::testing::TestWithParam<std::string> {};

TEST_P(InfoNceParity, LossAccuracyAndAllGradients) {
  const ReferenceCase c(GetParam());
  const auto& cfg = c.config();
  nlohmann::json opts = loss_options(c);
  const InfoNceOptions o = InfoNceOptions::from_json(opts, "case " + c.name());
  const int K = cfg["K"];
  Predictors pr = load_predictors(c, K, true);
  Tape tape;
  TapeScope scope(tape);
  Var* cv = tape.var(c.tensor("in/c"), true);
  Var* zv = tape.var(c.tensor("in/z"), true);
  InfoNceLoss loss(o);
  const InfoNceResult& r = loss.forward(cv, zv, pr.list, nullptr, cfg["t_random"].get<int64_t>());
  expect_matches_reference(c, r, tape, cv, zv, pr);

  // The seed-004 accuracy variant: argmax per column of the same score matrices.
  opts["accuracy"] = "seed004_column";
  InfoNceLoss col(InfoNceOptions::from_json(opts, "case"));
  if (o.negatives == InfoNceOptions::Negatives::sequence) {  // not defined there: refused
    EXPECT_THROW(col.forward(cv, zv, pr.list, nullptr, cfg["t_random"].get<int64_t>()), Error);
    return;
  }
  const InfoNceResult& rc = col.forward(cv, zv, pr.list, nullptr, cfg["t_random"].get<int64_t>());
  const H5Array cacc = c.expected("out/column_accuracy_per_k");
  for (int k = 0; k < K; ++k)
    EXPECT_DOUBLE_EQ(rc.accuracy_per_k[k], cacc.values[k]) << "column accuracy, k = " << k + 1;
}

std::vector<std::string> info_nce_cases() {
  std::vector<std::string> out;
  for (const char* t : {"last", "random", "all"})
    for (const char* n : {"over_latents", "over_predictions"})
      for (const char* neg : {"batch", "batch_time", "batch_time_exclown", "sequence"})
        for (const char* s : {"dot", "scaled_dot", "cosine"})
          if (std::string(neg) != "sequence" || std::string(t) == "all")  // sequence needs several steps
            out.push_back(std::string("infonce_") + t + "_" + n + "_" + neg + "_" + s);
  return out;
}

INSTANTIATE_TEST_SUITE_P(AllOptions, InfoNceParity, ::testing::ValuesIn(info_nce_cases()),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

// negatives_count: PyTorch drew each row's candidates from the pool its full mask
// allows; the engine is given the same lists and must give the same loss, accuracy
// and gradients without the full score matrix.
class InfoNceSampledParity : public ::testing::TestWithParam<std::string> {};

TEST_P(InfoNceSampledParity, LossAccuracyAndAllGradientsWithTheSameDraws) {
  const ReferenceCase c(GetParam());
  const auto& cfg = c.config();
  nlohmann::json opts = loss_options(c);
  const InfoNceOptions o = InfoNceOptions::from_json(opts, "case " + c.name());
  const int K = cfg["K"];
  Predictors pr = load_predictors(c, K, true);
  const H5Array given = c.expected("in/candidates");  // (K, R, 1 + N)
  ASSERT_EQ(given.dims.size(), 3u);
  std::vector<std::vector<int32_t>> per_k(static_cast<size_t>(K));
  const int64_t per = given.dims[1] * given.dims[2];
  for (int k = 0; k < K; ++k)
    for (int64_t e = 0; e < per; ++e) per_k[k].push_back(static_cast<int32_t>(given.values[k * per + e]));
  Tape tape;
  TapeScope scope(tape);
  Var* cv = tape.var(c.tensor("in/c"), true);
  Var* zv = tape.var(c.tensor("in/z"), true);
  InfoNceLoss loss(o);
  loss.set_candidates(per_k);
  const InfoNceResult& r = loss.forward(cv, zv, pr.list, nullptr, cfg["t_random"].get<int64_t>());
  EXPECT_EQ(loss.candidates(), per_k);
  expect_matches_reference(c, r, tape, cv, zv, pr);
}

std::vector<std::string> info_nce_sampled_cases() {
  std::vector<std::string> out;
  for (const char* t : {"all", "random"})
    for (const char* n : {"over_latents", "over_predictions"})
      for (const char* neg : {"batch", "batch_time", "batch_time_exclown", "sequence"})
        for (const char* s : {"dot", "cosine"})
          if (std::string(neg) != "sequence" || std::string(t) == "all")
            out.push_back(std::string("infonce_sampled_") + t + "_" + n + "_" + neg + "_" + s);
  return out;
}

INSTANTIATE_TEST_SUITE_P(Sampled, InfoNceSampledParity, ::testing::ValuesIn(info_nce_sampled_cases()),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

TEST(InfoNceSeeds, Seed000VectorisedAndLoopVersions) {
  const ReferenceCase c("seed000");
  const int K = c.config()["K"];
  // Seed 000 multiplies c_t @ W (Dc, Dz): our predictor weight (Dz, Dc) is W^T, no bias.
  std::vector<std::unique_ptr<Parameter>> ws;
  std::vector<LinearPredictor> preds;
  for (int k = 0; k < K; ++k) {
    const Tensor w = c.tensor("param/W." + std::to_string(k));
    Tensor wt = Tensor::empty({w.size(1), w.size(0)});
    const std::vector<float> v = w.to_vector();
    for (int64_t i = 0; i < w.size(0); ++i)
      for (int64_t j = 0; j < w.size(1); ++j) wt.f32()[j * w.size(0) + i] = v[i * w.size(1) + j];
    ws.push_back(std::make_unique<Parameter>(wt));
    preds.push_back({ws.back().get(), nullptr});
  }
  InfoNceOptions o;
  o.t_mode = InfoNceOptions::TMode::last;
  o.normalize = InfoNceOptions::Normalize::over_latents;
  o.negatives = InfoNceOptions::Negatives::batch;
  o.score = InfoNceOptions::Score::dot;
  Tape tape;
  TapeScope scope(tape);
  InfoNceLoss loss(o);
  const InfoNceResult& r = loss.forward(tape.var(c.tensor("in/c")), tape.var(c.tensor("in/z")), preds, nullptr);
  const double ours = r.loss->value.to_vector()[0];
  EXPECT_NEAR(ours, c.expected("out/loss_vectorised").values[0], 1e-5);
  EXPECT_NEAR(ours, c.expected("out/loss_loop").values[0], 1e-5);
  EXPECT_NEAR(r.accuracy, c.expected("out/accuracy_vectorised").values[0], 1e-7);  // the seed's is float32
}

TEST(InfoNceSeeds, Seed004NceAndItsColumnAccuracy) {
  const ReferenceCase c("seed004");
  const int K = c.config()["K"];
  std::vector<std::unique_ptr<Parameter>> ps;
  std::vector<LinearPredictor> preds;
  for (int k = 0; k < K; ++k) {
    ps.push_back(std::make_unique<Parameter>(c.tensor("param/Wk." + std::to_string(k) + ".weight")));
    ps.push_back(std::make_unique<Parameter>(c.tensor("param/Wk." + std::to_string(k) + ".bias")));
    preds.push_back({ps[ps.size() - 2].get(), ps.back().get()});
  }
  InfoNceOptions o;
  o.t_mode = InfoNceOptions::TMode::random;
  o.normalize = InfoNceOptions::Normalize::over_predictions;
  o.accuracy = InfoNceOptions::Accuracy::seed004_column;
  Tape tape;
  TapeScope scope(tape);
  InfoNceLoss loss(o);
  const InfoNceResult& r =
      loss.forward(tape.var(c.tensor("in/c")), tape.var(c.tensor("in/z")), preds, nullptr, c.config()["t"]);
  EXPECT_NEAR(r.loss->value.to_vector()[0], c.expected("out/loss").values[0], 1e-5);
  // The seed keeps only the last k's count (its loop overwrites `correct`).
  EXPECT_DOUBLE_EQ(r.accuracy_per_k.back(), c.expected("out/accuracy_last_k").values[0]);
}

TEST(InfoNceErrors, TooFewStepsAndUnknownKeys) {
  Tape tape;
  TapeScope scope(tape);
  Parameter w(Tensor::zeros({2, 3}));
  std::vector<LinearPredictor> preds(4, LinearPredictor{&w, nullptr});
  InfoNceLoss loss({});
  try {
    loss.forward(tape.var(Tensor::zeros({2, 4, 3})), tape.var(Tensor::zeros({2, 4, 2})), preds, nullptr);
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "InfoNCE: 4 time steps are too few for K = 4 (need at least K + 1)");
  }
  try {
    InfoNceOptions::from_json(nlohmann::json{{"t_mod", "all"}}, "loss");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("loss: unknown key 't_mod'"), std::string::npos);
  }
  try {
    InfoNceOptions::from_json(nlohmann::json{{"score", "cos"}}, "loss");
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "loss.score: 'cos' is not one of dot, scaled_dot, cosine");
  }
  try {
    InfoNceOptions::from_json(nlohmann::json{{"negatives_count", -3}}, "loss");
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "loss.negatives_count: expected an integer >= 0 (0: every candidate), found -3");
  }
  // Batch negatives with one sequence: nothing to draw from.
  InfoNceOptions o;
  o.negatives_count = 4;
  InfoNceLoss sampled(o);
  Generator g(1);
  std::vector<LinearPredictor> one(1, LinearPredictor{&w, nullptr});
  try {
    sampled.forward(tape.var(Tensor::zeros({1, 4, 3})), tape.var(Tensor::zeros({1, 4, 2})), one, &g);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("negatives_count 4 draws from an empty pool: negatives 'batch' with 1 "
                                         "sequence(s)"),
              std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace cpc::test
