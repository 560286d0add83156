// The GRU implementation option of the CUDA backend (gru = cells | cudnn): validated
// without a device, and a forward and its backward under different options rejected.
// The GRU's numbers on both implementations are the backend-ops table's (tests/ops/gru.cpp).
#include <gtest/gtest.h>

#include <string>

#include "tests/gpu/cuda_test_util.h"

namespace cpc {
namespace {

using namespace gpu_test;

// Selects a GRU implementation for one test and puts cells back at its end.
class GruImpl {
 public:
  explicit GruImpl(const std::string& impl) { cuda_be().set_option("gru", impl); }
  ~GruImpl() { cuda_be().set_option("gru", "cells"); }
  GruImpl(const GruImpl&) = delete;
  GruImpl& operator=(const GruImpl&) = delete;
};

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
