#pragma once
// Pointwise ops, layout copies and reductions on the CPU (templated for the double
// gradient checks). Backward functions accumulate into their outputs unless told not
// to (grad_store.h).
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/common/activation_math.h"
#include "kernels/common/counter_rng.h"
#include "kernels/cpu/grad_store.h"
#include "kernels/cpu/parallel.h"

namespace cpc::cpu {

template <class T>
void relu_forward(const T* x, T* y, int64_t n) {
  parallel_for(n, n > 65536, [&](int64_t i) { y[i] = math::relu(x[i]); });
}
template <class T>
void relu_backward(const T* y, const T* dy, T* dx, int64_t n, bool accumulate = true) {
  with_accumulate(accumulate, [&](auto mode) {
    parallel_for(n, n > 65536,
                 [&](int64_t i) { store_grad<decltype(mode)::value>(dx[i], math::relu_grad_from_output(y[i], dy[i])); });
  });
}
template <class T>
void gelu_forward(const T* x, T* y, int64_t n) {
  parallel_for(n, n > 16384, [&](int64_t i) { y[i] = math::gelu(x[i]); });
}
template <class T>
void gelu_backward(const T* x, const T* dy, T* dx, int64_t n) {
  parallel_for(n, n > 16384, [&](int64_t i) { dx[i] += dy[i] * math::gelu_grad(x[i]); });
}
// Inverted dropout; the backward applies the same mask to dy.
template <class T>
void dropout_apply(const T* x, T* y, int64_t n, float p, uint64_t seed, bool accumulate) {
  const T scale = T(1) / (T(1) - T(p));
  parallel_for(n, n > 65536, [&](int64_t i) {
    const T v = math::dropout_keep(seed, static_cast<uint64_t>(i), p) ? x[i] * scale : T(0);
    y[i] = accumulate ? y[i] + v : v;
  });
}

// x (O, M, N) -> y (O, N, M): y = transpose(x) + beta * y. 16 x 16 tiles, spread over
// the threads by tile (not by rows of tiles: a single wide matrix, O = 1, would give a
// few long tasks), with beta = 0 its own loop: 4x faster on a 512 x 4096 weight.
template <class T>
void transpose_last2(const T* x, T* y, int64_t O, int64_t M, int64_t N, T beta) {
  constexpr int64_t kTile = 16;
  const int64_t mt = (M + kTile - 1) / kTile, nt = (N + kTile - 1) / kTile;
  parallel_for(O * mt * nt, O * M * N > 65536, [&](int64_t i) {
    const int64_t o = i / (mt * nt), r = i % (mt * nt), m0 = (r / nt) * kTile, n0 = (r % nt) * kTile;
    const int64_t m1 = std::min(M, m0 + kTile), n1 = std::min(N, n0 + kTile);
    const T* xo = x + o * M * N;
    T* yo = y + o * M * N;
    if (beta == T(0)) {
      for (int64_t n = n0; n < n1; ++n)
        for (int64_t m = m0; m < m1; ++m) yo[n * M + m] = xo[m * N + n];
    } else {
      for (int64_t n = n0; n < n1; ++n)
        for (int64_t m = m0; m < m1; ++m) yo[n * M + m] = xo[m * N + n] + beta * yo[n * M + m];
    }
  });
}

// x (O, M, N, I) -> y (O, N, M, I): y = permuted x + beta * y (I contiguous values move together).
template <class T>
void swap_axes(const T* x, T* y, int64_t O, int64_t M, int64_t N, int64_t I, T beta) {
  parallel_for(O * M, O * M * N * I > 65536, [&](int64_t om) {
    const int64_t o = om / M, m = om % M;
    for (int64_t n = 0; n < N; ++n) {
      const T* src = x + ((o * M + m) * N + n) * I;
      T* dst = y + ((o * N + n) * M + m) * I;
      for (int64_t i = 0; i < I; ++i) dst[i] = beta == T(0) ? src[i] : src[i] + beta * dst[i];
    }
  });
}

// Rows of x (N, D): y = x / max(||x||, eps), as torch.nn.functional.normalize.
template <class T>
void l2_normalize_forward(const T* x, T* y, int64_t N, int64_t D, T eps) {
  parallel_for(N, N * D > 65536, [&](int64_t r) {
    T ss = 0;
    for (int64_t d = 0; d < D; ++d) ss += x[r * D + d] * x[r * D + d];
    const T inv = T(1) / std::max(std::sqrt(ss), eps);
    for (int64_t d = 0; d < D; ++d) y[r * D + d] = x[r * D + d] * inv;
  });
}
// dx += (dy - y (y . dy)) / ||x|| when ||x|| > eps, else dy / eps (the clamp is constant).
template <class T>
void l2_normalize_backward(const T* x, const T* dy, T* dx, int64_t N, int64_t D, T eps) {
  parallel_for(N, N * D > 65536, [&](int64_t r) {
    T ss = 0;
    for (int64_t d = 0; d < D; ++d) ss += x[r * D + d] * x[r * D + d];
    const T norm = std::sqrt(ss);
    if (norm <= eps) {
      for (int64_t d = 0; d < D; ++d) dx[r * D + d] += dy[r * D + d] / eps;
      return;
    }
    T ydy = 0;
    for (int64_t d = 0; d < D; ++d) ydy += x[r * D + d] * dy[r * D + d];
    ydy /= norm;  // y . dy
    for (int64_t d = 0; d < D; ++d) dx[r * D + d] += (dy[r * D + d] - x[r * D + d] / norm * ydy) / norm;
  });
}

// x (O, N, I) -> y (O, len, I) from row start; backward adds dy into dx's rows.
template <class T>
void narrow_copy(const T* x, T* y, int64_t O, int64_t N, int64_t I, int64_t start, int64_t len) {
  for (int64_t o = 0; o < O; ++o)
    for (int64_t k = 0; k < len * I; ++k) y[o * len * I + k] = x[(o * N + start) * I + k];
}
template <class T>
void narrow_add(const T* dy, T* dx, int64_t O, int64_t N, int64_t I, int64_t start, int64_t len) {
  for (int64_t o = 0; o < O; ++o)
    for (int64_t k = 0; k < len * I; ++k) dx[(o * N + start) * I + k] += dy[o * len * I + k];
}

// Reductions over the middle axis of (O, N, I) into (O, I).
template <class T>
void mean_axis_forward(const T* x, T* y, int64_t O, int64_t N, int64_t I) {
  for (int64_t o = 0; o < O; ++o) {
    T* yo = y + o * I;
    for (int64_t i = 0; i < I; ++i) yo[i] = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < I; ++i) yo[i] += x[(o * N + n) * I + i];
    for (int64_t i = 0; i < I; ++i) yo[i] /= static_cast<T>(N);
  }
}
template <class T>
void mean_axis_backward(const T* dy, T* dx, int64_t O, int64_t N, int64_t I) {
  const T s = T(1) / static_cast<T>(N);
  for (int64_t o = 0; o < O; ++o)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t i = 0; i < I; ++i) dx[(o * N + n) * I + i] += dy[o * I + i] * s;
}
// argmax stored as float indices; ties pick the first maximum (as PyTorch's CPU max).
template <class T>
void max_axis_forward(const T* x, T* y, float* argmax, int64_t O, int64_t N, int64_t I) {
  for (int64_t o = 0; o < O; ++o)
    for (int64_t i = 0; i < I; ++i) {
      int64_t best = 0;
      T v = x[o * N * I + i];
      for (int64_t n = 1; n < N; ++n) {
        const T c = x[(o * N + n) * I + i];
        if (c > v || c != c) v = c, best = n;  // NaN propagates, as in PyTorch
      }
      y[o * I + i] = v;
      argmax[o * I + i] = static_cast<float>(best);
    }
}
template <class T>
void max_axis_backward(const T* dy, const float* argmax, T* dx, int64_t O, int64_t N, int64_t I) {
  for (int64_t o = 0; o < O; ++o)
    for (int64_t i = 0; i < I; ++i) {
      const int64_t n = static_cast<int64_t>(argmax[o * I + i]);
      dx[(o * N + n) * I + i] += dy[o * I + i];
    }
}

}  // namespace cpc::cpu
