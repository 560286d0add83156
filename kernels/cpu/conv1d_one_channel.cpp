#include "kernels/cpu/conv1d_one_channel.h"

#include <immintrin.h>

#include <algorithm>
#include <vector>

#include "kernels/cpu/bf16_round.h"
#include "kernels/cpu/norms.h"
#include "kernels/cpu/parallel.h"

namespace cpc::cpu {

bool conv1d_one_channel_applies(const Conv1dDims& d) { return d.Cin == 1 && d.channels_last; }

namespace {

constexpr int64_t kChunks = 64;  // fixed: the sum's order does not depend on the threads
constexpr int64_t kBlock = 64;   // rows of dy per block: 128 KB at 512 channels, in L2
constexpr int64_t kTapTile = 5;  // taps per register tile (x 4 vectors of 16 channels)

// acc[k][o] += sum over the n rows r of xw[r][k] * y[r][o], xw padded to Kp taps.
void block_portable(float* acc, int64_t Kp, int64_t C, const float* xw, const float* y, int64_t n) {
  for (int64_t r = 0; r < n; ++r)
    for (int64_t k = 0; k < Kp; ++k) {
      const float xv = xw[r * Kp + k];
      float* a = acc + k * C;
      const float* yr = y + r * C;
#pragma omp simd
      for (int64_t o = 0; o < C; ++o) a[o] += xv * yr[o];
    }
}

// The same as a GEMM micro-kernel: a tile of 5 taps x 64 channels stays in 20 registers
// while the block's rows stream through (the rows come from L2, once per tile). The first
// tile's pass also asks for the next block's rows of dy (next, next_n rows; one block
// ahead, so that they arrive from memory while this one is summed).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // GCC 12, inside its AVX-512 headers
__attribute__((target("avx512f"))) void block_avx512(float* acc, int64_t Kp, int64_t C, const float* xw,
                                                     const float* y, int64_t n, const float* next,
                                                     int64_t next_n) {
  const int64_t C64 = C / 64 * 64;
  for (int64_t k0 = 0; k0 < Kp; k0 += kTapTile)
    for (int64_t o = 0; o < C64; o += 64) {
      __m512 a[kTapTile][4];
      for (int k = 0; k < kTapTile; ++k)
        for (int v = 0; v < 4; ++v) a[k][v] = _mm512_setzero_ps();
      for (int64_t r = 0; r < n; ++r) {
        if (k0 == 0 && r < next_n)
          for (int v = 0; v < 4; ++v) _mm_prefetch(reinterpret_cast<const char*>(next + r * C + o + 16 * v), _MM_HINT_T0);
        const float* yr = y + r * C + o;
        const __m512 y0 = _mm512_loadu_ps(yr), y1 = _mm512_loadu_ps(yr + 16), y2 = _mm512_loadu_ps(yr + 32),
                     y3 = _mm512_loadu_ps(yr + 48);
        const float* xr = xw + r * Kp + k0;
        for (int k = 0; k < kTapTile; ++k) {
          const __m512 xv = _mm512_set1_ps(xr[k]);
          a[k][0] = _mm512_fmadd_ps(xv, y0, a[k][0]);
          a[k][1] = _mm512_fmadd_ps(xv, y1, a[k][1]);
          a[k][2] = _mm512_fmadd_ps(xv, y2, a[k][2]);
          a[k][3] = _mm512_fmadd_ps(xv, y3, a[k][3]);
        }
      }
      for (int k = 0; k < kTapTile; ++k)
        for (int v = 0; v < 4; ++v) {
          float* p = acc + (k0 + k) * C + o + 16 * v;
          _mm512_storeu_ps(p, _mm512_add_ps(_mm512_loadu_ps(p), a[k][v]));
        }
    }
  if (C64 < C)  // the channels past the last 64
    for (int64_t r = 0; r < n; ++r)
      for (int64_t k = 0; k < Kp; ++k)
        for (int64_t o = C64; o < C; ++o) acc[k * C + o] += xw[r * Kp + k] * y[r * C + o];
}
#pragma GCC diagnostic pop

// The rows [r0, r1) of dy (B * Lout rows of Cout) into acc (Kp x Cout, zeroed here).
// buf: this worker's block of rounded dy (bf16) and windows of x.
void chunk(const float* x, const float* dy, const Conv1dDims& d, int64_t r0, int64_t r1, float* acc,
           std::vector<float>& buf) {
  const int64_t C = d.Cout, K = d.K, Kp = (K + kTapTile - 1) / kTapTile * kTapTile;
  const bool avx512 = has_avx512();
  std::fill(acc, acc + Kp * C, 0.f);
  buf.resize(static_cast<size_t>(kBlock * (C + Kp)));
  float* xw = buf.data() + kBlock * C;  // (kBlock, Kp): each row's window, zero-padded
  for (int64_t rb = r0; rb < r1; rb += kBlock) {
    const int64_t n = std::min(kBlock, r1 - rb);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t b = (rb + i) / d.Lout, t = (rb + i) % d.Lout;
      for (int64_t k = 0; k < Kp; ++k) {
        const int64_t pos = t * d.stride - d.padding + k * d.dilation;
        xw[i * Kp + k] = k >= K || pos < 0 || pos >= d.L ? 0.f : x[b * d.L + pos];
      }
    }
    if (d.bf16()) round_to_bf16_float(xw, n * Kp, xw);  // in place
    const float* y = dy + rb * C;  // in place, or rounded as read
    if (d.bf16()) {
      round_to_bf16_float(y, n * C, buf.data());
      y = buf.data();
    }
    const int64_t next_n = std::min(kBlock, std::max<int64_t>(0, r1 - rb - kBlock));
    if (avx512)
      block_avx512(acc, Kp, C, xw, y, n, next_n > 0 ? dy + (rb + kBlock) * C : nullptr, next_n);
    else
      block_portable(acc, Kp, C, xw, y, n);
  }
}

}  // namespace

void conv1d_one_channel_backward_weights(const float* x, const float* dy, const Conv1dDims& d, float* dw,
                                         float* dbias) {
  const int64_t R = d.B * d.Lout, Kp = (d.K + kTapTile - 1) / kTapTile * kTapTile, KC = Kp * d.Cout;
  // Per-chunk sums, the calling thread's buffer kept between calls (no allocation in the
  // steady state); workers reach it through this reference.
  thread_local std::vector<float> partial_buffer;
  std::vector<float>& partial = partial_buffer;
  partial.resize(static_cast<size_t>(kChunks * KC));
  parallel_for(kChunks, R * d.Cout > 65536, [&](int64_t c) {
    thread_local std::vector<float> buf;  // this worker's
    chunk(x, dy, d, R * c / kChunks, R * (c + 1) / kChunks, partial.data() + c * KC, buf);
  });
  // dw is (Cout, 1, K); the chunks' sums in order, in double.
  parallel_for(d.Cout, KC > 65536, [&](int64_t o) {
    for (int64_t k = 0; k < d.K; ++k) {
      double s = 0;
      for (int64_t c = 0; c < kChunks; ++c) s += partial[static_cast<size_t>(c * KC + k * d.Cout + o)];
      dw[o * d.K + k] += static_cast<float>(s);
    }
  });
  if (dbias) rows::add_column_sums(dy, R, d.Cout, dbias);  // dy is (B * Lout, Cout)
}

}  // namespace cpc::cpu
