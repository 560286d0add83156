#pragma once
#include <vector>

#include "engine/ops/ops.h"
#include "engine/core/random.h"
#include "layers/module.h"

namespace cpc {

// Stacked GRU, batch-first, PyTorch's parameter names and gate order
// (weight_ih_l{k} (3H, Din) with rows r, z, n; weight_hh_l{k}; bias_ih_l{k}; bias_hh_l{k}).
class GRU : public Module {
 public:
  GRU(int64_t input_size, int64_t hidden_size, int num_layers, Generator& gen);
  // x (B, T, Din), h0 (num_layers, B, H) or null -> output (B, T, H), h_n (num_layers, B, H).
  ops::GruOutput forward(Var* x, Var* h0 = nullptr);
  int64_t input_size, hidden_size;
  int num_layers;

 private:
  std::vector<ops::GruLayerParams> layers_;  // built once: forward allocates nothing
};

}  // namespace cpc
