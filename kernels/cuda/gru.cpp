#include "kernels/cuda/gru.h"

#include <utility>

#include "kernels/cuda/cublas_gemm.h"
#include "kernels/cuda/runtime/cuda_check.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/gru_kernels.h"
#include "kernels/cuda/bias.h"

namespace cpc::cuda {

void gru_forward(const CudaContext& ctx, const float* x, const float* h0, const float* w_ih, const float* w_hh,
                 const float* b_ih, const float* b_hh, const GruDims& d, float* y, float* reserve) {
  const int64_t G = 3 * d.H, rows = d.B * d.T;
  if (rows == 0 || d.H == 0) return;
  DeviceScratch gi = ctx.scratch(sizeof(float) * rows * G), gh = ctx.scratch(sizeof(float) * d.B * G);
  RowMajorGemm in;  // gi (B*T, 3H) = x (B*T, Din) . w_ih^T
  in.trans_b = true, in.m = rows, in.n = G, in.k = d.Din;
  in.a = x, in.lda = d.Din, in.b = w_ih, in.ldb = d.Din, in.c = gi.get<float>(), in.ldc = G;
  in.precision = ctx.bf16 ? Precision::bf16 : Precision::fp32;  // the batched GEMMs take bf16 under mixed precision; per-step ones stay fp32 (as on the CPU)
  gemm(ctx, in, "gru input projection");
  const GruShape s{d.B, d.T, d.H};
  for (int64_t t = 0; t < d.T; ++t) {
    const float* h_prev = t == 0 ? h0 : y + (t - 1) * d.H;  // rows T*H apart when t > 0
    const int64_t ld_h = t == 0 ? d.H : d.T * d.H;
    if (h_prev) {
      RowMajorGemm rec;  // gh (B, 3H) = h_prev (B, H) . w_hh^T
      rec.trans_b = true, rec.m = d.B, rec.n = G, rec.k = d.H;
      rec.a = h_prev, rec.lda = ld_h, rec.b = w_hh, rec.ldb = d.H, rec.c = gh.get<float>(), rec.ldc = G;
      gemm(ctx, rec, "gru recurrent projection");
    }
    CPC_CUDA_CHECK(launch_gru_cell_forward(gi.get<float>(), h_prev ? gh.get<float>() : nullptr, b_ih, b_hh, h_prev,
                                           ld_h, s, t, y, reserve, ctx.stream));
  }
}

void gru_backward(const CudaContext& ctx, const float* x, const float* h0, const float* w_ih, const float* w_hh,
                  const float* y, const float* reserve, const float* dy, const float* dh_n, const GruDims& d, float* dx,
                  float* dh0, float* dw_ih, float* dw_hh, float* db_ih, float* db_hh) {
  const int64_t H = d.H, G = 3 * H, rows = d.B * d.T;
  if (rows == 0 || H == 0) return;
  DeviceScratch dgi_s = ctx.scratch(sizeof(float) * rows * G), dgh_s = ctx.scratch(sizeof(float) * rows * G);
  DeviceScratch hprev_s = ctx.scratch(sizeof(float) * rows * H), dh_s = ctx.scratch(sizeof(float) * 2 * d.B * H);
  float *dgi = dgi_s.get<float>(), *dgh = dgh_s.get<float>(), *h_prev_all = hprev_s.get<float>();
  float* dh = dh_s.get<float>();
  float* dh_next = dh + d.B * H;
  if (dh_n)
    CPC_CUDA_CHECK(cudaMemcpyAsync(dh, dh_n, sizeof(float) * d.B * H, cudaMemcpyDeviceToDevice, ctx.stream));
  else
    CPC_CUDA_CHECK(cudaMemsetAsync(dh, 0, sizeof(float) * d.B * H, ctx.stream));
  const GruShape s{d.B, d.T, H};
  for (int64_t t = d.T - 1; t >= 0; --t) {
    CPC_CUDA_CHECK(launch_gru_cell_backward(reserve, y, h0, dy, dh, s, t, dgi, dgh, h_prev_all, dh_next, ctx.stream));
    RowMajorGemm rec;  // dh_prev (B, H) = direct part + dgh_t (B, 3H) . w_hh (3H, H)
    rec.m = d.B, rec.n = H, rec.k = G, rec.beta = 1.f;
    rec.a = dgh + t * G, rec.lda = d.T * G, rec.b = w_hh, rec.ldb = H, rec.c = dh_next, rec.ldc = H;
    gemm(ctx, rec, "gru backward recurrent");
    std::swap(dh, dh_next);
  }
  if (dh0) CPC_CUDA_CHECK(launch_axpy(1.f, dh, dh0, d.B * H, ctx.stream));
  if (dw_hh) {
    RowMajorGemm g;  // dw_hh (3H, H) += dgh^T (3H, B*T) . h_prev_all (B*T, H)
    g.trans_a = true, g.m = G, g.n = H, g.k = rows, g.beta = 1.f;
    g.a = dgh, g.lda = G, g.b = h_prev_all, g.ldb = H, g.c = dw_hh, g.ldc = H;
    g.precision = ctx.bf16 ? Precision::bf16 : Precision::fp32;
    gemm(ctx, g, "gru weight_hh gradient");
  }
  if (dw_ih) {
    RowMajorGemm g;  // dw_ih (3H, Din) += dgi^T (3H, B*T) . x (B*T, Din)
    g.trans_a = true, g.m = G, g.n = d.Din, g.k = rows, g.beta = 1.f;
    g.a = dgi, g.lda = G, g.b = x, g.ldb = d.Din, g.c = dw_ih, g.ldc = d.Din;
    g.precision = ctx.bf16 ? Precision::bf16 : Precision::fp32;
    gemm(ctx, g, "gru weight_ih gradient");
  }
  if (dx) {
    RowMajorGemm g;  // dx (B*T, Din) += dgi (B*T, 3H) . w_ih (3H, Din)
    g.m = rows, g.n = d.Din, g.k = G, g.beta = 1.f;
    g.a = dgi, g.lda = G, g.b = w_ih, g.ldb = d.Din, g.c = dx, g.ldc = d.Din;
    g.precision = ctx.bf16 ? Precision::bf16 : Precision::fp32;
    gemm(ctx, g, "gru input gradient");
  }
  if (db_ih) CPC_CUDA_CHECK(launch_bias_grad(dgi, db_ih, rows, G, 1, ctx.stream));
  if (db_hh) CPC_CUDA_CHECK(launch_bias_grad(dgh, db_hh, rows, G, 1, ctx.stream));
}

}  // namespace cpc::cuda
