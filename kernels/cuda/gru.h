#pragma once
// One GRU layer on the GPU, batch-first, the Backend interface's layouts. Forward: the
// input projections of all steps in one cuBLAS GEMM, then per step one (B, H) x (H, 3H)
// GEMM and the fused cell kernel. Backward: BPTT with one cell kernel and one GEMM per
// step, then the weight gradients of all steps in one GEMM each (as the CPU's gru.h).
#include <cstdint>

#include "engine/core/op_dims.h"

#include "kernels/cuda/runtime/cuda_context.h"

namespace cpc::cuda {

using ::cpc::GruDims;  // engine/core/op_dims.h, shared with the CPU backend

// h0 may be null (zeros).
void gru_forward(const CudaContext& ctx, const float* x, const float* h0, const float* w_ih, const float* w_hh,
                 const float* b_ih, const float* b_hh, const GruDims& d, float* y, float* reserve);

// Accumulates into dx, dh0, dw_ih, dw_hh, db_ih, db_hh (each may be null); dy and
// dh_n may be null.
void gru_backward(const CudaContext& ctx, const float* x, const float* h0, const float* w_ih, const float* w_hh,
                  const float* y, const float* reserve, const float* dy, const float* dh_n, const GruDims& d, float* dx,
                  float* dh0, float* dw_ih, float* dw_hh, float* db_ih, float* db_hh);

}  // namespace cpc::cuda
