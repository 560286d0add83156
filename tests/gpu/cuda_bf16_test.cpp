// bf16 mixed precision on CUDA (backend option precision = bf16, train.precision=bf16).
//
// GEMMs: against a double reference on the same bf16-rounded inputs. cuBLAS multiplies
// bf16 exactly into fp32 and accumulates in fp32, so 1e-5 of the tensor's scale holds.
// Convolutions: the same reference plus the one bf16 rounding of cuDNN's outputs (the
// legacy API has no bf16-in / fp32-out configuration, see conv1d_cudnn.h). Rounding to
// nearest errs by at most 2^-9 relative (half of bf16's 2^-8 spacing at [1, 2)); the
// bound is 2^-7 per element plus 1e-5 of the scale, room for an algorithm that rounds
// partial sums once more.
// GRU and a whole ecg12 step: against the CPU's fp32, as an approximation (y 2e-2, the
// gradients 5e-2 of each tensor's scale; the step's loss 1e-2 relative). These bounds
// are estimates, to calibrate on the first GPU run.
// Every test also checks that bf16 changed the result: against the unrounded double
// reference (GEMM, conv) or against the same computation on CUDA in fp32 (GRU, step; a
// difference above 1e-4 of the scale, far beyond fp32 rounding), so a path that silently
// stays in fp32 fails.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "engine/ops/ops.h"
#include "engine/optim/optimizer.h"
#include "kernels/common/bf16.h"
#include "models/cpc_model.h"
#include "tests/gpu/cuda_test_util.h"
#include "tools/cli/source_dir.h"

namespace cpc {
namespace {

using namespace gpu_test;

double rounded(float v) { return math::bf16_to_float(math::float_to_bf16(v)); }

double max_abs(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

double max_diff(const std::vector<float>& a, const std::vector<double>& b) {
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

// |got - want| <= rel * |want_i| + abs_tol * max|want| for every element.
::testing::AssertionResult within(const std::vector<float>& got, const std::vector<double>& want, double rel,
                                  double abs_tol, const std::string& what) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << what << ": size " << got.size() << " vs " << want.size();
  const double scale = max_abs(want);
  for (size_t i = 0; i < got.size(); ++i) {
    const double bound = rel * std::fabs(want[i]) + abs_tol * scale;
    if (!(std::fabs(got[i] - want[i]) <= bound))
      return ::testing::AssertionFailure() << what << "[" << i << "]: cuda " << got[i] << " vs reference " << want[i]
                                           << " (bound " << bound << ")";
  }
  return ::testing::AssertionSuccess();
}

std::vector<double> to_double(const std::vector<float>& v, bool round) {
  std::vector<double> d(v.size());
  for (size_t i = 0; i < v.size(); ++i) d[i] = round ? rounded(v[i]) : v[i];
  return d;
}

// ---- Always run ----

TEST(CudaBf16Basics, PrecisionIsTheStepsNotAnOption) {
  Backend& b = cuda_be();
  // The arithmetic travels with each op (Tape::precision, GemmArgs / Conv1dGeometry):
  // there is no process-wide switch to forget to reset.
  EXPECT_NE(error_of([&] { b.set_option("precision", "bf16"); }).find("no option 'precision'"), std::string::npos);
  EXPECT_EQ(error_of([&] { b.check_precision(Precision::fp32); }), "");
  if (!b.available()) {
    const std::string msg = error_of([&] { b.check_precision(Precision::bf16); });
    EXPECT_NE(msg.find("precision bf16 on cuda"), std::string::npos) << msg;
    EXPECT_NE(msg.find("no CUDA device present"), std::string::npos) << msg;
  }
}

// ---- Need a device ----

TEST(CudaBf16, GemmUsesRoundedInputsAndFp32Accumulation) {
  SKIP_WITHOUT_CUDA();
  const int64_t m = 37, n = 29, k = 300, pad = 3;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      SCOPED_TRACE(std::string(ta ? "A^T" : "A") + (tb ? " B^T" : " B"));
      const int64_t a_rows = ta ? k : m, a_cols = ta ? m : k, b_rows = tb ? n : k, b_cols = tb ? k : n;
      const int64_t lda = a_cols + pad, ldb = b_cols + pad, ldc = n + pad;
      const std::vector<float> a = random_values(a_rows * lda, 1), b = random_values(b_rows * ldb, 2);
      const std::vector<float> c0 = random_values(m * ldc, 3);
      const Tensor ga = Tensor::from_vector({a_rows * lda}, a, Device::cuda());
      const Tensor gb = Tensor::from_vector({b_rows * ldb}, b, Device::cuda());
      const Tensor gc = Tensor::from_vector({m * ldc}, c0, Device::cuda());
      GemmArgs g;
      g.trans_a = ta, g.trans_b = tb, g.m = m, g.n = n, g.k = k, g.alpha = 0.75f, g.beta = 0.5f;
      g.a = ga.f32(), g.lda = lda, g.b = gb.f32(), g.ldb = ldb, g.c = gc.f32(), g.ldc = ldc;
      g.precision = Precision::bf16;
      cuda_be().gemm(g);
      const std::vector<float> got_full = gc.to_vector();
      std::vector<float> got;
      std::vector<double> want, exact;
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          double s = 0, e = 0;
          for (int64_t p = 0; p < k; ++p) {
            const float av = ta ? a[p * lda + i] : a[i * lda + p], bv = tb ? b[j * ldb + p] : b[p * ldb + j];
            s += rounded(av) * rounded(bv);
            e += static_cast<double>(av) * bv;
          }
          got.push_back(got_full[i * ldc + j]);
          want.push_back(0.75 * s + 0.5 * c0[i * ldc + j]);
          exact.push_back(0.75 * e + 0.5 * c0[i * ldc + j]);
        }
      EXPECT_TRUE(within(got, want, 0, 1e-5, "C"));
      EXPECT_GT(max_diff(got, exact), 1e-4 * max_abs(exact)) << "the GEMM did not round its inputs to bf16";
      // Padding columns of C are untouched.
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = n; j < ldc; ++j) ASSERT_EQ(got_full[i * ldc + j], c0[i * ldc + j]);
    }
}

