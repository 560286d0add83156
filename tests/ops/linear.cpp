// Backend::gemm (the linear layer's and the GRU's GEMMs): every transpose, alpha/beta,
// padded leading dimensions and awkward sizes, against a double loop.
#include <algorithm>

#include "tests/ops/op_case.h"

namespace cpc::ops_test {
namespace {

OpCase gemm_case(const char* name, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, float beta,
                 int64_t pad = 0) {
  const int64_t ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
  const int64_t lda = std::max<int64_t>(ac, 1) + pad, ldb = std::max<int64_t>(bc, 1) + pad, ldc = n + pad;
  OpCase c;
  c.name = std::string("gemm/") + name;
  c.ops = {Op::gemm};
  c.inputs = {Shape{ar, lda}, Shape{br, ldb}, Shape{m, ldc}};
  c.run = [=](Backend& b, const Tensors& in) {
    Tensor C = copy_of(in[2]);
    GemmArgs g;
    g.trans_a = ta, g.trans_b = tb, g.m = m, g.n = n, g.k = k, g.alpha = alpha, g.beta = beta;
    g.a = in[0].f32(), g.lda = lda, g.b = in[1].f32(), g.ldb = ldb, g.c = C.f32(), g.ldc = ldc;
    b.gemm(g);
    return Tensors{C};
  };
  c.reference = [=](const std::vector<Vec>& in) {
    Vec C = in[2];
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) {
        double s = 0;
        for (int64_t p = 0; p < k; ++p)
          s += in[0][ta ? p * lda + i : i * lda + p] * in[1][tb ? j * ldb + p : p * ldb + j];
        C[i * ldc + j] = alpha * s + beta * in[2][i * ldc + j];
      }
    return std::vector<Vec>{C};
  };
  c.tol = 1e-5;
  c.device_tol = 1e-5;
  return c;
}

CPC_OP_CASES({
    gemm_case("nn", false, false, 17, 33, 29, 1.f, 0.f),
    gemm_case("nt_beta1", false, true, 16, 24, 40, 1.f, 1.f),
    gemm_case("tn_alpha", true, false, 9, 31, 64, 0.5f, 0.25f),
    gemm_case("tt_padded", true, true, 13, 7, 19, 1.f, 0.f, 3),
    gemm_case("m1_vector", false, true, 1, 96, 48, 1.f, 0.f),
    gemm_case("k0_scales_c", false, false, 5, 6, 0, 1.f, 0.5f),
    // beta = 0 never reads C: linear's backward writes a first gradient into unzeroed memory.
    [] {
      OpCase c = gemm_case("beta0_ignores_c", false, false, 33, 128, 64, 1.f, 0.f);
      auto run = c.run;
      c.run = [run](Backend& b, const Tensors& in) { return run(b, {in[0], in[1], garbage_like(in[2])}); };
      return c;
    }(),
});

}  // namespace
}  // namespace cpc::ops_test
