#pragma once
// bfloat16 (the high 16 bits of an IEEE float) for mixed precision: conversions shared
// by the CPU backend and CUDA kernels. Rounding is to nearest, ties to even, as in
// PyTorch, oneDNN and CUDA's __float2bfloat16; NaN stays a (quiet) NaN.
#include <cstdint>
#include <cstring>

#include "kernels/common/host_device.h"

namespace cpc::math {

CPC_HD uint16_t float_to_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  // Round half to even (carries into the exponent correctly); NaN: keep it quiet. One
  // select, no branch, so that loops of it vectorise.
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16, quiet = (u >> 16) | 0x40u;
  return static_cast<uint16_t>((u & 0x7fffffffu) > 0x7f800000u ? quiet : rounded);
}

CPC_HD float bf16_to_float(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

}  // namespace cpc::math
