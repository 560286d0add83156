// Conv1d (cuDNN), BatchNorm (cuDNN + kernels) and channel LayerNorm on CUDA against the
// CPU backend. Tolerances (fp32, TF32 off): 1e-5 relative to each tensor's largest
// value (close_scaled) for sums over channels x taps or batch x length. Gradients
// accumulate into random initial values, which checks the "add into" contract.
#include <gtest/gtest.h>

#include <ostream>

#include "engine/autograd.h"
#include "layers/batch_norm1d.h"
#include "tests/gpu/cuda_test_util.h"

namespace cpc {
namespace {

using namespace gpu_test;

struct ConvCase {
  int64_t B, Cin, L, Cout, K;
  Conv1dGeometry g;
  bool bias;
};

void PrintTo(const ConvCase& c, std::ostream* os) {
  *os << "B" << c.B << "_Cin" << c.Cin << "_L" << c.L << "_Cout" << c.Cout << "_K" << c.K << "_stride" << c.g.stride
      << "_pad" << c.g.padding << "_dil" << c.g.dilation << (c.bias ? "_bias" : "");
}

class CudaConv1d : public ::testing::TestWithParam<ConvCase> {};

TEST_P(CudaConv1d, ForwardAndBothBackwardsMatchCpu) {
  SKIP_WITHOUT_CUDA();
  const ConvCase c = GetParam();
  const int64_t lout = c.g.out_length(c.L, c.K);
  const Pair x = random_pair({c.B, c.Cin, c.L}, 1), w = random_pair({c.Cout, c.Cin, c.K}, 2);
  const Pair b = random_pair({c.Cout}, 3);
  const Pair y = zeros_pair({c.B, c.Cout, lout});
  cpu_be().conv1d_forward(x.cpu, w.cpu, c.bias ? &b.cpu : nullptr, c.g, y.cpu);
  cuda_be().conv1d_forward(x.gpu, w.gpu, c.bias ? &b.gpu : nullptr, c.g, y.gpu);
  EXPECT_TRUE(close_scaled(y.gpu.to_vector(), y.cpu.to_vector(), "y"));

  const Pair dy = random_pair({c.B, c.Cout, lout}, 4);
  const Pair dx = random_pair({c.B, c.Cin, c.L}, 5), dw = random_pair({c.Cout, c.Cin, c.K}, 6);
  const Pair db = random_pair({c.Cout}, 7);
  cpu_be().conv1d_backward_data(dy.cpu, w.cpu, c.g, dx.cpu);
  cuda_be().conv1d_backward_data(dy.gpu, w.gpu, c.g, dx.gpu);
  EXPECT_TRUE(close_scaled(dx.gpu.to_vector(), dx.cpu.to_vector(), "dx"));
  cpu_be().conv1d_backward_weights(x.cpu, dy.cpu, c.g, dw.cpu, c.bias ? &db.cpu : nullptr);
  cuda_be().conv1d_backward_weights(x.gpu, dy.gpu, c.g, dw.gpu, c.bias ? &db.gpu : nullptr);
  EXPECT_TRUE(close_scaled(dw.gpu.to_vector(), dw.cpu.to_vector(), "dw"));
  EXPECT_TRUE(close_scaled(db.gpu.to_vector(), db.cpu.to_vector(), "db"));
  // Second call: the cached algorithm and descriptors, same numbers again.
  const Pair y2 = zeros_pair({c.B, c.Cout, lout});
  cuda_be().conv1d_forward(x.gpu, w.gpu, c.bias ? &b.gpu : nullptr, c.g, y2.gpu);
  EXPECT_TRUE(close_scaled(y2.gpu.to_vector(), y.cpu.to_vector(), "y (cached plan)"));
}

INSTANTIATE_TEST_SUITE_P(Geometries, CudaConv1d,
                         ::testing::Values(ConvCase{3, 5, 37, 7, 3, {1, 1, 1}, true},   // same padding
                                           ConvCase{2, 4, 50, 6, 7, {2, 3, 1}, false},  // strided
                                           ConvCase{2, 3, 40, 5, 3, {1, 2, 2}, true},   // dilated
                                           ConvCase{4, 16, 33, 8, 1, {1, 0, 1}, true},  // pointwise
                                           ConvCase{
                                               2, 8, 31, 8, 1, {2, 0, 1}, false},  // strided 1x1 (residual downsample)
                                           ConvCase{4, 12, 1024, 64, 7, {4, 3, 1}, false}  // the ecg12 stem
                                           ),
                         [](const ::testing::TestParamInfo<ConvCase>& i) { return ::testing::PrintToString(i.param); });

struct NormInputs {
  Pair x, gamma, beta;
};
NormInputs norm_inputs(int64_t B, int64_t C, int64_t L) {
  std::vector<float> xv = random_values(B * C * L, 21, -2.f, 3.f);
  for (int64_t i = 0; i < B * C * L; ++i) xv[i] += static_cast<float>((i / L) % C) * 0.5f;  // per-channel offsets
  return {{Tensor::from_vector({B, C, L}, xv), Tensor::from_vector({B, C, L}, xv, Device::cuda())},
          random_pair({C}, 22, 0.5f, 1.5f),
          random_pair({C}, 23)};
}

TEST(CudaBatchNorm, TrainForwardUpdatesRunningStatsLikeCpu) {
  SKIP_WITHOUT_CUDA();
  const int64_t B = 4, C = 6, L = 50;
  const NormInputs in = norm_inputs(B, C, L);
  const Pair rm = random_pair({C}, 24), rv = random_pair({C}, 25, 0.5f, 2.f);
  const Pair mean = zeros_pair({C}), invstd = zeros_pair({C}), y = zeros_pair({B, C, L});
  for (int step = 0; step < 2; ++step) {
    cpu_be().batchnorm_forward_train(in.x.cpu, in.gamma.cpu, in.beta.cpu, 0.1f, 1e-5f, rm.cpu, rv.cpu, mean.cpu,
                                     invstd.cpu, y.cpu);
    cuda_be().batchnorm_forward_train(in.x.gpu, in.gamma.gpu, in.beta.gpu, 0.1f, 1e-5f, rm.gpu, rv.gpu, mean.gpu,
                                      invstd.gpu, y.gpu);
  }
  EXPECT_TRUE(close_scaled(y.gpu.to_vector(), y.cpu.to_vector(), "y"));
  EXPECT_TRUE(close(mean.gpu.to_vector(), mean.cpu.to_vector(), "save_mean"));
  EXPECT_TRUE(close(invstd.gpu.to_vector(), invstd.cpu.to_vector(), "save_invstd"));
  EXPECT_TRUE(close(rm.gpu.to_vector(), rm.cpu.to_vector(), "running_mean"));
  // Unbiased (n / (n - 1)) batch variance in the running average, as PyTorch.
  EXPECT_TRUE(close(rv.gpu.to_vector(), rv.cpu.to_vector(), "running_var"));
  // Without running statistics (both undefined): no update, same outputs.
  const Pair y2 = zeros_pair({B, C, L});
  cuda_be().batchnorm_forward_train(in.x.gpu, in.gamma.gpu, in.beta.gpu, 0.1f, 1e-5f, Tensor(), Tensor(), mean.gpu,
                                    invstd.gpu, y2.gpu);
  EXPECT_TRUE(close_scaled(y2.gpu.to_vector(), y.cpu.to_vector(), "y without running stats"));
}

TEST(CudaBatchNorm, EvalForwardMatchesCpu) {
  SKIP_WITHOUT_CUDA();
  const int64_t B = 3, C = 5, L = 21;
  const NormInputs in = norm_inputs(B, C, L);
  const Pair rm = random_pair({C}, 26), rv = random_pair({C}, 27, 0.5f, 2.f);
  const Pair invstd = zeros_pair({C}), y = zeros_pair({B, C, L});
  cpu_be().batchnorm_forward_eval(in.x.cpu, in.gamma.cpu, in.beta.cpu, 1e-5f, rm.cpu, rv.cpu, invstd.cpu, y.cpu);
  cuda_be().batchnorm_forward_eval(in.x.gpu, in.gamma.gpu, in.beta.gpu, 1e-5f, rm.gpu, rv.gpu, invstd.gpu, y.gpu);
  EXPECT_TRUE(close_scaled(y.gpu.to_vector(), y.cpu.to_vector(), "y"));
  EXPECT_TRUE(close(invstd.gpu.to_vector(), invstd.cpu.to_vector(), "invstd"));
}

TEST(CudaBatchNorm, BackwardAccumulatesInTrainingAndEval) {
  SKIP_WITHOUT_CUDA();
  const int64_t B = 4, C = 6, L = 50;
  const NormInputs in = norm_inputs(B, C, L);
  for (bool training : {true, false}) {
    // Which outputs are wanted: all, dx only, one parameter gradient only.
    for (int wanted = 0; wanted < 4; ++wanted) {
      SCOPED_TRACE(::testing::Message() << (training ? "training" : "eval") << ", outputs case " << wanted);
      const Pair rm = random_pair({C}, 28), rv = random_pair({C}, 29, 0.5f, 2.f);
      const Pair mean = zeros_pair({C}), invstd = zeros_pair({C}), y = zeros_pair({B, C, L});
      // Each backend's own forward statistics (as in a training step).
      if (training) {
        cpu_be().batchnorm_forward_train(in.x.cpu, in.gamma.cpu, in.beta.cpu, 0.1f, 1e-5f, rm.cpu, rv.cpu, mean.cpu,
                                         invstd.cpu, y.cpu);
        cuda_be().batchnorm_forward_train(in.x.gpu, in.gamma.gpu, in.beta.gpu, 0.1f, 1e-5f, rm.gpu, rv.gpu, mean.gpu,
                                          invstd.gpu, y.gpu);
      } else {
        cpu_be().batchnorm_forward_eval(in.x.cpu, in.gamma.cpu, in.beta.cpu, 1e-5f, rm.cpu, rv.cpu, invstd.cpu, y.cpu);
        cuda_be().batchnorm_forward_eval(in.x.gpu, in.gamma.gpu, in.beta.gpu, 1e-5f, rm.gpu, rv.gpu, invstd.gpu, y.gpu);
      }
      const Pair& stat_mean = training ? mean : rm;
      const Pair dy = random_pair({B, C, L}, 30);
      const Pair dx = random_pair({B, C, L}, 31), dg = random_pair({C}, 32), db = random_pair({C}, 33);
      const bool want_dx = wanted != 2 && wanted != 3, want_dg = wanted == 0 || wanted == 2,
                 want_db = wanted == 0 || wanted == 3;
      auto pick = [](bool want, const Tensor& t) { return want ? t : Tensor(); };
      cpu_be().batchnorm_backward(in.x.cpu, dy.cpu, in.gamma.cpu, stat_mean.cpu, invstd.cpu, training,
                                  pick(want_dx, dx.cpu), pick(want_dg, dg.cpu), pick(want_db, db.cpu));
      cuda_be().batchnorm_backward(in.x.gpu, dy.gpu, in.gamma.gpu, stat_mean.gpu, invstd.gpu, training,
                                   pick(want_dx, dx.gpu), pick(want_dg, dg.gpu), pick(want_db, db.gpu));
      EXPECT_TRUE(close_scaled(dx.gpu.to_vector(), dx.cpu.to_vector(), "dx"));
      EXPECT_TRUE(close_scaled(dg.gpu.to_vector(), dg.cpu.to_vector(), "dgamma"));
      EXPECT_TRUE(close_scaled(db.gpu.to_vector(), db.cpu.to_vector(), "dbeta"));
    }
  }
}

TEST(CudaBatchNorm, SyncPiecesStatsAndAffine) {
  SKIP_WITHOUT_CUDA();
  const int64_t B = 3, C = 7, L = 40;
  const NormInputs in = norm_inputs(B, C, L);
  const Pair mean = zeros_pair({C}), var = zeros_pair({C});
  cpu_be().batchnorm_stats(in.x.cpu, mean.cpu, var.cpu);
  cuda_be().batchnorm_stats(in.x.gpu, mean.gpu, var.gpu);
  EXPECT_TRUE(close(mean.gpu.to_vector(), mean.cpu.to_vector(), "mean", 1e-6));
  EXPECT_TRUE(close(var.gpu.to_vector(), var.cpu.to_vector(), "var", 1e-6));
  const Pair y = random_pair({B, C, L}, 34);
  cpu_be().channel_affine(in.x.cpu, in.gamma.cpu, in.beta.cpu, y.cpu);
  cuda_be().channel_affine(in.x.gpu, in.gamma.gpu, in.beta.gpu, y.gpu);
  EXPECT_TRUE(close_scaled(y.gpu.to_vector(), y.cpu.to_vector(), "channel_affine", 1e-6));
}

TEST(CudaChannelNorm, ForwardAndBackwardMatchCpu) {
  SKIP_WITHOUT_CUDA();
  const int64_t B = 3, C = 16, L = 45;
  const NormInputs in = norm_inputs(B, C, L);
  const Pair mean = zeros_pair({B, L}), invstd = zeros_pair({B, L}), y = zeros_pair({B, C, L});
  cpu_be().channel_norm_forward(in.x.cpu, in.gamma.cpu, in.beta.cpu, 1e-5f, mean.cpu, invstd.cpu, y.cpu);
  cuda_be().channel_norm_forward(in.x.gpu, in.gamma.gpu, in.beta.gpu, 1e-5f, mean.gpu, invstd.gpu, y.gpu);
  EXPECT_TRUE(close_scaled(y.gpu.to_vector(), y.cpu.to_vector(), "y"));
  EXPECT_TRUE(close(mean.gpu.to_vector(), mean.cpu.to_vector(), "save_mean"));
  EXPECT_TRUE(close(invstd.gpu.to_vector(), invstd.cpu.to_vector(), "save_invstd"));
  for (bool all : {true, false}) {
    SCOPED_TRACE(all ? "dx, dgamma, dbeta" : "dgamma only");
    const Pair dy = random_pair({B, C, L}, 35);
    const Pair dx = random_pair({B, C, L}, 36), dg = random_pair({C}, 37), db = random_pair({C}, 38);
    cpu_be().channel_norm_backward(in.x.cpu, dy.cpu, in.gamma.cpu, mean.cpu, invstd.cpu, all ? dx.cpu : Tensor(),
                                   dg.cpu, all ? db.cpu : Tensor());
    cuda_be().channel_norm_backward(in.x.gpu, dy.gpu, in.gamma.gpu, mean.gpu, invstd.gpu, all ? dx.gpu : Tensor(),
                                    dg.gpu, all ? db.gpu : Tensor());
    EXPECT_TRUE(close_scaled(dx.gpu.to_vector(), dx.cpu.to_vector(), "dx"));
    EXPECT_TRUE(close_scaled(dg.gpu.to_vector(), dg.cpu.to_vector(), "dgamma"));
    EXPECT_TRUE(close_scaled(db.gpu.to_vector(), db.cpu.to_vector(), "dbeta"));
  }
}

// The layer counts its training batches on the device too (it counted on the CPU only).
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
