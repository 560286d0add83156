#pragma once
#include "engine/distributed/communicator.h"
#include "layers/module.h"

namespace cpc {

// BatchNorm1d on (B, C, L), or (B, L, C) when channels_last, with PyTorch's names:
// weight, bias, running_mean, running_var, num_batches_tracked.
class BatchNorm1d : public Layer {
 public:
  explicit BatchNorm1d(int64_t channels, float eps = 1e-5f, float momentum = 0.1f);
  Var* forward(Var* x) override { return forward(x, false); }
  Var* forward_relu(Var* x) override { return forward(x, true); }
  Var* forward_relu_rounded(Var* x) override { return forward(x, true, true); }
  float eps, momentum;
  Parameter* weight;
  Parameter* bias;
  Tensor* running_mean;
  Tensor* running_var;
  Tensor* num_batches_tracked;  // kept for state-dict compatibility with PyTorch
  Communicator* sync = nullptr;  // data parallel: statistics over every rank's batch
  bool channels_last = false;

 private:
  Var* forward(Var* x, bool relu, bool round = false);
  Tensor one_;  // 1 on num_batches_tracked's device, for its increment
};

}  // namespace cpc
