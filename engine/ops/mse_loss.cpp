// ops::mse_loss: the forward and its backward node.
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "engine/core/flop_counter.h"
#include "engine/core/profiler.h"
#include "engine/ops/op_support.h"

namespace cpc::ops {

namespace {

struct MseNode final : Node {
  Var *y, *loss;
  Tensor diff;
  MseNode(Var* y_, Var* l, Tensor d) : y(y_), loss(l), diff(std::move(d)) {}
  const char* name() const override { return "mse_loss"; }
  void backward(Tape& tape) override {
    if (!loss->grad.defined() || !wants_grad(y)) return;
    be(y).axpy_scaled(static_cast<float>(2.0 / static_cast<double>(diff.numel())), loss->grad, diff, tape.grad(y));
  }
};

}  // namespace

Var* mse_loss(Var* y, const Tensor& target) {
  check_var(y, "mse_loss", "input");
  profiler::ProfileScope prof("mse_loss", false, y->value.device(), 2 * bytes_of(y->value));
  check_same_shape(y->value, target, "mse_loss");
  Tape& tape = Tape::current();
  Tensor diff = tape.alloc(y->value.shape(), y->value.device());
  diff.copy_from(y->value);
  be(y).axpy(-1.f, target, diff);
  const double ss = be(y).sum_squares(diff);
  Tensor l = tape.alloc({}, y->value.device());
  be(y).fill(l, static_cast<float>(ss / static_cast<double>(diff.numel())));
  Var* out = tape.output(l, {y});
  if (out->requires_grad) tape.record<MseNode>(y, out, diff);
  return out;
}

}  // namespace cpc::ops
