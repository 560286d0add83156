// CUDA backend tests. The first group runs everywhere (registration, the no-device
// path, unimplemented ops, argument checks); the rest compare CUDA against the CPU
// backend and skip themselves when no CUDA device is present.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "engine/backend.h"
#include "engine/error.h"
#include "engine/tensor.h"
#include "kernels/cuda/cuda_check.h"

namespace cpc {
namespace {

Backend& cuda_be() { return backend(Device::cuda()); }
Backend& cpu_be() { return backend(Device::cpu()); }

bool cuda_present() { return has_backend(DeviceKind::cuda) && cuda_be().available(); }

#define SKIP_WITHOUT_CUDA()                                                               \
  do {                                                                                    \
    if (!cuda_present()) GTEST_SKIP() << "needs a CUDA device; " << cuda_be().describe(); \
  } while (0)

// Runs f and returns the cpc::Error message it throws ("" if it throws none).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::vector<float> random_values(int64_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(gen);
  return v;
}

// 1e-5 relative to max(|expected|, 1): the two backends round differently (FMA
// contraction, summation order in GEMM, CUDA's vs glibc's erff/expf), not more.
constexpr double kTol = 1e-5;

::testing::AssertionResult close(const std::vector<float>& got, const std::vector<float>& want, const char* what) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << what << ": size " << got.size() << " vs " << want.size();
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = got[i], w = want[i];
    if (!(std::fabs(g - w) <= kTol * std::max(1.0, std::fabs(w))))
      return ::testing::AssertionFailure() << what << "[" << i << "]: cuda " << g << " vs cpu " << w;
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult close(double got, double want, const char* what) {
  if (std::fabs(got - want) <= kTol * std::max(1.0, std::fabs(want))) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << what << ": cuda " << got << " vs cpu " << want;
}

Tensor on_cuda(const std::vector<float>& v) {
  return Tensor::from_vector({static_cast<int64_t>(v.size())}, v, Device::cuda());
}
Tensor on_cpu(const std::vector<float>& v) { return Tensor::from_vector({static_cast<int64_t>(v.size())}, v); }

// ---- Always run ----

TEST(CudaBackendBasics, IsRegisteredAndReportsItsState) {
  ASSERT_TRUE(has_backend(DeviceKind::cuda));
  EXPECT_EQ(cuda_be().name(), "cuda");
  const std::string d = cuda_be().describe();
  EXPECT_NE(d.find("cuDNN"), std::string::npos) << d;
  if (!cuda_be().available()) {
    EXPECT_NE(d.find("no CUDA device present"), std::string::npos) << d;
  } else {
    EXPECT_EQ(d.find("no CUDA device present"), std::string::npos) << d;
  }
  std::printf("%s\n", d.c_str());
}

TEST(CudaBackendBasics, UnimplementedOpThrowsBaseError) {
  // The base class throws before it looks at the (undefined) tensors.
  const std::string msg =
      error_of([] { cuda_be().conv1d_forward(Tensor(), Tensor(), nullptr, Conv1dGeometry{}, Tensor()); });
  EXPECT_NE(msg.find("`conv1d` is not available on cuda yet"), std::string::npos) << msg;
}

TEST(CudaBackendBasics, AllocationWithoutDeviceFailsClearly) {
  if (cuda_present()) GTEST_SKIP() << "a CUDA device is present";
  const std::string msg = error_of([] { Tensor::empty({4}, Device::cuda()); });
  EXPECT_NE(msg.find("no CUDA device present"), std::string::npos) << msg;
}

TEST(CudaBackendBasics, RejectsHostTensorsAndBadGemmArgs) {
  // Both checks fail before any CUDA call, so they hold with or without a device.
  const Tensor host = Tensor::zeros({3});
  std::string msg = error_of([&] { cuda_be().fill(host, 1.f); });
  EXPECT_NE(msg.find("is on cpu"), std::string::npos) << msg;

  GemmArgs g;
  g.m = g.n = g.k = 4;
  g.lda = 2;  // < k
  g.ldb = g.ldc = 4;
  msg = error_of([&] { cuda_be().gemm(g); });
  EXPECT_NE(msg.find("lda"), std::string::npos) << msg;
}

TEST(CudaBackendBasics, StatusChecksNameCallStatusAndPlace) {
  std::string msg = error_of([] { CPC_CUDA_CHECK(cudaErrorInvalidValue); });
  EXPECT_NE(msg.find("cudaErrorInvalidValue"), std::string::npos) << msg;
  EXPECT_NE(msg.find("cuda_backend_test.cpp:"), std::string::npos) << msg;
  // Without a GPU cublasCreate fails, which is the path a real failure takes.
  msg = error_of([] {
    cublasHandle_t h = nullptr;
    CPC_CUBLAS_CHECK(cuda_present() ? CUBLAS_STATUS_NOT_INITIALIZED : cublasCreate(&h));
  });
  EXPECT_NE(msg.find("CUBLAS_STATUS_NOT_INITIALIZED"), std::string::npos) << msg;
  msg = error_of([] { CPC_CUDNN_CHECK(CUDNN_STATUS_BAD_PARAM); });
  EXPECT_NE(msg.find("CUDNN_STATUS_BAD_PARAM"), std::string::npos) << msg;
  std::printf("%s\n", msg.c_str());
}

// ---- Need a device: CUDA against the CPU backend ----

TEST(CudaBackend, CopiesRoundTrip) {
  SKIP_WITHOUT_CUDA();
  const std::vector<float> v = random_values(1031, 1);
  const Tensor d = on_cuda(v);
  const Tensor d2 = d.clone();  // device -> device
  EXPECT_EQ(d2.to_vector(), v);
  EXPECT_EQ(d2.to(Device::cpu()).to_vector(), v);
}

TEST(CudaBackend, GemmMatchesCpuForAllTransposes) {
  SKIP_WITHOUT_CUDA();
  const int64_t m = 37, n = 19, k = 23;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "trans_a " << ta << ", trans_b " << tb);
      // Row-major operands with padded rows (ld > width); C's padding must stay untouched.
      const int64_t a_rows = ta ? k : m, lda = (ta ? m : k) + 3;
      const int64_t b_rows = tb ? n : k, ldb = (tb ? k : n) + 5;
      const int64_t ldc = n + 2;
      const std::vector<float> a = random_values(a_rows * lda, 11), b = random_values(b_rows * ldb, 12);
      std::vector<float> c = random_values(m * ldc, 13);

