// CUDA backend tests beyond the ops: registration, the no-device path, options,
// allocator size classes and status checks run everywhere; copies, the caching
// allocator, staging and TF32 need a device. Every op against the CPU backend is the
// backend-ops table (tests/ops/, binary backend_ops_test); the whole CPC step, the
// loader, NCCL and bf16 are the other cuda_*_test.cpp files of this binary.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "kernels/cuda/runtime/caching_allocator.h"
#include "kernels/cuda/runtime/cuda_check.h"
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
