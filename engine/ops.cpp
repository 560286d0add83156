#include "engine/ops.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "engine/error.h"
#include "engine/profiler.h"
#include "engine/flop_counter.h"

namespace cpc::ops {

namespace {
double bytes_of(const Tensor& t) { return static_cast<double>(t.nbytes()); }  // for the profile's GB/s

Backend& be(const Var* v) { return backend(v->value.device()); }

void check_var(const Var* v, const char* op, const char* what) {
  CPC_CHECK(v != nullptr && v->value.defined(), op, ": ", what, " is missing");
  CPC_CHECK(v->value.is_contiguous(), op, ": ", what, " ", v->value.shape(), " must be contiguous");
}

void check_same_device(const Var* a, const Var* b, const char* op) {
  if (a && b)
    CPC_CHECK(a->value.device() == b->value.device(), op, ": tensors on ", a->value.device().str(), " and ",
              b->value.device().str(), "; move them to one device");
}

bool wants_grad(const Var* v) { return v && v->requires_grad; }

// The gradient of v if it wants one, else an undefined tensor (kernels skip those).
Tensor grad_or_none(Tape& tape, Var* v) { return wants_grad(v) ? tape.grad(v) : Tensor(); }

// Views a tensor as (O, N, I) around dimension dim.
Shape around(const Shape& s, int dim) {
  int64_t o = 1, i = 1;
  for (int d = 0; d < dim; ++d) o *= s[d];
  for (int d = dim + 1; d < s.rank(); ++d) i *= s[d];
  return Shape{o, s[dim], i};
}

int normalize_dim(int dim, int rank, const char* op) {
  if (dim < 0) dim += rank;
  CPC_CHECK(0 <= dim && dim < rank, op, ": dim ", dim, " out of range for a ", rank, "-D tensor");
  return dim;
}

// ---------------------------------------------------------------- linear
struct LinearNode final : Node {
  Var *x, *w, *b, *y;
  int64_t rows;
  LinearNode(Var* x_, Var* w_, Var* b_, Var* y_, int64_t r) : x(x_), w(w_), b(b_), y(y_), rows(r) {}
  const char* name() const override { return "linear"; }
  void backward(Tape& tape) override {
    if (!y->grad.defined()) return;
    Backend& bk = be(y);
    const int64_t din = w->value.size(1), dout = w->value.size(0);
    const float* dy = y->grad.f32();
    if (wants_grad(x)) {
      GemmArgs g;  // dx (rows, din) += dy (rows, dout) . w (dout, din)
      g.m = rows, g.n = din, g.k = dout, g.beta = 1.f;
      g.a = dy, g.lda = dout, g.b = w->value.f32(), g.ldb = din, g.c = tape.grad(x).f32(), g.ldc = din;
      bk.gemm(g);
    }
    if (wants_grad(w)) {
      GemmArgs g;  // dw (dout, din) += dy^T (dout, rows) . x (rows, din)
      g.trans_a = true, g.m = dout, g.n = din, g.k = rows, g.beta = 1.f;
      g.a = dy, g.lda = dout, g.b = x->value.f32(), g.ldb = din, g.c = tape.grad(w).f32(), g.ldc = din;
      bk.gemm(g);
    }
    if (wants_grad(b)) bk.bias_grad(y->grad.reshape({rows, dout, 1}), tape.grad(b), 1);
  }
};

// ---------------------------------------------------------------- conv1d
struct Conv1dNode final : Node {
  Var *x, *w, *b, *y;
  Conv1dGeometry g;
  Conv1dNode(Var* x_, Var* w_, Var* b_, Var* y_, Conv1dGeometry g_) : x(x_), w(w_), b(b_), y(y_), g(g_) {}
  const char* name() const override { return "conv1d"; }
  void backward(Tape& tape) override {
    if (!y->grad.defined()) return;
    Backend& bk = be(y);
    if (wants_grad(x)) bk.conv1d_backward_data(y->grad, w->value, g, tape.grad(x));
    Tensor db = grad_or_none(tape, b);
    if (wants_grad(w)) {
      bk.conv1d_backward_weights(x->value, y->grad, g, tape.grad(w), db.defined() ? &db : nullptr);
    } else if (db.defined()) {
      bk.bias_grad(y->grad, db, y->value.size(2));
    }
  }
};

// ---------------------------------------------------------------- norms
struct BatchNormNode final : Node {
  Var *x, *gamma, *beta, *y;
  Tensor mean, invstd;
  bool training;
  BatchNormNode(Var* x_, Var* g_, Var* b_, Var* y_, Tensor m, Tensor s, bool t)
      : x(x_), gamma(g_), beta(b_), y(y_), mean(std::move(m)), invstd(std::move(s)), training(t) {}
  const char* name() const override { return "batch_norm"; }
  void backward(Tape& tape) override {
    if (!y->grad.defined()) return;
    be(y).batchnorm_backward(x->value, y->grad, gamma->value, mean, invstd, training, grad_or_none(tape, x),
                             grad_or_none(tape, gamma), grad_or_none(tape, beta));
  }
};

// Synchronised BatchNorm's backward: the local sums of dy and dy * xhat are this rank's
// share of gamma's and beta's gradients; their sums over ranks give dx as for one batch.
struct SyncBatchNormNode final : Node {
  Var *x, *gamma, *beta, *y;
  Tensor mean, invstd;
  Communicator* comm;
  double count;  // values per channel over all ranks
  SyncBatchNormNode(Var* x_, Var* g_, Var* b_, Var* y_, Tensor m, Tensor s, Communicator* c, double n)
      : x(x_), gamma(g_), beta(b_), y(y_), mean(std::move(m)), invstd(std::move(s)), comm(c), count(n) {}
  const char* name() const override { return "sync_batch_norm"; }
  void backward(Tape& tape) override {
    const Device dev = x->value.device();
    const int64_t c = x->value.size(1);
    Tensor dy = y->grad;
    if (!dy.defined()) {  // every rank must take part in the collective below
      dy = tape.alloc(y->value.shape(), dev);
      be(x).fill(dy, 0.f);
    }
    Tensor sums = tape.alloc({2, c}, dev);  // sum dy * xhat, sum dy
    be(x).fill(sums, 0.f);
    Tensor sg = sums.slice(0, 1).reshape({c}), sb = sums.slice(1, 2).reshape({c});
    be(x).batchnorm_backward(x->value, dy, gamma->value, mean, invstd, /*training=*/false, grad_or_none(tape, x), sg,
                             sb);  // dx += gamma * invstd * dy
    if (wants_grad(gamma)) be(x).axpy(1.f, sg, tape.grad(gamma));
    if (wants_grad(beta)) be(x).axpy(1.f, sb, tape.grad(beta));
    std::vector<float> host = sums.to_vector();
    std::vector<double> g(host.begin(), host.end());
    comm->allreduce_host(g.data(), static_cast<int>(g.size()));
    if (!wants_grad(x)) return;
    // dx += -k * (sum dy / n + xhat * sum(dy xhat) / n), k = gamma * invstd: affine in x.
    const std::vector<float> ga = gamma->value.to_vector(), m = mean.to_vector(), is = invstd.to_vector();
    std::vector<float> scale(static_cast<size_t>(c)), shift(static_cast<size_t>(c));
    for (int64_t i = 0; i < c; ++i) {
      const double k = static_cast<double>(ga[i]) * is[i], mg = g[i] / count, mb = g[c + i] / count;
      scale[i] = static_cast<float>(-k * is[i] * mg);
      shift[i] = static_cast<float>(-k * mb + k * is[i] * m[i] * mg);
    }
    Tensor st = tape.alloc({2, c}, dev);
    st.copy_from(Tensor::from_vector({2, c}, [&] {
      std::vector<float> v(scale);
      v.insert(v.end(), shift.begin(), shift.end());
      return v;
    }()));
    be(x).channel_affine(x->value, st.slice(0, 1).reshape({c}), st.slice(1, 2).reshape({c}), tape.grad(x));
  }
};

struct AllGatherNode final : Node {
  Var *x, *y;
  Communicator* comm;
  AllGatherNode(Var* x_, Var* y_, Communicator* c) : x(x_), y(y_), comm(c) {}
  const char* name() const override { return "all_gather"; }
  void backward(Tape& tape) override {
    Tensor dy = y->grad;
    if (!dy.defined()) {  // every rank must take part in the reduce-scatter
      dy = tape.alloc(y->value.shape(), y->value.device());
      be(y).fill(dy, 0.f);
    }
    Tensor dx = tape.alloc(x->value.shape(), x->value.device());
    comm->reduce_scatter(dy.contiguous(), dx);
    if (wants_grad(x)) be(x).axpy(1.f, dx, tape.grad(x));
  }
};

struct ChannelNormNode final : Node {
  Var *x, *gamma, *beta, *y;
  Tensor mean, invstd;
  ChannelNormNode(Var* x_, Var* g_, Var* b_, Var* y_, Tensor m, Tensor s)
      : x(x_), gamma(g_), beta(b_), y(y_), mean(std::move(m)), invstd(std::move(s)) {}
  const char* name() const override { return "channel_norm"; }
  void backward(Tape& tape) override {
    if (!y->grad.defined()) return;
    be(y).channel_norm_backward(x->value, y->grad, gamma->value, mean, invstd, grad_or_none(tape, x),
                                grad_or_none(tape, gamma), grad_or_none(tape, beta));
  }
};

// ---------------------------------------------------------------- elementwise
struct ReluNode final : Node {
  Var *x, *y;
  ReluNode(Var* x_, Var* y_) : x(x_), y(y_) {}
  const char* name() const override { return "relu"; }
  void backward(Tape& tape) override {
    if (y->grad.defined() && wants_grad(x)) be(y).relu_backward(y->value, y->grad, tape.grad(x));
  }
};

struct GeluNode final : Node {
  Var *x, *y;
  GeluNode(Var* x_, Var* y_) : x(x_), y(y_) {}
  const char* name() const override { return "gelu"; }
  void backward(Tape& tape) override {
    if (y->grad.defined() && wants_grad(x)) be(y).gelu_backward(x->value, y->grad, tape.grad(x));
  }
};

struct AddNode final : Node {
  Var *a, *b, *y;
  AddNode(Var* a_, Var* b_, Var* y_) : a(a_), b(b_), y(y_) {}
  const char* name() const override { return "add"; }
  void backward(Tape& tape) override {
    if (!y->grad.defined()) return;
    if (wants_grad(a)) be(y).axpy(1.f, y->grad, tape.grad(a));
    if (wants_grad(b)) be(y).axpy(1.f, y->grad, tape.grad(b));
  }
};

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

// ---------------------------------------------------------------- layout and reductions
struct TransposeNode final : Node {
  Var *x, *y;
  TransposeNode(Var* x_, Var* y_) : x(x_), y(y_) {}
  const char* name() const override { return "transpose"; }
  void backward(Tape& tape) override {
    if (!y->grad.defined() || !wants_grad(x)) return;
    const Shape& s = y->value.shape();
    const int r = s.rank();
    int64_t o = 1;
    for (int d = 0; d < r - 2; ++d) o *= s[d];
    be(y).transpose_last2(y->grad.reshape({o, s[r - 2], s[r - 1]}), tape.grad(x).reshape({o, s[r - 1], s[r - 2]}), 1.f);
  }
};

struct NarrowNode final : Node {
  Var *x, *y;
  int dim;
  int64_t start;
  NarrowNode(Var* x_, Var* y_, int d, int64_t s) : x(x_), y(y_), dim(d), start(s) {}
  const char* name() const override { return "narrow"; }
  void backward(Tape& tape) override {
    if (!y->grad.defined() || !wants_grad(x)) return;
    be(y).narrow_backward(y->grad.reshape(around(y->value.shape(), dim)), start,
                          tape.grad(x).reshape(around(x->value.shape(), dim)));
  }
};

// A leading-dim slice is a view: no copy forward, its gradient added into the slice.
struct SliceViewNode final : Node {
  Var *x, *y;
  int64_t start;
  SliceViewNode(Var* x_, Var* y_, int64_t s) : x(x_), y(y_), start(s) {}
  const char* name() const override { return "slice"; }
  void backward(Tape& tape) override {
    if (y->grad.defined() && wants_grad(x))
      be(y).axpy(1.f, y->grad, tape.grad(x).slice(start, start + y->value.size(0)));
  }
};

struct ReshapeNode final : Node {
  Var *x, *y;
  ReshapeNode(Var* x_, Var* y_) : x(x_), y(y_) {}
  const char* name() const override { return "reshape"; }
  void backward(Tape& tape) override {
    if (y->grad.defined() && wants_grad(x)) be(y).axpy(1.f, y->grad.reshape(x->value.shape()), tape.grad(x));
  }
};

struct PoolNode final : Node {
  Var *x, *y;
  int dim;
  Tensor argmax;  // undefined for mean pooling
  PoolNode(Var* x_, Var* y_, int d, Tensor a) : x(x_), y(y_), dim(d), argmax(std::move(a)) {}
  const char* name() const override { return argmax.defined() ? "max_pool" : "mean_pool"; }
  void backward(Tape& tape) override {
    if (!y->grad.defined() || !wants_grad(x)) return;
    const Shape s = around(x->value.shape(), dim);
    Tensor dy = y->grad.reshape({s[0], s[2]});
    Tensor dx = tape.grad(x).reshape(s);
    if (argmax.defined())
      be(y).max_axis_backward(dy, argmax, dx);
    else
      be(y).mean_axis_backward(dy, dx);
  }
};

// ---------------------------------------------------------------- gru
constexpr int kMaxGruLayers = 8;

struct GruNode final : Node {
  struct Layer {
    GruLayerParams p;
    Tensor x, h0, y, reserve;
  };
  std::array<Layer, kMaxGruLayers> layers;
  int num_layers = 0;
  Var *input, *h0, *out, *h_n;
  GruNode(Var* in, Var* h, Var* o, Var* hn) : input(in), h0(h), out(o), h_n(hn) {}
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
                            grad_or_none(tape, L.p.b_hh));
      dy = dx;
    }
  }
};

