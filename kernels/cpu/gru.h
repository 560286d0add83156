#pragma once
// One GRU layer on the CPU: the input projections of all time steps in one GEMM,
// then one (B, H) x (H, 3H) GEMM per step; BPTT backward with the weight gradients
// of all steps in one GEMM each. Gate math in kernels/common/gru_cell.h (the forward's
// cell with fast_math.h's vectorizable sigmoid and tanh). Under
// precision bf16 the batched GEMMs take bf16 inputs; the small per-step recurrent
// GEMMs stay fp32 (converting them would cost more than it saves, and keeps the
// recurrence exact).
// x (B, T, Din), y (B, T, H), reserve (B, T, 4H) = [r, z, n, gh_n] per step.
#include <cstdint>
#include <cstring>

#include "engine/core/op_dims.h"
#include "kernels/common/gru_cell.h"
#include "kernels/cpu/blas.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/fast_math.h"
#include "kernels/cpu/norms.h"
#include "kernels/cpu/parallel.h"

namespace cpc::cpu {

using ::cpc::GruDims;  // engine/core/op_dims.h, shared with the CUDA backend

// Workspace elements needed by forward / backward.
inline int64_t gru_forward_workspace(const GruDims& d) {
  return d.B * d.T * 3 * d.H + d.B * 3 * d.H + 3 * d.H * d.H;
}
inline int64_t gru_backward_workspace(const GruDims& d) {
  return 2 * d.B * d.T * 3 * d.H + d.B * d.T * d.H + 2 * d.B * d.H;
}

// fast_math.h's sigmoid and tanh, which `omp simd` loops vectorize.
struct FastActivations {
  template <class T>
  static T sigmoid(T x) {
    return fast_sigmoid(x);
  }
  template <class T>
  static T tanh(T x) {
    return fast_tanh(x);
  }
};

// One row of H cells (math::gru_cell_forward with FastActivations), written so that the
// loop vectorizes (kPrev: the previous state exists; without it, zeros, in a loop of its
// own: a conditional load would keep the loop scalar).
template <bool kPrev, class T>
void cell_forward_loop(const T* gi, const T* gh, const T* b_ih, const T* b_hh, const T* hp, int64_t H, T* y, T* rs) {
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) {
    const T gh_n = gh[2 * H + j] + b_hh[2 * H + j];
    const auto g = math::gru_cell_forward<T, FastActivations>(
        gi[j] + b_ih[j], gi[H + j] + b_ih[H + j], gi[2 * H + j] + b_ih[2 * H + j], gh[j] + b_hh[j],
        gh[H + j] + b_hh[H + j], gh_n, kPrev ? hp[j] : T(0));
    y[j] = g.h;
    rs[j] = g.r, rs[H + j] = g.z, rs[2 * H + j] = g.n, rs[3 * H + j] = gh_n;
  }
}
template <class T>
void cell_forward_row(const T* gi, const T* gh, const T* b_ih, const T* b_hh, const T* hp, int64_t H, T* y, T* rs) {
  if (hp)
    cell_forward_loop<true>(gi, gh, b_ih, b_hh, hp, H, y, rs);
  else
    cell_forward_loop<false>(gi, gh, b_ih, b_hh, hp, H, y, rs);
}

// h0 may be null (zeros).
template <class T>
void gru_forward(const T* x, const T* h0, const T* w_ih, const T* w_hh, const T* b_ih, const T* b_hh, const GruDims& d,
                 T* y, T* reserve, T* ws) {
  const int64_t B = d.B, Tn = d.T, H = d.H, G = 3 * H;
  T* gi = ws;               // (B, T, 3H)
  T* gh = ws + B * Tn * G;  // (B, 3H)
  T* w_hh_t = gh + B * G;   // (H, 3H): the per-step GEMM runs ~1.8x faster on w_hh^T stored than transposed
  transpose_last2(w_hh, w_hh_t, 1, G, H, T(0));
  gemm(false, true, B * Tn, G, d.Din, T(1), x, d.Din, w_ih, d.Din, T(0), gi, G, d.bf16());
  for (int64_t t = 0; t < Tn; ++t) {
    const T* hprev = t == 0 ? h0 : y + (t - 1) * H;  // row stride T*H when t > 0
    const int64_t ldh = t == 0 ? H : Tn * H;
    if (hprev)
      gemm_exact(false, false, B, G, H, T(1), hprev, ldh, w_hh_t, G, T(0), gh, G);  // per step: small, fp32
    else
      std::memset(gh, 0, sizeof(T) * B * G);
    parallel_for(B, B * H > 4096, [&](int64_t b) {
      const T* hp = hprev ? hprev + b * ldh : nullptr;
      cell_forward_row(gi + (b * Tn + t) * G, gh + b * G, b_ih, b_hh, hp, H, y + (b * Tn + t) * H,
                       reserve + (b * Tn + t) * 4 * H);
    });
  }
}

