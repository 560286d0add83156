// ops::gelu: the forward and its backward node.
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "engine/core/flop_counter.h"
#include "engine/core/profiler.h"
#include "engine/ops/op_support.h"

namespace cpc::ops {

namespace {

struct GeluNode final : Node {
  Var *x, *y;
  GeluNode(Var* x_, Var* y_) : x(x_), y(y_) {}
  const char* name() const override { return "gelu"; }
  void backward(Tape& tape) override {
    if (y->grad.defined() && wants_grad(x)) be(y).gelu_backward(x->value, y->grad, tape.grad(x));
  }
};

}  // namespace

Var* gelu(Var* x) {
  check_var(x, "gelu", "input");
  profiler::ProfileScope prof("gelu", false, x->value.device(), 2 * bytes_of(x->value));
  Tape& tape = Tape::current();
  Tensor y = tape.alloc(x->value.shape(), x->value.device());
  be(x).gelu_forward(x->value, y);
  Var* out = tape.output(y, {x});
  if (out->requires_grad) tape.record<GeluNode>(x, out);
  return out;
}

}  // namespace cpc::ops
