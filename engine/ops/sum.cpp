// ops::sum: the forward and its backward node.
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "engine/core/flop_counter.h"
#include "engine/core/profiler.h"
#include "engine/ops/op_support.h"

namespace cpc::ops {

namespace {

struct SumNode final : Node {
  Var *x, *s;
  SumNode(Var* x_, Var* s_) : x(x_), s(s_) {}
  const char* name() const override { return "sum"; }
  void backward(Tape& tape) override {
    if (!s->grad.defined() || !wants_grad(x)) return;
    Tensor ones = tape.alloc(x->value.shape(), x->value.device());
    be(x).fill(ones, 1.f);
    be(x).axpy_scaled(1.f, s->grad, ones, tape.grad(x));
  }
};

}  // namespace

Var* sum(Var* x) {
  check_var(x, "sum", "input");
  profiler::ProfileScope prof("sum", false, x->value.device(), bytes_of(x->value));
  Tape& tape = Tape::current();
  Tensor s = tape.alloc({}, x->value.device());
  be(x).fill(s, static_cast<float>(be(x).sum(x->value)));
  Var* out = tape.output(s, {x});
  if (out->requires_grad) tape.record<SumNode>(x, out);
  return out;
}

}  // namespace cpc::ops
