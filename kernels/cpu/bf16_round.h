#pragma once
// n floats rounded to bf16 (math::float_to_bf16's bits: nearest, ties to even, denormals
// kept, NaN quiet) on the calling thread. With AVX-512 (checked at run time; the build
// targets AVX2) 16 values per step: the compiler's AVX2 loop for the same arithmetic
// made a BatchNorm pass writing bf16 slower than one writing floats (2.2 vs 1.6 ms for
// 16.8 M values, 2 threads). Not AVX-512 BF16's vcvtneps2bf16: it flushes denormals.
#include <cstdint>

namespace cpc::cpu {

// Whether the CPU has AVX-512F (for the kernels that dispatch on it at run time).
bool has_avx512();

void round_to_bf16(const float* src, int64_t n, uint16_t* dst);
// The same values as floats (the low 16 bits cleared after rounding): for kernels that
// round an operand as they read it. dst may be src (in place).
void round_to_bf16_float(const float* src, int64_t n, float* dst);

}  // namespace cpc::cpu