struct SwapNode final : Node {
  Var *x, *y;
  SwapNode(Var* x_, Var* y_) : x(x_), y(y_) {}
  const char* name() const override { return "swap01"; }
  void backward(Tape& tape) override {
    if (!y->grad.defined() || !wants_grad(x)) return;
    const Shape& s = y->value.shape();  // (B, A, D) -> back to (A, B, D)
    be(y).swap_axes(y->grad, 1, s[0], s[1], s[2], tape.grad(x), 1.f);
  }
};

struct NormalizeNode final : Node {
  Var *x, *y;
  float eps;
  NormalizeNode(Var* x_, Var* y_, float e) : x(x_), y(y_), eps(e) {}
  const char* name() const override { return "l2_normalize"; }
  void backward(Tape& tape) override {
    if (y->grad.defined() && wants_grad(x)) be(y).l2_normalize_backward(x->value, y->grad, eps, tape.grad(x));
  }
};

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

// ---------------------------------------------------------------- losses used by tests
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

struct ScaleNode final : Node {
  Var *x, *y;
  float alpha;
  ScaleNode(Var* x_, Var* y_, float a) : x(x_), y(y_), alpha(a) {}
  const char* name() const override { return "scale"; }
  void backward(Tape& tape) override {
    if (y->grad.defined() && wants_grad(x)) be(y).axpy(alpha, y->grad, tape.grad(x));
  }
};

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
  g.trans_b = true, g.m = rows, g.n = dout, g.k = din;
  g.a = x->value.f32(), g.lda = din, g.b = w->value.f32(), g.ldb = din, g.c = y.f32(), g.ldc = dout;
  be(x).gemm(g);
  FlopCount::add(2.0 * static_cast<double>(rows) * static_cast<double>(dout) * static_cast<double>(din));
  if (b) be(x).add_bias(y.reshape({rows, dout, 1}), b->value, 1);
  Var* out = tape.output(y, {x, w, b});
  if (out->requires_grad) tape.record<LinearNode>(x, w, b, out, rows);
  return out;
}

