#include "engine/optim/optimizer.h"

#include <cmath>

#include "engine/core/error.h"
#include "engine/core/profiler.h"

namespace cpc {

namespace {
Backend& be(const Parameter* p) { return backend(p->value.device()); }

// The step count as float tensors that hold it exactly: "step" (PyTorch's name; a float
// is exact to 2^24 steps) and "step_high" * 2^24 + "step_low" (exact to 2^48).
constexpr int64_t kStepSplit = int64_t{1} << 24;
void save_step(std::map<std::string, Tensor>& s, int64_t steps) {
  s["step"] = Tensor::from_vector({}, {static_cast<float>(steps)});
  s["step_high"] = Tensor::from_vector({}, {static_cast<float>(steps / kStepSplit)});
  s["step_low"] = Tensor::from_vector({}, {static_cast<float>(steps % kStepSplit)});
}
int64_t load_step(const std::map<std::string, Tensor>& s) {
  auto it = s.find("step");
  CPC_CHECK(it != s.end(), "optimizer state: missing 'step'");
  auto hi = s.find("step_high"), lo = s.find("step_low");
  if (hi == s.end() || lo == s.end()) return static_cast<int64_t>(it->second.to_vector()[0]);  // older checkpoints
  return static_cast<int64_t>(hi->second.to_vector()[0]) * kStepSplit + static_cast<int64_t>(lo->second.to_vector()[0]);
}

void restore(std::vector<Tensor>& dst, const std::map<std::string, Tensor>& s, const std::string& key) {
  for (size_t i = 0; i < dst.size(); ++i) {
    if (!dst[i].defined()) continue;
    auto it = s.find(key + "." + std::to_string(i));
    CPC_CHECK(it != s.end(), "optimizer state: missing '", key, ".", i, "'");
    CPC_CHECK(it->second.shape() == dst[i].shape(), "optimizer state: '", key, ".", i, "' has shape ",
              it->second.shape(), ", expected ", dst[i].shape());
    dst[i].copy_from(it->second.to(dst[i].device()));
  }
}
}  // namespace

void Optimizer::zero_grad() {
  for (Parameter* p : params_) p->zero_grad();
}

Sgd::Sgd(std::vector<Parameter*> params, const SgdOptions& o) : Optimizer(std::move(params)), o_(o) {
  lr_ = o.lr;
  for (Parameter* p : params_)
    buf_.push_back(o.momentum != 0.f ? Tensor::zeros(p->value.shape(), p->value.device()) : Tensor());
}

void Sgd::step() {
  for (size_t i = 0; i < params_.size(); ++i) {
    Parameter* p = params_[i];
    be(p).sgd_update(p->value, p->grad, buf_[i], lr_, o_.momentum, o_.dampening, o_.weight_decay, o_.nesterov,
                     steps_ == 0);
  }
  ++steps_;
}

std::map<std::string, Tensor> Sgd::state() const {
  std::map<std::string, Tensor> s;
  save_step(s, steps_);
  for (size_t i = 0; i < buf_.size(); ++i)
    if (buf_[i].defined()) s["momentum_buffer." + std::to_string(i)] = buf_[i];
  return s;
}

void Sgd::load_state(const std::map<std::string, Tensor>& s) {
  steps_ = load_step(s);
  restore(buf_, s, "momentum_buffer");
}

Adam::Adam(std::vector<Parameter*> params, const AdamOptions& o, bool decoupled)
    : Optimizer(std::move(params)), o_(o), decoupled_(decoupled) {
  lr_ = o.lr;
  for (Parameter* p : params_) {
    m_.push_back(Tensor::zeros(p->value.shape(), p->value.device()));
    v_.push_back(Tensor::zeros(p->value.shape(), p->value.device()));
    vmax_.push_back(o.amsgrad ? Tensor::zeros(p->value.shape(), p->value.device()) : Tensor());
  }
}

void Adam::step() {
  profiler::ProfileScope prof(decoupled_ ? "adamw_update" : "adam_update", false,
                             params_.empty() ? Device::cpu() : params_.front()->value.device());
  ++steps_;
  AdamHyper h;
  h.lr = lr_, h.beta1 = o_.beta1, h.beta2 = o_.beta2, h.eps = o_.eps, h.weight_decay = o_.weight_decay;
  h.decoupled = decoupled_, h.amsgrad = o_.amsgrad, h.step = steps_;
  if (params_.empty()) return;
  // One call for all parameters when they share a device (the usual case), so a GPU
  // updates every tensor in one launch; slots_ keeps its capacity, so no allocation.
  const Device dev = params_.front()->value.device();
  bool one_device = true;
  for (const Parameter* p : params_) one_device = one_device && p->value.device() == dev;
  if (!one_device) {
    for (size_t i = 0; i < params_.size(); ++i)
      be(params_[i]).adam_update(params_[i]->value, params_[i]->grad, m_[i], v_[i], vmax_[i], h);
    return;
  }
  slots_.clear();
  for (size_t i = 0; i < params_.size(); ++i) slots_.push_back({params_[i]->value, params_[i]->grad, m_[i], v_[i], vmax_[i]});
  backend(dev).adam_update_multi(slots_, h);
  slots_.clear();  // keeps the capacity, drops the references
}

std::map<std::string, Tensor> Adam::state() const {
  std::map<std::string, Tensor> s;
  save_step(s, steps_);
  for (size_t i = 0; i < m_.size(); ++i) {
    s["exp_avg." + std::to_string(i)] = m_[i];
    s["exp_avg_sq." + std::to_string(i)] = v_[i];
    if (vmax_[i].defined()) s["max_exp_avg_sq." + std::to_string(i)] = vmax_[i];
  }
  return s;
}

void Adam::load_state(const std::map<std::string, Tensor>& s) {
  steps_ = load_step(s);
  restore(m_, s, "exp_avg");
  restore(v_, s, "exp_avg_sq");
  restore(vmax_, s, "max_exp_avg_sq");
}

double grad_norm(const std::vector<Parameter*>& params) {
  if (params.empty()) return 0.0;
  profiler::ProfileScope prof("grad_norm", false, params.front()->grad.device());
  // One host read when all gradients share a device; the list keeps its capacity
  // between steps, so the steady state allocates nothing.
  const Device dev = params.front()->grad.device();
  bool one_device = true;
  for (const Parameter* p : params) one_device = one_device && p->grad.device() == dev;
  double ss = 0;
  if (!one_device) {
    for (const Parameter* p : params) ss += be(p).sum_squares(p->grad);
    return std::sqrt(ss);
  }
  thread_local std::vector<Tensor> grads;
  grads.clear();
  for (const Parameter* p : params) grads.push_back(p->grad);
  ss = backend(dev).sum_squares_multi(grads);
  grads.clear();
  return std::sqrt(ss);
}

void clip_gradients(const std::vector<Parameter*>& params, double max_norm, double norm) {
  profiler::ProfileScope prof("clip_gradients", false, params.empty() ? Device::cpu() : params.front()->grad.device());
  CPC_CHECK(max_norm > 0, "clip_grad_norm: max_norm must be > 0, found ", max_norm);
  const double coef = max_norm / (norm + 1e-6);
  if (coef < 1.0) {
    // scale in place: g += (coef - 1) * g
    for (Parameter* p : params) be(p).axpy(static_cast<float>(coef - 1.0), p->grad, p->grad);
  }
}

double clip_grad_norm(const std::vector<Parameter*>& params, double max_norm) {
  const double norm = grad_norm(params);
  clip_gradients(params, max_norm, norm);
  return norm;
}

}  // namespace cpc
