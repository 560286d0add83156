// ops::linear: the forward and its backward node.
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "engine/core/flop_counter.h"
#include "engine/core/profiler.h"
#include "engine/ops/op_support.h"

namespace cpc::ops {

namespace {

struct LinearNode final : Node {
  Var *x, *w, *b, *y;
  int64_t rows;
  Precision precision;  // the forward's
  LinearNode(Var* x_, Var* w_, Var* b_, Var* y_, int64_t r, Precision p)
      : x(x_), w(w_), b(b_), y(y_), rows(r), precision(p) {}
  const char* name() const override { return "linear"; }
  void backward(Tape& tape) override {
    if (!y->grad.defined()) return;
    Backend& bk = be(y);
    const int64_t din = w->value.size(1), dout = w->value.size(0);
    const float* dy = y->grad.f32();
    if (wants_grad(x)) {
      bool acc;
      const Tensor& dx = tape.grad_to_write(x, acc);
      GemmArgs g;  // dx (rows, din) += dy (rows, dout) . w (dout, din); = on a first gradient
      g.m = rows, g.n = din, g.k = dout, g.beta = acc ? 1.f : 0.f, g.precision = precision;
      g.a = dy, g.lda = dout, g.b = w->value.f32(), g.ldb = din, g.c = dx.f32(), g.ldc = din;
      bk.gemm(g);
    }
    if (wants_grad(w)) {
      GemmArgs g;  // dw (dout, din) += dy^T (dout, rows) . x (rows, din)
      g.trans_a = true, g.m = dout, g.n = din, g.k = rows, g.beta = 1.f, g.precision = precision;
      g.a = dy, g.lda = dout, g.b = x->value.f32(), g.ldb = din, g.c = tape.grad(w).f32(), g.ldc = din;
      bk.gemm(g);
    }
    if (wants_grad(b)) bk.bias_grad(y->grad.reshape({rows, dout, 1}), tape.grad(b), 1);
  }
};

}  // namespace

Var* linear(Var* x, Var* w, Var* b) {
  check_var(x, "linear", "input");
  profiler::ProfileScope prof("linear", false, x->value.device());
  check_var(w, "linear", "weight");
  check_same_device(x, w, "linear");
  check_rank(w->value, 2, "linear weight", "(Dout, Din)");
  const int64_t din = w->value.size(1), dout = w->value.size(0);
  CPC_CHECK(x->value.rank() >= 1 && x->value.size(-1) == din, "linear: input ", x->value.shape(),
            " must end in Din = ", din, " (weight ", w->value.shape(), ")");
  if (b) {
    check_var(b, "linear", "bias");
    CPC_CHECK(b->value.rank() == 1 && b->value.size(0) == dout, "linear: bias ", b->value.shape(), " expected (", dout,
              ",)");
  }
  Tape& tape = Tape::current();
  const int64_t rows = x->value.numel() / din;
  Shape ys = x->value.shape();
  ys[ys.rank() - 1] = dout;
  Tensor y = tape.alloc(ys, x->value.device());
  GemmArgs g;  // y (rows, dout) = x (rows, din) . w^T
  g.trans_b = true, g.m = rows, g.n = dout, g.k = din, g.precision = tape.precision();
  g.a = x->value.f32(), g.lda = din, g.b = w->value.f32(), g.ldb = din, g.c = y.f32(), g.ldc = dout;
  be(x).gemm(g);
  FlopCount::add(2.0 * static_cast<double>(rows) * static_cast<double>(dout) * static_cast<double>(din));
  if (b) be(x).add_bias(y.reshape({rows, dout, 1}), b->value, 1);
  Var* out = tape.output(y, {x, w, b});
  if (out->requires_grad) tape.record<LinearNode>(x, w, b, out, rows, tape.precision());
  return out;
}

}  // namespace cpc::ops
