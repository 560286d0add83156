// narrow_forward / narrow_backward: a slice of the middle axis of (O, N, I) and the
// gradient added back into it, at the start, the middle and the end.
#include "tests/ops/op_case.h"

namespace cpc::ops_test {
namespace {

OpCase narrow_case(const char* name, int64_t O, int64_t N, int64_t I, int64_t start, int64_t len) {
  OpCase c;
  c.name = std::string("narrow/") + name;
  c.ops = {Op::narrow_forward, Op::narrow_backward};
  c.inputs = {Shape{O, N, I}, Shape{O, len, I}};
  c.run = [=](Backend& b, const Tensors& in) {
    Tensor y = Tensor::zeros({O, len, I}, in[0].device()), dx = zeros_like(in[0]);
    b.narrow_forward(in[0], start, y);
    b.narrow_backward(in[1], start, dx);
    return Tensors{y, dx};
  };
  c.reference = [=](const std::vector<Vec>& in) {
    Vec y(in[1].size()), dx(in[0].size(), 0.0);
    for (int64_t o = 0; o < O; ++o)
      for (int64_t t = 0; t < len; ++t)
        for (int64_t i = 0; i < I; ++i) {
          y[(o * len + t) * I + i] = in[0][(o * N + start + t) * I + i];
          dx[(o * N + start + t) * I + i] = in[1][(o * len + t) * I + i];
        }
    return std::vector<Vec>{y, dx};
  };
  c.exact = true;
  c.grad = {1, {0}, {1}};
  return c;
}

CPC_OP_CASES({narrow_case("start", 3, 10, 7, 0, 4), narrow_case("middle", 2, 12, 33, 5, 3),
              narrow_case("end_whole_rows", 4, 9, 1, 8, 1)});

}  // namespace
}  // namespace cpc::ops_test
