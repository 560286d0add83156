// The fused contrastive loss on CUDA against the CPU backend: InfoNCE with blocks,
// batch-time negatives with own-sequence exclusion, explicit exclusions, multi-positive
// labels in both forms (with rows that have no positive), -L2 scores with a duplicate
// pair, seed 004's column accuracy, one tensor as anchors and candidates (NT-Xent),
// one-sided gradients, and tiles forced down to single rows. Loss to 1e-5 relative,
// counts exactly, gradients to 1e-5 of their scale (1e-4 with near-duplicate -L2 pairs,
// whose gradient is ~1/sqrt(eps)).
#include <gtest/gtest.h>

#include <ostream>
#include <string>

#include "tests/gpu/cuda_test_util.h"

namespace cpc {
namespace {

using namespace gpu_test;

struct Labels {
  std::vector<int32_t> row, col, row_group, col_group, keep, offsets, cols;
};

struct Case {
  std::string name;
  int64_t R, M, D, blocks;
  enum class Kind { diagonal, multi, nt_xent } kind;
  bool groups = false, exclusions = false, neg_l2 = false, logsumexp = false, column_argmax = false;
  bool want_da = true, want_dc = true;
  float scale = 1.f;
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

Labels make_labels(const Case& c) {
  Labels l;
  l.row.resize(static_cast<size_t>(c.R));
  l.col.resize(static_cast<size_t>(c.M));
  for (int64_t i = 0; i < c.R; ++i)
    l.row[i] = c.kind == Case::Kind::multi ? static_cast<int32_t>((i * 7) % 5) : static_cast<int32_t>(i);
  for (int64_t j = 0; j < c.M; ++j)
    l.col[j] = c.kind == Case::Kind::multi ? static_cast<int32_t>((j * 3) % 6) : static_cast<int32_t>(j);
  if (c.kind == Case::Kind::nt_xent)  // 2N views: i and i + N are positives, self excluded
    for (int64_t i = 0; i < c.R; ++i) l.row[i] = l.col[i] = static_cast<int32_t>(i % (c.R / 2));
  if (c.groups) {
    const int64_t B = 4;  // batch_time: sequence = i % B; one's own positive stays
    for (int64_t i = 0; i < c.R; ++i) l.row_group.push_back(static_cast<int32_t>(i % B));
    for (int64_t j = 0; j < c.M; ++j) l.col_group.push_back(static_cast<int32_t>(j % B));
    for (int64_t i = 0; i < c.R; ++i) l.keep.push_back(c.kind == Case::Kind::nt_xent ? -1 : static_cast<int32_t>(i));
    if (c.kind == Case::Kind::nt_xent) {  // NT-Xent: only the self pair is excluded
      l.row_group.clear(), l.col_group.clear();
      for (int64_t i = 0; i < c.R; ++i) l.row_group.push_back(static_cast<int32_t>(i));
      l.col_group = l.row_group;
    }
  }
  if (c.exclusions) {  // a few explicit pairs per row, ascending within the row's block
    const int64_t Mg = c.M / c.blocks, Rg = c.R / c.blocks;
    l.offsets.push_back(0);
    for (int64_t i = 0; i < c.R; ++i) {
      const int64_t c0 = (i / Rg) * Mg;
      for (int64_t j = (i * 5) % 3; j < Mg; j += 4 + i % 3) l.cols.push_back(static_cast<int32_t>(c0 + j));
      l.offsets.push_back(static_cast<int32_t>(l.cols.size()));
    }
  }
  return l;
}

ContrastiveSpec make_spec(const Case& c, const Labels& l) {
  ContrastiveSpec s;
  s.blocks = c.blocks, s.scale = c.scale, s.neg_l2 = c.neg_l2, s.logsumexp_positives = c.logsumexp;
  s.row_label = l.row.data(), s.col_label = l.col.data();
  if (!l.row_group.empty())
    s.row_group = l.row_group.data(), s.col_group = l.col_group.data(), s.row_keep = l.keep.data();
  if (!l.offsets.empty()) s.excl_offsets = l.offsets.data(), s.excl_cols = l.cols.data();
  s.column_argmax = c.column_argmax;
  return s;
}

void run_case(const Case& c, int64_t tile) {
  SCOPED_TRACE(::testing::Message() << c.name << ", tile budget " << tile);
  cuda_be().set_option("contrastive_tile", std::to_string(tile));
  const Labels l = make_labels(c);
  const ContrastiveSpec spec = make_spec(c, l);
  const bool same = c.kind == Case::Kind::nt_xent;
  const Pair a = random_pair({c.R, c.D}, 101, -1.f, 1.f);
  Pair cand = same ? a : random_pair({c.M, c.D}, 102, -1.f, 1.f);
  if (c.neg_l2 && !same) {  // a duplicate pair (anchor 1, candidate 1) exercises the explicit-difference path
    std::vector<float> cv = cand.cpu.to_vector();
    const std::vector<float> av = a.cpu.to_vector();
    for (int64_t d = 0; d < c.D; ++d) cv[c.D + d] = av[c.D + d];
    cand = {Tensor::from_vector({c.M, c.D}, cv), Tensor::from_vector({c.M, c.D}, cv, Device::cuda())};
  }
  // Gradients are overwritten: start from garbage.
  const Pair da = c.want_da ? random_pair({c.R, c.D}, 103) : Pair{};
  const Pair dc = same ? da : c.want_dc ? random_pair({c.M, c.D}, 104) : Pair{};
  const ContrastiveStats want = cpu_be().contrastive_forward(a.cpu, cand.cpu, spec, da.cpu, dc.cpu);
  const ContrastiveStats got = cuda_be().contrastive_forward(a.gpu, cand.gpu, spec, da.gpu, dc.gpu);
  EXPECT_GT(want.used, 0);
  EXPECT_TRUE(close(got.loss, want.loss, "loss"));
  EXPECT_EQ(got.used, want.used);
  EXPECT_EQ(got.skipped, want.skipped);
  EXPECT_EQ(got.correct, want.correct);
  EXPECT_EQ(got.column_correct, want.column_correct);
  const double tol = c.neg_l2 ? 1e-4 : 1e-5;
  if (da.cpu.defined()) {
    EXPECT_TRUE(close_scaled(da.gpu.to_vector(), da.cpu.to_vector(), "d(anchors)", tol));
  }
  if (dc.cpu.defined() && !same) {
    EXPECT_TRUE(close_scaled(dc.gpu.to_vector(), dc.cpu.to_vector(), "d(candidates)", tol));
  }
}

class CudaContrastive : public ::testing::TestWithParam<Case> {
 protected:
  void TearDown() override {
    if (cuda_present()) cuda_be().set_option("contrastive_tile", "8388608");  // the default
  }
};

TEST_P(CudaContrastive, MatchesCpuForEveryTiling) {
  SKIP_WITHOUT_CUDA();
  const Case c = GetParam();
  // Whole blocks batched into one tile (default), one block per tile, row slices, one row.
  for (int64_t tile :
       {int64_t{8388608}, (c.R / c.blocks) * (c.M / c.blocks), int64_t{3} * (c.M / c.blocks), int64_t{1}})
    run_case(c, tile);
}

using K = Case::Kind;
INSTANTIATE_TEST_SUITE_P(
    Variants, CudaContrastive,
    ::testing::Values(
        Case{"infonce_blocks", 48, 48, 33, 4, K::diagonal},                              // CPC, batch negatives per t
        Case{"infonce_batch_time_exclude_own", 32, 32, 20, 1, K::diagonal, true},        // groups + keep
        Case{"supcon_exclusions", 30, 36, 17, 3, K::multi, false, true},                 // CSR exclusions, skipped rows
        Case{"logsumexp_positives", 30, 36, 17, 3, K::multi, false, true, false, true},  // seed 003's form
        Case{"neg_l2", 24, 24, 9, 2, K::diagonal, false, false, true, false, false, true, true, 1.7f},
        Case{"neg_l2_multi_logsumexp", 24, 36, 9, 1, K::multi, false, true, true, true},
        Case{"column_argmax", 40, 40, 16, 5, K::diagonal, false, false, false, false, true},  // seed 004's accuracy
        Case{"nt_xent_one_tensor", 32, 32, 12, 1, K::nt_xent, true, false, false, false, false, true, true, 10.f},
        Case{"anchor_gradient_only", 24, 24, 8, 2, K::diagonal, false, false, false, false, false, true, false},
        Case{"candidate_gradient_only", 24, 24, 8, 2, K::diagonal, false, false, false, false, false, false, true},
        Case{"large", 1024, 1024, 128, 1, K::diagonal, false, false, false, false, false, true, true, 0.1f}),
    [](const ::testing::TestParamInfo<Case>& i) { return i.param.name; });

TEST(CudaContrastiveStats, NoGradientsMeansNoGradientWork) {
  SKIP_WITHOUT_CUDA();
  Case c{"stats_only", 16, 16, 8, 2, K::diagonal};
  c.want_da = c.want_dc = false;
  run_case(c, 8388608);
}

}  // namespace
}  // namespace cpc
