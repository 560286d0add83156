#pragma once
// A counter-based random number: the value for element i depends only on (seed, i),
// so dropout masks are identical on every backend and need not be stored.
#include "kernels/common/host_device.h"

namespace cpc::math {

CPC_HD uint64_t mix64(uint64_t x) {  // splitmix64 finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

// Uniform in [0, 1) with 24 random bits (exact in float).
CPC_HD float uniform01(uint64_t seed, uint64_t index) {
  const uint64_t h = mix64(mix64(seed + 0x9e3779b97f4a7c15ULL) ^ (index * 0xd1b54a32d192ed03ULL));
  return static_cast<float>(h >> 40) * (1.0f / 16777216.0f);
}

CPC_HD bool dropout_keep(uint64_t seed, uint64_t index, float p) { return uniform01(seed, index) >= p; }

}  // namespace cpc::math
