#pragma once
// Seeded host-side random numbers for weight initialisation and data sampling.
#include <cstdint>
#include <random>

#include "engine/core/tensor.h"

namespace cpc {

// SplitMix64: a well-mixed 64-bit value from a counter, for draws addressed by
// (seed, step, row, ...) instead of a generator's running state (resume stays exact
// and every rank draws what one process would).
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

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
