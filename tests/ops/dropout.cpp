// dropout_forward / dropout_backward: the counter-based mask (kernels/common/
// counter_rng.h) is the same on every backend, bit for bit; the CPU against the double
// instantiation of its kernel; finite differences through the fixed mask.
#include "kernels/cpu/elementwise.h"
#include "tests/ops/op_case.h"

namespace cpc::ops_test {
namespace {

OpCase dropout_case(const char* name, Shape s, float p, uint64_t seed) {
  OpCase c;
  c.name = std::string("dropout/") + name;
  c.ops = {Op::dropout_forward, Op::dropout_backward};
  c.inputs = {s, s};
  c.run = [=](Backend& b, const Tensors& in) {
    Tensor y = zeros_like(in[0]), dx = zeros_like(in[0]);
    b.dropout_forward(in[0], p, seed, y);
    b.dropout_backward(in[1], p, seed, dx);
    return Tensors{y, dx};
  };
  c.reference = [=](const std::vector<Vec>& in) {
    const int64_t n = static_cast<int64_t>(in[0].size());
    Vec y(in[0].size()), dx(in[0].size(), 0.0);
    cpu::dropout_apply(in[0].data(), y.data(), n, p, seed, false);
    cpu::dropout_apply(in[1].data(), dx.data(), n, p, seed, true);
    return std::vector<Vec>{y, dx};
  };
  c.tol = 1e-6;
  c.exact = true;
  c.grad = {1, {0}, {1}};
  c.check = [=](const std::vector<std::vector<float>>& out) {  // about p of the values dropped
    int64_t zeros = 0;
    for (float v : out[0]) zeros += v == 0.f;
    const double frac = static_cast<double>(zeros) / out[0].size();
    if (out[0].size() < 1000 || std::abs(frac - p) < 0.03) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "dropped " << frac << ", expected about " << p;
  };
  return c;
}

CPC_OP_CASES({dropout_case("p0.1", Shape{8, 700}, 0.1f, 7), dropout_case("p0.5_odd", Shape{3, 333}, 0.5f, 12345)});

}  // namespace
}  // namespace cpc::ops_test
