// The fused contrastive kernel on CUDA next to cuBLAS GEMMs of the same FLOPs, in one
// run. One InfoNCE block: B anchors against B candidates of dimension D, loss and both
// gradients (`contrastive_forward` computes dA and dC in the same pass), counted as
// 6 B^2 D FLOPs; the reference is the three cuBLAS GEMMs that do the same multiplications
// and nothing else: S = A C^T, dA = G C, dC = G^T A (G a B x B matrix). The GEMMs write a
// B x B matrix; the fused kernel never holds more than its tile (the workspace column).
//   cpc-cuda-loss-bench [--sizes 1024,4096,16384] [--dim 512] [--reps 10] [--tf32 on|off]
// Without a CUDA device it says so and exits 0 (the GPU check's rehearsal runs it).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "engine/core/backend.h"
#include "engine/core/error.h"
#include "engine/core/random.h"

namespace {

using namespace cpc;
using Clock = std::chrono::steady_clock;

template <class F>
double median_ms(F&& fn, int reps) {
  Backend& be = backend(Device::cuda());
  fn();  // warm-up: algorithm choice, workspace, allocator
  be.synchronize();
  std::vector<double> ts;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    fn();
    be.synchronize();
    ts.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(ts.begin(), ts.end());
  return ts[ts.size() / 2];
}

GemmArgs gemm_args(bool ta, bool tb, int64_t m, int64_t n, int64_t k, const Tensor& a, int64_t lda, const Tensor& b,
                   int64_t ldb, const Tensor& c, int64_t ldc) {
  GemmArgs g;
  g.trans_a = ta, g.trans_b = tb, g.m = m, g.n = n, g.k = k;
  g.a = a.f32(), g.lda = lda, g.b = b.f32(), g.ldb = ldb, g.c = c.f32(), g.ldc = ldc;
  return g;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> sizes{1024, 4096, 16384};
  int64_t D = 512;
  int reps = 10;
  std::string tf32 = "off";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has = i + 1 < argc;
    if (a == "--sizes" && has) {
      sizes.clear();
      std::stringstream ss(argv[++i]);
      for (std::string item; std::getline(ss, item, ',');) sizes.push_back(std::atoll(item.c_str()));
    } else if (a == "--dim" && has) {
      D = std::atoll(argv[++i]);
    } else if (a == "--reps" && has) {
      reps = std::atoi(argv[++i]);
    } else if (a == "--tf32" && has) {
      tf32 = argv[++i];
    } else {
      std::fprintf(stderr, "error: unknown or incomplete option %s\n", a.c_str());
      return 2;
    }
  }
  try {
    Backend& be = backend(Device::cuda());
    if (!be.available()) {
      std::printf("cpc-cuda-loss-bench: skipped, no CUDA device (%s)\n", be.describe().c_str());
      return 0;
    }
    be.set_option("tf32", tf32);
    std::printf("cuda: %s\n", be.describe().c_str());
    std::printf("InfoNCE block fwd+grads vs 3 cuBLAS GEMMs of the same FLOPs (6 B^2 D), D = %lld, TF32 %s\n",
                static_cast<long long>(D), tf32.c_str());
    std::printf("%7s | %10s %9s | %10s %9s | %13s | %14s\n", "B", "fused ms", "TFLOP/s", "GEMMs ms", "TFLOP/s",
                "fused % GEMMs", "workspace MiB");
    Generator gen(0);
    for (const int64_t B : sizes) {
      const Tensor a = gen.normal_tensor({B, D}, 0, 0.05f).to(Device::cuda());
      const Tensor c = gen.normal_tensor({B, D}, 0, 0.05f).to(Device::cuda());
      const Tensor da = Tensor::empty({B, D}, Device::cuda()), dc = Tensor::empty({B, D}, Device::cuda());
      std::vector<int32_t> labels(static_cast<size_t>(B));
      std::iota(labels.begin(), labels.end(), 0);
      ContrastiveSpec spec;
      spec.row_label = spec.col_label = labels.data();
      const double fused = median_ms([&] { be.contrastive_forward(a, c, spec, da, dc); }, reps);
      const size_t workspace = be.workspace_bytes();
      const Tensor s = Tensor::empty({B, B}, Device::cuda());
      be.fill(s, 1e-3f);
      const double gemms = median_ms(
          [&] {
            be.gemm(gemm_args(false, true, B, B, D, a, D, c, D, s, B));   // S = A C^T
            be.gemm(gemm_args(false, false, B, D, B, s, B, c, D, da, D));  // dA = G C
            be.gemm(gemm_args(true, false, B, D, B, s, B, a, D, dc, D));   // dC = G^T A
          },
          reps);
      const double flop = 6.0 * static_cast<double>(B) * static_cast<double>(B) * static_cast<double>(D);
      std::printf("%7lld | %10.3f %9.1f | %10.3f %9.1f | %12.0f%% | %14.1f\n", static_cast<long long>(B), fused,
                  flop / fused / 1e9, gemms, flop / gemms / 1e9, 100.0 * gemms / fused,
                  static_cast<double>(workspace) / (1 << 20));
    }
    std::printf("(medians of %d runs after one warm-up; 'fused %% GEMMs' = GEMM time / fused time: 100%% = as fast "
                "as the bare GEMMs, 50%% = 2x their time)\n",
                reps);
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
