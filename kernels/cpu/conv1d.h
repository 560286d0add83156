#pragma once
// Conv1d on the CPU as im2col + GEMM (OpenBLAS), per sample.
// Chosen over oneDNN by measurement at the seed-004 sizes (see bench/ and README):
// both reach GEMM speed on the big layers, and this path has no primitive
// creation cost per shape and runs in double for the gradient checks.
// x (B, Cin, L), w (Cout, Cin, K), y (B, Cout, Lout); col workspace (Cin*K, Lout).
#include <cstdint>

#include "engine/core/op_dims.h"
#include "kernels/cpu/blas.h"
#include "kernels/cpu/parallel.h"

namespace cpc::cpu {

using ::cpc::Conv1dDims;  // engine/core/op_dims.h, shared with the CUDA backend

// Elements of the im2col workspace (Cin*K, Lout).
inline int64_t col_size(const Conv1dDims& d) { return d.Cin * d.K * d.Lout; }

template <class T>
void im2col(const T* x, const Conv1dDims& d, T* col) {
  parallel_for(d.Cin * d.K, true, [&](int64_t ck) {
    const int64_t c = ck / d.K, k = ck % d.K;
    const T* xc = x + c * d.L;
    T* row = col + ck * d.Lout;
    const int64_t off = k * d.dilation - d.padding;
    for (int64_t t = 0; t < d.Lout; ++t) {
      const int64_t i = t * d.stride + off;
      row[t] = (i >= 0 && i < d.L) ? xc[i] : T(0);
    }
  });
}

// dx += col2im(col). Parallel over input channels: rows of different channels never
// write the same element.
template <class T>
void col2im_add(const T* col, const Conv1dDims& d, T* dx) {
  parallel_for(d.Cin, true, [&](int64_t c) {
    T* xc = dx + c * d.L;
    for (int64_t k = 0; k < d.K; ++k) {
      const T* row = col + (c * d.K + k) * d.Lout;
      const int64_t off = k * d.dilation - d.padding;
      for (int64_t t = 0; t < d.Lout; ++t) {
        const int64_t i = t * d.stride + off;
        if (i >= 0 && i < d.L) xc[i] += row[t];
      }
    }
  });
}

template <class T>
void conv1d_forward(const T* x, const T* w, const T* bias, const Conv1dDims& d, T* y, T* col) {
  for (int64_t b = 0; b < d.B; ++b) {
    const T* xb = x + b * d.Cin * d.L;
    T* yb = y + b * d.Cout * d.Lout;
    const T* cb = xb;
    if (!d.is_pointwise()) {
      im2col(xb, d, col);
      cb = col;
    }
    gemm(false, false, d.Cout, d.Lout, d.Cin * d.K, T(1), w, d.Cin * d.K, cb, d.Lout, T(0), yb, d.Lout, d.bf16());
    if (bias)
      for (int64_t o = 0; o < d.Cout; ++o)
        for (int64_t t = 0; t < d.Lout; ++t) yb[o * d.Lout + t] += bias[o];
  }
}

template <class T>
void conv1d_backward_data(const T* dy, const T* w, const Conv1dDims& d, T* dx, T* col) {
  for (int64_t b = 0; b < d.B; ++b) {
    const T* dyb = dy + b * d.Cout * d.Lout;
    T* dxb = dx + b * d.Cin * d.L;
    if (d.is_pointwise()) {  // dx (Cin, L) += w^T (Cin, Cout) . dy (Cout, L)
      gemm(true, false, d.Cin, d.Lout, d.Cout, T(1), w, d.Cin, dyb, d.Lout, T(1), dxb, d.L, d.bf16());
      continue;
    }
    gemm(true, false, d.Cin * d.K, d.Lout, d.Cout, T(1), w, d.Cin * d.K, dyb, d.Lout, T(0), col, d.Lout, d.bf16());
    col2im_add(col, d, dxb);
  }
}

template <class T>
void conv1d_backward_weights(const T* x, const T* dy, const Conv1dDims& d, T* dw, T* dbias, T* col) {
  for (int64_t b = 0; b < d.B; ++b) {
    const T* xb = x + b * d.Cin * d.L;
    const T* dyb = dy + b * d.Cout * d.Lout;
    const T* cb = xb;
    if (!d.is_pointwise()) {
      im2col(xb, d, col);
      cb = col;
    }
    // dw (Cout, Cin*K) += dy (Cout, Lout) . col^T (Lout, Cin*K)
    gemm(false, true, d.Cout, d.Cin * d.K, d.Lout, T(1), dyb, d.Lout, cb, d.Lout, T(1), dw, d.Cin * d.K, d.bf16());
    if (dbias)
      for (int64_t o = 0; o < d.Cout; ++o) {
        T s = 0;
        for (int64_t t = 0; t < d.Lout; ++t) s += dyb[o * d.Lout + t];
        dbias[o] += s;
      }
  }
}

}  // namespace cpc::cpu
