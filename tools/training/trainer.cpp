#include "tools/training/trainer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>

#include "engine/core/backend.h"
#include "engine/core/error.h"
#include "engine/ops/ops.h"
#include "engine/core/random.h"
#include "engine/core/trace.h"
#include "layers/activations.h"

namespace cpc::tools {

Trainer::Trainer(const CpcConfig& cfg, Communicator* comm, Device device) : device_(device) {
  if (!comm) local_ = make_local_communicator();
  comm_ = comm ? comm : local_.get();
  const TrainConfig& tc = cfg.train;
  Generator init(static_cast<uint64_t>(tc.seed));
  model_ = std::make_unique<CpcModel>(cfg, init);
  if (device_ != Device::cpu()) model_->to(device_);  // before the optimizer allocates its state
  // train.precision is the arithmetic of this trainer's steps (its tape), nothing global.
  const Precision precision = tc.precision == "bf16" ? Precision::bf16 : Precision::fp32;
  backend(device_).check_precision(precision);  // fail now, not at the first step
  tape_.set_precision(precision);
  model_->set_communicator(comm_);
  params_ = model_->parameters();
  AdamOptions ao;
  ao.lr = static_cast<float>(tc.lr), ao.weight_decay = static_cast<float>(tc.weight_decay);
  opt_ = std::make_unique<Adam>(params_, ao, /*decoupled=*/true);
  sched_.kind = LrSchedule::parse(tc.schedule);
  sched_.base_lr = tc.lr, sched_.warmup_steps = tc.warmup, sched_.total_steps = tc.steps, sched_.min_lr = tc.min_lr;
  sched_.model_dim = cfg.encoder.out_channels();
  int64_t n = 0;
  for (Parameter* p : params_) n += p->value.numel();
  if (comm_->world() > 1) grad_bucket_ = Tensor::empty({n}, params_.front()->value.device());
  for (const auto& [name, t] : model_->named_buffers()) {
    buffers_.emplace_back(name, *t);
    buffer_values_.push_back(*t);
  }
  broadcast_state();
}

Tensor Trainer::on_device(const Tensor& x) {
  if (x.device() == device_) return x;
  if (!x_dev_.defined() || x_dev_.shape() != x.shape()) x_dev_ = Tensor::empty(x.shape(), device_);
  x_dev_.copy_from(x.contiguous());
  return x_dev_;
}

Trainer::~Trainer() = default;

void Trainer::broadcast_state() {
  if (comm_->world() == 1) return;
  for (const auto& [name, t] : model_->state_dict()) comm_->broadcast(t, 0);
  for (const auto& [name, t] : opt_->state())  // "step*" are copies; the moments are the live buffers
    if (name.rfind("step", 0) != 0 && t.defined() && t.numel() > 0) comm_->broadcast(t, 0);
}

void Trainer::average_gradients() {
  if (comm_->world() == 1) return;
  int64_t off = 0;
  for (Parameter* p : params_) {
    const int64_t n = p->value.numel();
    grad_bucket_.slice(off, off + n).copy_from(p->grad.reshape({n}));
    off += n;
  }
  comm_->allreduce(grad_bucket_, ReduceOp::mean);
  off = 0;
  for (Parameter* p : params_) {
    const int64_t n = p->value.numel();
    p->grad.reshape({n}).copy_from(grad_bucket_.slice(off, off + n));
    off += n;
  }
}

StepResult Trainer::step(const Tensor& x, int64_t step, int64_t t_random) {
  return this->step([&x](int) -> const Tensor& { return x; }, step, t_random);
}

StepResult Trainer::step(const std::function<const Tensor&(int)>& micro, int64_t step, int64_t t_random) {
  TraceRange step_range("step");
  const TrainConfig& tc = config().train;
  const int64_t k = tc.accumulate_steps;
  const double comm0 = comm_->seconds();
  TapeScope scope(tape_);
  model_->train(true);
  opt_->zero_grad();
  opt_->set_lr(static_cast<float>(sched_.at(step)));
  model_->apply([step](Module& m) {  // dropout masks are a function of the step
    if (auto* d = dynamic_cast<Dropout*>(&m)) d->set_step(step);
  });
  std::optional<TraceRange> phase;
  Tensor loss_value;  // the step's loss on device_ (k = 1: the tape's own)
  double accuracy = 0;
  std::vector<double> accuracy_per_k;
  for (int64_t i = 0; i < k; ++i) {
    tape_.reset();  // the parameters' gradients live outside the tape and keep accumulating
    const uint64_t t_index = static_cast<uint64_t>(k == 1 ? step : step * k + i);
    Generator step_rng(static_cast<uint64_t>(tc.seed) * 1000003ULL + t_index);  // random t
    const Tensor& x = micro(static_cast<int>(i));
    phase.emplace("forward");
    const InfoNceResult& r = model_->loss(tape_.var(on_device(x)), &step_rng, t_random);
    accuracy += r.accuracy / static_cast<double>(k);
    accuracy_per_k.resize(r.accuracy_per_k.size(), 0.0);
    for (size_t j = 0; j < r.accuracy_per_k.size(); ++j) accuracy_per_k[j] += r.accuracy_per_k[j] / k;
    phase.emplace("backward");
    if (k == 1) {
      tape_.backward(r.loss);
      loss_value = r.loss->value;
    } else {
      tape_.backward(ops::scale(r.loss, 1.f / static_cast<float>(k)));
      if (!loss_sum_.defined()) loss_sum_ = Tensor::empty({}, device_);
      if (i == 0) backend(device_).fill(loss_sum_, 0.f);
      backend(device_).axpy(1.f / static_cast<float>(k), r.loss->value, loss_sum_);  // stays on the device
      loss_value = loss_sum_;
    }
  }
  phase.emplace("allreduce");
  average_gradients();
  phase.emplace("optimizer");
  StepResult out;
  // The gradient norm is the step's one wait for the device; the loss is read after it,
  // so nothing stalls the queue between forward and backward.
  out.grad_norm = grad_norm(params_);
  // Running statistics are updated by the forward pass whatever the loss: inputs of
  // extreme scale can leave the loss finite and make them infinite.
  const double local_stats = buffer_values_.empty() ? 0.0 : backend(device_).sum_squares_multi(buffer_values_);
  // Metrics: means over ranks (with global negatives, the global batch's loss); the
  // statistics' sum goes along, so every rank sees the same verdict below.
  std::vector<double> m{loss_value.to_vector()[0], accuracy};
  m.insert(m.end(), accuracy_per_k.begin(), accuracy_per_k.end());
  m.push_back(local_stats);
  comm_->allreduce_host(m.data(), static_cast<int>(m.size()));
  const double stats = m.back();
  m.pop_back();
  for (double& v : m) v /= comm_->world();
  out.loss = m[0], out.accuracy = m[1], out.accuracy_per_k.assign(m.begin() + 2, m.end()), out.lr = opt_->lr();
  // A non-finite loss, gradient or statistic (the same verdict on every rank: the loss
  // is a mean over ranks, the gradients are averaged) leaves the weights as they were;
  // the caller stops.
  if (!std::isfinite(out.loss) || !std::isfinite(out.grad_norm) || !std::isfinite(stats)) {
    out.finite = false;
    char buf[96];
    std::snprintf(buf, sizeof buf, "the loss is %.6g, the gradient norm %.6g", out.loss, out.grad_norm);
    out.nonfinite = buf;
    for (const auto& [name, t] : buffers_)
      if (!std::isfinite(backend(device_).sum_squares(t))) {
        out.nonfinite += ", the statistic '" + name + "' is not finite";
        break;
      }
    if (!std::isfinite(stats) && std::isfinite(local_stats)) out.nonfinite += ", a running statistic of another rank is not finite";
    return out;
  }
  if (tc.clip > 0) clip_gradients(params_, tc.clip, out.grad_norm);
  opt_->step();
  phase.reset();
  out.comm_seconds = comm_->seconds() - comm0;
  return out;
}

EvalResult Trainer::evaluate(const Tensor& xs, int64_t batch) {
  const int64_t n = xs.size(0);
  CPC_CHECK(batch >= 1 && n >= 1, "evaluate: ", n, " windows in batches of ", batch);
  EvalResult out;
  out.accuracy_per_k.assign(static_cast<size_t>(config().K), 0.0);
  TapeScope scope(tape_);
  NoGradGuard no_grad;
  // Training mode and the communicator come back however this returns (an error
  // mid-loop must not leave the model in eval mode for the next step).
  struct Restore {
    Trainer* t;
    ~Restore() {
      t->tape_.reset();
      t->model_->train(true);
      t->model_->set_communicator(t->comm_);
    }
  } restore{this};
  model_->train(false);
  model_->set_communicator(nullptr);  // rank-local: no collectives
  Generator rng(0x5eed'7a11ULL);  // the same t for every validation
  int64_t batches = 0;
  for (int64_t i = 0; i < n; i += batch, ++batches) {
    tape_.reset();
    const int64_t b = std::min(batch, n - i);
    const InfoNceResult& r = model_->loss(tape_.var(on_device(xs.narrow(0, i, b))), &rng);
    out.loss += r.loss->value.to_vector()[0] * static_cast<double>(b);
    out.accuracy += r.accuracy * static_cast<double>(b);
    for (size_t k = 0; k < out.accuracy_per_k.size(); ++k) out.accuracy_per_k[k] += r.accuracy_per_k[k] * b;
  }
  out.windows = n;
  out.loss /= static_cast<double>(n), out.accuracy /= static_cast<double>(n);
  for (double& a : out.accuracy_per_k) a /= static_cast<double>(n);
  return out;
}

void Trainer::load(const std::map<std::string, Tensor>& model, const std::map<std::string, Tensor>& optim) {
  model_->load_state_dict(model, /*strict=*/true);
  opt_->load_state(optim);
  broadcast_state();
}

}  // namespace cpc::tools
