// The fused contrastive kernel in double precision: central differences for both
// score types and both multi-positive forms with blocks and exclusions; and the fused
// (one-row tiles) result equals the unfused one (a single tile holding the whole
// score matrix) in float to 1e-6.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "kernels/cpu/contrastive.h"

namespace cpc::test {
namespace {

struct Problem {
  int64_t R = 12, M = 12, D = 5;
  std::vector<int32_t> row_label, col_label, group, keep, offsets, cols;
  cpu::ContrastiveProblem problem(bool neg_l2, math::MultiPositiveForm form, int64_t blocks) {
    row_label = {0, 1, 0, 1, 2, 2, 0, 3, 1, 2, 4, 0};
    col_label = row_label;
    group.resize(R), keep.assign(R, -1);
    for (int i = 0; i < R; ++i) group[i] = i;  // self excluded
    offsets = {0, 1, 1, 1, 1, 1, 2, 2, 2, 3, 3, 3, 3};
    cols = {2, 4, 1};  // (0, 2), (5, 4), (8, 1)
    cpu::ContrastiveProblem p;
    p.R = R, p.M = M, p.D = D, p.blocks = blocks, p.scale = 1.7f, p.neg_l2 = neg_l2;
    p.logsumexp_positives = form == math::MultiPositiveForm::logsumexp;
    p.row_label = row_label.data(), p.col_label = col_label.data();
    p.row_group = group.data(), p.col_group = group.data(), p.row_keep = keep.data();
    if (blocks == 1) p.excl_offsets = offsets.data(), p.excl_cols = cols.data();
    return p;
  }
};

struct Case {
  bool neg_l2;
  math::MultiPositiveForm form;
  int64_t blocks;
};

class ContrastiveGradcheck : public ::testing::TestWithParam<Case> {};

TEST_P(ContrastiveGradcheck, AnchorsAndCandidates) {
  const Case c = GetParam();
  Problem s;
  const cpu::ContrastiveProblem p = s.problem(c.neg_l2, c.form, c.blocks);
  std::mt19937 rng(3);
  std::normal_distribution<double> nd(0, 1);
  std::vector<double> A(p.R * p.D), C(p.M * p.D);
  for (double& x : A) x = nd(rng);
  for (double& x : C) x = nd(rng);
  for (int d = 0; d < p.D; ++d) C[3 * p.D + d] = A[1 * p.D + d];  // a duplicate pair (1, 3)
  std::vector<double> ws(p.workspace());
  auto loss = [&] { return cpu::contrastive_forward(A.data(), C.data(), p, ws.data()).loss; };
  std::vector<double> dA(A.size(), 0), dC(C.size(), 0);
  const cpu::ContrastiveResult r = cpu::contrastive_forward(A.data(), C.data(), p, ws.data(), dA.data(), dC.data());
  ASSERT_GT(r.used, 0);
  for (auto [x, g, name] : {std::tuple{&A, &dA, "dA"}, std::tuple{&C, &dC, "dC"}}) {
    for (size_t i = 0; i < x->size(); ++i) {
      const double keep = (*x)[i], h = 1e-6;
      (*x)[i] = keep + h;
      const double lp = loss();
      (*x)[i] = keep - h;
      const double lm = loss();
      (*x)[i] = keep;
      EXPECT_NEAR((*g)[i], (lp - lm) / (2 * h), 1e-6) << name << " index " << i;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Variants, ContrastiveGradcheck,
                         ::testing::Values(Case{false, math::MultiPositiveForm::supcon, 1},
                                           Case{false, math::MultiPositiveForm::logsumexp, 1},
                                           Case{true, math::MultiPositiveForm::supcon, 1},
                                           Case{true, math::MultiPositiveForm::logsumexp, 1},
                                           Case{false, math::MultiPositiveForm::supcon, 3},
                                           Case{true, math::MultiPositiveForm::logsumexp, 2}));

TEST(ContrastiveFused, EqualsUnfusedToOneInAMillion) {
  for (bool neg_l2 : {false, true}) {
    Problem s;
    s.R = s.M = 12;
    cpu::ContrastiveProblem p = s.problem(neg_l2, math::MultiPositiveForm::supcon, 1);
    std::mt19937 rng(5);
    std::normal_distribution<float> nd(0, 1);
    std::vector<float> A(p.R * p.D), C(p.M * p.D);
    for (float& x : A) x = nd(rng);
    for (float& x : C) x = nd(rng);
    auto run = [&](int64_t tile_rows, std::vector<float>& dA, std::vector<float>& dC) {
      p.max_tile_rows = tile_rows;
      std::vector<float> ws(p.workspace());
      dA.assign(A.size(), 0.f), dC.assign(C.size(), 0.f);
      return cpu::contrastive_forward(A.data(), C.data(), p, ws.data(), dA.data(), dC.data());
    };
    std::vector<float> fa, fc, ua, uc;
    const auto fused = run(1, fa, fc), unfused = run(p.R, ua, uc);
    EXPECT_NEAR(fused.loss, unfused.loss, 1e-6 * std::fabs(unfused.loss));
    EXPECT_EQ(fused.correct, unfused.correct);
    // Gradients: norm-wise relative error ||fused - unfused|| / ||unfused||.
    auto rel = [](const std::vector<float>& a, const std::vector<float>& b) {
      double num = 0, den = 0;
      for (size_t i = 0; i < a.size(); ++i) num += (a[i] - b[i]) * double(a[i] - b[i]), den += double(b[i]) * b[i];
      return std::sqrt(num / den);
    };
    EXPECT_LE(rel(fa, ua), 1e-6) << "dA, neg_l2 = " << neg_l2;
    EXPECT_LE(rel(fc, uc), 1e-6) << "dC, neg_l2 = " << neg_l2;
  }
}

}  // namespace
}  // namespace cpc::test
