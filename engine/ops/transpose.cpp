// ops::transpose: the forwards and their backward nodes.
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "engine/core/flop_counter.h"
#include "engine/core/profiler.h"
#include "engine/ops/op_support.h"

namespace cpc::ops {

namespace {

// x viewed as (O, M, N, I) around the adjacent dims (d, d + 1).
struct Around {
  int64_t O = 1, M = 1, N = 1, I = 1;
};
Around around_pair(const Shape& s, int d) {
  Around a;
  for (int k = 0; k < d; ++k) a.O *= s[k];
  a.M = s[d], a.N = s[d + 1];
  for (int k = d + 2; k < s.rank(); ++k) a.I *= s[k];
  return a;
}

struct TransposeNode final : Node {
  Var *x, *y;
  int d;  // the first of the two swapped dims
  TransposeNode(Var* x_, Var* y_, int d_) : x(x_), y(y_), d(d_) {}
  const char* name() const override { return "transpose"; }
  void backward(Tape& tape) override {
    if (!y->grad.defined() || !wants_grad(x)) return;
    const Around a = around_pair(y->value.shape(), d);  // y's (O, N, M, I) -> back to x's layout
    bool acc;
    const Tensor& dx = tape.grad_to_write(x, acc);
    be(y).transpose(y->grad, a.O, a.M, a.N, a.I, dx, acc ? 1.f : 0.f);
  }
};

}  // namespace

Var* transpose(Var* x, int dim0, int dim1) {
  check_var(x, "transpose", "input");
  profiler::ProfileScope prof("transpose", false, x->value.device(), 2 * bytes_of(x->value));
  const Shape& s = x->value.shape();
  const int r = s.rank();
  dim0 = normalize_dim(dim0, r, "transpose");
  dim1 = normalize_dim(dim1, r, "transpose");
  const int d = std::min(dim0, dim1);
  CPC_CHECK(std::max(dim0, dim1) == d + 1, "transpose: dims ", dim0, " and ", dim1, " of ", s,
            " must be adjacent (swap adjacent pairs one at a time)");
  Shape ys = s;
  std::swap(ys[d], ys[d + 1]);
  Tape& tape = Tape::current();
  Tensor y = tape.alloc(ys, x->value.device());
  const Around a = around_pair(s, d);
  be(x).transpose(x->value, a.O, a.M, a.N, a.I, y, 0.f);
  Var* out = tape.output(y, {x});
  if (out->requires_grad) tape.record<TransposeNode>(x, out, d);
  return out;
}

}  // namespace cpc::ops
