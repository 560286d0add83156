// ops::pool: the forwards and their backward nodes.
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "engine/core/flop_counter.h"
#include "engine/core/profiler.h"
#include "engine/ops/op_support.h"

namespace cpc::ops {

namespace {

struct PoolNode final : Node {
  Var *x, *y;
  int dim;
  Tensor argmax;  // undefined for mean pooling
  PoolNode(Var* x_, Var* y_, int d, Tensor a) : x(x_), y(y_), dim(d), argmax(std::move(a)) {}
  const char* name() const override { return argmax.defined() ? "max_pool" : "mean_pool"; }
  void backward(Tape& tape) override {
    if (!y->grad.defined() || !wants_grad(x)) return;
    const Shape s = around(x->value.shape(), dim);
    Tensor dy = y->grad.reshape({s[0], s[2]});
    Tensor dx = tape.grad(x).reshape(s);
    if (argmax.defined())
      be(y).max_axis_backward(dy, argmax, dx);
    else
      be(y).mean_axis_backward(dy, dx);
  }
};


}  // namespace

static Var* pool(Var* x, int dim, bool max) {
  const char* op = max ? "max_pool" : "mean_pool";
  check_var(x, op, "input");
  profiler::ProfileScope prof(op, false, x->value.device(), bytes_of(x->value));
  check_rank(x->value, 3, op, "(B, T, D) or (B, C, L)");
  dim = normalize_dim(dim, 3, op);
  CPC_CHECK(dim != 0, op, ": pooling over the batch dim is not supported");
  const Shape s = around(x->value.shape(), dim);
  Shape ys = dim == 1 ? Shape{x->value.size(0), x->value.size(2)} : Shape{x->value.size(0), x->value.size(1)};
  Tape& tape = Tape::current();
  Tensor y = tape.alloc(ys, x->value.device());
  Tensor argmax;
  if (max) {
    argmax = tape.alloc(ys, x->value.device());  // indices stored as float (exact below 2^24)
    be(x).max_axis_forward(x->value.reshape(s), y.reshape({s[0], s[2]}), argmax);
  } else {
    be(x).mean_axis_forward(x->value.reshape(s), y.reshape({s[0], s[2]}));
  }
  Var* out = tape.output(y, {x});
  if (out->requires_grad) tape.record<PoolNode>(x, out, dim, max ? argmax.reshape({s[0], s[2]}) : Tensor());
  return out;
}

Var* mean_pool(Var* x, int dim) { return pool(x, dim, false); }
Var* max_pool(Var* x, int dim) { return pool(x, dim, true); }

}  // namespace cpc::ops
