// transpose: swapping two adjacent axes of x viewed as (O, M, N, I), with and without
// accumulation (beta), the last two axes (I = 1), the first two (O = 1) and a general
// 4-D case; finite differences through the forward/backward pair.
#include "tests/ops/op_case.h"

namespace cpc::ops_test {
namespace {

OpCase transpose_case(const char* name, int64_t O, int64_t M, int64_t N, int64_t I, float beta) {
  OpCase c;
  c.name = std::string("transpose/") + name;
  c.ops = {Op::transpose};
  c.inputs = {Shape{O, M, N, I}, Shape{O, N, M, I}, Shape{O, N, M, I}};  // x, y0 (for beta), dy
  c.run = [=](Backend& b, const Tensors& in) {
    Tensor y = copy_of(in[1]), dx = zeros_like(in[0]);
    if (beta == 0.f) b.fill(y, 0.f);
    b.transpose(in[0], O, M, N, I, y, beta);
    b.transpose(in[2], O, N, M, I, dx, 1.f);  // the backward: swap back, accumulating
    return Tensors{y, dx};
  };
  c.reference = [=](const std::vector<Vec>& in) {
    Vec y = in[1], dx(in[0].size(), 0.0);
    for (int64_t o = 0; o < O; ++o)
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n)
          for (int64_t i = 0; i < I; ++i) {
            const int64_t xi = ((o * M + m) * N + n) * I + i, yi = ((o * N + n) * M + m) * I + i;
            y[yi] = in[0][xi] + (beta == 0.f ? 0.0 : beta * in[1][yi]);
            dx[xi] = in[2][yi];
          }
    return std::vector<Vec>{y, dx};
  };
  c.tol = 1e-6;
  c.device_tol = 1e-6;
  if (beta == 0.f) c.grad = {2, {0}, {1}};
  return c;
}

CPC_OP_CASES({
    transpose_case("last2", 3, 37, 45, 1, 0.f),
    transpose_case("last2_accumulate", 2, 64, 33, 1, 1.f),
    transpose_case("first2", 1, 12, 5, 16, 0.f),
    transpose_case("middle_4d", 2, 3, 7, 5, 0.f),
    transpose_case("unit_axis", 4, 1, 9, 1, 0.f),
});

}  // namespace
}  // namespace cpc::ops_test