Var* conv1d(Var* x, Var* w, Var* b, const Conv1dGeometry& g) {
  check_var(x, "conv1d", "input");
  profiler::ProfileScope prof("conv1d", false, x->value.device());
  check_var(w, "conv1d", "weight");
  check_same_device(x, w, "conv1d");
  check_rank(x->value, 3, "conv1d input", "(B, Cin, L)");
  check_rank(w->value, 3, "conv1d weight", "(Cout, Cin, K)");
  CPC_CHECK(x->value.size(1) == w->value.size(1), "conv1d: input ", x->value.shape(), " has ", x->value.size(1),
            " channels, the weight ", w->value.shape(), " expects ", w->value.size(1));
  CPC_CHECK(g.stride >= 1 && g.dilation >= 1 && g.padding >= 0, "conv1d: stride ", g.stride, ", dilation ", g.dilation,
            " must be >= 1 and padding ", g.padding, " >= 0");
  const int64_t lout = g.out_length(x->value.size(2), w->value.size(2));
  CPC_CHECK(lout >= 1, "conv1d: input length ", x->value.size(2), " is too short for kernel ", w->value.size(2),
            " (dilation ", g.dilation, ", padding ", g.padding, ")");
  if (b) {
    check_var(b, "conv1d", "bias");
    CPC_CHECK(b->value.rank() == 1 && b->value.size(0) == w->value.size(0), "conv1d: bias ", b->value.shape(),
              " expected (", w->value.size(0), ",)");
  }
  Tape& tape = Tape::current();
  Tensor y = tape.alloc({x->value.size(0), w->value.size(0), lout}, x->value.device());
  be(x).conv1d_forward(x->value, w->value, b ? &b->value : nullptr, g, y);
  FlopCount::add(2.0 * static_cast<double>(y.numel()) * static_cast<double>(w->value.size(1) * w->value.size(2)));
  Var* out = tape.output(y, {x, w, b});
  if (out->requires_grad) tape.record<Conv1dNode>(x, w, b, out, g);
  return out;
}

