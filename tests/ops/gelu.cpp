// gelu_forward / gelu_backward (exact erf form, PyTorch's default): against the double
// formula and finite differences.
#include <cmath>

#include "tests/ops/op_case.h"

namespace cpc::ops_test {
namespace {

OpCase gelu_case(const char* name, Shape s) {
  OpCase c;
  c.name = std::string("gelu/") + name;
  c.ops = {Op::gelu_forward, Op::gelu_backward};
  c.inputs = {s, s};
  c.run = [](Backend& b, const Tensors& in) {
    Tensor y = zeros_like(in[0]), dx = zeros_like(in[0]);
    b.gelu_forward(in[0], y);
    b.gelu_backward(in[0], in[1], dx);
    return Tensors{y, dx};
  };
  c.reference = [](const std::vector<Vec>& in) {
    Vec y(in[0].size()), dx(in[0].size());
    for (size_t i = 0; i < y.size(); ++i) {
      const double x = in[0][i], cdf = 0.5 * (1 + std::erf(x / std::sqrt(2.0)));
      y[i] = x * cdf;
      dx[i] = in[1][i] * (cdf + x * std::exp(-0.5 * x * x) / std::sqrt(2 * M_PI));
    }
    return std::vector<Vec>{y, dx};
  };
  c.tol = 1e-6;
  c.device_tol = 1e-6;
  c.grad = {1, {0}, {1}};
  return c;
}

CPC_OP_CASES({gelu_case("small", Shape{4, 33}), gelu_case("long", Shape{100003})});

}  // namespace
}  // namespace cpc::ops_test
