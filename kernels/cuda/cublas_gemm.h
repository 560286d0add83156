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

#include "engine/core/op_args.h"
#include "kernels/cuda/runtime/cuda_context.h"

namespace cpc::cuda {

// The Backend's GemmArgs (engine/core/op_args.h), optionally batched with strides.
struct RowMajorGemm : GemmArgs {
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;
  int64_t batch = 1;
  bool bf16() const { return precision == Precision::bf16; }  // bf16 inputs, fp32 accumulation and output
};

// Checks sizes (int range, leading dimensions) and runs cublasSgemm or
// cublasSgemmStridedBatched (cublasGemm[StridedBatched]Ex with g.bf16) on ctx.blas;
// failures throw a cpc::Error naming `what`.
void gemm(const CudaContext& ctx, const RowMajorGemm& g, const char* what);

}  // namespace cpc::cuda