static void check_norm_args(Var* x, Var* gamma, Var* beta, const char* op) {
  check_var(x, op, "input");
  check_rank(x->value, 3, op, "(B, C, L)");
  check_var(gamma, op, "weight");
  check_var(beta, op, "bias");
  const int64_t c = x->value.size(1);
  CPC_CHECK(gamma->value.numel() == c && beta->value.numel() == c, op, ": input ", x->value.shape(), " has ", c,
            " channels, weight/bias have ", gamma->value.numel(), "/", beta->value.numel());
  check_same_device(x, gamma, op);
}

// The forward of synchronised BatchNorm: local mean and variance, combined over ranks
// (exactly, for equal local counts), then applied as fixed statistics.
static Var* sync_batch_norm(Var* x, Var* gamma, Var* beta, const Tensor& running_mean, const Tensor& running_var,
                            float momentum, float eps, Communicator& comm) {
  Tape& tape = Tape::current();
  const Device dev = x->value.device();
  const int64_t c = x->value.size(1);
  const double world = comm.world(), count = world * static_cast<double>(x->value.size(0) * x->value.size(2));
  Tensor stats = tape.alloc({2, c}, dev);  // local mean, local biased variance
  be(x).batchnorm_stats(x->value, stats.slice(0, 1).reshape({c}), stats.slice(1, 2).reshape({c}));
  const std::vector<float> local = stats.to_vector();
  std::vector<double> mean(local.begin(), local.begin() + c), var(static_cast<size_t>(c));
  comm.allreduce_host(mean.data(), static_cast<int>(c));
  for (int64_t i = 0; i < c; ++i) {
    mean[i] /= world;
    const double d = local[i] - mean[i];
    var[i] = local[c + i] + d * d;  // this rank's spread around the global mean
  }
  comm.allreduce_host(var.data(), static_cast<int>(c));
  std::vector<float> gstats(static_cast<size_t>(2 * c));
  for (int64_t i = 0; i < c; ++i) gstats[i] = static_cast<float>(mean[i]), gstats[c + i] = static_cast<float>(var[i] / world);
  Tensor g = tape.alloc({2, c}, dev);
  g.copy_from(Tensor::from_vector({2, c}, gstats));
  Tensor gmean = g.slice(0, 1).reshape({c}), gvar = g.slice(1, 2).reshape({c});
  Tensor y = tape.alloc(x->value.shape(), dev), invstd = tape.alloc({c}, dev);
  be(x).batchnorm_forward_eval(x->value, gamma->value, beta->value, eps, gmean, gvar, invstd, y);
  // Running statistics as the single-process kernel updates them (unbiased variance).
  std::vector<float> rm = running_mean.to_vector(), rv = running_var.to_vector();
  for (int64_t i = 0; i < c; ++i) {
    rm[i] = (1.f - momentum) * rm[i] + momentum * gstats[i];
    rv[i] = (1.f - momentum) * rv[i] + momentum * static_cast<float>(var[i] / world * count / (count - 1));
  }
  Tensor(running_mean).copy_from(Tensor::from_vector(running_mean.shape(), rm));
  Tensor(running_var).copy_from(Tensor::from_vector(running_var.shape(), rv));
  Var* out = tape.output(y, {x, gamma, beta});
  if (out->requires_grad) tape.record<SyncBatchNormNode>(x, gamma, beta, out, gmean, invstd, &comm, count);
  return out;
}