struct ConvRef {
  int64_t B, Cin, L, Cout, K, stride, padding, dilation;
  int64_t Lout() const { return (L + 2 * padding - dilation * (K - 1) - 1) / stride + 1; }
  int64_t in_pos(int64_t l, int64_t k) const { return l * stride - padding + k * dilation; }
};

TEST(CudaBf16, ConvolutionsUseRoundedInputs) {
  SKIP_WITHOUT_CUDA();
  for (const ConvRef c : {ConvRef{2, 5, 40, 6, 3, 2, 1, 1}, ConvRef{3, 12, 64, 16, 7, 1, 6, 2}}) {
    SCOPED_TRACE("Cin " + std::to_string(c.Cin) + " K " + std::to_string(c.K));
    const int64_t Lo = c.Lout();
    const Conv1dGeometry g{c.stride, c.padding, c.dilation};
    const std::vector<float> x = random_values(c.B * c.Cin * c.L, 11), w = random_values(c.Cout * c.Cin * c.K, 12);
    const std::vector<float> dy = random_values(c.B * c.Cout * Lo, 13);
    const std::vector<float> dx0 = random_values(c.B * c.Cin * c.L, 14), dw0 = random_values(c.Cout * c.Cin * c.K, 15);
    const Tensor gx = Tensor::from_vector({c.B, c.Cin, c.L}, x, Device::cuda());
    const Tensor gw = Tensor::from_vector({c.Cout, c.Cin, c.K}, w, Device::cuda());
    const Tensor gdy = Tensor::from_vector({c.B, c.Cout, Lo}, dy, Device::cuda());
    const Tensor gy = Tensor::zeros({c.B, c.Cout, Lo}, Device::cuda());
    const Tensor gdx = Tensor::from_vector({c.B, c.Cin, c.L}, dx0, Device::cuda());
    const Tensor gdw = Tensor::from_vector({c.Cout, c.Cin, c.K}, dw0, Device::cuda());
    {
      Conv1dGeometry gb = g;
      gb.precision = Precision::bf16;
      cuda_be().conv1d_forward(gx, gw, nullptr, gb, gy);
      cuda_be().conv1d_backward_data(gdy, gw, gb, gdx);
      cuda_be().conv1d_backward_weights(gx, gdy, gb, gdw, nullptr);
    }
    // Double references: on rounded inputs (want) and on the fp32 inputs (exact).
    for (bool round : {true, false}) {
      const std::vector<double> xr = to_double(x, round), wr = to_double(w, round), dyr = to_double(dy, round);
      std::vector<double> y(gy.numel(), 0.0), dx(gdx.numel(), 0.0), dw(gdw.numel(), 0.0);
      for (int64_t b = 0; b < c.B; ++b)
        for (int64_t co = 0; co < c.Cout; ++co)
          for (int64_t l = 0; l < Lo; ++l)
            for (int64_t ci = 0; ci < c.Cin; ++ci)
              for (int64_t k = 0; k < c.K; ++k) {
                const int64_t j = c.in_pos(l, k);
                if (j < 0 || j >= c.L) continue;
                const int64_t xi = (b * c.Cin + ci) * c.L + j, wi = (co * c.Cin + ci) * c.K + k;
                const int64_t yi = (b * c.Cout + co) * Lo + l;
                y[yi] += xr[xi] * wr[wi];
                dx[xi] += dyr[yi] * wr[wi];
                dw[wi] += dyr[yi] * xr[xi];
              }
      const std::vector<float> got_y = gy.to_vector(), got_dx = gdx.to_vector(), got_dw = gdw.to_vector();
      std::vector<float> got_dx_part(dx.size()), got_dw_part(dw.size());  // minus the starting values
      for (size_t i = 0; i < dx.size(); ++i) got_dx_part[i] = got_dx[i] - dx0[i];
      for (size_t i = 0; i < dw.size(); ++i) got_dw_part[i] = got_dw[i] - dw0[i];
      if (round) {
        EXPECT_TRUE(within(got_y, y, 1.0 / 128, 1e-5, "y"));
        EXPECT_TRUE(within(got_dx_part, dx, 1.0 / 128, 1e-5, "dx (accumulated)"));
        EXPECT_TRUE(within(got_dw_part, dw, 1.0 / 128, 1e-5, "dw (accumulated)"));
      } else {
        EXPECT_GT(max_diff(got_y, y), 1e-4 * max_abs(y)) << "forward stayed fp32";
        EXPECT_GT(max_diff(got_dw_part, dw), 1e-4 * max_abs(dw)) << "backward weights stayed fp32";
      }
    }
  }
}