// One row of H cells backward (math::gru_cell_backward), written to vectorize: the
// optional previous state and upstream gradient get loops of their own.
template <bool kPrev, bool kDy, class T>
void cell_backward_loop(const T* rs, const T* hp, const T* dh, const T* dy, int64_t H, T* dgi, T* dgh, T* hp_out,
                        T* dh_next) {
#pragma omp simd
  for (int64_t j = 0; j < H; ++j) {
    const T h_prev = kPrev ? hp[j] : T(0);
    hp_out[j] = h_prev;
    const T g_h = dh[j] + (kDy ? dy[j] : T(0));
    const auto g = math::gru_cell_backward(g_h, rs[j], rs[H + j], rs[2 * H + j], rs[3 * H + j], h_prev);
    dgi[j] = g.d_r, dgi[H + j] = g.d_z, dgi[2 * H + j] = g.d_gi_n;
    dgh[j] = g.d_r, dgh[H + j] = g.d_z, dgh[2 * H + j] = g.d_gh_n;
    dh_next[j] = g.d_h_prev_direct;
  }
}
template <class T>
void cell_backward_row(const T* rs, const T* hp, const T* dh, const T* dy, int64_t H, T* dgi, T* dgh, T* hp_out,
                       T* dh_next) {
  if (hp && dy)
    cell_backward_loop<true, true>(rs, hp, dh, dy, H, dgi, dgh, hp_out, dh_next);
  else if (hp)
    cell_backward_loop<true, false>(rs, hp, dh, dy, H, dgi, dgh, hp_out, dh_next);
  else if (dy)
    cell_backward_loop<false, true>(rs, hp, dh, dy, H, dgi, dgh, hp_out, dh_next);
  else
    cell_backward_loop<false, false>(rs, hp, dh, dy, H, dgi, dgh, hp_out, dh_next);
}

// Accumulates into dx, dh0, dw_ih, dw_hh, db_ih, db_hh; any of them may be null.
// dy may be null (no gradient on the sequence), dh_n may be null.
template <class T>
void gru_backward(const T* x, const T* h0, const T* w_ih, const T* w_hh, const T* y, const T* reserve, const T* dy,
                  const T* dh_n, const GruDims& d, T* dx, T* dh0, T* dw_ih, T* dw_hh, T* db_ih, T* db_hh, T* ws) {
  const int64_t B = d.B, Tn = d.T, H = d.H, G = 3 * H;
  T* dgi = ws;                      // (B, T, 3H)
  T* dgh = dgi + B * Tn * G;        // (B, T, 3H)
  T* hprev_all = dgh + B * Tn * G;  // (B, T, H)
  T* dh = hprev_all + B * Tn * H;   // (B, H)
  T* dh_next = dh + B * H;          // (B, H)
  if (dh_n)
    std::memcpy(dh, dh_n, sizeof(T) * B * H);
  else
    std::memset(dh, 0, sizeof(T) * B * H);
  for (int64_t t = Tn - 1; t >= 0; --t) {
    parallel_for(B, B * H > 4096, [&](int64_t b) {
      const T* hp = t > 0 ? y + (b * Tn + t - 1) * H : (h0 ? h0 + b * H : nullptr);
      const T* dyb = dy ? dy + (b * Tn + t) * H : nullptr;
      cell_backward_row(reserve + (b * Tn + t) * 4 * H, hp, dh + b * H, dyb, H, dgi + (b * Tn + t) * G,
                        dgh + (b * Tn + t) * G, hprev_all + (b * Tn + t) * H, dh_next + b * H);
    });
    // dh_prev = direct part + dgh_t (B, 3H) . w_hh (3H, H)
    gemm_exact(false, false, B, H, G, T(1), dgh + t * G, Tn * G, w_hh, H, T(1), dh_next, H);
    std::memcpy(dh, dh_next, sizeof(T) * B * H);
  }
  if (dh0)
    for (int64_t i = 0; i < B * H; ++i) dh0[i] += dh[i];
  const int64_t n_rows = B * Tn;
  if (dw_hh) gemm(true, false, G, H, n_rows, T(1), dgh, G, hprev_all, H, T(1), dw_hh, H, d.bf16());
  if (dw_ih) gemm(true, false, G, d.Din, n_rows, T(1), dgi, G, x, d.Din, T(1), dw_ih, d.Din, d.bf16());
  if (dx) gemm(false, false, n_rows, d.Din, G, T(1), dgi, G, w_ih, d.Din, T(1), dx, d.Din, d.bf16());
  // Bias gradients: column sums over the B * T rows, threaded, in double (norms.h).
  if (db_ih) rows::add_column_sums(dgi, n_rows, G, db_ih);
  if (db_hh) rows::add_column_sums(dgh, n_rows, G, db_hh);
}

}  // namespace cpc::cpu
