#pragma once
// Optimizers over a list of parameters, with torch.optim's update rules, and
// gradient clipping by global norm. The state tensors live on the parameters' device.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/core/autograd.h"
#include "engine/core/backend.h"

namespace cpc {

class Optimizer {
 public:
  explicit Optimizer(std::vector<Parameter*> params) : params_(std::move(params)) {}
  virtual ~Optimizer() = default;
  virtual void step() = 0;
  void zero_grad();
  void set_lr(float lr) { lr_ = lr; }
  float lr() const { return lr_; }
  int64_t steps() const { return steps_; }
  // Named state for checkpoints ("exp_avg.3", ...), restored exactly by load_state.
  virtual std::map<std::string, Tensor> state() const = 0;
  virtual void load_state(const std::map<std::string, Tensor>& s) = 0;

 protected:
  std::vector<Parameter*> params_;
  float lr_ = 1e-3f;
  int64_t steps_ = 0;
};

struct SgdOptions {
  float lr = 1e-2f, momentum = 0.f, dampening = 0.f, weight_decay = 0.f;
  bool nesterov = false;
};

class Sgd : public Optimizer {
 public:
  Sgd(std::vector<Parameter*> params, const SgdOptions& o);
  void step() override;
  std::map<std::string, Tensor> state() const override;
  void load_state(const std::map<std::string, Tensor>& s) override;

 private:
  SgdOptions o_;
  std::vector<Tensor> buf_;
};

struct AdamOptions {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.f;
  bool amsgrad = false;
};

// Adam (decoupled = false: weight decay added to the gradient) and AdamW (decoupled:
// the weights shrink by lr * weight_decay before the update), as torch.optim.
class Adam : public Optimizer {
 public:
  Adam(std::vector<Parameter*> params, const AdamOptions& o, bool decoupled);
  void step() override;
  std::map<std::string, Tensor> state() const override;
  void load_state(const std::map<std::string, Tensor>& s) override;

 private:
  AdamOptions o_;
  bool decoupled_;
  std::vector<Tensor> m_, v_, vmax_;
  std::vector<AdamSlots> slots_;  // reused each step: a step allocates nothing
};

inline Adam make_adamw(std::vector<Parameter*> params, AdamOptions o) {
  return Adam(std::move(params), o, /*decoupled=*/true);
}

// Scales all gradients so that their global L2 norm is at most max_norm (as
// torch.nn.utils.clip_grad_norm_, factor max_norm / (norm + 1e-6)); returns the
// norm before clipping.
double clip_grad_norm(const std::vector<Parameter*>& params, double max_norm);
double grad_norm(const std::vector<Parameter*>& params);
// The scaling step of clip_grad_norm for a norm already computed (grad_norm).
void clip_gradients(const std::vector<Parameter*>& params, double max_norm, double norm);

}  // namespace cpc
