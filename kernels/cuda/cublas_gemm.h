#pragma once
// Row-major GEMMs on cuBLAS (column-major): C = alpha op(A) op(B) + beta C is
// C^T = op(B)^T op(A)^T, so B goes first and m and n swap; leading dimensions carry
// over unchanged. The batched form walks A, B and C by fixed strides (elements).
#include <cublas_v2.h>

#include <cstdint>

namespace cpc::cuda {

struct RowMajorGemm {
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0;
  float alpha = 1.f, beta = 0.f;
  const float* a = nullptr;
  int64_t lda = 0, stride_a = 0;
  const float* b = nullptr;
  int64_t ldb = 0, stride_b = 0;
  float* c = nullptr;
  int64_t ldc = 0, stride_c = 0;
  int64_t batch = 1;
};

// Checks sizes (int range, leading dimensions) and runs cublasSgemm or
// cublasSgemmStridedBatched; failures throw a cpc::Error naming `what`.
void gemm(cublasHandle_t h, const RowMajorGemm& g, const char* what);

}  // namespace cpc::cuda
