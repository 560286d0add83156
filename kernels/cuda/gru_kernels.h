#pragma once
// Launchers for the fused GRU cell kernels of gru_kernels.cu: one thread per (b, j)
// of one time step, the gate math of kernels/common/gru_cell.h (shared with the CPU).
// Layouts as the Backend interface: x (B, T, Din), y (B, T, H), reserve (B, T, 4H) =
// [r, z, n, W_hn h + b_hn], gate order r, z, n.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace cpc::cuda {

struct GruShape {
  int64_t B, T, H;
};

// Step t: gi (B, T, 3H) = x W_ih^T (no bias), gh (B, 3H) = h_prev W_hh^T (no bias;
// null when h_prev is zero), h_prev rows ld_h apart (null: zeros). Writes y[:, t] and
// reserve[:, t].
cudaError_t launch_gru_cell_forward(const float* gi, const float* gh, const float* b_ih, const float* b_hh,
                                    const float* h_prev, int64_t ld_h, const GruShape& d, int64_t t, float* y,
                                    float* reserve, cudaStream_t s);

// Step t of BPTT: dh (B, H) is the gradient reaching h_t from later steps, dy (B, T, H)
// or null the sequence gradient. Writes dgi[:, t], dgh[:, t] (B, T, 3H), h_prev_all[:, t]
// (B, T, H) and dh_next (B, H) = the direct part of d h_{t-1} (the caller adds dgh_t W_hh).
cudaError_t launch_gru_cell_backward(const float* reserve, const float* y, const float* h0, const float* dy,
                                     const float* dh, const GruShape& d, int64_t t, float* dgi, float* dgh,
                                     float* h_prev_all, float* dh_next, cudaStream_t s);

}  // namespace cpc::cuda
