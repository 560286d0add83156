// ops::contrastive_loss: the forward and its backward node.
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "engine/core/flop_counter.h"
#include "engine/core/profiler.h"
#include "engine/ops/op_support.h"

namespace cpc::ops {

namespace {

// The kernel produced d(loss)/da and d(loss)/dc during forward (its tiles hold whole
// rows, so nothing needs recomputing); backward scales them by the upstream gradient.
struct ContrastiveNode final : Node {
  Var *a, *c, *loss;
  Tensor da, dc;  // dc undefined when a and c are one Var (da holds the sum)
  ContrastiveNode(Var* a_, Var* c_, Var* l, Tensor da_, Tensor dc_)
      : a(a_), c(c_), loss(l), da(std::move(da_)), dc(std::move(dc_)) {}
  const char* name() const override { return "contrastive_loss"; }
  void backward(Tape& tape) override {
    if (!loss->grad.defined()) return;
    // The upstream gradient stays on the device (no host read inside backward).
    if (wants_grad(a)) be(a).axpy_scaled(1.f, loss->grad, da, tape.grad(a));
    if (a != c && wants_grad(c)) be(c).axpy_scaled(1.f, loss->grad, dc, tape.grad(c));
  }
};

}  // namespace

Var* contrastive_loss(Var* a, Var* c, const ContrastiveSpec& spec, ContrastiveStats* stats) {
  check_var(a, "contrastive_loss", "anchors");
  profiler::ProfileScope prof("contrastive_loss", false, a->value.device());
  check_var(c, "contrastive_loss", "candidates");
  check_same_device(a, c, "contrastive_loss");
  check_rank(a->value, 2, "contrastive_loss anchors", "(R, D)");
  check_rank(c->value, 2, "contrastive_loss candidates", "(M, D)");
  // The spec and the shapes are checked by the backend's front (backend_checks_layers.cpp).
  Tape& tape = Tape::current();
  const bool grad = GradMode::enabled() && (a->requires_grad || c->requires_grad);
  Tensor da, dc;
  if (grad) {
    da = tape.alloc(a->value.shape(), a->value.device());
    dc = a == c ? da : tape.alloc(c->value.shape(), c->value.device());
  }
  const ContrastiveStats st = be(a).contrastive_forward(a->value, c->value, spec, da, dc);
  const int64_t R = a->value.size(0), M = c->value.size(0);
  const int64_t per_row = spec.row_candidates ? spec.candidates_per_row : M / spec.blocks;
  FlopCount::add(2.0 * static_cast<double>(R) * static_cast<double>(per_row) *
                 static_cast<double>(a->value.size(1)));  // the scores of each row's candidates
  if (stats) *stats = st;
  Tensor l = tape.alloc({}, a->value.device());
  be(a).fill(l, static_cast<float>(st.loss));
  Var* out = tape.output(l, {a, c});
  if (out->requires_grad) tape.record<ContrastiveNode>(a, c, out, da, a == c ? Tensor() : dc);
  return out;
}

}  // namespace cpc::ops
