#pragma once
// Seeded host-side random numbers for weight initialisation and data sampling.
#include <cstdint>
#include <random>

#include "engine/core/tensor.h"

namespace cpc {

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : rng_(seed) {}
  float uniform(float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng_); }
  float normal(float mean = 0.f, float stddev = 1.f) { return std::normal_distribution<float>(mean, stddev)(rng_); }
  uint64_t next() { return rng_(); }
  std::mt19937_64& engine() { return rng_; }

  // Tensors on the CPU, then copied to device.
  Tensor uniform_tensor(const Shape& shape, float lo, float hi, Device device = Device::cpu());
  Tensor normal_tensor(const Shape& shape, float mean, float stddev, Device device = Device::cpu());

 private:
  std::mt19937_64 rng_;
};

}  // namespace cpc
