// ops::reshape: the forward and its backward node.
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "engine/core/flop_counter.h"
#include "engine/core/profiler.h"
#include "engine/ops/op_support.h"

namespace cpc::ops {

namespace {

struct ReshapeNode final : Node {
  Var *x, *y;
  ReshapeNode(Var* x_, Var* y_) : x(x_), y(y_) {}
  const char* name() const override { return "reshape"; }
  void backward(Tape& tape) override {
    if (!y->grad.defined() || !wants_grad(x)) return;
    // First gradient to reach x: share y's storage (a view, as the forward). y's gradient
    // is complete and no node reads it after this one; seeds and every other gradient are
    // the tape's own memory, and parameters always have their own gradient.
    if (!x->grad.defined()) {
      x->grad = y->grad.reshape(x->value.shape());
      return;
    }
    be(y).axpy(1.f, y->grad.reshape(x->value.shape()), tape.grad(x));
  }
};

}  // namespace

Var* reshape(Var* x, const Shape& shape) {
  check_var(x, "reshape", "input");
  profiler::ProfileScope prof("reshape", false, x->value.device());
  CPC_CHECK(shape.numel() == x->value.numel(), "reshape: cannot view ", x->value.shape(), " as ", shape);
  Tape& tape = Tape::current();
  Var* out = tape.output(x->value.reshape(shape), {x});
  if (out->requires_grad) tape.record<ReshapeNode>(x, out);
  return out;
}

}  // namespace cpc::ops
