#pragma once
// Parameter-free layers: ReLU, GELU and Dropout.
#include <cstdint>

#include "engine/ops/ops.h"
#include "layers/module.h"

namespace cpc {

class ReLU : public Layer {
 public:
  Var* forward(Var* x) override { return ops::relu(x); }
};

class GELU : public Layer {
 public:
  Var* forward(Var* x) override { return ops::gelu(x); }
};

// Active in training mode only. Each call draws a fresh mask from (seed, training
// step, index of the call within the step): the trainer sets the step (set_step), so a
// resumed run draws the masks of the uninterrupted one without any saved state.
class Dropout : public Layer {
 public:
  Dropout(float p, uint64_t seed) : p(p), seed(seed) {}
  Var* forward(Var* x) override {
    if (!is_training() || p == 0.f) return x;
    const uint64_t s = (seed * 0x9e3779b97f4a7c15ULL) ^ (static_cast<uint64_t>(step_) * 0xbf58476d1ce4e5b9ULL);
    return ops::dropout(x, p, s + calls_in_step_++);
  }
  void set_step(int64_t step) {
    if (step != step_) step_ = step, calls_in_step_ = 0;
  }
  float p;
  uint64_t seed;

 private:
  int64_t step_ = 0;
  uint64_t calls_in_step_ = 0;
};

}  // namespace cpc
