// fill, axpy, axpy_scaled, add, and the bias pair add_bias / bias_grad (linear and
// conv biases), against double formulas; the bias pair with finite differences.
#include "tests/ops/op_case.h"

namespace cpc::ops_test {
namespace {

OpCase fill_case() {
  OpCase c;
  c.name = "fill/value_and_zero";
  c.ops = {Op::fill};
  c.inputs = {Shape{37}};
  c.run = [](Backend& b, const Tensors& in) {
    Tensor y = copy_of(in[0]), z = copy_of(in[0]);
    b.fill(y, 0.75f);
    b.fill(z, 0.f);
    return Tensors{y, z};
  };
  c.reference = [](const std::vector<Vec>& in) { return std::vector<Vec>{Vec(37, 0.75), Vec(37, 0.0)}; };
  c.exact = true;
  return c;
}

OpCase axpy_case() {
  OpCase c;
  c.name = "axpy/plain_scaled_and_in_place";
  c.ops = {Op::axpy, Op::axpy_scaled, Op::add};
  c.inputs = {Shape{3, 70001}, Shape{3, 70001}, Shape{1}};  // > 65536: the threaded path on the CPU
  c.run = [](Backend& b, const Tensors& in) {
    Tensor y = copy_of(in[1]), ys = copy_of(in[1]), sum = zeros_like(in[0]), twice = copy_of(in[0]);
    b.axpy(-0.5f, in[0], y);
    b.axpy_scaled(2.f, in[2], in[0], ys);
    b.add(in[0], in[1], sum);
    b.add(twice, twice, twice);  // in place: y aliases both inputs exactly
    return Tensors{y, ys, sum, twice};
  };
  c.reference = [](const std::vector<Vec>& in) {
    std::vector<Vec> out(4, Vec(in[0].size()));
    for (size_t i = 0; i < in[0].size(); ++i) {
      out[0][i] = in[1][i] - 0.5 * in[0][i];
      out[1][i] = in[1][i] + 2.0 * in[2][0] * in[0][i];
      out[2][i] = in[0][i] + in[1][i];
      out[3][i] = 2 * in[0][i];
    }
    return out;
  };
  c.tol = 1e-6;
  c.device_tol = 1e-6;
  return c;
}

// y (O, C, inner) = x + bias[c]; dbias = sum over o, i of dy.
OpCase bias_case(const char* name, int64_t O, int64_t C, int64_t inner) {
  OpCase c;
  c.name = std::string("bias/") + name;
  c.ops = {Op::add_bias, Op::bias_grad};
  c.inputs = {Shape{O, C, inner}, Shape{C}, Shape{O, C, inner}};
  c.run = [=](Backend& b, const Tensors& in) {
    Tensor y = copy_of(in[0]), db = zeros_like(in[1]);
    b.add_bias(y, in[1], inner);
    b.bias_grad(in[2], db, inner);
    return Tensors{y, db};
  };
  c.reference = [=](const std::vector<Vec>& in) {
    Vec y = in[0], db(C, 0.0);
    for (int64_t o = 0; o < O; ++o)
      for (int64_t ch = 0; ch < C; ++ch)
        for (int64_t i = 0; i < inner; ++i) {
          y[(o * C + ch) * inner + i] += in[1][ch];
          db[ch] += in[2][(o * C + ch) * inner + i];
        }
    return std::vector<Vec>{y, db};
  };
  c.grad = {2, {1}, {1}};
  return c;
}

CPC_OP_CASES({fill_case(), axpy_case(), bias_case("linear_inner1", 9, 13, 1), bias_case("conv_inner37", 3, 8, 37),
              bias_case("one_channel", 4, 1, 5)});

}  // namespace
}  // namespace cpc::ops_test
