// ops::batch_norm: the forwards and their backward nodes.
#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "engine/core/flop_counter.h"
#include "engine/core/profiler.h"
#include "engine/ops/op_support.h"

namespace cpc::ops {

namespace {

struct BatchNormNode final : Node {
  Var *x, *gamma, *beta, *y;
  Tensor mean, invstd;
  bool training, relu;  // relu: y is the ReLU of the normalised values
  BatchNormNode(Var* x_, Var* g_, Var* b_, Var* y_, Tensor m, Tensor s, bool t, bool r)
      : x(x_), gamma(g_), beta(b_), y(y_), mean(std::move(m)), invstd(std::move(s)), training(t), relu(r) {}
  const char* name() const override { return relu ? "batch_norm_relu" : "batch_norm"; }
  void backward(Tape& tape) override {
    if (!y->grad.defined()) return;
    bool acc;
    const Tensor dx = grad_to_write_or_none(tape, x, acc);
    const BatchNormRelu r{y->value, beta->value};
    be(y).batchnorm_backward(x->value, y->grad, gamma->value, mean, invstd, training, dx, grad_or_none(tape, gamma),
                             grad_or_none(tape, beta), acc, relu ? &r : nullptr);
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

}  // namespace

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

Var* batch_norm(Var* x, Var* gamma, Var* beta, const Tensor& running_mean, const Tensor& running_var, bool training,
                float momentum, float eps, Communicator* sync, bool relu, bool round) {
  check_norm_args(x, gamma, beta, "batch_norm");
  profiler::ProfileScope prof(relu ? "batch_norm_relu" : "batch_norm", false, x->value.device(), 3 * bytes_of(x->value));
  const int64_t c = x->value.size(1);
  CPC_CHECK(running_mean.numel() == c && running_var.numel() == c, "batch_norm: running stats have ",
            running_mean.numel(), " channels, input has ", c);
  if (training)
    CPC_CHECK(x->value.size(0) * x->value.size(2) > 1,
              "batch_norm: training needs more than one value per channel, "
              "input ",
              x->value.shape());
  if (training && sync && sync->world() > 1) {
    Var* y = sync_batch_norm(x, gamma, beta, running_mean, running_var, momentum, eps, *sync);
    return relu ? ops::relu(y) : y;
  }
  Tape& tape = Tape::current();
  const Device dev = x->value.device();
  const NormDims nd{x->value.size(0), c, x->value.size(2)};
  const bool rounded = round && be(x).batchnorm_rounded_output(nd);
  Tensor y = tape.alloc(x->value.shape(), dev, rounded ? DType::bf16 : DType::f32);
  Tensor mean = tape.alloc({c}, dev), invstd = tape.alloc({c}, dev);
  if (training)
    be(x).batchnorm_forward_train(x->value, gamma->value, beta->value, momentum, eps, running_mean, running_var, mean,
                                  invstd, y, relu);
  else
    be(x).batchnorm_forward_eval(x->value, gamma->value, beta->value, eps, running_mean, running_var, invstd, y, relu);
  Var* out = tape.output(y, {x, gamma, beta});
  if (out->requires_grad)
    tape.record<BatchNormNode>(x, gamma, beta, out, training ? mean : running_mean, invstd, training, relu);
  return out;
}

}  // namespace cpc::ops