Var* all_gather(Var* x, Communicator& comm) {
  check_var(x, "all_gather", "input");
  profiler::ProfileScope prof("all_gather", false, x->value.device());
  CPC_CHECK(x->value.rank() >= 1, "all_gather: input ", x->value.shape(), " needs a leading dimension");
  Shape ys = x->value.shape();
  ys[0] *= comm.world();
  Tape& tape = Tape::current();
  Tensor y = tape.alloc(ys, x->value.device());
  comm.allgather(x->value.contiguous(), y);
  Var* out = tape.output(y, {x});
  if (out->requires_grad) tape.record<AllGatherNode>(x, out, &comm);
  return out;
}

Var* batch_norm(Var* x, Var* gamma, Var* beta, const Tensor& running_mean, const Tensor& running_var, bool training,
                float momentum, float eps, Communicator* sync) {
  check_norm_args(x, gamma, beta, "batch_norm");
  profiler::ProfileScope prof("batch_norm", false, x->value.device(), 3 * bytes_of(x->value));
  const int64_t c = x->value.size(1);
  CPC_CHECK(running_mean.numel() == c && running_var.numel() == c, "batch_norm: running stats have ",
            running_mean.numel(), " channels, input has ", c);
  if (training)
    CPC_CHECK(x->value.size(0) * x->value.size(2) > 1,
              "batch_norm: training needs more than one value per channel, "
              "input ",
              x->value.shape());
  if (training && sync && sync->world() > 1)
    return sync_batch_norm(x, gamma, beta, running_mean, running_var, momentum, eps, *sync);
  Tape& tape = Tape::current();
  const Device dev = x->value.device();
  Tensor y = tape.alloc(x->value.shape(), dev);
  Tensor mean = tape.alloc({c}, dev), invstd = tape.alloc({c}, dev);
  if (training)
    be(x).batchnorm_forward_train(x->value, gamma->value, beta->value, momentum, eps, running_mean, running_var, mean,
                                  invstd, y);
  else
    be(x).batchnorm_forward_eval(x->value, gamma->value, beta->value, eps, running_mean, running_var, invstd, y);
  Var* out = tape.output(y, {x, gamma, beta});
  if (out->requires_grad)
    tape.record<BatchNormNode>(x, gamma, beta, out, training ? mean : running_mean, invstd, training);
  return out;
}

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

