// ops::channel_norm: the forward and its backward node.
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "engine/core/flop_counter.h"
#include "engine/core/profiler.h"
#include "engine/ops/op_support.h"

namespace cpc::ops {

namespace {

struct ChannelNormNode final : Node {
  Var *x, *gamma, *beta, *y;
  Tensor mean, invstd;
  ChannelNormNode(Var* x_, Var* g_, Var* b_, Var* y_, Tensor m, Tensor s)
      : x(x_), gamma(g_), beta(b_), y(y_), mean(std::move(m)), invstd(std::move(s)) {}
  const char* name() const override { return "channel_norm"; }
  void backward(Tape& tape) override {
    if (!y->grad.defined()) return;
    bool acc;
    const Tensor dx = grad_to_write_or_none(tape, x, acc);
    be(y).channel_norm_backward(x->value, y->grad, gamma->value, mean, invstd, dx, grad_or_none(tape, gamma),
                                grad_or_none(tape, beta), acc);
  }
};

}  // namespace

Var* channel_norm(Var* x, Var* gamma, Var* beta, float eps) {
  check_norm_args(x, gamma, beta, "channel_norm");
  profiler::ProfileScope prof("channel_norm", false, x->value.device(), 3 * bytes_of(x->value));
  Tape& tape = Tape::current();
  const Device dev = x->value.device();
  const int64_t B = x->value.size(0), L = x->value.size(2);
  Tensor y = tape.alloc(x->value.shape(), dev);
  Tensor mean = tape.alloc({B, L}, dev), invstd = tape.alloc({B, L}, dev);
  be(x).channel_norm_forward(x->value, gamma->value, beta->value, eps, mean, invstd, y);
  Var* out = tape.output(y, {x, gamma, beta});
  if (out->requires_grad) tape.record<ChannelNormNode>(x, gamma, beta, out, mean, invstd);
  return out;
}

}  // namespace cpc::ops
