// sum, sum_squares and sum_squares_multi (the gradient norm): double results against
// double sums.
#include "tests/ops/op_case.h"

namespace cpc::ops_test {
namespace {

OpCase sums_case(const char* name, Shape a, Shape b2) {
  OpCase c;
  c.name = std::string("sum/") + name;
  c.ops = {Op::sum, Op::sum_squares, Op::sum_squares_multi};
  c.inputs = {a, b2};
  c.run = [](Backend& b, const Tensors& in) {
    return Tensors{scalar(b.sum(in[0])), scalar(b.sum_squares(in[0])), scalar(b.sum_squares_multi(in)),
                   scalar(b.sum_squares_multi({}))};
  };
  c.reference = [](const std::vector<Vec>& in) {
    double s = 0, ss = 0, ss2 = 0;
    for (double v : in[0]) s += v, ss += v * v;
    for (double v : in[1]) ss2 += v * v;
    return std::vector<Vec>{{s}, {ss}, {ss + ss2}, {0.0}};
  };
  c.tol = 1e-6;  // double sums, returned through a float
  c.device_tol = 1e-6;
  return c;
}

CPC_OP_CASES({sums_case("small", Shape{7}, Shape{3, 3}), sums_case("threaded", Shape{300001}, Shape{1000, 70})});

}  // namespace
}  // namespace cpc::ops_test
