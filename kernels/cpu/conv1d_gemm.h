#pragma once
// Channels-last Conv1d as GEMMs over strided windows, for wide layers.
//
// With x (B, L, Cin) channels-last, the taps k = j*stride + r (r < stride) of an output
// position t read one contiguous run of stride * Cin floats, and consecutive t read
// consecutive runs. So for each group j of `stride` taps the input is already a
// row-major matrix A_j (rows t, stride * Cin columns, row stride stride * Cin) and
//   y[t] = sum_j A_j[t] . W_j         (ceil(K / stride) GEMMs, no im2col copy),
// with W_j the weights of those taps as (taps * Cin, Cout). The backward passes are the
// same GEMMs transposed. Output rows whose window reaches into the padding ("edge"
// rows, a few per sample) go through a zero-padded copy of their windows instead.
//
// Why: oneDNN 2.6 has no fast channels-last kernels for 256-512 channels (its nwc
// weight gradient is 3x slower at long lengths), and its ncw path is im2col plus its
// own sgemm. At audio_cdck2's 512-channel layers these GEMMs take 76-80 ms where the
// ncw primitives take 88-117 ms per pass (measured, 2 threads).
//
// Dilation 1 (applies()); fp32, or bf16 inputs with float accumulation. The weights are
// reordered to (Cout, K, Cin) once per forward: the forward's GEMMs read them transposed
// (fp32: a (K * Cin, Cout) copy), backward_data as they lie. With a saved space (Conv1dSaved) the forward leaves that
// reordered copy there and, under bf16, the rounded input; backward_data leaves the
// rounded dy for backward_weights: each is made once per step instead of per pass.
// Buffers grow to the largest need and stay: a steady-state step allocates nothing.
#include <cstdint>
#include <vector>

#include "engine/core/op_dims.h"

namespace cpc::cpu {

class GemmConv1d {
 public:
  // A GEMM operand: float, or its bf16 copy under precision bf16.
  struct Operand {
    const float* f;
    const uint16_t* h;
    Operand at(int64_t offset) const { return {f ? f + offset : nullptr, h ? h + offset : nullptr}; }
  };

  // Whether this path runs d: channels-last (fp32 or bf16), dilation 1, and wide enough
  // that the GEMMs' inner dimension (stride * Cin) and Cout keep them efficient.
  static bool applies(const Conv1dDims& d);

  // A saved space (saved_bytes(d) bytes) and its dy flag, or none.
  struct Saved {
    void* space;
    bool* dy_ready;
  };
  static int64_t saved_bytes(const Conv1dDims& d);

  // x: float, or (d.x_bf16) the bf16 values its producer rounded.
  void forward(Operand x, const float* w, const float* bias, const Conv1dDims& d, float* y,
               Saved sv = {nullptr, nullptr});
  void forward(const float* x, const float* w, const float* bias, const Conv1dDims& d, float* y,
               Saved sv = {nullptr, nullptr}) {
    forward(Operand{x, nullptr}, w, bias, d, y, sv);
  }
  // dx += conv_transpose(dy, w); dx = ... when !accumulate.
  void backward_data(const float* dy, const float* w, const Conv1dDims& d, float* dx, bool accumulate,
                     Saved sv = {nullptr, nullptr});
  // dw += ..., dbias += ... (dbias may be null).
  void backward_weights(Operand x, const float* dy, const Conv1dDims& d, float* dw, float* dbias,
                        Saved sv = {nullptr, nullptr});
  void backward_weights(const float* x, const float* dy, const Conv1dDims& d, float* dw, float* dbias,
                        Saved sv = {nullptr, nullptr}) {
    backward_weights(Operand{x, nullptr}, dy, d, dw, dbias, sv);
  }

 private:
  // Output rows [t0, t1) of each sample read only inside the input; the rest are edges.
  struct Rows {
    int64_t t0, t1;
  };
  static Rows interior(const Conv1dDims& d);
  // Whether the batch's samples run as one GEMM per group of taps. With L = Lout * stride,
  // output row b * Lout + t reads its window at ((b * Lout + t) * stride - padding) * Cin
  // in every sample, so the samples' interiors and the edge rows between them are one
  // matrix; the edge rows are then recomputed (forward) or have a zero dy (backward). bf16
  // only: oneDNN's matmul runs 10-25 % faster so at 128-512 rows per sample (audio_cdck2:
  // conv forward 63 -> 59 ms a step), its sgemm up to 7 % slower (measured, 2 threads).
  static bool folds(const Conv1dDims& d, int64_t interior_rows);
  // The listed edge rows of a rounded dy copy set to zero (folded backward passes).
  void zero_edge_rows(Operand dy16, const Conv1dDims& d, int64_t n) const;
  // Lists the edge rows' (b, t) in edge_rows_; returns their count.
  int64_t list_edges(const Conv1dDims& d);
  // The n listed edge rows' input windows, zero-padded: (n, K * Cin) into win.
  template <class E>
  void gather_windows(const E* x, const Conv1dDims& d, int64_t n, E* win) const;
  // Those windows as a GEMM operand: gathered from bf16 x into `copy`, or from float x
  // into edge_win_ (rounded into `copy` under bf16).
  Operand edge_windows(Operand x, const Conv1dDims& d, int64_t n, std::vector<uint16_t>& copy);
  // The n listed edge rows of dy: (n, Cout) in edge_out_.
  void gather_dy(const float* dy, const Conv1dDims& d, int64_t n);
  float* buffer(std::vector<float>& v, int64_t n);
  // p itself, or (bf16) p's n values rounded into `copy`.
  static Operand operand(const float* p, int64_t n, bool bf16, std::vector<uint16_t>& copy);
  // The same, rounded into `into` (bf16) when it is not null.
  static Operand operand(const float* p, int64_t n, bool bf16, std::vector<uint16_t>& copy, uint16_t* into);
  // The weights as (Cout, K * Cin) rows, reordered into `into` (a saved space's) or a
  // member buffer.
  Operand weights(const float* w, const Conv1dDims& d, void* into);
  // The saved space's parts: the weights, and under bf16 the rounded x (unless it came
  // rounded) and dy.
  struct Parts {
    void* w;
    uint16_t *x, *dy;
  };
  static Parts parts(const Conv1dDims& d, void* space);

  std::vector<float> w_, wf_, dw_, edge_win_, edge_out_;
  std::vector<uint16_t> in16_[2], edge16_, edge16b_;  // bf16 copies
  std::vector<int64_t> edge_rows_;
};

}  // namespace cpc::cpu
