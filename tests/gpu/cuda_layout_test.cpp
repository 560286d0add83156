// Layout, reduction, bias and L2-normalisation ops: CUDA against the CPU backend on
// random inputs. Copies, mean/max over an axis, narrow and add_bias are computed in
// the CPU's order and must agree exactly (a multiply-add may become one FMA on the GPU:
// those to 1e-6); tree sums (bias_grad, l2_normalize) to 1e-5 relative
// to the tensor's scale. Backward ops accumulate into non-zero gradients here.
#include <gtest/gtest.h>

#include "tests/gpu/cuda_test_util.h"

namespace cpc {
namespace {

using namespace gpu_test;

TEST(CudaLayout, TransposeLast2WithAndWithoutBeta) {
  SKIP_WITHOUT_CUDA();
  for (auto [O, M, N] : {std::tuple<int64_t, int64_t, int64_t>{3, 37, 65}, {1, 1, 7}, {5, 64, 32}}) {
    const Pair x = random_pair({O, M, N}, 1);
    for (float beta : {0.f, 1.f, -0.5f}) {
      SCOPED_TRACE(::testing::Message() << "(" << O << ", " << M << ", " << N << "), beta " << beta);
      const Pair y = random_pair({O, N, M}, 2);
      cpu_be().transpose_last2(x.cpu, y.cpu, beta);
      cuda_be().transpose_last2(x.gpu, y.gpu, beta);
      EXPECT_TRUE(close(y.gpu.to_vector(), y.cpu.to_vector(), "transpose", 1e-6));
    }
  }
}

TEST(CudaLayout, SwapAxes) {
  SKIP_WITHOUT_CUDA();
  const int64_t O = 2, M = 5, N = 7, I = 3;
  const Pair x = random_pair({O * M * N * I}, 3);
  for (float beta : {0.f, 1.f}) {
    const Pair y = random_pair({O * N * M * I}, 4);
    cpu_be().swap_axes(x.cpu, O, M, N, I, y.cpu, beta);
    cuda_be().swap_axes(x.gpu, O, M, N, I, y.gpu, beta);
    EXPECT_TRUE(close(y.gpu.to_vector(), y.cpu.to_vector(), "swap_axes", 1e-6));
  }
}

TEST(CudaLayout, NarrowForwardAndBackward) {
  SKIP_WITHOUT_CUDA();
  const Pair x = random_pair({3, 11, 5}, 5);
  const Pair y = random_pair({3, 4, 5}, 6);
  cpu_be().narrow_forward(x.cpu, 6, y.cpu);
  cuda_be().narrow_forward(x.gpu, 6, y.gpu);
  EXPECT_TRUE(equal(y.gpu.to_vector(), y.cpu.to_vector(), "narrow"));
  const Pair dx = random_pair({3, 11, 5}, 7);
  cpu_be().narrow_backward(y.cpu, 6, dx.cpu);
  cuda_be().narrow_backward(y.gpu, 6, dx.gpu);
  EXPECT_TRUE(equal(dx.gpu.to_vector(), dx.cpu.to_vector(), "narrow_backward"));
}

TEST(CudaLayout, MeanAndMaxOverAnAxis) {
  SKIP_WITHOUT_CUDA();
  const int64_t O = 4, N = 19, I = 6;
  std::vector<float> xv = random_values(O * N * I, 8);
  xv[5] = xv[5 + 2 * I];  // a tie: the first maximum wins on both
  const Pair x{Tensor::from_vector({O, N, I}, xv), Tensor::from_vector({O, N, I}, xv, Device::cuda())};
  const Pair y = zeros_pair({O, I}), am = zeros_pair({O, I});
  cpu_be().mean_axis_forward(x.cpu, y.cpu);
  cuda_be().mean_axis_forward(x.gpu, y.gpu);
  EXPECT_TRUE(equal(y.gpu.to_vector(), y.cpu.to_vector(), "mean"));
  const Pair dy = random_pair({O, I}, 9), dx = random_pair({O, N, I}, 10);
  cpu_be().mean_axis_backward(dy.cpu, dx.cpu);
  cuda_be().mean_axis_backward(dy.gpu, dx.gpu);
  EXPECT_TRUE(close(dx.gpu.to_vector(), dx.cpu.to_vector(), "mean_backward", 1e-6));  // nvcc may fuse to FMA

  cpu_be().max_axis_forward(x.cpu, y.cpu, am.cpu);
  cuda_be().max_axis_forward(x.gpu, y.gpu, am.gpu);
  EXPECT_TRUE(equal(y.gpu.to_vector(), y.cpu.to_vector(), "max"));
  EXPECT_TRUE(equal(am.gpu.to_vector(), am.cpu.to_vector(), "argmax"));
  cpu_be().max_axis_backward(dy.cpu, am.cpu, dx.cpu);
  cuda_be().max_axis_backward(dy.gpu, am.gpu, dx.gpu);
  EXPECT_TRUE(equal(dx.gpu.to_vector(), dx.cpu.to_vector(), "max_backward"));
}

TEST(CudaLayout, AddBiasAndBiasGrad) {
  SKIP_WITHOUT_CUDA();
  // inner 1 (linear: rows x channels) and inner > 1 (conv: (B, C, L)), many rows.
  for (auto [O, C, inner] : {std::tuple<int64_t, int64_t, int64_t>{3001, 70, 1}, {4, 33, 129}, {1, 5, 1}}) {
    SCOPED_TRACE(::testing::Message() << "(" << O << ", " << C << ", " << inner << ")");
    const Pair y = random_pair({O * C * inner}, 11), bias = random_pair({C}, 12);
    cpu_be().add_bias(y.cpu, bias.cpu, inner);
    cuda_be().add_bias(y.gpu, bias.gpu, inner);
    EXPECT_TRUE(equal(y.gpu.to_vector(), y.cpu.to_vector(), "add_bias"));
    const Pair db = random_pair({C}, 13);
    cpu_be().bias_grad(y.cpu, db.cpu, inner);
    cuda_be().bias_grad(y.gpu, db.gpu, inner);
    // The CPU sums in float per (o, c), the GPU in double: both within fp32 rounding.
    EXPECT_TRUE(close_scaled(db.gpu.to_vector(), db.cpu.to_vector(), "bias_grad", 1e-5));
  }
}

TEST(CudaLayout, L2NormalizeForwardAndBackward) {
  SKIP_WITHOUT_CUDA();
  const int64_t N = 37, D = 130;
  std::vector<float> xv = random_values(N * D, 14);
  for (int64_t d = 0; d < D; ++d) xv[3 * D + d] = 0.f;  // a zero row: the eps clamp
  const Pair x{Tensor::from_vector({N, D}, xv), Tensor::from_vector({N, D}, xv, Device::cuda())};
  const Pair y = zeros_pair({N, D});
  cpu_be().l2_normalize_forward(x.cpu, 1e-8f, y.cpu);
  cuda_be().l2_normalize_forward(x.gpu, 1e-8f, y.gpu);
  EXPECT_TRUE(close(y.gpu.to_vector(), y.cpu.to_vector(), "l2_normalize", 1e-6));
  const Pair dy = random_pair({N, D}, 15), dx = random_pair({N, D}, 16);
  cpu_be().l2_normalize_backward(x.cpu, dy.cpu, 1e-8f, dx.cpu);
  cuda_be().l2_normalize_backward(x.gpu, dy.gpu, 1e-8f, dx.gpu);
  // The zero row's gradient is dy / eps (1e8): compare row-scaled.
  const std::vector<float> g = dx.gpu.to_vector(), c = dx.cpu.to_vector();
  for (int64_t r = 0; r < N; ++r) {
    const std::vector<float> gr(g.begin() + r * D, g.begin() + (r + 1) * D),
        cr(c.begin() + r * D, c.begin() + (r + 1) * D);
    EXPECT_TRUE(close_scaled(gr, cr, "l2_normalize_backward row " + std::to_string(r), 1e-5));
  }
}

}  // namespace
}  // namespace cpc
