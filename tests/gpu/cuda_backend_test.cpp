// CUDA backend tests. The first group runs everywhere (registration, the no-device
// path, every op overridden, shape and argument checks, allocator size classes); the
// rest compare CUDA against the CPU backend and skip themselves when no CUDA device is
// present. Layout, conv/norm, GRU, contrastive and whole-CPC-step comparisons live in
// the other cuda_*_test.cpp files of this binary.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "kernels/cuda/caching_allocator.h"
#include "kernels/cuda/cuda_check.h"
#include "tests/gpu/cuda_test_util.h"

namespace cpc {
namespace {

using namespace gpu_test;

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

TEST(CudaBackendBasics, EveryOpIsImplemented) {
  // Undefined arguments: each op must fail in its own argument checks (before any
  // device work, so this holds without a GPU), never with the base class's
  // "`op` is not available on cuda yet".
  Backend& b = cuda_be();
  const Tensor u;
  const Conv1dGeometry g;
  const std::vector<std::pair<const char*, std::function<void()>>> calls = {
      {"fill", [&] { b.fill(u, 0.f); }},
      {"axpy", [&] { b.axpy(1.f, u, u); }},
      {"axpy_scaled", [&] { b.axpy_scaled(1.f, u, u, u); }},
      {"add", [&] { b.add(u, u, u); }},
      {"add_bias", [&] { b.add_bias(u, u, 1); }},
      {"bias_grad", [&] { b.bias_grad(u, u, 1); }},
      {"relu_forward", [&] { b.relu_forward(u, u); }},
      {"relu_backward", [&] { b.relu_backward(u, u, u); }},
      {"gelu_forward", [&] { b.gelu_forward(u, u); }},
      {"gelu_backward", [&] { b.gelu_backward(u, u, u); }},
      {"dropout_forward", [&] { b.dropout_forward(u, 0.1f, 1, u); }},
      {"dropout_backward", [&] { b.dropout_backward(u, 0.1f, 1, u); }},
      {"sum_squares", [&] { b.sum_squares(u); }},
      {"sum", [&] { b.sum(u); }},
      {"transpose_last2", [&] { b.transpose_last2(u, u, 0.f); }},
      {"narrow_forward", [&] { b.narrow_forward(u, 0, u); }},
      {"narrow_backward", [&] { b.narrow_backward(u, 0, u); }},
      {"mean_axis_forward", [&] { b.mean_axis_forward(u, u); }},
      {"mean_axis_backward", [&] { b.mean_axis_backward(u, u); }},
      {"max_axis_forward", [&] { b.max_axis_forward(u, u, u); }},
      {"max_axis_backward", [&] { b.max_axis_backward(u, u, u); }},
      {"conv1d_forward", [&] { b.conv1d_forward(u, u, nullptr, g, u); }},
      {"conv1d_backward_data", [&] { b.conv1d_backward_data(u, u, g, u); }},
      {"conv1d_backward_weights", [&] { b.conv1d_backward_weights(u, u, g, u, nullptr); }},
      {"batchnorm_forward_train", [&] { b.batchnorm_forward_train(u, u, u, 0.1f, 1e-5f, u, u, u, u, u); }},
      {"batchnorm_forward_eval", [&] { b.batchnorm_forward_eval(u, u, u, 1e-5f, u, u, u, u); }},
      {"batchnorm_backward", [&] { b.batchnorm_backward(u, u, u, u, u, true, u, u, u); }},
      {"batchnorm_stats", [&] { b.batchnorm_stats(u, u, u); }},
      {"channel_affine", [&] { b.channel_affine(u, u, u, u); }},
      {"channel_norm_forward", [&] { b.channel_norm_forward(u, u, u, 1e-5f, u, u, u); }},
      {"channel_norm_backward", [&] { b.channel_norm_backward(u, u, u, u, u, u, u, u); }},
      {"gru_layer_forward", [&] { b.gru_layer_forward(u, u, u, u, u, u, u, u); }},
      {"gru_layer_backward", [&] { b.gru_layer_backward(u, u, u, u, u, u, u, u, u, u, u, u, u, u); }},
      {"contrastive_forward", [&] { b.contrastive_forward(u, u, ContrastiveSpec{}, u, u); }},
      {"l2_normalize_forward", [&] { b.l2_normalize_forward(u, 1e-8f, u); }},
      {"l2_normalize_backward", [&] { b.l2_normalize_backward(u, u, 1e-8f, u); }},
      {"swap_axes", [&] { b.swap_axes(u, 1, 1, 1, 1, u, 0.f); }},
      {"adam_update", [&] { b.adam_update(u, u, u, u, u, AdamHyper{}); }},
      {"adam_update_multi", [&] { b.adam_update_multi({AdamSlots{u, u, u, u, u}}, AdamHyper{}); }},
      {"sum_squares_multi", [&] { b.sum_squares_multi({u}); }},
      {"sgd_update", [&] { b.sgd_update(u, u, u, 0.1f, 0.f, 0.f, 0.f, false, true); }},
  };
  for (const auto& [name, call] : calls) {
    const std::string msg = error_of(call);
    EXPECT_NE(msg, "") << name << " accepted undefined tensors";
    EXPECT_EQ(msg.find("not available on cuda"), std::string::npos) << name << ": " << msg;
  }
}

TEST(CudaBackendBasics, ShapesAreCheckedBeforeAnyDeviceWork) {
  // Host tensors with inconsistent shapes: the shape error comes first (no GPU needed).
  Backend& b = cuda_be();
  std::string msg = error_of([&] {
    b.conv1d_forward(Tensor::zeros({2, 3, 10}), Tensor::zeros({4, 5, 3}), nullptr, Conv1dGeometry{},
                     Tensor::zeros({2, 4, 8}));
  });
  EXPECT_NE(msg.find("conv1d on cuda: x (2, 3, 10) has 3 channels, the weight (4, 5, 3) expects 5"), std::string::npos)
      << msg;
  msg = error_of([&] {
    b.conv1d_forward(Tensor::zeros({2, 3, 10}), Tensor::zeros({4, 3, 3}), nullptr, Conv1dGeometry{2, 1, 1},
                     Tensor::zeros({2, 4, 8}));
  });
  EXPECT_NE(msg.find("y is (2, 4, 8), expected (2, 4, 5)"), std::string::npos) << msg;
  msg = error_of([&] { b.transpose_last2(Tensor::zeros({2, 3, 4}), Tensor::zeros({2, 3, 4}), 0.f); });
  EXPECT_NE(msg.find("transpose_last2 on cuda: y is (2, 3, 4), expected (2, 4, 3)"), std::string::npos) << msg;
  msg = error_of([&] {
    const Tensor x = Tensor::zeros({2, 5, 8});
    b.gru_layer_forward(x, Tensor(), Tensor::zeros({12, 7}), Tensor::zeros({12, 4}), Tensor::zeros({12}),
                        Tensor::zeros({12}), Tensor::zeros({2, 5, 4}), Tensor::zeros({2, 5, 16}));
  });
  EXPECT_NE(msg.find("gru on cuda: weight_ih is (12, 7), expected (12, 8)"), std::string::npos) << msg;
  msg = error_of([&] {
    const int32_t labels[6] = {0, 1, 2, 3, 4, 5};
    ContrastiveSpec spec;
    spec.blocks = 4;
    spec.row_label = spec.col_label = labels;
    b.contrastive_forward(Tensor::zeros({6, 3}), Tensor::zeros({6, 3}), spec, Tensor(), Tensor());
  });
  EXPECT_NE(msg.find("4 blocks do not divide 6 anchors and 6 candidates"), std::string::npos) << msg;
  msg = error_of([&] {
    b.channel_norm_forward(Tensor::zeros({2, 3, 4}), Tensor::zeros({3}), Tensor::zeros({3}), 1e-5f,
                           Tensor::zeros({2, 3}), Tensor::zeros({8}), Tensor::zeros({2, 3, 4}));
  });
  EXPECT_NE(msg.find("save_mean (B, L) (2, 3) has 6 elements, expected 8"), std::string::npos) << msg;
  // Consistent shapes but host memory: rejected as such.
  msg = error_of([&] { b.l2_normalize_forward(Tensor::zeros({2, 3}), 1e-8f, Tensor::zeros({2, 3})); });
  EXPECT_NE(msg.find("l2_normalize on cuda: x (2, 3) is on cpu"), std::string::npos) << msg;
}

TEST(CudaBackendBasics, OptionsAreValidated) {
  Backend& b = cuda_be();
  EXPECT_NE(error_of([&] { b.set_option("tf32", "maybe"); }).find("expected on or off"), std::string::npos);
  EXPECT_NE(error_of([&] { b.set_option("contrastive_tile", "0"); }).find("integer >= 1"), std::string::npos);
  EXPECT_NE(error_of([&] { b.set_option("no_such_option", "1"); }).find("no option 'no_such_option'"),
            std::string::npos);
}

TEST(CudaBackendBasics, AllocatorSizeClassesBoundTheSlack) {
  using cuda::size_class;
  EXPECT_EQ(size_class(0), 0u);
  EXPECT_EQ(size_class(1), 512u);
  EXPECT_EQ(size_class(512), 512u);
  EXPECT_EQ(size_class(513), 1024u);
  EXPECT_EQ(size_class(size_t{1} << 20), size_t{1} << 20);
  EXPECT_EQ(size_class((size_t{1} << 20) + 1), size_t{5} << 18);  // 1.25 MiB
  EXPECT_EQ(size_class(size_t{3} << 30), size_t{3} << 30);
  for (size_t b = 1; b < (size_t{1} << 34); b = b * 3 + 7) {
    const size_t c = size_class(b);
    EXPECT_GE(c, b);
    EXPECT_LE(c, std::max<size_t>(b + 511, b + b / 4)) << b;  // <= 25% slack above 1 MiB
    EXPECT_EQ(size_class(c), c) << "a class maps to itself: " << c;
  }
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
  cuda_be().axpy_scaled(0.5f, on_cuda({-3.f}), dx, dy);  // the scale read on the device
  cpu_be().axpy_scaled(0.5f, on_cpu({-3.f}), on_cpu(x), cy);
  EXPECT_TRUE(close(dy.to_vector(), cy.to_vector(), "axpy_scaled"));

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

// One launch for many tensors (sizes 0, 1, odd, and over eight chunks of 16384): the same
// bits as adam_update per tensor, close to the CPU. A later call on a subset of the
// tensors checks that the cached chunk table is replaced when the tensors change.
TEST(CudaBackend, AdamUpdateMultiEqualsPerTensorUpdates) {
  SKIP_WITHOUT_CUDA();
  const std::vector<int64_t> sizes = {1031, 0, 1, 2 * 65536 + 5, 7};
  for (bool amsgrad : {false, true}) {
    SCOPED_TRACE(amsgrad ? "Adam, amsgrad" : "AdamW");
    AdamHyper h;
    h.lr = 1e-2f, h.weight_decay = 1e-2f, h.decoupled = !amsgrad, h.amsgrad = amsgrad;
    std::vector<AdamState> multi, single, cpu;
    std::vector<std::vector<float>> grads;
    for (size_t i = 0; i < sizes.size(); ++i) {
      const std::vector<float> p0 = random_values(sizes[i], 70 + static_cast<uint32_t>(i));
      multi.push_back(make_adam_state(p0, Device::cuda(), amsgrad));
      single.push_back(make_adam_state(p0, Device::cuda(), amsgrad));
      cpu.push_back(make_adam_state(p0, Device::cpu(), amsgrad));
      grads.push_back(random_values(sizes[i], 80 + static_cast<uint32_t>(i)));
    }
    auto slots = [&](size_t count) {
      std::vector<AdamSlots> s;
      for (size_t i = 0; i < count; ++i) s.push_back({multi[i].param, on_cuda(grads[i]), multi[i].m, multi[i].v, multi[i].vmax});
      return s;
    };
    for (int64_t step = 1; step <= 4; ++step) {
      h.step = step;
      const size_t count = step < 4 ? sizes.size() : 2;  // the last step updates a subset
      cuda_be().adam_update_multi(slots(count), h);
      for (size_t i = 0; i < count; ++i) {
        cuda_be().adam_update(single[i].param, on_cuda(grads[i]), single[i].m, single[i].v, single[i].vmax, h);
        cpu_be().adam_update(cpu[i].param, on_cpu(grads[i]), cpu[i].m, cpu[i].v, cpu[i].vmax, h);
      }
    }
    for (size_t i = 0; i < sizes.size(); ++i) {
      SCOPED_TRACE("tensor " + std::to_string(i) + " of " + std::to_string(sizes[i]) + " elements");
      EXPECT_TRUE(equal(multi[i].param.to_vector(), single[i].param.to_vector(), "param (multi vs single)"));
      EXPECT_TRUE(equal(multi[i].v.to_vector(), single[i].v.to_vector(), "exp_avg_sq (multi vs single)"));
      EXPECT_TRUE(close(multi[i].param.to_vector(), cpu[i].param.to_vector(), "param (cuda vs cpu)"));
      EXPECT_TRUE(close(multi[i].m.to_vector(), cpu[i].m.to_vector(), "exp_avg (cuda vs cpu)"));
      if (amsgrad) {
        EXPECT_TRUE(equal(multi[i].vmax.to_vector(), single[i].vmax.to_vector(), "max_exp_avg_sq"));
      }
    }
  }
}

TEST(CudaBackend, SumSquaresMultiMatchesCpu) {
  SKIP_WITHOUT_CUDA();
  std::vector<Tensor> gpu, cpu;
  double want = 0;
  for (int64_t n : {int64_t{1031}, int64_t{0}, int64_t{1}, int64_t{3 * 65536 + 17}}) {
    const std::vector<float> v = random_values(n, 90 + static_cast<uint32_t>(n % 97));
    gpu.push_back(on_cuda(v));
    cpu.push_back(on_cpu(v));
    want += cpu_be().sum_squares(cpu.back());
  }
  EXPECT_TRUE(close(cuda_be().sum_squares_multi(gpu), want, "sum of squares", 1e-12));
  EXPECT_TRUE(close(cuda_be().sum_squares_multi({gpu[0]}), cpu_be().sum_squares(cpu[0]), "one tensor", 1e-12));
  EXPECT_EQ(cuda_be().sum_squares_multi({}), 0.0);
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

TEST(CudaBackend, CachingAllocatorReusesFreedBlocks) {
  SKIP_WITHOUT_CUDA();
  const char* env = std::getenv("CPC_CUDA_CACHE");
  if (env && std::string(env) == "0") GTEST_SKIP() << "caching disabled by CPC_CUDA_CACHE=0";
  void* p = cuda_be().allocate(3000);
  cuda_be().deallocate(p);
  void* q = cuda_be().allocate(2900);  // same 3072-byte class: the cached block comes back
  EXPECT_EQ(p, q);
  cuda_be().deallocate(q);
  // Freed memory may still be in use by queued kernels: stream order makes reuse safe.
  const Tensor a = Tensor::from_vector({1000}, random_values(1000, 5), Device::cuda());
  Tensor b = a.clone();
  const std::vector<float> before = b.to_vector();
  b = Tensor();  // back to the cache while nothing is pending
  const Tensor c = Tensor::zeros({1000}, Device::cuda());
  EXPECT_EQ(c.to_vector(), std::vector<float>(1000, 0.f));
  EXPECT_EQ(before, a.to_vector());
}

TEST(CudaBackend, StagedHostCopiesArriveInOrder) {
  SKIP_WITHOUT_CUDA();
  // Many small copies (packed into the pinned chunks) and one larger than the whole
  // ring (4 x 4 MiB): each host buffer is overwritten right after copy() returns.
  std::vector<float> host(1000);
  std::vector<Tensor> small;
  for (int i = 0; i < 300; ++i) {
    for (int k = 0; k < 1000; ++k) host[k] = static_cast<float>(i * 1000 + k);
    small.push_back(Tensor::from_vector({1000}, host, Device::cuda()));
    std::fill(host.begin(), host.end(), -1.f);
  }
  for (int i = 0; i < 300; i += 37) {
    const std::vector<float> v = small[i].to_vector();
    EXPECT_EQ(v[0], static_cast<float>(i * 1000));
    EXPECT_EQ(v[999], static_cast<float>(i * 1000 + 999));
  }
  const int64_t n = (int64_t{20} << 20) / 4 + 3;  // 20 MiB + 12 bytes
  std::vector<float> big = random_values(n, 77);
  const std::vector<float> keep = big;
  const Tensor t = Tensor::from_vector({n}, big, Device::cuda());
  std::fill(big.begin(), big.end(), 0.f);
  EXPECT_EQ(t.to_vector(), keep);
}

TEST(CudaBackend, Tf32OptionKeepsResultsClose) {
  SKIP_WITHOUT_CUDA();
  // With TF32 (10-bit mantissa inputs) a GEMM of 256 terms stays within ~1e-2 of fp32.
  const int64_t m = 64, n = 48, k = 256;
  const std::vector<float> a = random_values(m * k, 1), b = random_values(k * n, 2);
  const Tensor ga = on_cuda(a), gb = on_cuda(b), gc = Tensor::zeros({m * n}, Device::cuda());
  GemmArgs g;
  g.m = m, g.n = n, g.k = k, g.lda = k, g.ldb = n, g.ldc = n;
  g.a = ga.f32(), g.b = gb.f32(), g.c = gc.f32();
  cuda_be().set_option("tf32", "on");
  cuda_be().gemm(g);
  cuda_be().set_option("tf32", "off");
  const std::vector<float> tf = gc.to_vector();
  cuda_be().gemm(g);
  const std::vector<float> fp = gc.to_vector();
  std::vector<float> c(m * n, 0.f);
  g.a = a.data(), g.b = b.data(), g.c = c.data();
  cpu_be().gemm(g);
  EXPECT_TRUE(close_scaled(fp, c, "fp32", 1e-5));
  EXPECT_TRUE(close_scaled(tf, c, "tf32", 2e-2));
}

}  // namespace
}  // namespace cpc