      GemmArgs g;
      g.trans_a = ta;
      g.trans_b = tb;
      g.m = m;
      g.n = n;
      g.k = k;
      g.alpha = 1.25f;
      g.beta = 0.5f;
      g.lda = lda;
      g.ldb = ldb;
      g.ldc = ldc;

      const Tensor da = Tensor::from_vector({a_rows, lda}, a, Device::cuda());
      const Tensor db = Tensor::from_vector({b_rows, ldb}, b, Device::cuda());
      const Tensor dc = Tensor::from_vector({m, ldc}, c, Device::cuda());
      GemmArgs gd = g;
      gd.a = da.f32();
      gd.b = db.f32();
      gd.c = dc.f32();
      cuda_be().gemm(gd);

      g.a = a.data();
      g.b = b.data();
      g.c = c.data();
      cpu_be().gemm(g);
      EXPECT_TRUE(close(dc.to_vector(), c, "C"));
    }
}

TEST(CudaBackend, FillAxpyAddMatchCpu) {
  SKIP_WITHOUT_CUDA();
  const int64_t n = 1031;
  const Tensor y = Tensor::empty({n}, Device::cuda());
  cuda_be().fill(y, -2.5f);
  EXPECT_EQ(y.to_vector(), std::vector<float>(n, -2.5f));

  const std::vector<float> x = random_values(n, 21), y0 = random_values(n, 22);
  const Tensor dx = on_cuda(x), dy = on_cuda(y0), cy = on_cpu(y0);
  cuda_be().axpy(0.75f, dx, dy);
  cpu_be().axpy(0.75f, on_cpu(x), cy);
  EXPECT_TRUE(close(dy.to_vector(), cy.to_vector(), "axpy"));

  const Tensor dsum = Tensor::empty({n}, Device::cuda()), csum = Tensor::empty({n});
  cuda_be().add(dx, dy, dsum);
  cpu_be().add(on_cpu(x), cy, csum);
  EXPECT_TRUE(close(dsum.to_vector(), csum.to_vector(), "add"));
}