Var* relu(Var* x) {
  check_var(x, "relu", "input");
  profiler::ProfileScope prof("relu", false, x->value.device(), 2 * bytes_of(x->value));
  Tape& tape = Tape::current();
  Tensor y = tape.alloc(x->value.shape(), x->value.device());
  be(x).relu_forward(x->value, y);
  Var* out = tape.output(y, {x});
  if (out->requires_grad) tape.record<ReluNode>(x, out);
  return out;
}

Var* gelu(Var* x) {
  check_var(x, "gelu", "input");
  profiler::ProfileScope prof("gelu", false, x->value.device(), 2 * bytes_of(x->value));
  Tape& tape = Tape::current();
  Tensor y = tape.alloc(x->value.shape(), x->value.device());
  be(x).gelu_forward(x->value, y);
  Var* out = tape.output(y, {x});
  if (out->requires_grad) tape.record<GeluNode>(x, out);
  return out;
}

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

Var* transpose_last2(Var* x) {
  check_var(x, "transpose", "input");
  profiler::ProfileScope prof("transpose", false, x->value.device(), 2 * bytes_of(x->value));
  const Shape& s = x->value.shape();
  const int r = s.rank();
  CPC_CHECK(r >= 2, "transpose: needs at least 2 dims, found ", s);
  int64_t o = 1;
  for (int d = 0; d < r - 2; ++d) o *= s[d];
  Shape ys = s;
  ys[r - 2] = s[r - 1];
  ys[r - 1] = s[r - 2];
  Tape& tape = Tape::current();
  Tensor y = tape.alloc(ys, x->value.device());
  be(x).transpose_last2(x->value.reshape({o, s[r - 2], s[r - 1]}), y.reshape({o, s[r - 1], s[r - 2]}), 0.f);
  Var* out = tape.output(y, {x});
  if (out->requires_grad) tape.record<TransposeNode>(x, out);
  return out;
}

