#pragma once
// Row-major GEMMs on cuBLAS (column-major): C = alpha op(A) op(B) + beta C is
// C^T = op(B)^T op(A)^T, so B goes first and m and n swap; leading dimensions carry
// over unchanged. The batched form walks A, B and C by fixed strides (elements).
//
// bf16: A and B are rounded to bfloat16 copies (kernels/common/bf16.h, in scratch from
// the allocator) and multiplied by cublasGemmEx with fp32 accumulation and an fp32 C,
// which is what the CPU backend's oneDNN matmul computes under precision bf16.
#include <cublas_v2.h>

#include <cstdint>

#include "kernels/cuda/runtime/cuda_context.h"

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
  bool bf16 = false;  // bf16 inputs, fp32 accumulation and output
};

// Checks sizes (int range, leading dimensions) and runs cublasSgemm or
// cublasSgemmStridedBatched (cublasGemm[StridedBatched]Ex with g.bf16) on ctx.blas;
// failures throw a cpc::Error naming `what`.
void gemm(const CudaContext& ctx, const RowMajorGemm& g, const char* what);

}  // namespace cpc::cuda