TEST(CudaBackend, ReluAndGeluMatchCpu) {
  SKIP_WITHOUT_CUDA();
  const int64_t n = 2053;
  std::vector<float> x = random_values(n, 31, -4.f, 4.f);
  for (int64_t i = 0; i < n; i += 7) x[i] = 0.f;  // relu's gradient at exactly 0
  const std::vector<float> dy = random_values(n, 32), dx0 = random_values(n, 33);

  // Forward.
  const Tensor gx = on_cuda(x), cx = on_cpu(x);
  const Tensor gy = Tensor::empty({n}, Device::cuda()), cy = Tensor::empty({n});
  cuda_be().relu_forward(gx, gy);
  cpu_be().relu_forward(cx, cy);
  EXPECT_TRUE(close(gy.to_vector(), cy.to_vector(), "relu"));
  // Backward accumulates into dx.
  const Tensor gdx = on_cuda(dx0), cdx = on_cpu(dx0);
  cuda_be().relu_backward(gy, on_cuda(dy), gdx);
  cpu_be().relu_backward(cy, on_cpu(dy), cdx);
  EXPECT_TRUE(close(gdx.to_vector(), cdx.to_vector(), "relu_backward"));

  cuda_be().gelu_forward(gx, gy);
  cpu_be().gelu_forward(cx, cy);
  EXPECT_TRUE(close(gy.to_vector(), cy.to_vector(), "gelu"));
  const Tensor gdx2 = on_cuda(dx0), cdx2 = on_cpu(dx0);
  cuda_be().gelu_backward(gx, on_cuda(dy), gdx2);
  cpu_be().gelu_backward(cx, on_cpu(dy), cdx2);
  EXPECT_TRUE(close(gdx2.to_vector(), cdx2.to_vector(), "gelu_backward"));
}

TEST(CudaBackend, DropoutMaskEqualsCpu) {
  SKIP_WITHOUT_CUDA();
  const int64_t n = 4099;
  const float p = 0.3f;
  const uint64_t seed = 0x5eed1234u;
  std::vector<float> x = random_values(n, 41, 0.5f, 1.5f);  // no zeros: a 0 output means dropped
  for (int64_t i = 0; i < n; i += 2) x[i] = -x[i];

  const Tensor gy = Tensor::empty({n}, Device::cuda()), cy = Tensor::empty({n});
  cuda_be().dropout_forward(on_cuda(x), p, seed, gy);
  cpu_be().dropout_forward(on_cpu(x), p, seed, cy);
  const std::vector<float> g = gy.to_vector(), c = cy.to_vector();
  int64_t dropped = 0;
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(g[i] == 0.f, c[i] == 0.f) << "mask differs at " << i;
    dropped += c[i] == 0.f;
  }
  EXPECT_GT(dropped, 0);
  EXPECT_LT(dropped, n);
  EXPECT_TRUE(close(g, c, "dropout"));

  const std::vector<float> dy = random_values(n, 42), dx0 = random_values(n, 43);
  const Tensor gdx = on_cuda(dx0), cdx = on_cpu(dx0);
  cuda_be().dropout_backward(on_cuda(dy), p, seed, gdx);
  cpu_be().dropout_backward(on_cpu(dy), p, seed, cdx);
  EXPECT_TRUE(close(gdx.to_vector(), cdx.to_vector(), "dropout_backward"));
}

struct AdamState {
  Tensor param, m, v, vmax;
};

AdamState make_adam_state(const std::vector<float>& p0, Device d, bool amsgrad) {
  const Shape s{static_cast<int64_t>(p0.size())};
  return {Tensor::from_vector(s, p0, d), Tensor::zeros(s, d), Tensor::zeros(s, d),
          amsgrad ? Tensor::zeros(s, d) : Tensor()};
}

