#pragma once
// exp, sigmoid and tanh in plain arithmetic, so that `omp simd` loops vectorize them:
// GCC calls glibc's vector expf only under -ffast-math, and a scalar expf per element
// made the GRU cell half of the GRU's forward. Float: Cephes' expf (Cody-Waite range
// reduction, degree-6 polynomial), within 2 ulp of expf over [-87, 88]; double: the
// library functions (the reference instantiations stay exact).
#include <cmath>
#include <cstdint>
#include <cstring>

namespace cpc::cpu {

inline float fast_exp(float x) {
  // e^x = 2^n e^r, n = round(x / ln 2), |r| <= ln 2 / 2; clamped so that 2^n stays a
  // normal float (e^-87.3 ~ 1.2e-38, e^88.37 ~ 2.4e38).
  x = x < -87.3f ? -87.3f : x;
  x = x > 88.37f ? 88.37f : x;
  // Round to nearest by adding and removing 1.5 * 2^23 (std::floor would keep GCC from
  // vectorizing the loop); t's low mantissa bits then hold n as an integer.
  const float t = x * 1.44269504088896341f + 12582912.0f;
  const float n = t - 12582912.0f;
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // 2^n from t's bits (0x4B400000 is 1.5 * 2^23): integer arithmetic only, so a NaN x
  // (NaN through p) needs no float-to-int conversion, which would be undefined for NaN.
  uint32_t tb;
  std::memcpy(&tb, &t, sizeof tb);
  const uint32_t bits = (tb - 0x4B400000u + 127u) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}
inline double fast_exp(double x) { return std::exp(x); }

template <class T>
inline T fast_sigmoid(T x) {
  return T(1) / (T(1) + fast_exp(-x));
}

// 1 - 2 / (e^2x + 1): saturates to +-1 without overflow; its absolute error is that of
// the exp (~1e-7), which near 0 is a relative error up to ~1e-3 of a tiny value.
inline float fast_tanh(float x) { return 1.0f - 2.0f / (fast_exp(2.0f * x) + 1.0f); }
inline double fast_tanh(double x) { return std::tanh(x); }

}  // namespace cpc::cpu
