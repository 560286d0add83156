// The GRU cell, forward and backward, for one time step. The math is
// kernels/common/gru_cell.h, the functions the CPU backend runs (and its tests check).
#include "kernels/common/gru_cell.h"
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/gru_kernels.h"

namespace cpc::cuda {
namespace {

constexpr int kThreads = 256;

__global__ void gru_cell_forward_kernel(const float* __restrict__ gi, const float* __restrict__ gh,
                                        const float* __restrict__ b_ih, const float* __restrict__ b_hh,
                                        const float* h_prev, int64_t ld_h, GruShape d, int64_t t, float* y,
                                        float* __restrict__ reserve) {
  const int64_t H = d.H, G = 3 * H;
  for (int64_t e = global_index(); e < d.B * H; e += global_stride()) {
    const int64_t b = e / H, j = e % H;
    const float* gib = gi + (b * d.T + t) * G;
    const float hp = h_prev ? h_prev[b * ld_h + j] : 0.f;
    // gh is zero when there is no previous state: only the hidden biases remain (as the
    // CPU, which zero-fills gh before adding b_hh).
    const float ghr = gh ? gh[b * G + j] : 0.f, ghz = gh ? gh[b * G + H + j] : 0.f;
    const float ghn = gh ? gh[b * G + 2 * H + j] : 0.f;
    const float gh_n = ghn + b_hh[2 * H + j];
    const math::GruGates<float> g =
        math::gru_cell_forward(gib[j] + b_ih[j], gib[H + j] + b_ih[H + j], gib[2 * H + j] + b_ih[2 * H + j],
                               ghr + b_hh[j], ghz + b_hh[H + j], gh_n, hp);
    y[(b * d.T + t) * H + j] = g.h;
    float* rs = reserve + (b * d.T + t) * 4 * H;
    rs[j] = g.r;
    rs[H + j] = g.z;
    rs[2 * H + j] = g.n;
    rs[3 * H + j] = gh_n;
  }
}

__global__ void gru_cell_backward_kernel(const float* __restrict__ reserve, const float* __restrict__ y,
                                         const float* __restrict__ h0, const float* __restrict__ dy,
                                         const float* __restrict__ dh, GruShape d, int64_t t, float* __restrict__ dgi,
                                         float* __restrict__ dgh, float* __restrict__ h_prev_all,
                                         float* __restrict__ dh_next) {
  const int64_t H = d.H, G = 3 * H;
  for (int64_t e = global_index(); e < d.B * H; e += global_stride()) {
    const int64_t b = e / H, j = e % H, bt = b * d.T + t;
    const float* rs = reserve + bt * 4 * H;
    const float hp = t > 0 ? y[(bt - 1) * H + j] : (h0 ? h0[b * H + j] : 0.f);
    h_prev_all[bt * H + j] = hp;
    const float g_h = dh[e] + (dy ? dy[bt * H + j] : 0.f);
    const math::GruCellGrads<float> g =
        math::gru_cell_backward(g_h, rs[j], rs[H + j], rs[2 * H + j], rs[3 * H + j], hp);
    float* dgib = dgi + bt * G;
    float* dghb = dgh + bt * G;
    dgib[j] = g.d_r;
    dgib[H + j] = g.d_z;
    dgib[2 * H + j] = g.d_gi_n;
    dghb[j] = g.d_r;
    dghb[H + j] = g.d_z;
    dghb[2 * H + j] = g.d_gh_n;
    dh_next[e] = g.d_h_prev_direct;
  }
}

}  // namespace

cudaError_t launch_gru_cell_forward(const float* gi, const float* gh, const float* b_ih, const float* b_hh,
                                    const float* h_prev, int64_t ld_h, const GruShape& d, int64_t t, float* y,
                                    float* reserve, cudaStream_t s) {
  if (d.B * d.H == 0) return cudaSuccess;
  gru_cell_forward_kernel<<<grid_for(d.B * d.H, kThreads), kThreads, 0, s>>>(gi, gh, b_ih, b_hh, h_prev, ld_h, d, t, y,
                                                                             reserve);
  return cudaGetLastError();
}

cudaError_t launch_gru_cell_backward(const float* reserve, const float* y, const float* h0, const float* dy,
                                     const float* dh, const GruShape& d, int64_t t, float* dgi, float* dgh,
                                     float* h_prev_all, float* dh_next, cudaStream_t s) {
  if (d.B * d.H == 0) return cudaSuccess;
  gru_cell_backward_kernel<<<grid_for(d.B * d.H, kThreads), kThreads, 0, s>>>(reserve, y, h0, dy, dh, d, t, dgi, dgh,
                                                                              h_prev_all, dh_next);
  return cudaGetLastError();
}

}  // namespace cpc::cuda
