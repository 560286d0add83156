// Mixed precision (train.precision = bf16) on the CPU: the shared bf16 rounding, and
// convolutions and GEMMs that round their inputs to bf16 and accumulate in fp32. Each
// kernel is compared with a double-precision reference on the same bf16-rounded inputs
// (tight: only fp32 accumulation differs) and shown to differ from the unrounded
// reference (so the bf16 path really ran); a short training run stays close to fp32.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "engine/core/autograd.h"
#include "engine/core/backend.h"
#include "kernels/common/bf16.h"
#include "kernels/cpu/bf16_round.h"
#include "kernels/cpu/blas.h"
#include "kernels/cpu/conv1d.h"
#include "kernels/cpu/conv1d_gemm.h"
#include "kernels/cpu/conv1d_one_channel.h"
#include "kernels/cpu/conv1d_onednn.h"
#include "kernels/cpu/cpu_options.h"
#include "tools/prepare/synth_ecg.h"
#include "tools/cli/train_command.h"

namespace cpc {
namespace {

using math::bf16_to_float;
using math::float_to_bf16;

uint16_t bits(float f) { return float_to_bf16(f); }

TEST(Bf16, RoundsToNearestEven) {
  EXPECT_EQ(bits(1.f), 0x3F80);
  EXPECT_EQ(bits(-2.f), 0xC000);
  EXPECT_EQ(bits(1.f + 0x1p-8f), 0x3F80);            // halfway, 1.0 is even
  EXPECT_EQ(bits(1.f + 3 * 0x1p-8f), 0x3F82);        // halfway, 1 + 2^-6 is even
  EXPECT_EQ(bits(1.f + 0x1p-8f + 0x1p-20f), 0x3F81);  // above halfway
  EXPECT_EQ(bits(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(bits(std::numeric_limits<float>::max()), 0x7F80);  // rounds past the largest bf16
  EXPECT_TRUE(std::isnan(bf16_to_float(bits(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_EQ(bf16_to_float(bits(0.15625f)), 0.15625f);  // exactly representable
  EXPECT_EQ(bits(1e-40f) & 0x7FFF, bits(1e-40f));       // subnormals keep their sign and round
}

// The vector rounding (AVX-512 where the CPU has it) gives float_to_bf16's bits on every
// kind of value: ties both ways, the carry into the exponent, overflow to infinity,
// subnormals (kept, not flushed), signed zeros, infinities and NaNs of both signs and
// payloads; at lengths around its 16-value step.
TEST(Bf16, VectorRoundingMatchesTheScalarOne) {
  std::vector<float> v = {0.f, -0.f, 1.f, -2.f, 1.f + 0x1p-8f, 1.f + 3 * 0x1p-8f, 1.f + 0x1p-8f + 0x1p-20f,
                          0x1.fffffep0f, std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(),
                          std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                          std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN(),
                          std::numeric_limits<float>::signaling_NaN(), 1e-40f, -1e-40f, 0x1p-149f,
                          std::numeric_limits<float>::min(), std::numeric_limits<float>::denorm_min()};
  uint32_t payload = 0x7f800001u;  // a NaN whose only set mantissa bit would round away
  float f;
  std::memcpy(&f, &payload, sizeof f);
  v.push_back(f);
  std::mt19937 rng(3);
  for (int i = 0; i < 5000; ++i) {
    const uint32_t u = rng();
    std::memcpy(&f, &u, sizeof f);
    v.push_back(f);  // every bit pattern is fair game
  }
  for (const size_t n : {v.size(), size_t{15}, size_t{16}, size_t{17}, size_t{33}}) {
    std::vector<uint16_t> got(n, 0xdead);
    cpu::round_to_bf16(v.data(), static_cast<int64_t>(n), got.data());
    for (size_t i = 0; i < n; ++i) ASSERT_EQ(got[i], float_to_bf16(v[i])) << "value " << i << " of " << n;
    std::vector<float> as_float(n, 7.f);
    cpu::round_to_bf16_float(v.data(), static_cast<int64_t>(n), as_float.data());
    for (size_t i = 0; i < n; ++i) {
      const float want = bf16_to_float(float_to_bf16(v[i]));
      ASSERT_EQ(std::memcmp(&as_float[i], &want, sizeof want), 0) << "value " << i << " of " << n;
    }
  }
}

std::vector<float> randn(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0, 1);
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}
std::vector<float> rounded(const std::vector<float>& v) {
  std::vector<float> r(v.size());
  for (size_t i = 0; i < v.size(); ++i) r[i] = bf16_to_float(float_to_bf16(v[i]));
  return r;
}
std::vector<double> dbl(const std::vector<float>& v) { return {v.begin(), v.end()}; }
double rel_err(const std::vector<float>& a, const std::vector<double>& ref) {
  double worst = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, std::abs(a[i] - ref[i]));
    scale = std::max(scale, std::abs(ref[i]));
  }
  return worst / scale;
}

TEST(Bf16, GemmRoundsInputsAndAccumulatesInFp32) {
  const int64_t m = 37, n = 53, k = 300;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      SCOPED_TRACE(std::string(ta ? "T" : "N") + (tb ? "T" : "N"));
      const std::vector<float> a = randn(m * k, 1), b = randn(k * n, 2), c0 = randn(m * n, 3);
      const int64_t lda = ta ? m : k, ldb = tb ? k : n;
      std::vector<float> c = c0;
      cpu::gemm(ta, tb, m, n, k, 0.5f, a.data(), lda, b.data(), ldb, 2.f, c.data(), n, /*bf16=*/true);
      std::vector<double> ref_r = dbl(c0), ref_x = dbl(c0);
      const std::vector<float> ar = rounded(a), br = rounded(b);
      cpu::gemm(ta, tb, m, n, k, 0.5, dbl(ar).data(), lda, dbl(br).data(), ldb, 2.0, ref_r.data(), n);
      cpu::gemm(ta, tb, m, n, k, 0.5, dbl(a).data(), lda, dbl(b).data(), ldb, 2.0, ref_x.data(), n);
      EXPECT_LT(rel_err(c, ref_r), 1e-5) << "against the same bf16 inputs in double";
      EXPECT_GT(rel_err(c, ref_x), 1e-4) << "bf16 rounding must show against the unrounded inputs";
      EXPECT_LT(rel_err(c, ref_x), 3e-2);
    }
}

// (B, P, Q) -> (B, Q, P)
std::vector<float> swap12(const std::vector<float>& v, int64_t B, int64_t P, int64_t Q) {
  std::vector<float> out(v.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t p = 0; p < P; ++p)
      for (int64_t q = 0; q < Q; ++q) out[(b * Q + q) * P + p] = v[(b * P + p) * Q + q];
  return out;
}

// Both activation layouts of oneDNN's primitives: (B, C, L) and channels-last (B, L, C),
// whose weights oneDNN reorders into its own bf16 layout; and the GEMM convolutions of
// wide channels-last layers (conv1d_gemm.h, bf16 operands read in place), also with the
// forward's saved space (reordered weights, rounded x and dy made once), which must give
// the same bits as without.
// gemm_folded: L = Lout * stride, where the forward runs the batch's samples as one GEMM
// (the edge rows between samples recomputed).
// one_channel: an audio encoder's first layer, whose weight gradient is our own kernel
// (conv1d_one_channel.h; the rest oneDNN's).
enum class ConvPath { onednn_ncw, onednn_nwc, gemm, gemm_saved, gemm_folded, one_channel };
class Bf16Conv : public ::testing::TestWithParam<ConvPath> {};

TEST_P(Bf16Conv, ConvolutionRoundsInputsAndAccumulatesInFp32) {
  const ConvPath path = GetParam();
  const bool cl = path != ConvPath::onednn_ncw;
  const bool gemm = path == ConvPath::gemm || path == ConvPath::gemm_saved || path == ConvPath::gemm_folded;
  cpu::Conv1dDims d = path == ConvPath::one_channel   ? cpu::Conv1dDims{3, 1, 163, 80, 10, 0, 5, 3, 1}
                      : path == ConvPath::gemm_folded ? cpu::Conv1dDims{3, 256, 40, 256, 8, 0, 4, 2, 1}
                      : gemm                        ? cpu::Conv1dDims{2, 256, 42, 256, 8, 0, 4, 2, 1}
                                             : cpu::Conv1dDims{3, 16, 101, 24, 5, 0, 2, 2, 1};
  d.Lout = (d.L + 2 * d.padding - d.dilation * (d.K - 1) - 1) / d.stride + 1;
  ASSERT_EQ(d.L == d.Lout * d.stride, path == ConvPath::gemm_folded);
  const std::vector<float> x = randn(d.B * d.Cin * d.L, 4), w = randn(d.Cout * d.Cin * d.K, 5),
                           dy = randn(d.B * d.Cout * d.Lout, 6);
  std::vector<float> y(d.B * d.Cout * d.Lout), dx(x.size(), 0.f), dw(w.size(), 0.f);
  {
    cpu::Conv1dDims d16 = d;
    d16.precision = Precision::bf16;
    d16.channels_last = cl;
    cpu::OneDnnConv1d conv;
    cpu::GemmConv1d gemm_conv;
    ASSERT_EQ(cpu::GemmConv1d::applies(d16), gemm);
    if (cl) {
      const std::vector<float> xt = swap12(x, d.B, d.Cin, d.L), dyt = swap12(dy, d.B, d.Cout, d.Lout);
      std::vector<float> yt(y.size()), dxt(dx.size(), 0.f);
      if (gemm) {
        gemm_conv.forward(xt.data(), w.data(), nullptr, d16, yt.data());
        gemm_conv.backward_data(dyt.data(), w.data(), d16, dxt.data(), true);
        gemm_conv.backward_weights(xt.data(), dyt.data(), d16, dw.data(), nullptr);
        if (path == ConvPath::gemm_saved || path == ConvPath::gemm_folded) {
          // 0xff bytes: bf16 NaNs wherever the forward left nothing.
          std::vector<uint8_t> space(static_cast<size_t>(cpu::GemmConv1d::saved_bytes(d16)), 0xff);
          bool dy_ready = false;
          const cpu::GemmConv1d::Saved sv{space.data(), &dy_ready};
          std::vector<float> ys(y.size()), dxs(dx.size(), 0.f), dws(dw.size(), 0.f);
          gemm_conv.forward(xt.data(), w.data(), nullptr, d16, ys.data(), sv);
          gemm_conv.backward_data(dyt.data(), w.data(), d16, dxs.data(), true, sv);
          EXPECT_TRUE(dy_ready);
          gemm_conv.backward_weights(xt.data(), dyt.data(), d16, dws.data(), nullptr, sv);
          EXPECT_EQ(ys, yt);
          EXPECT_EQ(dxs, dxt);
          EXPECT_EQ(dws, dw);
          // x handed over already rounded (bf16 activations): nothing saved for it, same bits.
          cpu::Conv1dDims dr = d16;
          dr.x_bf16 = true;
          EXPECT_LT(cpu::GemmConv1d::saved_bytes(dr), cpu::GemmConv1d::saved_bytes(d16));
          std::vector<uint16_t> x16(xt.size());
          for (size_t i = 0; i < xt.size(); ++i) x16[i] = float_to_bf16(xt[i]);
          std::fill(space.begin(), space.end(), uint8_t{0xff});
          dy_ready = false;
          std::vector<float> yr(y.size()), dxr(dx.size(), 0.f), dwr(dw.size(), 0.f);
          gemm_conv.forward(cpu::GemmConv1d::Operand{nullptr, x16.data()}, w.data(), nullptr, dr, yr.data(), sv);
          gemm_conv.backward_data(dyt.data(), w.data(), d16, dxr.data(), true, sv);  // its dims never say
          gemm_conv.backward_weights(cpu::GemmConv1d::Operand{nullptr, x16.data()}, dyt.data(), dr, dwr.data(),
                                     nullptr, sv);
          EXPECT_EQ(yr, yt);
          EXPECT_EQ(dxr, dxt);
          EXPECT_EQ(dwr, dw);
          // The first gradient overwriting a NaN-filled dx; the weight gradient alone after
          // the forward (it rounds dy itself).
          std::fill(space.begin(), space.end(), uint8_t{0xff});
          dy_ready = false;
          std::vector<float> dxo(dx.size(), std::numeric_limits<float>::quiet_NaN()), dwo(dw.size(), 0.f);
          gemm_conv.forward(xt.data(), w.data(), nullptr, d16, yr.data(), sv);
          gemm_conv.backward_weights(xt.data(), dyt.data(), d16, dwo.data(), nullptr, sv);
          gemm_conv.backward_data(dyt.data(), w.data(), d16, dxo.data(), false, sv);
          EXPECT_EQ(dxo, dxt);
          EXPECT_EQ(dwo, dw);
        }
      } else {
        conv.forward(xt.data(), w.data(), nullptr, d16, yt.data());
        conv.backward_data(dyt.data(), w.data(), d16, dxt.data());
        if (path == ConvPath::one_channel) {
          ASSERT_TRUE(cpu::conv1d_one_channel_applies(d16));
          cpu::conv1d_one_channel_backward_weights(xt.data(), dyt.data(), d16, dw.data(), nullptr);
        } else {
          conv.backward_weights(xt.data(), dyt.data(), d16, dw.data(), nullptr);
        }
      }
      y = swap12(yt, d.B, d.Lout, d.Cout), dx = swap12(dxt, d.B, d.L, d.Cin);
    } else {
      conv.forward(x.data(), w.data(), nullptr, d16, y.data());
      conv.backward_data(dy.data(), w.data(), d16, dx.data());
      conv.backward_weights(x.data(), dy.data(), d16, dw.data(), nullptr);
    }
  }
  // Double references (im2col) on the rounded and on the unrounded inputs.
  std::vector<double> col(static_cast<size_t>(d.Cin * d.K * d.Lout));
  auto refs = [&](const std::vector<float>& xs, const std::vector<float>& ws, const std::vector<float>& dys) {
    std::vector<double> ry(y.size()), rdx(dx.size(), 0.0), rdw(dw.size(), 0.0);
    cpu::conv1d_forward(dbl(xs).data(), dbl(ws).data(), static_cast<const double*>(nullptr), d, ry.data(), col.data());
    cpu::conv1d_backward_data(dbl(dys).data(), dbl(ws).data(), d, rdx.data(), col.data());
    cpu::conv1d_backward_weights(dbl(xs).data(), dbl(dys).data(), d, rdw.data(), static_cast<double*>(nullptr),
                                 col.data());
    return std::vector<std::vector<double>>{ry, rdx, rdw};
  };
  const auto r = refs(rounded(x), rounded(w), rounded(dy)), u = refs(x, w, dy);
  const std::vector<float>* ours[3] = {&y, &dx, &dw};
  const char* names[3] = {"forward", "backward data", "backward weights"};
  for (int i = 0; i < 3; ++i) {
    SCOPED_TRACE(names[i]);
    EXPECT_LT(rel_err(*ours[i], r[static_cast<size_t>(i)]), 1e-5);
    EXPECT_GT(rel_err(*ours[i], u[static_cast<size_t>(i)]), 1e-4);
    EXPECT_LT(rel_err(*ours[i], u[static_cast<size_t>(i)]), 3e-2);
  }
}

// BatchNorm (+ ReLU) writing its output as bf16 for a GEMM convolution (channels-last,
// rows of C channels): exactly the f32 output's values rounded, train and eval, with and
// without the ReLU.
TEST(Bf16, BatchNormWritesItsOutputRounded) {
  Backend& b = backend(Device::cpu());
  const int64_t N = 300, C = 37;  // rows, and channels not a multiple of the vector width
  const std::vector<float> xv = randn(N * C, 8), gv = randn(C, 9), bv = randn(C, 10);
  const Tensor x = Tensor::from_vector({N, C, 1}, xv), gamma = Tensor::from_vector({C}, gv),
               beta = Tensor::from_vector({C}, bv);
  ASSERT_TRUE(b.batchnorm_rounded_output(NormDims{N, C, 1}));
  EXPECT_FALSE(b.batchnorm_rounded_output(NormDims{N, C, 4}));  // (B, C, L) kernels write f32 only
  for (const bool training : {true, false})
    for (const bool relu : {false, true}) {
      SCOPED_TRACE(std::string(training ? "train" : "eval") + (relu ? " + relu" : ""));
      auto run = [&](DType dt) {
        const Tensor rm = Tensor::from_vector({C}, std::vector<float>(C, 0.3f)),
                     rv = Tensor::from_vector({C}, std::vector<float>(C, 1.7f));
        const Tensor mean = Tensor::zeros({C}), invstd = Tensor::zeros({C}), y = Tensor::empty({N, C, 1}, Device::cpu(), dt);
        if (training)
          b.batchnorm_forward_train(x, gamma, beta, 0.1f, 1e-5f, rm, rv, mean, invstd, y, relu);
        else
          b.batchnorm_forward_eval(x, gamma, beta, 1e-5f, rm, rv, invstd, y, relu);
        return std::vector<Tensor>{y, rm, rv, mean, invstd};
      };
      const std::vector<Tensor> f = run(DType::f32), h = run(DType::bf16);
      const std::vector<float> yf = f[0].to_vector();
      const auto* y16 = static_cast<const uint16_t*>(h[0].raw());
      for (int64_t i = 0; i < N * C; ++i) ASSERT_EQ(y16[i], float_to_bf16(yf[static_cast<size_t>(i)])) << i;
      for (size_t k = 1; k < f.size(); ++k) EXPECT_EQ(f[k].to_vector(), h[k].to_vector()) << "statistic " << k;
    }
}

INSTANTIATE_TEST_SUITE_P(Paths, Bf16Conv,
                         ::testing::Values(ConvPath::onednn_ncw, ConvPath::onednn_nwc, ConvPath::gemm,
                                           ConvPath::gemm_saved, ConvPath::gemm_folded, ConvPath::one_channel),
                         [](const auto& info) {
                           return info.param == ConvPath::one_channel  ? "one_input_channel"
                                  : info.param == ConvPath::gemm_folded ? "gemm_wide_channels_last_folded"
                                  : info.param == ConvPath::gemm_saved ? "gemm_wide_channels_last_saved"
                                  : info.param == ConvPath::gemm       ? "gemm_wide_channels_last"
                                  : info.param == ConvPath::onednn_nwc ? "channels_last"
                                                                       : "channels_first";
                         });

// 12 steps of ecg12 in bf16 follow the fp32 run: the first loss (same weights; the
// contrastive kernel keeps the loss in fp32) within 0.5%, later ones within 10% as the
// two trajectories drift apart, and the runs are not identical.
TEST(Bf16, TrainingFollowsFp32) {
  const std::string dir = "/tmp/cpc_bf16_test_" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  tools::SynthEcgOptions o;
  o.recordings = 24;
  o.seconds = 3;
  tools::write_synthetic_ecg(dir + "/ecg.h5", o);
  auto losses = [&](const std::string& precision) {
    tools::TrainArgs a;
    a.config = CPC_SOURCE_DIR "/models/configs/ecg12.json";
    a.data = dir + "/ecg.h5";
    a.out = dir + "/" + precision;
    a.steps = 12;
    a.quiet = true;
    a.overrides = {"data.window=1024", "train.batch_size=8", "train.warmup=2", "train.lr=0.002",
                   "train.precision=" + precision};
    EXPECT_EQ(tools::run_train(a), 0);
    std::vector<double> out;
    std::ifstream f(a.out + "/metrics.jsonl");
    for (std::string line; std::getline(f, line);) out.push_back(nlohmann::json::parse(line)["loss"]);
    return out;
  };
  const std::vector<double> fp32 = losses("fp32"), bf16 = losses("bf16");
  EXPECT_EQ(Tape::current().precision(), Precision::fp32) << "a bf16 trainer leaves no global state behind";
  ASSERT_EQ(fp32.size(), 12u);
  ASSERT_EQ(bf16.size(), 12u);
  bool differs = false;
  EXPECT_NEAR(bf16[0], fp32[0], 0.005 * fp32[0]);
  for (size_t i = 0; i < fp32.size(); ++i) {
    std::printf("step %2zu: fp32 %.5f  bf16 %.5f\n", i + 1, fp32[i], bf16[i]);
    EXPECT_NEAR(bf16[i], fp32[i], 0.10 * fp32[i]) << "step " << i + 1;
    differs = differs || bf16[i] != fp32[i];
  }
  EXPECT_TRUE(differs);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cpc