Var* narrow(Var* x, int dim, int64_t start, int64_t length) {
  check_var(x, "narrow", "input");
  profiler::ProfileScope prof("narrow", false, x->value.device());
  dim = normalize_dim(dim, x->value.rank(), "narrow");
  CPC_CHECK(start >= 0 && length >= 1 && start + length <= x->value.size(dim), "narrow: [", start, ", ", start + length,
            ") out of range for dim ", dim, " of ", x->value.shape());
  Tape& tape = Tape::current();
  if (dim == 0) {  // contiguous rows: a view
    Var* out = tape.output(x->value.slice(start, start + length), {x});
    if (out->requires_grad) tape.record<SliceViewNode>(x, out, start);
    return out;
  }
  Shape ys = x->value.shape();
  ys[dim] = length;
  Tensor y = tape.alloc(ys, x->value.device());
  be(x).narrow_forward(x->value.reshape(around(x->value.shape(), dim)), start, y.reshape(around(ys, dim)));
  Var* out = tape.output(y, {x});
  if (out->requires_grad) tape.record<NarrowNode>(x, out, dim, start);
  return out;
}

Var* reshape(Var* x, const Shape& shape) {
  check_var(x, "reshape", "input");
  profiler::ProfileScope prof("reshape", false, x->value.device());
  CPC_CHECK(shape.numel() == x->value.numel(), "reshape: cannot view ", x->value.shape(), " as ", shape);
  Tape& tape = Tape::current();
  Var* out = tape.output(x->value.reshape(shape), {x});
  if (out->requires_grad) tape.record<ReshapeNode>(x, out);
  return out;
}

Var* select(Var* x, int dim, int64_t index) {
  check_var(x, "select", "input");
  profiler::ProfileScope prof("slice", false, x->value.device());
  dim = normalize_dim(dim, x->value.rank(), "select");
  CPC_CHECK(0 <= index && index < x->value.size(dim), "select: index ", index, " out of range for dim ", dim, " of ",
            x->value.shape());
  Var* n = narrow(x, dim, index, 1);
  const Shape& s = n->value.shape();
  Shape out;
  if (s.rank() == 2)
    out = dim == 0 ? Shape{s[1]} : Shape{s[0]};
  else if (s.rank() == 3)
    out = dim == 0 ? Shape{s[1], s[2]} : dim == 1 ? Shape{s[0], s[2]} : Shape{s[0], s[1]};
  else if (s.rank() == 4) {
    int64_t d[3], k = 0;
    for (int i = 0; i < 4; ++i)
      if (i != dim) d[k++] = s[i];
    out = Shape{d[0], d[1], d[2]};
  } else {
    out = Shape{};
  }
  return reshape(n, out);
}

static Var* pool(Var* x, int dim, bool max) {
  const char* op = max ? "max_pool" : "mean_pool";
  check_var(x, op, "input");
  profiler::ProfileScope prof(op, false, x->value.device(), bytes_of(x->value));
  check_rank(x->value, 3, op, "(B, T, D) or (B, C, L)");
  dim = normalize_dim(dim, 3, op);
  CPC_CHECK(dim != 0, op, ": pooling over the batch dim is not supported");
  const Shape s = around(x->value.shape(), dim);
  Shape ys = dim == 1 ? Shape{x->value.size(0), x->value.size(2)} : Shape{x->value.size(0), x->value.size(1)};
  Tape& tape = Tape::current();
  Tensor y = tape.alloc(ys, x->value.device());
  Tensor argmax;
  if (max) {
    argmax = tape.alloc(ys, x->value.device());  // indices stored as float (exact below 2^24)
    be(x).max_axis_forward(x->value.reshape(s), y.reshape({s[0], s[2]}), argmax);
  } else {
    be(x).mean_axis_forward(x->value.reshape(s), y.reshape({s[0], s[2]}));
  }
  Var* out = tape.output(y, {x});
  if (out->requires_grad) tape.record<PoolNode>(x, out, dim, max ? argmax.reshape({s[0], s[2]}) : Tensor());
  return out;
}

