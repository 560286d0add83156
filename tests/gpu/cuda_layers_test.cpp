// Layers on CUDA beyond their ops (the ops are the backend-ops table's, tests/ops/):
// BatchNorm1d counts its batches on the device.
#include <gtest/gtest.h>

#include <vector>

#include "engine/core/autograd.h"
#include "layers/batch_norm1d.h"
#include "tests/gpu/cuda_test_util.h"

namespace cpc {
namespace {

using namespace gpu_test;

TEST(CudaBatchNorm, LayerCountsBatchesOnTheDevice) {
  SKIP_WITHOUT_CUDA();
  BatchNorm1d bn(4);
  bn.to(Device::cuda());
  bn.train(true);
  for (int i = 0; i < 3; ++i) {
    Tape tape;
    TapeScope scope(tape);
    bn.forward(tape.var(Tensor::from_vector({2, 4, 3}, random_values(24, 40 + i)).to(Device::cuda())));
  }
  EXPECT_EQ(bn.num_batches_tracked->to_vector(), std::vector<float>{3.f});
}

}  // namespace
}  // namespace cpc