TEST(CudaBf16, GruFollowsFp32) {
  SKIP_WITHOUT_CUDA();
  const int64_t B = 4, T = 16, Din = 64, H = 128, G = 3 * H;
  const float k = 1.f / std::sqrt(static_cast<float>(H));
  const Pair x = random_pair({B, T, Din}, 1), w_ih = random_pair({G, Din}, 2, -k, k), w_hh = random_pair({G, H}, 3, -k, k);
  const Pair b_ih = random_pair({G}, 4, -k, k), b_hh = random_pair({G}, 5, -k, k), dy = random_pair({B, T, H}, 6);
  struct Out {
    std::vector<float> y, dx, dw_ih, dw_hh;
  };
  auto run = [&](Backend& be, const Tensor& xx, const Tensor& wi, const Tensor& wh, const Tensor& bi, const Tensor& bh,
                 const Tensor& d, Device dev, Precision prec = Precision::fp32) {
    const Tensor y = Tensor::zeros({B, T, H}, dev), reserve = Tensor::zeros(be.gru_reserve_shape(B, T, Din, H), dev);
    be.gru_layer_forward(xx, Tensor(), wi, wh, bi, bh, y, reserve, prec);
    const Tensor dx = Tensor::zeros({B, T, Din}, dev), dwi = Tensor::zeros({G, Din}, dev),
                 dwh = Tensor::zeros({G, H}, dev), dbi = Tensor::zeros({G}, dev), dbh = Tensor::zeros({G}, dev);
    be.gru_layer_backward(xx, Tensor(), wi, wh, y, reserve, d, Tensor(), dx, Tensor(), dwi, dwh, dbi, dbh, prec);
    return Out{y.to_vector(), dx.to_vector(), dwi.to_vector(), dwh.to_vector()};
  };
  const Out want = run(cpu_be(), x.cpu, w_ih.cpu, w_hh.cpu, b_ih.cpu, b_hh.cpu, dy.cpu, Device::cpu());
  cuda_be().set_option("gru", "cells");  // the cuDNN RNN GRU runs fp32 under any precision
  const Out fp32 = run(cuda_be(), x.gpu, w_ih.gpu, w_hh.gpu, b_ih.gpu, b_hh.gpu, dy.gpu, Device::cuda());
  const Out got =
      run(cuda_be(), x.gpu, w_ih.gpu, w_hh.gpu, b_ih.gpu, b_hh.gpu, dy.gpu, Device::cuda(), Precision::bf16);
  EXPECT_TRUE(close_scaled(got.y, want.y, "y", 2e-2));
  EXPECT_TRUE(close_scaled(got.dx, want.dx, "dx", 5e-2));
  EXPECT_TRUE(close_scaled(got.dw_ih, want.dw_ih, "dweight_ih", 5e-2));
  EXPECT_TRUE(close_scaled(got.dw_hh, want.dw_hh, "dweight_hh", 5e-2));
  const std::vector<double> y32 = to_double(fp32.y, false), dwi32 = to_double(fp32.dw_ih, false);
  EXPECT_GT(max_diff(got.y, y32), 1e-4 * max_abs(y32)) << "the GRU's input projection stayed fp32";
  EXPECT_GT(max_diff(got.dw_ih, dwi32), 1e-4 * max_abs(dwi32)) << "the GRU's weight gradient stayed fp32";
}

