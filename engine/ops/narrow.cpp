// ops::narrow: the forwards and their backward nodes.
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "engine/core/flop_counter.h"
#include "engine/core/profiler.h"
#include "engine/ops/op_support.h"

namespace cpc::ops {

namespace {

struct NarrowNode final : Node {
  Var *x, *y;
  int dim;
  int64_t start;
  NarrowNode(Var* x_, Var* y_, int d, int64_t s) : x(x_), y(y_), dim(d), start(s) {}
  const char* name() const override { return "narrow"; }
  void backward(Tape& tape) override {
    if (!y->grad.defined() || !wants_grad(x)) return;
    be(y).narrow_backward(y->grad.reshape(around(y->value.shape(), dim)), start,
                          tape.grad(x).reshape(around(x->value.shape(), dim)));
  }
};

// A leading-dim slice is a view: no copy forward, its gradient added into the slice.
struct SliceViewNode final : Node {
  Var *x, *y;
  int64_t start;
  SliceViewNode(Var* x_, Var* y_, int64_t s) : x(x_), y(y_), start(s) {}
  const char* name() const override { return "slice"; }
  void backward(Tape& tape) override {
    if (y->grad.defined() && wants_grad(x))
      be(y).axpy(1.f, y->grad, tape.grad(x).slice(start, start + y->value.size(0)));
  }
};

}  // namespace

Var* narrow(Var* x, int dim, int64_t start, int64_t length) {
  check_var(x, "narrow", "input");
  profiler::ProfileScope prof("narrow", false, x->value.device());
  dim = normalize_dim(dim, x->value.rank(), "narrow");
  CPC_CHECK(start >= 0 && length >= 1 && start + length <= x->value.size(dim), "narrow: [", start, ", ", start + length,
            ") out of range for dim ", dim, " of ", x->value.shape());
  Tape& tape = Tape::current();
  if (dim == 0) {  // contiguous rows: a view
    Var* out = tape.output(x->value.slice(start, start + length), {x});
    if (out->requires_grad) tape.record<SliceViewNode>(x, out, start);
    return out;
  }
  Shape ys = x->value.shape();
  ys[dim] = length;
  Tensor y = tape.alloc(ys, x->value.device());
  be(x).narrow_forward(x->value.reshape(around(x->value.shape(), dim)), start, y.reshape(around(ys, dim)));
  Var* out = tape.output(y, {x});
  if (out->requires_grad) tape.record<NarrowNode>(x, out, dim, start);
  return out;
}

Var* select(Var* x, int dim, int64_t index) {
  check_var(x, "select", "input");
  profiler::ProfileScope prof("slice", false, x->value.device());
  dim = normalize_dim(dim, x->value.rank(), "select");
  CPC_CHECK(0 <= index && index < x->value.size(dim), "select: index ", index, " out of range for dim ", dim, " of ",
            x->value.shape());
  Var* n = narrow(x, dim, index, 1);
  const Shape& s = n->value.shape();
  Shape out;
  if (s.rank() == 2)
    out = dim == 0 ? Shape{s[1]} : Shape{s[0]};
  else if (s.rank() == 3)
    out = dim == 0 ? Shape{s[1], s[2]} : dim == 1 ? Shape{s[0], s[2]} : Shape{s[0], s[1]};
  else if (s.rank() == 4) {
    int64_t d[3], k = 0;
    for (int i = 0; i < 4; ++i)
      if (i != dim) d[k++] = s[i];
    out = Shape{d[0], d[1], d[2]};
  } else {
    out = Shape{};
  }
  return reshape(n, out);
}

}  // namespace cpc::ops
