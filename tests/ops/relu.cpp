// relu_forward / relu_backward: against the double formula, with finite differences
// (inputs kept away from the kink at 0), and NaN kept as PyTorch keeps it.
#include <cmath>
#include <limits>

#include "tests/ops/op_case.h"

namespace cpc::ops_test {
namespace {

// overwrite: dx starts as garbage and is overwritten (accumulate = false).
OpCase relu_case(const char* name, Shape s, bool overwrite = false) {
  OpCase c;
  c.name = std::string("relu/") + name;
  c.ops = {Op::relu_forward, Op::relu_backward};
  c.inputs = {s, s};
  c.kinds = {Inputs::away_from_zero, Inputs::uniform};
  c.run = [=](Backend& b, const Tensors& in) {
    Tensor y = zeros_like(in[0]), dx = overwrite ? garbage_like(in[0]) : zeros_like(in[0]);
    b.relu_forward(in[0], y);
    b.relu_backward(y, in[1], dx, !overwrite);
    return Tensors{y, dx};
  };
  c.reference = [](const std::vector<Vec>& in) {
    Vec y(in[0].size()), dx(in[0].size());
    for (size_t i = 0; i < y.size(); ++i) {
      y[i] = in[0][i] > 0 ? in[0][i] : 0.0;
      dx[i] = in[0][i] > 0 ? in[1][i] : 0.0;
    }
    return std::vector<Vec>{y, dx};
  };
  c.exact = true;  // a select: no rounding anywhere
  c.grad = {1, {0}, {1}};
  return c;
}

OpCase relu_nan_case() {
  OpCase c;
  c.name = "relu/keeps_nan";
  c.ops = {Op::relu_forward};
  c.inputs = {Shape{4}};
  c.run = [](Backend& b, const Tensors& in) {
    const float nan = std::numeric_limits<float>::quiet_NaN();
    Tensor x = Tensor::from_vector({4}, {nan, -1.f, 2.f, -nan}).to(in[0].device()), y = zeros_like(x);
    b.relu_forward(x, y);
    return Tensors{y};
  };
  c.check = [](const std::vector<std::vector<float>>& out) {
    const std::vector<float>& y = out[0];
    if (std::isnan(y[0]) && y[1] == 0.f && y[2] == 2.f && std::isnan(y[3])) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "relu(nan, -1, 2, -nan) = " << y[0] << ", " << y[1] << ", " << y[2] << ", "
                                         << y[3] << "; expected nan, 0, 2, nan";
  };
  return c;
}

// Overwriting in place: dx is dy itself.
OpCase relu_in_place_case() {
  OpCase c = relu_case("backward_overwrites_in_place", Shape{3, 5, 7});
  c.run = [](Backend& b, const Tensors& in) {
    Tensor y = zeros_like(in[0]), dx = copy_of(in[1]);
    b.relu_forward(in[0], y);
    b.relu_backward(y, dx, dx, false);
    return Tensors{y, dx};
  };
  return c;
}

CPC_OP_CASES({relu_case("small", Shape{3, 5, 7}), relu_case("threaded", Shape{2, 40000}), relu_nan_case(),
              relu_case("backward_overwrites", Shape{3, 5, 7}, true),
              relu_case("backward_overwrites_threaded", Shape{2, 40000}, true), relu_in_place_case()});

}  // namespace
}  // namespace cpc::ops_test