TEST(CudaBf16, Ecg12StepFollowsFp32) {
  SKIP_WITHOUT_CUDA();
  const CpcConfig cfg = CpcConfig::load(tools::source_path("models/configs/ecg12.json"),
                                        {"data.window=1024", "train.batch_size=4", "encoder.norm=batch"});
  Generator init(7);
  CpcModel cpu_model(cfg, init);
  Generator init2(7);
  CpcModel gpu_model(cfg, init2);
  gpu_model.to(Device::cuda());
  gpu_model.load_state_dict(cpu_model.state_dict(), /*strict=*/true);
  Generator data(3);
  const Tensor x = data.normal_tensor({cfg.train.batch_size, cfg.channels, cfg.window}, 0, 1);
  auto step = [](CpcModel& model, const Tensor& xx, std::map<std::string, std::vector<float>>& grads,
                 Precision prec = Precision::fp32) {
    Tape tape;
    tape.set_precision(prec);
    TapeScope scope(tape);
    Generator rng(11);
    model.train(true);
    for (Parameter* p : model.parameters()) p->zero_grad();
    const InfoNceResult& r = model.loss(tape.var(xx), &rng);
    const double loss = r.loss->value.to_vector()[0];
    tape.backward(r.loss);
    for (const auto& [name, p] : model.named_parameters()) grads[name] = p->grad.to_vector();
    return loss;
  };
  std::map<std::string, std::vector<float>> want, fp32, got;
  const double want_loss = step(cpu_model, x, want);
  const Tensor xg = x.to(Device::cuda());
  // The BatchNorm running statistics move with each step; both CUDA steps start from
  // the same state (the loss and gradients do not depend on them in training mode).
  std::map<std::string, Tensor> start;
  for (const auto& [name, t] : gpu_model.state_dict()) start[name] = t.clone();  // copies, not the live tensors
  const double fp32_loss = step(gpu_model, xg, fp32);
  gpu_model.load_state_dict(start, /*strict=*/true);
  const double got_loss = step(gpu_model, xg, got, Precision::bf16);
  EXPECT_TRUE(close(got_loss, want_loss, "loss", 1e-2));
  EXPECT_GT(std::fabs(got_loss - fp32_loss), 1e-5 * std::fabs(fp32_loss)) << "the loss did not change: bf16 unused?";
  double largest_change = 0;  // of any gradient, relative to its scale
  for (const auto& [name, g] : want) {
    EXPECT_TRUE(close_scaled(got.at(name), g, "grad " + name, 5e-2));
    const std::vector<double> g32 = to_double(fp32.at(name), false);
    if (max_abs(g32) > 0) largest_change = std::max(largest_change, max_diff(got.at(name), g32) / max_abs(g32));
  }
  EXPECT_GT(largest_change, 1e-4) << "no gradient changed beyond fp32 rounding: bf16 unused?";
}

}  // namespace
}  // namespace cpc
