// ops::dropout: the forward and its backward node.
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "engine/core/flop_counter.h"
#include "engine/core/profiler.h"
#include "engine/ops/op_support.h"

namespace cpc::ops {

namespace {

struct DropoutNode final : Node {
  Var *x, *y;
  float p;
  uint64_t seed;
  DropoutNode(Var* x_, Var* y_, float p_, uint64_t s) : x(x_), y(y_), p(p_), seed(s) {}
  const char* name() const override { return "dropout"; }
  void backward(Tape& tape) override {
    if (y->grad.defined() && wants_grad(x)) be(y).dropout_backward(y->grad, p, seed, tape.grad(x));
  }
};

}  // namespace

Var* dropout(Var* x, float p, uint64_t seed) {
  check_var(x, "dropout", "input");
  profiler::ProfileScope prof("dropout", false, x->value.device(), 2 * bytes_of(x->value));
  CPC_CHECK(p >= 0.f && p < 1.f, "dropout: probability ", p, " must be in [0, 1)");
  if (p == 0.f) return x;
  Tape& tape = Tape::current();
  Tensor y = tape.alloc(x->value.shape(), x->value.device());
  be(x).dropout_forward(x->value, p, seed, y);
  Var* out = tape.output(y, {x});
  if (out->requires_grad) tape.record<DropoutNode>(x, out, p, seed);
  return out;
}

}  // namespace cpc::ops
