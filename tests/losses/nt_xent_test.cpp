// NT-Xent / SupCon against PyTorch (3 similarities x 3 pairings x 2 multi-positive
// forms), seed 003's multi-target number, and stability at extreme settings.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/ops/ops.h"
#include "losses/info_nce_loss.h"
#include "losses/nt_xent_loss.h"
#include "tests/support/reference_case.h"

namespace cpc::test {
namespace {

class NtXentParity : public ::testing::TestWithParam<std::string> {};

TEST_P(NtXentParity, LossAccuracyCountsAndGradient) {
  const ReferenceCase c(GetParam());
  const auto& cfg = c.config();
  NtXentOptions o;
  const std::string sim = cfg["similarity"], form = cfg["form"], pairing = cfg["pairing"];
  o.similarity = sim == "cosine" ? NtXentOptions::Similarity::cosine
                 : sim == "dot"  ? NtXentOptions::Similarity::dot
                                 : NtXentOptions::Similarity::neg_l2;
  o.form = form == "supcon" ? NtXentOptions::MultiPositive::supcon : NtXentOptions::MultiPositive::logsumexp;
  o.temperature = cfg["temperature"];
  Tape tape;
  TapeScope scope(tape);
  Var* e = tape.var(c.tensor("in/e"), true);
  NtXentLoss loss(o);
  const NtXentResult* r;
  if (pairing == "views") {
    r = &loss.forward_views(e);
  } else {
    std::vector<int32_t> labels;
    for (double v : c.expected("in/labels").values) labels.push_back(static_cast<int32_t>(v));
    std::vector<std::pair<int32_t, int32_t>> excluded;
    const H5Array ex = c.expected("in/excluded");
    for (size_t i = 0; i + 1 < ex.values.size(); i += 2)
      excluded.emplace_back(static_cast<int32_t>(ex.values[i]), static_cast<int32_t>(ex.values[i + 1]));
    r = &loss.forward_labels(e, labels, excluded);
  }
  const double expected = c.expected("out/loss").values[0];
  EXPECT_NEAR(r->loss->value.to_vector()[0], expected, 1e-5 * std::fabs(expected));
  EXPECT_DOUBLE_EQ(r->accuracy, c.expected("out/accuracy").values[0]);
  EXPECT_EQ(r->anchors_used, static_cast<int64_t>(c.expected("out/used").values[0]));
  EXPECT_EQ(r->anchors_skipped, static_cast<int64_t>(c.expected("out/skipped").values[0]));
  tape.backward(r->loss);
  expect_close(e->grad, c.expected("grad/in/e"), 1e-4, c.name() + " de");
}

std::vector<std::string> nt_xent_cases() {
  std::vector<std::string> out;
  for (const char* s : {"cosine", "dot", "neg_l2"})
    for (const char* p : {"views", "labels", "labels_excluded"})
      for (const char* f : {"supcon", "logsumexp"}) out.push_back(std::string("ntxent_") + s + "_" + p + "_" + f);
  return out;
}

INSTANTIATE_TEST_SUITE_P(AllOptions, NtXentParity, ::testing::ValuesIn(nt_xent_cases()),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

// Seed 003's multi-target example: constant logits (3 positives at 1, 6 negatives at
// 10, one excluded column), temperature 0.001, loss = lse(all) - lse(positives).
TEST(Seed003, MultiTargetExampleGives9000_6943) {
  Tape tape;
  TapeScope scope(tape);
  // Rows score s_ij = a_i . c_j = v_j: a = 1 (D = 1), c_j = v_j.
  std::vector<float> v = {1, 1, 1, 10, 10, 10, 10, 10, 10, 1};
  Var* a = tape.var(Tensor::from_vector({10, 1}, std::vector<float>(10, 1.f)));
  Var* cands = tape.var(Tensor::from_vector({10, 1}, v));
  std::vector<int32_t> row_label(10, 0), col_label = {0, 0, 0, 1, 1, 1, 1, 1, 1, 1};
  std::vector<int32_t> offsets(11), cols(10, 9);  // column 9 (target -1) excluded for every row
  for (int i = 0; i <= 10; ++i) offsets[i] = i;
  ContrastiveSpec spec;
  spec.row_label = row_label.data(), spec.col_label = col_label.data();
  spec.excl_offsets = offsets.data(), spec.excl_cols = cols.data();
  spec.scale = 1.f / 0.001f;
  spec.logsumexp_positives = true;
  const float loss = ops::contrastive_loss(a, cands, spec)->value.to_vector()[0];
  EXPECT_NEAR(loss, 9000.6943, 2e-3);               // the seed's printed float32 value
  EXPECT_NEAR(loss, 9000.0 + std::log(2.0), 2e-3);  // exact: (10000 + log 6) - (1000 + log 3)
}

bool all_finite(const Tensor& t) {
  for (float x : t.to_vector())
    if (!std::isfinite(x)) return false;
  return true;
}

TEST(Stability, TinyTemperatureHugeSimilaritiesDuplicatesZerosMaskedRows) {
  Generator gen(9);
  for (auto sim :
       {NtXentOptions::Similarity::cosine, NtXentOptions::Similarity::dot, NtXentOptions::Similarity::neg_l2}) {
    for (auto form : {NtXentOptions::MultiPositive::supcon, NtXentOptions::MultiPositive::logsumexp}) {
      Tape tape;
      TapeScope scope(tape);
      // Norm-100 embeddings: dot similarities up to 1e4, / 1e-4 = 1e8 logits.
      Tensor x = gen.normal_tensor({8, 4}, 0.f, 50.f);
      float* p = x.f32();
      for (int d = 0; d < 4; ++d) p[1 * 4 + d] = p[0 * 4 + d];  // duplicate of row 0
      for (int d = 0; d < 4; ++d) p[5 * 4 + d] = 0.f;           // zero vector
      Var* e = tape.var(x, true);
      NtXentOptions o;
      o.similarity = sim, o.form = form, o.temperature = 1e-4f;
      NtXentLoss loss(o);
      // Anchor 7 has every candidate excluded: a fully masked row.
      std::vector<std::pair<int32_t, int32_t>> excl;
      for (int j = 0; j < 8; ++j)
        if (j != 7) excl.emplace_back(7, j);
      const NtXentResult& r = loss.forward_labels(e, {0, 0, 1, 1, 2, 2, 3, 3}, excl);
      EXPECT_EQ(r.anchors_skipped, 1);
      ASSERT_TRUE(std::isfinite(r.loss->value.to_vector()[0]));
      tape.backward(r.loss);
      EXPECT_TRUE(all_finite(e->grad)) << "similarity " << static_cast<int>(sim) << " form " << static_cast<int>(form);
    }
  }
}

TEST(Stability, InfoNceCosineAtTinyTemperatureWithZeroLatents) {
  Generator gen(10);
  Tape tape;
  TapeScope scope(tape);
  Tensor z = gen.normal_tensor({4, 6, 3}, 0, 100);
  for (int i = 0; i < 3; ++i) z.f32()[2 * 3 + i] = 0.f;  // z[0, 2] = 0
  Var* zv = tape.var(z, true);
  Var* cv = tape.var(gen.normal_tensor({4, 6, 5}, 0, 100), true);
  Parameter w(gen.normal_tensor({3, 5}, 0, 1)), b(Tensor::zeros({3}));
  InfoNceOptions o;
  o.score = InfoNceOptions::Score::cosine;
  o.temperature = 1e-4f;
  InfoNceLoss loss(o);
  const InfoNceResult& r = loss.forward(cv, zv, {{&w, &b}, {&w, &b}}, nullptr);
  ASSERT_TRUE(std::isfinite(r.loss->value.to_vector()[0]));
  tape.backward(r.loss);
  EXPECT_TRUE(all_finite(cv->grad));
  EXPECT_TRUE(all_finite(zv->grad));
  EXPECT_TRUE(all_finite(w.grad));
}

TEST(NtXentErrors, OddViewCountAndLabelCount) {
  Tape tape;
  TapeScope scope(tape);
  NtXentLoss loss({});
  EXPECT_THROW(loss.forward_views(tape.var(Tensor::zeros({5, 3}))), Error);
  try {
    loss.forward_labels(tape.var(Tensor::zeros({4, 3})), {0, 1, 2});
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "NT-Xent: 3 labels for 4 embeddings");
  }
}

}  // namespace
}  // namespace cpc::test
