// fast_math.h against the C library: exp within 2 ulp over its range, the clamps, NaN;
// sigmoid and tanh within the absolute error the GRU's reference tests allow (and far
// below what a wrong coefficient would give), saturation without overflow.
#include "kernels/cpu/fast_math.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace cpc::cpu {
namespace {

TEST(FastMath, ExpWithinTwoUlpOverItsRange) {
  double worst = 0;
  for (float x = -87.0f; x <= 88.0f; x += 0.001f) {
    const double want = std::exp(static_cast<double>(x));
    worst = std::max(worst, std::fabs(fast_exp(x) - want) / want);
  }
  EXPECT_LT(worst, 2.4e-7);  // 2 ulp of float
  EXPECT_GT(fast_exp(-200.f), 0.f);
  EXPECT_LT(fast_exp(-200.f), 2e-38f);  // clamped to the smallest normal's scale
  EXPECT_TRUE(std::isfinite(fast_exp(200.f)));
  EXPECT_GT(fast_exp(200.f), 1e38f);
  EXPECT_TRUE(std::isnan(fast_exp(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_EQ(fast_exp(0.f), 1.f);
}

TEST(FastMath, SigmoidAndTanhMatchTheLibrary) {
  double worst_sig = 0, worst_tanh = 0;
  for (float x = -30.0f; x <= 30.0f; x += 0.0005f) {
    worst_sig = std::max(worst_sig, std::fabs(fast_sigmoid(x) - 1.0 / (1.0 + std::exp(-static_cast<double>(x)))));
    worst_tanh = std::max(worst_tanh, std::fabs(fast_tanh(x) - std::tanh(static_cast<double>(x))));
  }
  EXPECT_LT(worst_sig, 1.5e-7);
  EXPECT_LT(worst_tanh, 3e-7);
  EXPECT_EQ(fast_tanh(100.f), 1.f);
  EXPECT_EQ(fast_tanh(-100.f), -1.f);
  EXPECT_LT(fast_sigmoid(-200.f), 1e-38f);
  EXPECT_EQ(fast_sigmoid(200.f), 1.f);
  EXPECT_EQ(fast_tanh(0.5), std::tanh(0.5));  // double: the library's
}

}  // namespace
}  // namespace cpc::cpu
