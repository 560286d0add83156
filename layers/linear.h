#pragma once
#include "engine/core/random.h"
#include "layers/module.h"

namespace cpc {

// y = x W^T + b over the last dim; parameters `weight` (out, in), `bias` (out).
class Linear : public Layer {
 public:
  Linear(int64_t in, int64_t out, bool bias, Generator& gen);
  Var* forward(Var* x) override;
  Parameter* weight;
  Parameter* bias = nullptr;
};

}  // namespace cpc
