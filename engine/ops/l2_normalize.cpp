// ops::l2_normalize: the forward and its backward node.
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "engine/core/flop_counter.h"
#include "engine/core/profiler.h"
#include "engine/ops/op_support.h"

namespace cpc::ops {

namespace {

struct NormalizeNode final : Node {
  Var *x, *y;
  float eps;
  NormalizeNode(Var* x_, Var* y_, float e) : x(x_), y(y_), eps(e) {}
  const char* name() const override { return "l2_normalize"; }
  void backward(Tape& tape) override {
    if (y->grad.defined() && wants_grad(x)) be(y).l2_normalize_backward(x->value, y->grad, eps, tape.grad(x));
  }
};

}  // namespace

Var* l2_normalize(Var* x, float eps) {
  check_var(x, "l2_normalize", "input");
  profiler::ProfileScope prof("l2_normalize", false, x->value.device(), 2 * bytes_of(x->value));
  check_rank(x->value, 2, "l2_normalize input", "(N, D)");
  CPC_CHECK(eps > 0.f, "l2_normalize: eps must be > 0, found ", eps);
  Tape& tape = Tape::current();
  Tensor y = tape.alloc(x->value.shape(), x->value.device());
  be(x).l2_normalize_forward(x->value, eps, y);
  Var* out = tape.output(y, {x});
  if (out->requires_grad) tape.record<NormalizeNode>(x, out, eps);
  return out;
}

}  // namespace cpc::ops
