// One GRU layer on CUDA against the CPU backend, for both implementations of the gru
// option: cells (cuBLAS GEMMs + the fused cell of kernels/common/gru_cell.h) and cudnn
// (cuDNN's RNN v8 API, kernels/cuda/gru_cudnn.h). Compared: y and every gradient, with
// and without h0, dh_n and dy; for cells also the reserve (r, z, n, W_hn h + b_hn),
// cuDNN's reserve being opaque. Tolerance 1e-5 relative to each tensor's scale for the
// forward, 5e-5 for gradients (sums over B*T steps of BPTT); TF32 off.
#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <tuple>

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

// Selects a GRU implementation for one test and puts cells back at its end.
class GruImpl {
 public:
  explicit GruImpl(const std::string& impl) { cuda_be().set_option("gru", impl); }
  ~GruImpl() { cuda_be().set_option("gru", "cells"); }
  GruImpl(const GruImpl&) = delete;
  GruImpl& operator=(const GruImpl&) = delete;
};

class CudaGru : public ::testing::TestWithParam<std::tuple<GruCase, std::string>> {};

TEST_P(CudaGru, ForwardAndBackwardMatchCpu) {
  SKIP_WITHOUT_CUDA();
  const GruCase c = std::get<0>(GetParam());
  const std::string impl = std::get<1>(GetParam());
  const bool cells = impl == "cells";
  const GruImpl selected(impl);
  const int64_t G = 3 * c.H;
  const float k = 1.f / std::sqrt(static_cast<float>(c.H));  // PyTorch's init range
  const Pair x = random_pair({c.B, c.T, c.Din}, 1);
  const Pair w_ih = random_pair({G, c.Din}, 2, -k, k), w_hh = random_pair({G, c.H}, 3, -k, k);
  const Pair b_ih = random_pair({G}, 4, -k, k), b_hh = random_pair({G}, 5, -k, k);
  const Pair h0 = c.h0 ? random_pair({c.B, c.H}, 6) : Pair{};
  const Pair y = zeros_pair({c.B, c.T, c.H});
  // The CPU's reserve is always (B, T, 4H); the CUDA one is what the backend asks for.
  const Shape cuda_reserve = cuda_be().gru_reserve_shape(c.B, c.T, c.Din, c.H);
  if (cells) {
    EXPECT_EQ(cuda_reserve, Shape({c.B, c.T, 4 * c.H}));
  } else {
    EXPECT_EQ(cuda_reserve.rank(), 1) << cuda_reserve;
  }
  const Pair reserve{Tensor::zeros({c.B, c.T, 4 * c.H}), Tensor::zeros(cuda_reserve, Device::cuda())};
  cpu_be().gru_layer_forward(x.cpu, h0.cpu, w_ih.cpu, w_hh.cpu, b_ih.cpu, b_hh.cpu, y.cpu, reserve.cpu);
  cuda_be().gru_layer_forward(x.gpu, h0.gpu, w_ih.gpu, w_hh.gpu, b_ih.gpu, b_hh.gpu, y.gpu, reserve.gpu);
  EXPECT_TRUE(close_scaled(y.gpu.to_vector(), y.cpu.to_vector(), "y"));
  if (cells) {
    EXPECT_TRUE(close_scaled(reserve.gpu.to_vector(), reserve.cpu.to_vector(), "reserve"));
  }

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

INSTANTIATE_TEST_SUITE_P(
    Cases, CudaGru,
    ::testing::Combine(::testing::Values(GruCase{3, 9, 5, 7, false, false, true},     // zero h0, sequence gradient
                                         GruCase{3, 9, 5, 7, true, true, true},       // h0 and both gradients
                                         GruCase{2, 6, 4, 33, true, true, false},     // only the last state's gradient
                                         GruCase{4, 16, 128, 256, false, true, true}  // the ecg12 context network
                                         ),
                       ::testing::Values(std::string("cells"), std::string("cudnn"))),
    [](const ::testing::TestParamInfo<std::tuple<GruCase, std::string>>& i) {
      return ::testing::PrintToString(std::get<0>(i.param)) + "_" + std::get<1>(i.param);
    });

// A forward under one implementation and its backward under the other: the reserve
// sizes differ and the backward says why.
TEST(CudaGruOption, SwitchingBetweenForwardAndBackwardIsRejected) {
  SKIP_WITHOUT_CUDA();
  const int64_t B = 2, T = 5, Din = 3, H = 4, G = 3 * H;
  const Tensor x = Tensor::zeros({B, T, Din}, Device::cuda()), w_ih = Tensor::zeros({G, Din}, Device::cuda());
  const Tensor w_hh = Tensor::zeros({G, H}, Device::cuda()), b = Tensor::zeros({G}, Device::cuda());
  const Tensor y = Tensor::zeros({B, T, H}, Device::cuda()), dy = Tensor::zeros({B, T, H}, Device::cuda());
  const Tensor dx = Tensor::zeros({B, T, Din}, Device::cuda());
  Tensor reserve;
  {
    const GruImpl selected("cudnn");
    reserve = Tensor::zeros(cuda_be().gru_reserve_shape(B, T, Din, H), Device::cuda());
    cuda_be().gru_layer_forward(x, Tensor(), w_ih, w_hh, b, b, y, reserve);
  }
  const std::string msg = error_of([&] {
    cuda_be().gru_layer_backward(x, Tensor(), w_ih, w_hh, y, reserve, dy, Tensor(), dx, Tensor(), Tensor(), Tensor(),
                                 Tensor(), Tensor());
  });
  EXPECT_NE(msg.find("did the gru option change since the forward?"), std::string::npos) << msg;
}

// Runs everywhere: the option is validated without a device.
TEST(CudaGruOption, BadValueIsRejectedNamingKeyAndValues) {
  const std::string msg = error_of([] { cuda_be().set_option("gru", "persistent"); });
  EXPECT_NE(msg.find("gru"), std::string::npos) << msg;
  EXPECT_NE(msg.find("cells"), std::string::npos) << msg;
  EXPECT_NE(msg.find("cudnn"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'persistent'"), std::string::npos) << msg;
  // Both good values are accepted without a device; without one the cudnn reserve shape
  // falls back to the default (cuDNN cannot size it), with one it is cuDNN's 1-D size.
  {
    const GruImpl selected("cudnn");
    const Shape s = cuda_be().gru_reserve_shape(2, 3, 4, 5);
    if (cuda_present()) {
      EXPECT_EQ(s.rank(), 1) << s;
    } else {
      EXPECT_EQ(s, Shape({2, 3, 20}));
    }
    EXPECT_NE(cuda_be().describe().find("GRU cuDNN RNN"), std::string::npos) << cuda_be().describe();
  }
  EXPECT_EQ(cuda_be().gru_reserve_shape(2, 3, 4, 5), Shape({2, 3, 20}));
  EXPECT_NE(cuda_be().describe().find("GRU cells"), std::string::npos) << cuda_be().describe();
}

}  // namespace
}  // namespace cpc
