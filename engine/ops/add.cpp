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
    if (a == b) {
      if (wants_grad(a)) be(y).axpy(2.f, y->grad, tape.grad(a));
      return;
    }
    // The first input without a gradient yet takes y's own (shared storage, as reshape's:
    // y's gradient is complete and no node reads it after this one); a second one gets a
    // copy, so that adding into one later never changes the other.
    bool shared = false;
    for (Var* v : {a, b}) {
      if (!wants_grad(v)) continue;
      if (v->grad.defined()) {
        be(y).axpy(1.f, y->grad, v->grad);
      } else if (!shared) {
        v->grad = y->grad;
        shared = true;
      } else {
        bool acc;
        const Tensor& dv = tape.grad_to_write(v, acc);
        be(y).copy(dv.raw(), dv.device(), y->grad.raw(), y->grad.device(), y->grad.nbytes());
      }
    }
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
