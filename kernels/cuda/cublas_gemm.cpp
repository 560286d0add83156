#include "kernels/cuda/cublas_gemm.h"

#include <algorithm>
#include <climits>

#include "engine/core/error.h"
#include "engine/core/op_dims.h"
#include "kernels/cuda/runtime/cuda_check.h"
#include "kernels/cuda/elementwise.h"

namespace cpc::cuda {

namespace {

// Elements from a matrix's first to its last used one: rows x cols with leading
// dimension ld, `batch` of them `stride` apart. Gaps in between are converted too (harmless).
int64_t span(int64_t rows, int64_t cols, int64_t ld, int64_t stride, int64_t batch) {
  if (rows == 0 || cols == 0 || batch == 0) return 0;
  return (batch - 1) * stride + (rows - 1) * ld + cols;
}

// A and B rounded to bf16 copies, then one cublasGemm[StridedBatched]Ex with fp32
// accumulation (CUBLAS_COMPUTE_32F) into the fp32 C.
void gemm_bf16(const CudaContext& ctx, const RowMajorGemm& g, cublasOperation_t opa, cublasOperation_t opb) {
  const int64_t a_rows = g.trans_a ? g.k : g.m, a_cols = g.trans_a ? g.m : g.k;
  const int64_t b_rows = g.trans_b ? g.n : g.k, b_cols = g.trans_b ? g.k : g.n;
  const int64_t na = span(a_rows, a_cols, g.lda, g.stride_a, g.batch), nb = span(b_rows, b_cols, g.ldb, g.stride_b, g.batch);
  DeviceScratch a16 = ctx.scratch(sizeof(uint16_t) * na), b16 = ctx.scratch(sizeof(uint16_t) * nb);
  CPC_CUDA_CHECK(launch_to_bf16(g.a, a16.get<uint16_t>(), na, ctx.stream));
  CPC_CUDA_CHECK(launch_to_bf16(g.b, b16.get<uint16_t>(), nb, ctx.stream));
  const int m = static_cast<int>(g.m), n = static_cast<int>(g.n), k = static_cast<int>(g.k);
  const int lda = static_cast<int>(g.lda), ldb = static_cast<int>(g.ldb), ldc = static_cast<int>(g.ldc);
  if (g.batch == 1) {
    CPC_CUBLAS_CHECK(cublasGemmEx(ctx.blas, opb, opa, n, m, k, &g.alpha, b16.get<uint16_t>(), CUDA_R_16BF, ldb,
                                  a16.get<uint16_t>(), CUDA_R_16BF, lda, &g.beta, g.c, CUDA_R_32F, ldc,
                                  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    return;
  }
  CPC_CUBLAS_CHECK(cublasGemmStridedBatchedEx(ctx.blas, opb, opa, n, m, k, &g.alpha, b16.get<uint16_t>(), CUDA_R_16BF,
                                              ldb, g.stride_b, a16.get<uint16_t>(), CUDA_R_16BF, lda, g.stride_a,
                                              &g.beta, g.c, CUDA_R_32F, ldc, g.stride_c, static_cast<int>(g.batch),
                                              CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}
}  // namespace

void gemm(const CudaContext& ctx, const RowMajorGemm& g, const char* what) {
  cublasHandle_t h = ctx.blas;
  CPC_CHECK(fits_int(g.m) && fits_int(g.n) && fits_int(g.k) && fits_int(g.batch), what, ": gemm m, n, k, batch = ", g.m,
            ", ", g.n, ", ", g.k, ", ", g.batch, " must lie in [0, ", INT_MAX, "]");
  CPC_CHECK(fits_int(g.lda) && fits_int(g.ldb) && fits_int(g.ldc), what, ": gemm lda, ldb, ldc = ", g.lda, ", ", g.ldb,
            ", ", g.ldc, " must lie in [0, ", INT_MAX, "]");
  const int64_t a_cols = g.trans_a ? g.m : g.k, b_cols = g.trans_b ? g.k : g.n;
  CPC_CHECK(g.lda >= std::max<int64_t>(1, a_cols) && g.ldb >= std::max<int64_t>(1, b_cols) &&
                g.ldc >= std::max<int64_t>(1, g.n),
            what, ": gemm leading dimensions ", g.lda, ", ", g.ldb, ", ", g.ldc, " below the row widths ", a_cols, ", ",
            b_cols, ", ", g.n);
  if (g.m == 0 || g.n == 0 || g.batch == 0) return;
  const cublasOperation_t opa = g.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, opb = g.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (g.bf16() && g.k > 0) {  // k = 0 reads neither A nor B: nothing to round
    CPC_CHECK(fits_int(g.stride_a) && fits_int(g.stride_b), what, ": bf16 gemm strides ", g.stride_a, ", ",
              g.stride_b, " must lie in [0, ", INT_MAX, "]");
    gemm_bf16(ctx, g, opa, opb);
    return;
  }
  const int m = static_cast<int>(g.m), n = static_cast<int>(g.n), k = static_cast<int>(g.k);
  const int lda = static_cast<int>(g.lda), ldb = static_cast<int>(g.ldb), ldc = static_cast<int>(g.ldc);
  if (g.batch == 1) {
    CPC_CUBLAS_CHECK(cublasSgemm(h, opb, opa, n, m, k, &g.alpha, g.b, ldb, g.a, lda, &g.beta, g.c, ldc));
    return;
  }
  CPC_CUBLAS_CHECK(cublasSgemmStridedBatched(h, opb, opa, n, m, k, &g.alpha, g.b, ldb, g.stride_b, g.a, lda, g.stride_a,
                                             &g.beta, g.c, ldc, g.stride_c, static_cast<int>(g.batch)));
}

}  // namespace cpc::cuda
