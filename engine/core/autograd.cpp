#include "engine/core/autograd.h"

#include "engine/core/profiler.h"

#include "engine/core/backend.h"
#include "engine/core/error.h"

namespace cpc {

namespace {
thread_local bool t_grad_enabled = true;
thread_local Tape* t_current = nullptr;
}  // namespace

bool GradMode::enabled() { return t_grad_enabled; }
void GradMode::set(bool on) { t_grad_enabled = on; }

void Parameter::zero_grad() {
  if (grad.defined() && grad.numel()) backend(grad.device()).fill(grad, 0.f);
}

Tape::Tape() : objects_(Device::cpu()), cpu_(Device::cpu()) { nodes_.reserve(4096); }
Tape::~Tape() { reset(); }

Tape& Tape::current() {
  if (t_current) return *t_current;
  thread_local Tape fallback;
  return fallback;
}

TapeScope::TapeScope(Tape& t) : prev_(t_current) { t_current = &t; }
TapeScope::~TapeScope() { t_current = prev_; }

Arena& Tape::arena(Device device) {
  if (device.kind == DeviceKind::cpu) return cpu_;
  if (!accel_) accel_ = std::make_unique<Arena>(device);
  CPC_CHECK(accel_->device() == device, "tape: one step uses ", accel_->device().str(), " and ", device.str(),
            "; a step runs on one accelerator");
  return *accel_;
}

Tensor Tape::alloc(const Shape& shape, Device device, DType dtype) { return arena(device).tensor(shape, dtype); }

Tensor Tape::zeros(const Shape& shape, Device device) {
  Tensor t = alloc(shape, device);
  if (t.numel()) backend(device).fill(t, 0.f);
  return t;
}

Var* Tape::var(Tensor value, bool requires_grad) { return objects_.make<Var>(std::move(value), requires_grad); }

bool Tape::records(std::initializer_list<const Var*> inputs) {
  bool needs = false;
  if (GradMode::enabled())
    for (const Var* v : inputs) needs = needs || (v && v->requires_grad);
  return needs;
}

Var* Tape::output(Tensor value, std::initializer_list<const Var*> inputs) { return var(std::move(value), records(inputs)); }

const Tensor& Tape::grad(Var* v) {
  if (!v->grad.defined()) v->grad = zeros(v->value.shape(), v->value.device());
  return v->grad;
}

const Tensor& Tape::grad_to_write(Var* v, bool& accumulate) {
  accumulate = v->grad.defined();
  if (!accumulate) v->grad = alloc(v->value.shape(), v->value.device());
  return v->grad;
}

void Tape::backward(Var* root) {
  CPC_CHECK(root->value.numel() == 1, "backward: the root must be a scalar, found shape ", root->value.shape(),
            "; pass upstream gradients for non-scalar outputs");
  Tensor one = alloc(root->value.shape(), root->value.device());
  backend(one.device()).fill(one, 1.f);
  const std::pair<Var*, Tensor> seed{root, one};
  backward(&seed, 1);
}

void Tape::backward(const std::pair<Var*, Tensor>* seeds, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    auto& [v, g] = seeds[i];
    CPC_CHECK(v->requires_grad,
              "backward: a seeded output does not require grad (made under no_grad, or from "
              "inputs without parameters)");
    check_same_shape(v->value, g, "backward seed");
    backend(g.device()).axpy(1.f, g, grad(v));
  }
  const Device dev = count ? seeds[0].first->value.device() : Device::cpu();  // the graph's device, for --profile
  for (auto it = nodes_.rbegin(); it != nodes_.rend(); ++it) {
    profiler::ProfileScope prof((*it)->name(), /*backward=*/true, dev);
    (*it)->backward(*this);
  }
}

void Tape::reset() {
  nodes_.clear();
  objects_.reset();
  cpu_.reset();
  if (accel_) accel_->reset();
}

}  // namespace cpc
