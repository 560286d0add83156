#include "kernels/cpu/bf16_round.h"

#include <immintrin.h>

#include "kernels/common/bf16.h"

namespace cpc::cpu {

namespace {

void round_portable(const float* src, int64_t n, uint16_t* dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] = math::float_to_bf16(src[i]);
}

void round_float_portable(const float* src, int64_t n, float* dst) {
  for (int64_t i = 0; i < n; ++i) dst[i] = math::bf16_to_float(math::float_to_bf16(src[i]));
}

// GCC 12 warns inside its own AVX-512 headers (their _mm512_undefined_* placeholders).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
__attribute__((target("avx512f"))) void round_avx512(const float* src, int64_t n, uint16_t* dst) {
  const __m512i half = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1), magnitude = _mm512_set1_epi32(0x7fffffff),
                inf = _mm512_set1_epi32(0x7f800000), quiet = _mm512_set1_epi32(0x40);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i u = _mm512_loadu_si512(src + i), hi = _mm512_srli_epi32(u, 16);
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, half), _mm512_and_si512(hi, one)), 16);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, magnitude), inf);
    r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(hi, quiet));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), _mm512_cvtepi32_epi16(r));
  }
  round_portable(src + i, n - i, dst + i);
}

__attribute__((target("avx512f"))) void round_float_avx512(const float* src, int64_t n, float* dst) {
  const __m512i half = _mm512_set1_epi32(0x7fff), one = _mm512_set1_epi32(1), magnitude = _mm512_set1_epi32(0x7fffffff),
                inf = _mm512_set1_epi32(0x7f800000), quiet = _mm512_set1_epi32(0x00400000),
                high = _mm512_set1_epi32(static_cast<int>(0xffff0000u));
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i u = _mm512_loadu_si512(src + i);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), one);
    __m512i r = _mm512_and_si512(_mm512_add_epi32(_mm512_add_epi32(u, half), lsb), high);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, magnitude), inf);
    r = _mm512_mask_mov_epi32(r, nan, _mm512_and_si512(_mm512_or_si512(u, quiet), high));
    _mm512_storeu_si512(dst + i, r);
  }
  round_float_portable(src + i, n - i, dst + i);
}
#pragma GCC diagnostic pop

}  // namespace

bool has_avx512() {
  static const bool yes = [] {
    __builtin_cpu_init();  // may run before the library's own constructor
    return __builtin_cpu_supports("avx512f") != 0;
  }();
  return yes;
}

void round_to_bf16(const float* src, int64_t n, uint16_t* dst) {
  if (has_avx512())
    round_avx512(src, n, dst);
  else
    round_portable(src, n, dst);
}

void round_to_bf16_float(const float* src, int64_t n, float* dst) {
  if (has_avx512())
    round_float_avx512(src, n, dst);
  else
    round_float_portable(src, n, dst);
}

}  // namespace cpc::cpu
