#include "kernels/cuda/cublas_gemm.h"

#include <algorithm>
#include <climits>

#include "engine/error.h"
#include "kernels/cuda/cuda_check.h"

namespace cpc::cuda {

namespace {
bool fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }
}  // namespace

void gemm(cublasHandle_t h, const RowMajorGemm& g, const char* what) {
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
