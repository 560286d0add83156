#pragma once
// Row-major GEMM: float on the library chosen in cpu_options.h (oneDNN or OpenBLAS),
// or with bf16 inputs under precision bf16; double on OpenBLAS (it serves the gradient
// checks). gemm_exact ignores the precision option: the losses' scores and their
// gradients stay in fp32 under mixed precision.
#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>

#include <cstdint>

#include "kernels/cpu/cpu_options.h"
#include "kernels/cpu/gemm_bf16.h"

namespace cpc::cpu {

inline void gemm_exact(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                       const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (cpu_options().gemm == GemmLibrary::onednn) {
    dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,
              alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

inline void gemm_exact(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
                       const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,
              alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

// bf16: A and B rounded to bfloat16, fp32 accumulation (precision bf16); the double
// overload (the gradient checks' references) ignores it.
inline void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const float* a, int64_t lda,
                 const float* b, int64_t ldb, float beta, float* c, int64_t ldc, bool bf16 = false) {
  if (k == 0) {  // C = beta * C, as BLAS defines it (the CPU libraries left C untouched for k = 0)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.f ? 0.f : beta * c[i * ldc + j];
    return;
  }
  if (bf16)
    gemm_bf16(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  else
    gemm_exact(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

inline void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const double* a, int64_t lda,
                 const double* b, int64_t ldb, double beta, double* c, int64_t ldc, bool = false) {
  gemm_exact(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace cpc::cpu
