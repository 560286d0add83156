// ops::relu: the forward and its backward node.
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "engine/core/flop_counter.h"
#include "engine/core/profiler.h"
#include "engine/ops/op_support.h"

namespace cpc::ops {

namespace {

struct ReluNode final : Node {
  Var *x, *y;
  ReluNode(Var* x_, Var* y_) : x(x_), y(y_) {}
  const char* name() const override { return "relu"; }
  void backward(Tape& tape) override {
    if (!y->grad.defined() || !wants_grad(x)) return;
    bool acc;
    const Tensor& dx = tape.grad_to_write(x, acc);
    be(y).relu_backward(y->value, y->grad, dx, acc);
  }
};

}  // namespace

Var* relu(Var* x) {
  check_var(x, "relu", "input");
  profiler::ProfileScope prof("relu", false, x->value.device(), 2 * bytes_of(x->value));
  Tape& tape = Tape::current();
  Tensor y = tape.alloc(x->value.shape(), x->value.device());
  be(x).relu_forward(x->value, y);
  Var* out = tape.output(y, {x});
  if (out->requires_grad) tape.record<ReluNode>(x, out);
  return out;
}

}  // namespace cpc::ops
