// ops::add: the forward and its backward node.
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "engine/core/flop_counter.h"
#include "engine/core/profiler.h"
#include "engine/ops/op_support.h"

namespace cpc::ops {

namespace {

struct AddNode final : Node {
  Var *a, *b, *y;
  AddNode(Var* a_, Var* b_, Var* y_) : a(a_), b(b_), y(y_) {}
  const char* name() const override { return "add"; }
  void backward(Tape& tape) override {
    if (!y->grad.defined()) return;
    if (wants_grad(a)) be(y).axpy(1.f, y->grad, tape.grad(a));
    if (wants_grad(b)) be(y).axpy(1.f, y->grad, tape.grad(b));
  }
};

}  // namespace

Var* add(Var* a, Var* b) {
  check_var(a, "add", "first input");
  profiler::ProfileScope prof("add", false, a->value.device(), 3 * bytes_of(a->value));
  check_var(b, "add", "second input");
  check_same_device(a, b, "add");
  check_same_shape(a->value, b->value, "add");
  Tape& tape = Tape::current();
  Tensor y = tape.alloc(a->value.shape(), a->value.device());
  be(a).add(a->value, b->value, y);
  Var* out = tape.output(y, {a, b});
  if (out->requires_grad) tape.record<AddNode>(a, b, out);
  return out;
}

}  // namespace cpc::ops