TEST(CudaBackend, AdamUpdateMatchesCpu) {
  SKIP_WITHOUT_CUDA();
  const int64_t n = 1031;
  for (bool amsgrad : {false, true}) {
    SCOPED_TRACE(amsgrad ? "Adam, amsgrad, L2 weight decay" : "AdamW");
    AdamHyper h;
    h.lr = 1e-2f;
    h.weight_decay = 1e-2f;
    h.decoupled = !amsgrad;
    h.amsgrad = amsgrad;
    const std::vector<float> p0 = random_values(n, 51);
    AdamState g = make_adam_state(p0, Device::cuda(), amsgrad), c = make_adam_state(p0, Device::cpu(), amsgrad);
    for (int64_t step = 1; step <= 3; ++step) {
      h.step = step;
      const std::vector<float> grad = random_values(n, 60 + static_cast<uint32_t>(step));
      cuda_be().adam_update(g.param, on_cuda(grad), g.m, g.v, g.vmax, h);
      cpu_be().adam_update(c.param, on_cpu(grad), c.m, c.v, c.vmax, h);
    }
    EXPECT_TRUE(close(g.param.to_vector(), c.param.to_vector(), "param"));
    EXPECT_TRUE(close(g.m.to_vector(), c.m.to_vector(), "exp_avg"));
    EXPECT_TRUE(close(g.v.to_vector(), c.v.to_vector(), "exp_avg_sq"));
    if (amsgrad) {
      EXPECT_TRUE(close(g.vmax.to_vector(), c.vmax.to_vector(), "max_exp_avg_sq"));
    }
  }
}

TEST(CudaBackend, SgdUpdateMatchesCpu) {
  SKIP_WITHOUT_CUDA();
  const int64_t n = 1031;
  struct Config {
    float momentum, dampening, weight_decay;
    bool nesterov;
  };
  for (const Config& k :
       {Config{0.9f, 0.1f, 1e-3f, false}, Config{0.9f, 0.f, 0.f, true}, Config{0.f, 0.f, 1e-3f, false}}) {
    SCOPED_TRACE(::testing::Message() << "momentum " << k.momentum << ", nesterov " << k.nesterov);
    const std::vector<float> p0 = random_values(n, 71);
    const Tensor gp = on_cuda(p0), cp = on_cpu(p0);
    const Tensor gb = k.momentum != 0.f ? Tensor::zeros({n}, Device::cuda()) : Tensor();
    const Tensor cb = k.momentum != 0.f ? Tensor::zeros({n}) : Tensor();
    for (int step = 1; step <= 3; ++step) {
      const std::vector<float> grad = random_values(n, 80 + static_cast<uint32_t>(step));
      cuda_be().sgd_update(gp, on_cuda(grad), gb, 0.05f, k.momentum, k.dampening, k.weight_decay, k.nesterov,
                           step == 1);
      cpu_be().sgd_update(cp, on_cpu(grad), cb, 0.05f, k.momentum, k.dampening, k.weight_decay, k.nesterov, step == 1);
    }
    EXPECT_TRUE(close(gp.to_vector(), cp.to_vector(), "param"));
    if (gb.defined()) {
      EXPECT_TRUE(close(gb.to_vector(), cb.to_vector(), "momentum_buffer"));
    }
  }
}

TEST(CudaBackend, SumAndSumSquaresMatchCpu) {
  SKIP_WITHOUT_CUDA();
  for (int64_t n : {int64_t{1}, int64_t{255}, int64_t{100003}, int64_t{1} << 20}) {
    SCOPED_TRACE(::testing::Message() << "n " << n);
    const std::vector<float> x = random_values(n, 91, -1.f, 1.2f);
    const Tensor g = on_cuda(x), c = on_cpu(x);
    EXPECT_TRUE(close(cuda_be().sum(g), cpu_be().sum(c), "sum"));
    EXPECT_TRUE(close(cuda_be().sum_squares(g), cpu_be().sum_squares(c), "sum_squares"));
  }
  EXPECT_EQ(cuda_be().sum(Tensor::empty({0}, Device::cuda())), 0.0);
}

}  // namespace
}  // namespace cpc
