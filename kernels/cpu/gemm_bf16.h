#pragma once
// Row-major C = alpha * op(A) * op(B) + beta * C with A and B rounded to bfloat16 and
// products accumulated in float (oneDNN matmul; AVX-512 BF16 instructions where the
// CPU has them). Primitives are cached per shape and thread; the bf16 copies of A and B
// live in buffers that grow once.
#include <cstdint>

namespace cpc::cpu {

void gemm_bf16(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
               const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// The same with A and B already bf16 (row-major with leading dimensions lda, ldb, as
// stored: k x m for a transposed A): no copies; the conv GEMMs' strided windows.
void gemm_bf16_packed(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const uint16_t* a, int64_t lda,
                      const uint16_t* b, int64_t ldb, float beta, float* c, int64_t ldc);

// Rows x cols of a float matrix with leading dimension ld -> packed bf16 (ld = cols).
void to_bf16(const float* src, int64_t rows, int64_t cols, int64_t ld, uint16_t* dst);
// n contiguous floats -> bf16.
void to_bf16(const float* src, int64_t n, uint16_t* dst);

}  // namespace cpc::cpu
