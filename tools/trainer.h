#pragma once
// One CPC training step and its state (model, AdamW, schedule, tape), shared by
// `train` and `bench` so the benchmark times exactly what training runs.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/lr_schedule.h"
#include "engine/optimizer.h"
#include "models/cpc_model.h"

namespace cpc::tools {

struct StepResult {
  double loss = 0, accuracy = 0, grad_norm = 0, lr = 0;
  std::vector<double> accuracy_per_k;
};

struct EvalResult {
  double loss = 0, accuracy = 0;
  std::vector<double> accuracy_per_k;
  int64_t windows = 0;
};

class Trainer {
 public:
  explicit Trainer(const CpcConfig& cfg);
  CpcModel& model() { return *model_; }
  const CpcConfig& config() const { return model_->config(); }

  // Forward, InfoNCE, backward, clipping and an AdamW step on x (B, C, L) at 0-based
  // `step` (the schedule's position; random t is drawn from (seed, step)). t_random >= 0
  // fixes t in t_mode random.
  StepResult step(const Tensor& x, int64_t step, int64_t t_random = -1);
  // Mean InfoNCE loss and accuracy in eval mode (running BatchNorm statistics, no
  // gradients) over consecutive batches of `batch` windows of xs (N, C, L); t from a
  // fixed seed, so every validation sees the same problem.
  EvalResult evaluate(const Tensor& xs, int64_t batch);

  std::map<std::string, Tensor> optimizer_state() const { return opt_->state(); }
  void load(const std::map<std::string, Tensor>& model, const std::map<std::string, Tensor>& optim);
  int64_t num_parameters() const { return model_->num_parameters(); }

 private:
  std::unique_ptr<CpcModel> model_;
  std::vector<Parameter*> params_;
  std::unique_ptr<Adam> opt_;
  LrSchedule sched_;
  Tape tape_;
};

}  // namespace cpc::tools
