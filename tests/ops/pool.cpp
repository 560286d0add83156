// mean_axis / max_axis (mean and max pooling over the middle axis of (O, N, I)) and
// their backwards; max pooling on distinct values so that no finite difference moves
// the argmax.
#include "tests/ops/op_case.h"

namespace cpc::ops_test {
namespace {

OpCase mean_case(const char* name, int64_t O, int64_t N, int64_t I) {
  OpCase c;
  c.name = std::string("mean_axis/") + name;
  c.ops = {Op::mean_axis_forward, Op::mean_axis_backward};
  c.inputs = {Shape{O, N, I}, Shape{O, I}};
  c.run = [=](Backend& b, const Tensors& in) {
    Tensor y = Tensor::zeros({O, I}, in[0].device()), dx = zeros_like(in[0]);
    b.mean_axis_forward(in[0], y);
    b.mean_axis_backward(in[1], dx);
    return Tensors{y, dx};
  };
  c.reference = [=](const std::vector<Vec>& in) {
    Vec y(O * I, 0.0), dx(in[0].size());
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < I; ++i) {
        for (int64_t n = 0; n < N; ++n) y[o * I + i] += in[0][(o * N + n) * I + i] / N;
        for (int64_t n = 0; n < N; ++n) dx[(o * N + n) * I + i] = in[1][o * I + i] / N;
      }
    return std::vector<Vec>{y, dx};
  };
  c.tol = 1e-6;
  c.device_tol = 1e-6;
  c.grad = {1, {0}, {1}};
  return c;
}

OpCase max_case(const char* name, int64_t O, int64_t N, int64_t I) {
  OpCase c;
  c.name = std::string("max_axis/") + name;
  c.ops = {Op::max_axis_forward, Op::max_axis_backward};
  c.inputs = {Shape{O, N, I}, Shape{O, I}};
  c.kinds = {Inputs::distinct, Inputs::uniform};
  c.run = [=](Backend& b, const Tensors& in) {
    Tensor y = Tensor::zeros({O, I}, in[0].device()), arg = zeros_like(y), dx = zeros_like(in[0]);
    b.max_axis_forward(in[0], y, arg);
    b.max_axis_backward(in[1], arg, dx);
    return Tensors{y, dx, arg};
  };
  c.reference = [=](const std::vector<Vec>& in) {
    Vec y(O * I), dx(in[0].size(), 0.0), arg(O * I);
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < I; ++i) {
        int64_t best = 0;
        for (int64_t n = 1; n < N; ++n)
          if (in[0][(o * N + n) * I + i] > in[0][(o * N + best) * I + i]) best = n;
        y[o * I + i] = in[0][(o * N + best) * I + i];
        arg[o * I + i] = static_cast<double>(best);
        dx[(o * N + best) * I + i] = in[1][o * I + i];
      }
    return std::vector<Vec>{y, dx, arg};
  };
  c.exact = true;
  c.grad = {1, {0}, {1}};
  c.grad.eps = 1e-2;  // distinct inputs are 0.05 apart
  return c;
}

CPC_OP_CASES({mean_case("time", 3, 17, 8), mean_case("single_step", 2, 1, 5), max_case("time", 3, 11, 6),
              max_case("channels_last", 2, 5, 1)});

}  // namespace
}  // namespace cpc::ops_test
