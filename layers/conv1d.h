#pragma once
#include "engine/core/backend.h"
#include "engine/core/random.h"
#include "layers/module.h"

namespace cpc {

// Conv1d on (B, Cin, L), or (B, L, Cin) with geometry.channels_last; parameters
// `weight` (Cout, Cin, K), `bias` (Cout).
class Conv1d : public Layer {
 public:
  Conv1d(int64_t in, int64_t out, int64_t kernel, Conv1dGeometry geometry, bool bias, Generator& gen);
  Var* forward(Var* x) override;
  bool takes_rounded_input() const override;
  Conv1dGeometry geometry;
  Parameter* weight;
  Parameter* bias = nullptr;
};

}  // namespace cpc
