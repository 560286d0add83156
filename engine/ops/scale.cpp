// ops::scale: the forward and its backward node.
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "engine/core/flop_counter.h"
#include "engine/core/profiler.h"
#include "engine/ops/op_support.h"

namespace cpc::ops {

namespace {

struct ScaleNode final : Node {
  Var *x, *y;
  float alpha;
  ScaleNode(Var* x_, Var* y_, float a) : x(x_), y(y_), alpha(a) {}
  const char* name() const override { return "scale"; }
  void backward(Tape& tape) override {
    if (y->grad.defined() && wants_grad(x)) be(y).axpy(alpha, y->grad, tape.grad(x));
  }
};

}  // namespace

Var* scale(Var* x, float alpha) {
  check_var(x, "scale", "input");
  profiler::ProfileScope prof("scale", false, x->value.device(), 2 * bytes_of(x->value));
  Tape& tape = Tape::current();
  Tensor y = tape.zeros(x->value.shape(), x->value.device());
  be(x).axpy(alpha, x->value, y);
  Var* out = tape.output(y, {x});
  if (out->requires_grad) tape.record<ScaleNode>(x, out, alpha);
  return out;
}

}  // namespace cpc::ops
