#pragma once
// Shared helpers of the CUDA backend tests: the two backends, the skip when no device
// is present, random inputs, and comparisons with stated tolerances.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "engine/core/backend.h"
#include "engine/core/error.h"
#include "engine/core/tensor.h"
#include "tests/support/error_of.h"

namespace cpc::gpu_test {

inline Backend& cuda_be() { return backend(Device::cuda()); }
inline Backend& cpu_be() { return backend(Device::cpu()); }

inline bool cuda_present() { return has_backend(DeviceKind::cuda) && cuda_be().available(); }

#define SKIP_WITHOUT_CUDA()                                                             \
  do {                                                                                  \
    if (!::cpc::gpu_test::cuda_present())                                               \
      GTEST_SKIP() << "needs a CUDA device; " << ::cpc::gpu_test::cuda_be().describe(); \
  } while (0)

using test::error_of;

inline std::vector<float> random_values(int64_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(gen);
  return v;
}

// Element-wise |cuda - cpu| <= tol * max(|cpu|, 1): for values of order 1.
inline ::testing::AssertionResult close(const std::vector<float>& got, const std::vector<float>& want, const char* what,
                                        double tol = 1e-5) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << what << ": size " << got.size() << " vs " << want.size();
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], w = want[i];
    if (!(std::fabs(g - w) <= tol * std::max(1.0, std::fabs(w))))
      return ::testing::AssertionFailure() << what << "[" << i << "]: cuda " << g << " vs cpu " << w;
  }
  return ::testing::AssertionSuccess();
}

inline ::testing::AssertionResult close(double got, double want, const char* what, double tol = 1e-5) {
  if (std::fabs(got - want) <= tol * std::max(1.0, std::fabs(want))) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << ": cuda " << got << " vs cpu " << want;
}

// |cuda - cpu| <= tol * max_j |cpu_j| for every element: relative to the tensor's
// scale, for results of sums whose single entries may cancel to near zero (GEMMs,
// gradients). tol 1e-5 is fp32 rounding of sums of a few thousand terms.
inline ::testing::AssertionResult close_scaled(const std::vector<float>& got, const std::vector<float>& want,
                                               const std::string& what, double tol = 1e-5) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << what << ": size " << got.size() << " vs " << want.size();
  double scale = 0;
  for (float w : want) scale = std::max(scale, static_cast<double>(std::fabs(w)));
  const double bound = tol * std::max(scale, 1e-30);
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], w = want[i];
    if (!(std::fabs(g - w) <= bound))
      return ::testing::AssertionFailure() << what << "[" << i << "]: cuda " << g << " vs cpu " << w << " (|diff| "
                                           << std::fabs(g - w) << " > " << tol << " * max|cpu| = " << bound << ")";
  }
  return ::testing::AssertionSuccess();
}

inline ::testing::AssertionResult equal(const std::vector<float>& got, const std::vector<float>& want,
                                        const char* what) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << what << ": size " << got.size() << " vs " << want.size();
  for (size_t i = 0; i < got.size(); ++i)
    if (!(got[i] == want[i]) && !(std::isnan(got[i]) && std::isnan(want[i])))
      return ::testing::AssertionFailure() << what << "[" << i << "]: cuda " << got[i] << " vs cpu " << want[i];
  return ::testing::AssertionSuccess();
}

// The same random values on both devices.
struct Pair {
  Tensor cpu, gpu;
};
inline Pair random_pair(const Shape& s, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  const std::vector<float> v = random_values(s.numel(), seed, lo, hi);
  return {Tensor::from_vector(s, v), Tensor::from_vector(s, v, Device::cuda())};
}
inline Pair zeros_pair(const Shape& s) { return {Tensor::zeros(s), Tensor::zeros(s, Device::cuda())}; }
inline Pair copy_pair(const Tensor& cpu) { return {cpu.clone(), cpu.to(Device::cuda())}; }

}  // namespace cpc::gpu_test
