// One GRU layer on CUDA (cuBLAS GEMMs + the fused cell of kernels/common/gru_cell.h)
// against the CPU backend: y, the reserve (r, z, n, W_hn h + b_hn) and every gradient,
// with and without h0, dh_n and dy. Tolerance 1e-5 relative to each tensor's scale for
// the forward, 5e-5 for gradients (sums over B*T steps of BPTT).
#include <gtest/gtest.h>

#include <ostream>

#include "tests/gpu/cuda_test_util.h"

namespace cpc {
namespace {

using namespace gpu_test;

struct GruCase {
  int64_t B, T, Din, H;
  bool h0, dh_n, dy;
};

void PrintTo(const GruCase& c, std::ostream* os) {
  *os << "B" << c.B << "_T" << c.T << "_Din" << c.Din << "_H" << c.H << (c.h0 ? "_h0" : "") << (c.dh_n ? "_dhn" : "")
      << (c.dy ? "_dy" : "");
}

class CudaGru : public ::testing::TestWithParam<GruCase> {};

TEST_P(CudaGru, ForwardAndBackwardMatchCpu) {
  SKIP_WITHOUT_CUDA();
  const GruCase c = GetParam();
  const int64_t G = 3 * c.H;
  const float k = 1.f / std::sqrt(static_cast<float>(c.H));  // PyTorch's init range
  const Pair x = random_pair({c.B, c.T, c.Din}, 1);
  const Pair w_ih = random_pair({G, c.Din}, 2, -k, k), w_hh = random_pair({G, c.H}, 3, -k, k);
  const Pair b_ih = random_pair({G}, 4, -k, k), b_hh = random_pair({G}, 5, -k, k);
  const Pair h0 = c.h0 ? random_pair({c.B, c.H}, 6) : Pair{};
  const Pair y = zeros_pair({c.B, c.T, c.H}), reserve = zeros_pair({c.B, c.T, 4 * c.H});
  cpu_be().gru_layer_forward(x.cpu, h0.cpu, w_ih.cpu, w_hh.cpu, b_ih.cpu, b_hh.cpu, y.cpu, reserve.cpu);
  cuda_be().gru_layer_forward(x.gpu, h0.gpu, w_ih.gpu, w_hh.gpu, b_ih.gpu, b_hh.gpu, y.gpu, reserve.gpu);
  EXPECT_TRUE(close_scaled(y.gpu.to_vector(), y.cpu.to_vector(), "y"));
  EXPECT_TRUE(close_scaled(reserve.gpu.to_vector(), reserve.cpu.to_vector(), "reserve"));

  const Pair dy = c.dy ? random_pair({c.B, c.T, c.H}, 7) : Pair{};
  const Pair dh_n = c.dh_n ? random_pair({c.B, c.H}, 8) : Pair{};
  // Gradients accumulate: start from random values.
  const Pair dx = random_pair({c.B, c.T, c.Din}, 9), dh0 = c.h0 ? random_pair({c.B, c.H}, 10) : Pair{};
  const Pair dw_ih = random_pair({G, c.Din}, 11), dw_hh = random_pair({G, c.H}, 12);
  const Pair db_ih = random_pair({G}, 13), db_hh = random_pair({G}, 14);
  // Each backend's own forward results, as in a training step.
  cpu_be().gru_layer_backward(x.cpu, h0.cpu, w_ih.cpu, w_hh.cpu, y.cpu, reserve.cpu, dy.cpu, dh_n.cpu, dx.cpu, dh0.cpu,
                              dw_ih.cpu, dw_hh.cpu, db_ih.cpu, db_hh.cpu);
  cuda_be().gru_layer_backward(x.gpu, h0.gpu, w_ih.gpu, w_hh.gpu, y.gpu, reserve.gpu, dy.gpu, dh_n.gpu, dx.gpu, dh0.gpu,
                               dw_ih.gpu, dw_hh.gpu, db_ih.gpu, db_hh.gpu);
  constexpr double kGradTol = 5e-5;
  EXPECT_TRUE(close_scaled(dx.gpu.to_vector(), dx.cpu.to_vector(), "dx", kGradTol));
  if (c.h0) {
    EXPECT_TRUE(close_scaled(dh0.gpu.to_vector(), dh0.cpu.to_vector(), "dh0", kGradTol));
  }
  EXPECT_TRUE(close_scaled(dw_ih.gpu.to_vector(), dw_ih.cpu.to_vector(), "dweight_ih", kGradTol));
  EXPECT_TRUE(close_scaled(dw_hh.gpu.to_vector(), dw_hh.cpu.to_vector(), "dweight_hh", kGradTol));
  EXPECT_TRUE(close_scaled(db_ih.gpu.to_vector(), db_ih.cpu.to_vector(), "dbias_ih", kGradTol));
  EXPECT_TRUE(close_scaled(db_hh.gpu.to_vector(), db_hh.cpu.to_vector(), "dbias_hh", kGradTol));
}

INSTANTIATE_TEST_SUITE_P(Cases, CudaGru,
                         ::testing::Values(GruCase{3, 9, 5, 7, false, false, true},  // zero h0, sequence gradient
                                           GruCase{3, 9, 5, 7, true, true, true},    // h0 and both gradients
                                           GruCase{2, 6, 4, 33, true, true, false},  // only the last state's gradient
                                           GruCase{4, 16, 128, 256, false, true, true}  // the ecg12 context network
                                           ),
                         [](const ::testing::TestParamInfo<GruCase>& i) { return ::testing::PrintToString(i.param); });

}  // namespace
}  // namespace cpc
