// Channel LayerNorm (statistics over C at each (b, l)), forward and backward, against
// the double kernels, with finite differences for x, weight and bias. With L = 1 (the
// channels-last encoder's (B * L, C, 1)) the CPU kernels take their rows path; those
// cases' reference is the (B, C, L) path on the transposed input (1, C, N).
#include "kernels/cpu/norms.h"
#include "tests/ops/op_case.h"

namespace cpc::ops_test {
namespace {

// overwrite: dx starts as garbage and is overwritten (accumulate = false).
OpCase channel_norm_case(const char* name, int64_t B, int64_t C, int64_t L, bool overwrite = false) {
  constexpr float kEps = 1e-5f;
  OpCase c;
  c.name = std::string("channel_norm/") + name;
  c.ops = {Op::channel_norm_forward, Op::channel_norm_backward};
  c.inputs = {Shape{B, C, L}, Shape{C}, Shape{C}, Shape{B, C, L}};
  c.run = [=](Backend& b, const Tensors& in) {
    Tensor y = zeros_like(in[0]), mean = Tensor::zeros({B, L}, in[0].device()), invstd = zeros_like(mean);
    Tensor dx = overwrite ? garbage_like(in[0]) : zeros_like(in[0]), dg = zeros_like(in[1]), dbeta = zeros_like(in[1]);
    b.channel_norm_forward(in[0], in[1], in[2], kEps, mean, invstd, y);
    b.channel_norm_backward(in[0], in[3], in[1], mean, invstd, dx, dg, dbeta, !overwrite);
    return Tensors{y, dx, dg, dbeta, mean, invstd};
  };
  auto ref = [=](const std::vector<Vec>& in, const NormDims& d) {
    Vec y(in[0].size()), mean(B * L), invstd(B * L), dx(in[0].size(), 0.0), dg(C, 0.0), db(C, 0.0);
    Vec ws(cpu::channel_norm_backward_workspace(d));
    cpu::channel_norm_forward(in[0].data(), in[1].data(), in[2].data(), double(kEps), d, mean.data(), invstd.data(),
                              y.data());
    cpu::channel_norm_backward(in[0].data(), in[3].data(), in[1].data(), mean.data(), invstd.data(), d, dx.data(),
                               dg.data(), db.data(), ws.data());
    return std::vector<Vec>{y, dx, dg, db, mean, invstd};
  };
  if (L == 1) {
    c.reference = [=](const std::vector<Vec>& in) {
      const Vec x = swap_last2(in[0], 1, B, C), dy = swap_last2(in[3], 1, B, C);
      std::vector<Vec> out = ref({x, in[1], in[2], dy}, NormDims{1, C, B});
      // y and dx back to rows; mean and invstd hold one value per row either way.
      out[0] = swap_last2(out[0], 1, C, B), out[1] = swap_last2(out[1], 1, C, B);
      return out;
    };
  } else {
    c.reference = [=](const std::vector<Vec>& in) { return ref(in, NormDims{B, C, L}); };
  }
  c.tol = 2e-5;
  c.device_tol = 1e-5;
  c.grad = {3, {0, 1, 2}, {1, 2, 3}};
  return c;
}

CPC_OP_CASES({channel_norm_case("encoder", 2, 12, 17), channel_norm_case("one_position", 3, 7, 1),
              channel_norm_case("wide", 1, 64, 40), channel_norm_case("rows", 37, 12, 1),
              channel_norm_case("rows_large", 1500, 64, 1), channel_norm_case("overwrite", 2, 12, 17, true),
              channel_norm_case("rows_overwrite", 1500, 64, 1, true)});

}  // namespace
}  // namespace cpc::ops_test
