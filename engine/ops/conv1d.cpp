// ops::conv1d: the forward and its backward node.
#include <algorithm>
#include <array>
#include <cmath>
#include <utility>
#include <vector>

#include "engine/core/flop_counter.h"
#include "engine/core/profiler.h"
#include "engine/ops/op_support.h"

namespace cpc::ops {

namespace {

struct Conv1dNode final : Node {
  Var *x, *w, *b, *y;
  Conv1dGeometry g;
  Conv1dSaved saved;  // what the backend's forward left for this backward (often nothing)
  Conv1dNode(Var* x_, Var* w_, Var* b_, Var* y_, Conv1dGeometry g_, Conv1dSaved s_)
      : x(x_), w(w_), b(b_), y(y_), g(g_), saved(std::move(s_)) {}
  const char* name() const override { return "conv1d"; }
  void backward(Tape& tape) override {
    if (!y->grad.defined()) return;
    Backend& bk = be(y);
    if (wants_grad(x)) {
      bool acc;
      const Tensor& dx = tape.grad_to_write(x, acc);
      bk.conv1d_backward_data(y->grad, w->value, g, dx, acc, &saved);
    }
    Tensor db = grad_or_none(tape, b);
    if (wants_grad(w)) {
      bk.conv1d_backward_weights(x->value, y->grad, g, tape.grad(w), db.defined() ? &db : nullptr, &saved);
    } else if (db.defined()) {
      bk.bias_grad(y->grad, db, g.channels_last ? 1 : y->value.size(2));
    }
  }
};

}  // namespace

Var* conv1d(Var* x, Var* w, Var* b, const Conv1dGeometry& g) {
  check_var(x, "conv1d", "input");
  if (g.channels_last && !be(x).conv1d_channels_last()) {
    // This backend's kernels take (B, C, L): the same convolution between two transposes.
    Conv1dGeometry gc = g;
    gc.channels_last = false;
    return transpose(conv1d(transpose(x, 1, 2), w, b, gc), 1, 2);
  }
  profiler::ProfileScope prof("conv1d", false, x->value.device());
  check_var(w, "conv1d", "weight");
  check_same_device(x, w, "conv1d");
  const bool cl = g.channels_last;
  check_rank(x->value, 3, "conv1d input", cl ? "(B, L, Cin)" : "(B, Cin, L)");
  check_rank(w->value, 3, "conv1d weight", "(Cout, Cin, K)");
  CPC_CHECK(g.stride >= 1 && g.dilation >= 1 && g.padding >= 0, "conv1d: stride ", g.stride, ", dilation ", g.dilation,
            " must be >= 1 and padding ", g.padding, " >= 0");
  const int64_t len = x->value.size(cl ? 1 : 2);
  const int64_t lout = g.out_length(len, w->value.size(2));
  CPC_CHECK(lout >= 1, "conv1d: input length ", len, " is too short for kernel ", w->value.size(2), " (dilation ",
            g.dilation, ", padding ", g.padding, ")");
  if (b) check_var(b, "conv1d", "bias");
  // Channels and the bias's size are the front's checks; the geometry is checked here
  // because it sizes the output.
  Tape& tape = Tape::current();
  Conv1dGeometry gs = g;
  gs.precision = tape.precision();  // the step's arithmetic; the node keeps it for backward
  const int64_t B = x->value.size(0), cout = w->value.size(0);
  Tensor y = tape.alloc(cl ? Shape{B, lout, cout} : Shape{B, cout, lout}, x->value.device());
  // Space for what the forward leaves its backward, from the step's memory, when there
  // will be a backward.
  Conv1dSaved saved;
  if (Tape::records({x, w, b})) {
    const int64_t bytes = be(x).conv1d_saved_bytes(x->value, w->value, gs, y);
    if (bytes > 0) saved.space = tape.alloc(Shape{(bytes + 3) / 4}, x->value.device());
  }
  be(x).conv1d_forward(x->value, w->value, b ? &b->value : nullptr, gs, y, &saved);
  FlopCount::add(2.0 * static_cast<double>(y.numel()) * static_cast<double>(w->value.size(1) * w->value.size(2)));
  Var* out = tape.output(y, {x, w, b});
  if (out->requires_grad) tape.record<Conv1dNode>(x, w, b, out, gs, std::move(saved));
  return out;
}

}  // namespace cpc::ops
