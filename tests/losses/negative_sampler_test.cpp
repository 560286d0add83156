// The sampled negatives' draws: each from its row's pool (the mode's candidates minus
// the positive), uniform, keyed by (seed, k, global row) only, so a rank's rows draw
// what one process holding the global batch draws for them.
#include "losses/negative_sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "engine/core/error.h"

namespace cpc {
namespace {

using Kind = NegativePool::Kind;

// The pool by definition, from (t, b) coordinates of rows and columns.
bool allowed(const NegativePool& p, int64_t i, int64_t col) {
  if (p.kind == Kind::same_sequence) {  // rows and columns (b, t), this rank's
    return col / p.steps == i / p.steps && col != i;
  }
  const int64_t g = p.global_row(i), t = g / p.global_batch, b = g % p.global_batch;
  const int64_t tc = col / p.global_batch, bc = col % p.global_batch;
  if (col == g) return false;
  if (p.kind == Kind::same_step) return tc == t;
  if (p.kind == Kind::other_sequences) return bc != b;
  return true;
}

TEST(NegativeSampler, DrawsComeFromTheRowsPoolAndCoverItUniformly) {
  for (Kind kind : {Kind::same_step, Kind::all_steps, Kind::other_sequences, Kind::same_sequence}) {
    NegativePool p;
    p.kind = kind, p.steps = 5, p.batch = 3, p.global_batch = kind == Kind::same_sequence ? 3 : 6;
    p.rank = kind == Kind::same_sequence ? 0 : 1;
    const int64_t N = 4000;
    std::vector<int32_t> out;
    sample_negatives(p, 99, 2, N, out);
    ASSERT_EQ(static_cast<int64_t>(out.size()), p.rows() * (N + 1));
    for (int64_t i = 0; i < p.rows(); ++i) {
      EXPECT_EQ(out[i * (N + 1)], p.positive(i));
      std::map<int32_t, int64_t> count;
      for (int64_t j = 1; j <= N; ++j) {
        const int32_t col = out[i * (N + 1) + j];
        ASSERT_TRUE(allowed(p, i, col)) << "kind " << int(kind) << " row " << i << " drew column " << col;
        ++count[col];
      }
      // Every member drawn, each near N / P (5 sigma of a binomial).
      ASSERT_EQ(static_cast<int64_t>(count.size()), p.size()) << "kind " << int(kind);
      const double mean = double(N) / double(p.size()), sd = std::sqrt(mean * (1 - 1.0 / double(p.size())));
      for (const auto& [col, n] : count) EXPECT_NEAR(double(n), mean, 5 * sd) << "column " << col;
    }
  }
}

TEST(NegativeSampler, KeyedBySeedStepAndGlobalRowOnly) {
  NegativePool one;  // one process, 4 sequences
  one.kind = Kind::same_step, one.steps = 6, one.batch = 4, one.global_batch = 4;
  std::vector<int32_t> all, again, other_k, other_seed;
  sample_negatives(one, 5, 1, 9, all);
  sample_negatives(one, 5, 1, 9, again);
  sample_negatives(one, 5, 2, 9, other_k);
  sample_negatives(one, 6, 1, 9, other_seed);
  EXPECT_EQ(all, again);
  EXPECT_NE(all, other_k);
  EXPECT_NE(all, other_seed);
  for (Kind kind : {Kind::same_step, Kind::all_steps, Kind::other_sequences}) {
    one.kind = kind;
    sample_negatives(one, 5, 1, 9, all);
    for (int64_t rank : {0, 1}) {  // two ranks of 2 sequences each
      NegativePool mine = one;
      mine.batch = 2, mine.rank = rank;
      std::vector<int32_t> part;
      sample_negatives(mine, 5, 1, 9, part);
      for (int64_t i = 0; i < mine.rows(); ++i) {
        const int64_t t = i / 2, b = rank * 2 + i % 2, row = t * 4 + b;  // the same row in the one process
        for (int64_t j = 0; j < 10; ++j) EXPECT_EQ(part[i * 10 + j], all[row * 10 + j]) << "rank " << rank;
      }
    }
  }
}

TEST(NegativeSampler, AnEmptyPoolIsAnError) {
  NegativePool p;
  p.kind = Kind::same_step, p.steps = 3, p.batch = 1, p.global_batch = 1;
  std::vector<int32_t> out;
  EXPECT_THROW(sample_negatives(p, 1, 1, 4, out), Error);
}

}  // namespace
}  // namespace cpc
