#pragma once
// One CPC training step and its state (model, AdamW, schedule, tape), shared by
// `train` and `bench` so the benchmark times exactly what training runs. Data
// parallel over a Communicator: every rank steps on its share of the global batch,
// gradients are averaged (one bucket), so all ranks keep identical weights.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/autograd.h"
#include "engine/distributed/communicator.h"
#include "engine/optim/lr_schedule.h"
#include "engine/optim/optimizer.h"
#include "models/cpc_model.h"

namespace cpc::tools {

struct StepResult {  // means over ranks
  double loss = 0, accuracy = 0, grad_norm = 0, lr = 0;
  std::vector<double> accuracy_per_k;
  double comm_seconds = 0;  // inside collectives during this step
  bool finite = true;       // false: the loss, the gradient norm or a statistic was NaN/Inf; no update was made
  std::string nonfinite;    // what was not finite, for the message
};

struct EvalResult {
  double loss = 0, accuracy = 0;
  std::vector<double> accuracy_per_k;
  int64_t windows = 0;
};

class Trainer {
 public:
  // Weights are initialised from train.seed and broadcast from rank 0.
  // train.precision is the arithmetic of the trainer's steps (set on its tape).
  explicit Trainer(const CpcConfig& cfg, Communicator* comm = nullptr, Device device = Device::cpu());
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;
  Communicator& comm() { return *comm_; }
  CpcModel& model() { return *model_; }
  const CpcConfig& config() const { return model_->config(); }

  // Forward, InfoNCE, backward, clipping and an AdamW step on x (B, C, L) at 0-based
  // `step` (the schedule's position; random t is drawn from (seed, step)). t_random >= 0
  // fixes t in t_mode random.
  StepResult step(const Tensor& x, int64_t step, int64_t t_random = -1);
  // The same over train.accumulate_steps micro-batches: micro(i) returns micro-batch i
  // (B, C, L), called for i = 0, 1, ... after the previous one's work is queued. Each
  // micro-batch's loss is scaled by 1/k before its backward, so the gradients add up to
  // those of the mean loss; then one allreduce, clip and AdamW step. Metrics are means
  // over the micro-batches. Random t of micro-batch i comes from (seed, step * k + i).
  StepResult step(const std::function<const Tensor&(int)>& micro, int64_t step, int64_t t_random = -1);
  // Mean InfoNCE loss and accuracy in eval mode (running BatchNorm statistics, no
  // gradients) over consecutive batches of `batch` windows of xs (N, C, L); t from a
  // fixed seed, so every validation sees the same problem. Local to the calling rank
  // (no collectives).
  EvalResult evaluate(const Tensor& xs, int64_t batch);

  std::map<std::string, Tensor> optimizer_state() const { return opt_->state(); }
  // Restores a checkpoint's state; rank 0's copy is then broadcast.
  void load(const std::map<std::string, Tensor>& model, const std::map<std::string, Tensor>& optim);
  int64_t num_parameters() const { return model_->num_parameters(); }

 private:
  std::unique_ptr<Communicator> local_;  // when no communicator is given
  Communicator* comm_;
  std::unique_ptr<CpcModel> model_;
  std::vector<Parameter*> params_;
  std::unique_ptr<Adam> opt_;
  LrSchedule sched_;
  Tape tape_;
  Device device_;
  Tensor x_dev_;        // the batch on device_ (reused)
  Tensor grad_bucket_;  // all gradients, flat, for one allreduce
  Tensor loss_sum_;     // accumulation: the micro-batches' scaled losses, on device_
  std::vector<std::pair<std::string, Tensor>> buffers_;  // running statistics, checked every step
  std::vector<Tensor> buffer_values_;
  void broadcast_state();
  Tensor on_device(const Tensor& x);
  void average_gradients();
};

}  // namespace cpc::tools
