// l2_normalize forward / backward (F.normalize over rows), including a zero row (stays
// zero, finite gradient), against the double kernels and finite differences.
#include "kernels/cpu/elementwise.h"
#include "tests/ops/op_case.h"

namespace cpc::ops_test {
namespace {

OpCase l2_case(const char* name, int64_t N, int64_t D, bool zero_row) {
  constexpr float kEps = 1e-8f;
  OpCase c;
  c.name = std::string("l2_normalize/") + name;
  c.ops = {Op::l2_normalize_forward, Op::l2_normalize_backward};
  c.inputs = {Shape{N, D}, Shape{N, D}};
  if (zero_row)
    c.prepare = [D](std::vector<std::vector<float>>& in) {
      for (int64_t d = 0; d < D; ++d) in[0][d] = 0.f;
    };
  c.run = [](Backend& b, const Tensors& in) {
    Tensor y = zeros_like(in[0]), dx = zeros_like(in[0]);
    b.l2_normalize_forward(in[0], kEps, y);
    b.l2_normalize_backward(in[0], in[1], kEps, dx);
    return Tensors{y, dx};
  };
  c.reference = [=](const std::vector<Vec>& in) {
    Vec y(in[0].size()), dx(in[0].size(), 0.0);
    cpu::l2_normalize_forward(in[0].data(), y.data(), N, D, double(kEps));
    cpu::l2_normalize_backward(in[0].data(), in[1].data(), dx.data(), N, D, double(kEps));
    return std::vector<Vec>{y, dx};
  };
  c.tol = 1e-6;
  c.device_tol = 1e-5;
  if (!zero_row) c.grad = {1, {0}, {1}};  // |x| = 0 is the kink of the norm
  return c;
}

CPC_OP_CASES({l2_case("rows", 9, 33, false), l2_case("zero_row", 4, 16, true), l2_case("wide", 2, 513, false)});

}  // namespace
}  // namespace cpc::ops_test
