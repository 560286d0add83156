#pragma once
// Parameter-free layers: ReLU, GELU and Dropout.
#include <cstdint>

#include "engine/ops.h"
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

// Active in training mode only. Each call draws a fresh mask from (seed, call
// count); the count is part of the training state so a resumed run repeats it.
class Dropout : public Layer {
 public:
  Dropout(float p, uint64_t seed) : p(p), seed(seed) {}
  Var* forward(Var* x) override {
    if (!is_training() || p == 0.f) return x;
    return ops::dropout(x, p, seed * 0x9e3779b97f4a7c15ULL + calls++);
  }
  float p;
  uint64_t seed;
  uint64_t calls = 0;
};

}  // namespace cpc
