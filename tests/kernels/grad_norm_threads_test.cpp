// The gradient norm's sum (sum_squares_multi on the CPU) gives the same bits at any
// thread count: it sums fixed chunks, then the chunks in order. A clipped step, and so
// a resumed run, must not depend on how many threads the machine has.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstring>
#include <vector>

#include "engine/core/backend.h"
#include "engine/core/random.h"

namespace cpc {
namespace {

TEST(GradNormSum, SameBitsAtAnyThreadCount) {
  Generator gen(7);
  std::vector<Tensor> grads;
  for (const int64_t n : {int64_t{5}, int64_t{70001}, int64_t{1} << 20, int64_t{16385}, int64_t{3}}) {
    grads.push_back(gen.normal_tensor({n}, 0.f, 1.f));
  }
  double want = 0;
  for (const Tensor& t : grads)
    for (const float v : t.to_vector()) want += static_cast<double>(v) * v;
  const int saved = omp_get_max_threads();
  std::vector<double> got;
  for (const int threads : {1, 2, 3, 4}) {
    omp_set_num_threads(threads);
    got.push_back(backend(Device::cpu()).sum_squares_multi(grads));
  }
  omp_set_num_threads(saved);
  EXPECT_NEAR(got[0], want, 1e-9 * want);
  for (size_t i = 1; i < got.size(); ++i) EXPECT_EQ(std::memcmp(&got[i], &got[0], sizeof(double)), 0) << i + 1;
}

}  // namespace
}  // namespace cpc
