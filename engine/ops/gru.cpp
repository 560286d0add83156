// ops::gru: the forward and its backward node.
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "engine/core/flop_counter.h"
#include "engine/core/profiler.h"
#include "engine/ops/op_support.h"

namespace cpc::ops {

namespace {

constexpr int kMaxGruLayers = 8;

struct GruNode final : Node {
  struct Layer {
    GruLayerParams p;
    Tensor x, h0, y, reserve;
  };
  std::array<Layer, kMaxGruLayers> layers;
  int num_layers = 0;
  Var *input, *h0, *out, *h_n;
  Precision precision;  // the forward's
  GruNode(Var* in, Var* h, Var* o, Var* hn, Precision p) : input(in), h0(h), out(o), h_n(hn), precision(p) {}
  const char* name() const override { return "gru"; }
  void backward(Tape& tape) override {
    if (!out->grad.defined() && !h_n->grad.defined()) return;
    Backend& bk = be(out);
    const Tensor& y_last = layers[num_layers - 1].y;
    Tensor dy = out->grad.defined() ? out->grad : tape.zeros(y_last.shape(), y_last.device());
    for (int l = num_layers - 1; l >= 0; --l) {
      Layer& L = layers[l];
      const Shape bh{L.y.size(0), L.y.size(2)};
      Tensor dh_n = h_n->grad.defined() ? h_n->grad.slice(l, l + 1).reshape(bh) : Tensor();
      Tensor dx;
      if (l > 0)
        dx = tape.zeros(L.x.shape(), L.x.device());
      else if (wants_grad(input))
        dx = tape.grad(input);
      Tensor dh0 = wants_grad(h0) ? tape.grad(h0).slice(l, l + 1).reshape(bh) : Tensor();
      bk.gru_layer_backward(L.x, L.h0, L.p.w_ih->value, L.p.w_hh->value, L.y, L.reserve, dy, dh_n, dx, dh0,
                            grad_or_none(tape, L.p.w_ih), grad_or_none(tape, L.p.w_hh), grad_or_none(tape, L.p.b_ih),
                            grad_or_none(tape, L.p.b_hh), precision);
      dy = dx;
    }
  }
};

}  // namespace

GruOutput gru(Var* x, Var* h0, const std::vector<GruLayerParams>& layers) {
  check_var(x, "gru", "input");
  profiler::ProfileScope prof("gru", false, x->value.device());
  check_rank(x->value, 3, "gru input", "(B, T, Din)");
  const int n = static_cast<int>(layers.size());
  CPC_CHECK(n >= 1 && n <= kMaxGruLayers, "gru: ", n, " layers, expected 1..", kMaxGruLayers);
  const int64_t B = x->value.size(0), T = x->value.size(1);
  const int64_t H = layers[0].w_hh->value.size(1);
  CPC_CHECK(T >= 1, "gru: input ", x->value.shape(), " has no time steps");
  if (h0) {
    check_var(h0, "gru", "h0");
    CPC_CHECK(h0->value.shape() == Shape({n, B, H}), "gru: h0 ", h0->value.shape(), " expected ", Shape({n, B, H}));
  }
  Tape& tape = Tape::current();
  const Device dev = x->value.device();
  Tensor h_n = tape.alloc({n, B, H}, dev);
  Tensor in = x->value;
  GruNode node(x, h0, nullptr, nullptr, tape.precision());
  node.num_layers = n;
  for (int l = 0; l < n; ++l) {
    const GruLayerParams& p = layers[l];
    const int64_t din = in.size(2);
    CPC_CHECK(p.w_ih->value.shape() == Shape({3 * H, din}), "gru: weight_ih_l", l, " ", p.w_ih->value.shape(),
              " expected ", Shape({3 * H, din}));
    CPC_CHECK(p.w_hh->value.shape() == Shape({3 * H, H}), "gru: weight_hh_l", l, " ", p.w_hh->value.shape(),
              " expected ", Shape({3 * H, H}));
    CPC_CHECK(p.b_ih->value.numel() == 3 * H && p.b_hh->value.numel() == 3 * H, "gru: biases of layer ", l, " need ",
              3 * H, " values");
    check_same_device(x, p.w_ih, "gru");
    Tensor y = tape.alloc({B, T, H}, dev);
    Tensor reserve = tape.alloc(be(x).gru_reserve_shape(B, T, din, H), dev);
    Tensor h0l = h0 ? h0->value.slice(l, l + 1).reshape({B, H}) : Tensor();
    be(x).gru_layer_forward(in, h0l, p.w_ih->value, p.w_hh->value, p.b_ih->value, p.b_hh->value, y, reserve,
                            tape.precision());
    FlopCount::add(2.0 * static_cast<double>(B * T) * static_cast<double>(3 * H) * static_cast<double>(din + H));
    be(x).narrow_forward(y.reshape({B, T, H}), T - 1, h_n.slice(l, l + 1).reshape({B, 1, H}));
    node.layers[l] = {p, in, h0l, y, reserve};
    in = y;
  }
  bool needs = false;
  if (GradMode::enabled()) {
    needs = x->requires_grad || (h0 && h0->requires_grad);
    for (const auto& p : layers)
      needs = needs || p.w_ih->requires_grad || p.w_hh->requires_grad || p.b_ih->requires_grad || p.b_hh->requires_grad;
  }
  Var* out = tape.var(in, needs);
  Var* hn = tape.var(h_n, needs);
  if (needs) {
    node.out = out;
    node.h_n = hn;
    tape.record<GruNode>(std::move(node));
  }
  return {out, hn};
}

}  // namespace cpc::ops
