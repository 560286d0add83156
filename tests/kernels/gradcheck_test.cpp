// Central finite differences in double precision for every CPU kernel's backward:
// the kernels are templates, instantiated here for double. Loss = sum(y * dy) for a
// random dy; each sampled coordinate must satisfy |fd - analytic| <= 1e-6 * scale.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include "kernels/cpu/conv1d.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/gru.h"
#include "kernels/cpu/norms.h"

namespace cpc::test {
namespace {

using Vec = std::vector<double>;

Vec random_vec(size_t n, std::mt19937& rng, double scale = 1.0) {
  std::normal_distribution<double> d(0.0, scale);
  Vec v(n);
  for (double& x : v) x = d(rng);
  return v;
}

double dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Checks analytic against central differences of loss() w.r.t. v, on up to 48
// coordinates spread over v.
void fd_check(const std::string& what, Vec& v, const Vec& analytic, const std::function<double()>& loss) {
  ASSERT_EQ(v.size(), analytic.size()) << what;
  const double h = 1e-5;
  double scale = 1e-3;
  for (double g : analytic) scale = std::max(scale, std::fabs(g));
  const size_t n = v.size(), samples = std::min<size_t>(n, 48);
  for (size_t s = 0; s < samples; ++s) {
    const size_t i = samples == n ? s : (s * 7919) % n;
    const double keep = v[i];
    v[i] = keep + h;
    const double lp = loss();
    v[i] = keep - h;
    const double lm = loss();
    v[i] = keep;
    const double fd = (lp - lm) / (2 * h);
    EXPECT_NEAR(analytic[i], fd, 1e-6 * scale) << what << " at index " << i;
  }
}

struct ConvCase {
  int64_t B, Cin, L, Cout, K, stride, pad, dil;
};

class Conv1dGradcheck : public ::testing::TestWithParam<ConvCase> {};

TEST_P(Conv1dGradcheck, DataWeightsAndBias) {
  const ConvCase c = GetParam();
  cpu::Conv1dDims d{c.B, c.Cin, c.L, c.Cout, c.K, 0, c.stride, c.pad, c.dil};
  d.Lout = (c.L + 2 * c.pad - c.dil * (c.K - 1) - 1) / c.stride + 1;
  std::mt19937 rng(1);
  Vec x = random_vec(c.B * c.Cin * c.L, rng), w = random_vec(c.Cout * c.Cin * c.K, rng), b = random_vec(c.Cout, rng),
      dy = random_vec(c.B * c.Cout * d.Lout, rng);
  Vec col(cpu::col_size(d)), y(dy.size());
  auto loss = [&] {
    cpu::conv1d_forward(x.data(), w.data(), b.data(), d, y.data(), col.data());
    return dot(y, dy);
  };
  Vec dx(x.size(), 0.0), dw(w.size(), 0.0), db(b.size(), 0.0);
  cpu::conv1d_backward_data(dy.data(), w.data(), d, dx.data(), col.data());
  cpu::conv1d_backward_weights(x.data(), dy.data(), d, dw.data(), db.data(), col.data());
  fd_check("conv1d dx", x, dx, loss);
  fd_check("conv1d dw", w, dw, loss);
  fd_check("conv1d db", b, db, loss);
}

INSTANTIATE_TEST_SUITE_P(Geometries, Conv1dGradcheck,
                         ::testing::Values(ConvCase{3, 4, 37, 5, 3, 2, 1, 1},      // stride does not divide L
                                           ConvCase{2, 3, 37, 4, 4, 3, 0, 1},      // no padding
                                           ConvCase{2, 3, 29, 4, 5, 1, 4, 2},      // dilation
                                           ConvCase{2, 6, 17, 3, 1, 1, 0, 1},      // pointwise (no im2col)
                                           ConvCase{2, 6, 17, 3, 1, 2, 0, 1},      // strided 1x1 (ResNet skip)
                                           ConvCase{2, 1, 103, 4, 10, 5, 3, 1}));  // seed 004's first layer

TEST(GruGradcheck, AllInputsAndWeightsWithH0) {
  const cpu::GruDims d{3, 9, 4, 5};
  const int64_t G = 3 * d.H;
  std::mt19937 rng(2);
  Vec x = random_vec(d.B * d.T * d.Din, rng), h0 = random_vec(d.B * d.H, rng, 0.5),
      wih = random_vec(G * d.Din, rng, 0.5), whh = random_vec(G * d.H, rng, 0.5), bih = random_vec(G, rng, 0.3),
      bhh = random_vec(G, rng, 0.3), dy = random_vec(d.B * d.T * d.H, rng), dhn = random_vec(d.B * d.H, rng);
  Vec y(d.B * d.T * d.H), reserve(d.B * d.T * 4 * d.H), ws(std::max(cpu::gru_forward_workspace(d), cpu::gru_backward_workspace(d)));
  auto loss = [&] {
    cpu::gru_forward(x.data(), h0.data(), wih.data(), whh.data(), bih.data(), bhh.data(), d, y.data(), reserve.data(),
                     ws.data());
    Vec last(d.B * d.H);  // h_n = y[:, T-1, :]
    for (int64_t b = 0; b < d.B; ++b)
      for (int64_t j = 0; j < d.H; ++j) last[b * d.H + j] = y[(b * d.T + d.T - 1) * d.H + j];
    return dot(y, dy) + dot(last, dhn);
  };
  loss();
  Vec dx(x.size(), 0), dh0(h0.size(), 0), dwih(wih.size(), 0), dwhh(whh.size(), 0), dbih(G, 0), dbhh(G, 0);
  cpu::gru_backward(x.data(), h0.data(), wih.data(), whh.data(), y.data(), reserve.data(), dy.data(), dhn.data(), d,
                    dx.data(), dh0.data(), dwih.data(), dwhh.data(), dbih.data(), dbhh.data(), ws.data());
  fd_check("gru dx", x, dx, loss);
  fd_check("gru dh0", h0, dh0, loss);
  fd_check("gru dw_ih", wih, dwih, loss);
  fd_check("gru dw_hh", whh, dwhh, loss);
  fd_check("gru db_ih", bih, dbih, loss);
  fd_check("gru db_hh", bhh, dbhh, loss);
}

class BatchNormGradcheck : public ::testing::TestWithParam<bool> {};

TEST_P(BatchNormGradcheck, InputWeightAndBias) {
  const bool training = GetParam();
  const cpu::NormDims d{3, 4, 11};
  std::mt19937 rng(3);
  Vec x = random_vec(d.B * d.C * d.L, rng, 2.0), gamma = random_vec(d.C, rng), beta = random_vec(d.C, rng),
      dy = random_vec(x.size(), rng), rm = random_vec(d.C, rng, 0.3), rv(d.C, 0.0);
  for (double& v : rv) v = 0.5 + std::fabs(random_vec(1, rng)[0]);
  Vec y(x.size()), mean(d.C), invstd(d.C);
  auto loss = [&] {
    if (training)
      cpu::batchnorm_forward_train<double>(x.data(), gamma.data(), beta.data(), 0.1, 1e-5, d, nullptr, nullptr,
                                           mean.data(), invstd.data(), y.data());
    else
      cpu::batchnorm_forward_eval<double>(x.data(), gamma.data(), beta.data(), 1e-5, d, rm.data(), rv.data(),
                                          invstd.data(), y.data());
    return dot(y, dy);
  };
  loss();
  Vec dx(x.size(), 0), dg(d.C, 0), dbeta(d.C, 0);
  cpu::batchnorm_backward(x.data(), dy.data(), gamma.data(), training ? mean.data() : rm.data(), invstd.data(),
                          training, d, dx.data(), dg.data(), dbeta.data());
  fd_check("batch_norm dx", x, dx, loss);
  fd_check("batch_norm dgamma", gamma, dg, loss);
  fd_check("batch_norm dbeta", beta, dbeta, loss);
}

INSTANTIATE_TEST_SUITE_P(Modes, BatchNormGradcheck, ::testing::Values(true, false),
                         [](const ::testing::TestParamInfo<bool>& i) { return i.param ? "train" : "eval"; });

TEST(ChannelNormGradcheck, InputWeightAndBias) {
  const cpu::NormDims d{2, 5, 7};
  std::mt19937 rng(4);
  Vec x = random_vec(d.B * d.C * d.L, rng, 2.0), gamma = random_vec(d.C, rng), beta = random_vec(d.C, rng),
      dy = random_vec(x.size(), rng);
  Vec y(x.size()), mean(d.B * d.L), invstd(d.B * d.L), ws(cpu::channel_norm_backward_workspace(d));
  auto loss = [&] {
    cpu::channel_norm_forward<double>(x.data(), gamma.data(), beta.data(), 1e-5, d, mean.data(), invstd.data(),
                                      y.data());
    return dot(y, dy);
  };
  loss();
  Vec dx(x.size(), 0), dg(d.C, 0), db(d.C, 0);
  cpu::channel_norm_backward(x.data(), dy.data(), gamma.data(), mean.data(), invstd.data(), d, dx.data(), dg.data(),
                             db.data(), ws.data());
  fd_check("channel_norm dx", x, dx, loss);
  fd_check("channel_norm dgamma", gamma, dg, loss);
  fd_check("channel_norm dbeta", beta, db, loss);
}

// torch.relu(nan) is nan: a diverged activation must not become a finite 0 (it hid
// NaN weights behind a finite loss). Its gradient there is 0, as threshold_backward's.
TEST(Pointwise, ReluKeepsNanAsPyTorch) {
  Vec x{std::nan(""), -1.0, 0.0, 2.0, -INFINITY, INFINITY}, y(x.size());
  cpu::relu_forward(x.data(), y.data(), static_cast<int64_t>(x.size()));
  EXPECT_TRUE(std::isnan(y[0]));
  EXPECT_EQ(y[1], 0.0);
  EXPECT_EQ(y[2], 0.0);
  EXPECT_EQ(y[3], 2.0);
  EXPECT_EQ(y[4], 0.0);
  EXPECT_EQ(y[5], INFINITY);
  Vec dy(x.size(), 1.0), dx(x.size(), 0.0);
  cpu::relu_backward(y.data(), dy.data(), dx.data(), static_cast<int64_t>(x.size()));
  EXPECT_EQ(dx, (Vec{0, 0, 0, 1, 0, 1}));
}

TEST(PointwiseGradcheck, ReluGeluDropout) {
  std::mt19937 rng(5);
  Vec x = random_vec(64, rng, 2.0), dy = random_vec(64, rng), y(64);
  for (double& v : x)
    if (std::fabs(v) < 1e-3) v = 0.5;  // relu is not differentiable at 0
  {
    auto loss = [&] {
      cpu::relu_forward(x.data(), y.data(), 64);
      return dot(y, dy);
    };
    loss();
    Vec dx(64, 0);
    cpu::relu_backward(y.data(), dy.data(), dx.data(), 64);
    fd_check("relu", x, dx, loss);
  }
  {
    auto loss = [&] {
      cpu::gelu_forward(x.data(), y.data(), 64);
      return dot(y, dy);
    };
    Vec dx(64, 0);
    cpu::gelu_backward(x.data(), dy.data(), dx.data(), 64);
    fd_check("gelu", x, dx, loss);
  }
  {
    auto loss = [&] {
      cpu::dropout_apply(x.data(), y.data(), 64, 0.3f, 99, false);
      return dot(y, dy);
    };
    Vec dx(64, 0);
    cpu::dropout_apply(dy.data(), dx.data(), 64, 0.3f, 99, true);
    fd_check("dropout", x, dx, loss);
  }
}

TEST(LayoutGradcheck, TransposeNarrowMeanMax) {
  std::mt19937 rng(6);
  const int64_t O = 2, N = 5, I = 3;
  Vec x = random_vec(O * N * I, rng);
  {
    Vec dy = random_vec(x.size(), rng), y(x.size());
    auto loss = [&] {
      cpu::transpose_last2(x.data(), y.data(), O, N, I, 0.0);
      return dot(y, dy);
    };
    Vec dx(x.size(), 0);
    cpu::transpose_last2(dy.data(), dx.data(), O, I, N, 1.0);
    fd_check("transpose", x, dx, loss);
  }
  {
    Vec dy = random_vec(O * 2 * I, rng), y(dy.size());
    auto loss = [&] {
      cpu::narrow_copy(x.data(), y.data(), O, N, I, 2, 2);
      return dot(y, dy);
    };
    Vec dx(x.size(), 0);
    cpu::narrow_add(dy.data(), dx.data(), O, N, I, 2, 2);
    fd_check("narrow", x, dx, loss);
  }
  {
    Vec dy = random_vec(O * I, rng), y(dy.size());
    auto loss = [&] {
      cpu::mean_axis_forward(x.data(), y.data(), O, N, I);
      return dot(y, dy);
    };
    Vec dx(x.size(), 0);
    cpu::mean_axis_backward(dy.data(), dx.data(), O, N, I);
    fd_check("mean_pool", x, dx, loss);
  }
  {
    Vec dy = random_vec(O * I, rng), y(dy.size());
    std::vector<float> arg(O * I);
    auto loss = [&] {
      cpu::max_axis_forward(x.data(), y.data(), arg.data(), O, N, I);
      return dot(y, dy);
    };
    loss();
    Vec dx(x.size(), 0);
    cpu::max_axis_backward(dy.data(), arg.data(), dx.data(), O, N, I);
    fd_check("max_pool", x, dx, loss);
  }
}

}  // namespace
}  // namespace cpc::test