Var* mean_pool(Var* x, int dim) { return pool(x, dim, false); }
Var* max_pool(Var* x, int dim) { return pool(x, dim, true); }

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
  GruNode node(x, h0, nullptr, nullptr);
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
    be(x).gru_layer_forward(in, h0l, p.w_ih->value, p.w_hh->value, p.b_ih->value, p.b_hh->value, y, reserve);
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

Var* swap01(Var* x) {
  check_var(x, "swap01", "input");
  profiler::ProfileScope prof("swap01", false, x->value.device(), 2 * bytes_of(x->value));
  check_rank(x->value, 3, "swap01 input", "(A, B, D)");
  const Shape& s = x->value.shape();
  Tape& tape = Tape::current();
  Tensor y = tape.alloc({s[1], s[0], s[2]}, x->value.device());
  be(x).swap_axes(x->value, 1, s[0], s[1], s[2], y, 0.f);
  Var* out = tape.output(y, {x});
  if (out->requires_grad) tape.record<SwapNode>(x, out);
  return out;
}

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

Var* contrastive_loss(Var* a, Var* c, const ContrastiveSpec& spec, ContrastiveStats* stats) {
  check_var(a, "contrastive_loss", "anchors");
  profiler::ProfileScope prof("contrastive_loss", false, a->value.device());
  check_var(c, "contrastive_loss", "candidates");
  check_same_device(a, c, "contrastive_loss");
  check_rank(a->value, 2, "contrastive_loss anchors", "(R, D)");
  check_rank(c->value, 2, "contrastive_loss candidates", "(M, D)");
  const int64_t R = a->value.size(0), M = c->value.size(0);
  CPC_CHECK(a->value.size(1) == c->value.size(1), "contrastive_loss: anchors ", a->value.shape(), " and candidates ",
            c->value.shape(), " differ in D");
  CPC_CHECK(spec.blocks >= 1 && R % spec.blocks == 0 && M % spec.blocks == 0, "contrastive_loss: ", spec.blocks,
            " blocks do not divide ", R, " anchors and ", M, " candidates");
  CPC_CHECK(spec.row_label && spec.col_label, "contrastive_loss: row and column labels are required");
  CPC_CHECK(!spec.row_group == !spec.col_group && !spec.row_group == !spec.row_keep,
            "contrastive_loss: row_group, col_group and row_keep go together");
  CPC_CHECK(!spec.excl_offsets == !spec.excl_cols, "contrastive_loss: excl_offsets and excl_cols go together");
  CPC_CHECK(spec.scale > 0.f && std::isfinite(spec.scale), "contrastive_loss: scale must be finite and > 0, found ",
            spec.scale);
  Tape& tape = Tape::current();
  const bool grad = GradMode::enabled() && (a->requires_grad || c->requires_grad);
  Tensor da, dc;
  if (grad) {
    da = tape.alloc(a->value.shape(), a->value.device());
    dc = a == c ? da : tape.alloc(c->value.shape(), c->value.device());
  }
  const ContrastiveStats st = be(a).contrastive_forward(a->value, c->value, spec, da, dc);
  FlopCount::add(2.0 * static_cast<double>(R) * static_cast<double>(M / spec.blocks) *
                 static_cast<double>(a->value.size(1)));  // the scores of each row's block
  if (stats) *stats = st;
  Tensor l = tape.alloc({}, a->value.device());
  be(a).fill(l, static_cast<float>(st.loss));
  Var* out = tape.output(l, {a, c});
  if (out->requires_grad) tape.record<ContrastiveNode>(a, c, out, da, a == c ? Tensor() : dc);
  return out;
}

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

Var* scale(Var* x, float alpha) {
  check_var(x, "scale", "input");
  profiler::ProfileScope prof("scale", false, x->value.device(), 2 * bytes_of(x->value));
  Tape& tape = Tape::current();
  Tensor y = tape.zeros(x->value.shape(), x->value.device());
  be(x).axpy(alpha, x->value, y);
  Var* out = tape.output(y, {x});
  if (out->requires_grad) tape.record<ScaleNode>(x, out, alpha);
  return out;
}

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
