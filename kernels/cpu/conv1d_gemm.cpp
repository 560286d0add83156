#include "kernels/cpu/conv1d_gemm.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include <oneapi/dnnl/dnnl.h>

#include "engine/core/error.h"
#include "kernels/common/bf16.h"
#include "kernels/cpu/gemm_bf16.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/norms.h"
#include "kernels/cpu/parallel.h"

namespace cpc::cpu {

namespace {

// oneDNN's sgemm whatever the gemm option: this is the oneDNN convolution choice
// (cpu_options.h), and OpenBLAS here is held to its Haswell kernels. Under precision
// bf16 the operands are bf16 copies (gemm_bf16_packed reads them in place, strides and
// all): inputs rounded, products accumulated in float, as the other convolutions.
void gemm(bool ta, bool tb, int64_t m, int64_t n, int64_t k, GemmConv1d::Operand a, int64_t lda,
          GemmConv1d::Operand b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (a.h) {
    gemm_bf16_packed(ta, tb, m, n, k, 1.f, a.h, lda, b.h, ldb, beta, c, ldc);
    return;
  }
  const dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1.f, a.f, lda, b.f, ldb, beta, c, ldc);
  CPC_CHECK(st == dnnl_success, "conv1d: oneDNN sgemm failed (status ", static_cast<int>(st), ")");
}

// Taps in group j (the last group may be short when K is not a multiple of the stride).
int64_t group_taps(const Conv1dDims& d, int64_t j) { return std::min(d.stride, d.K - j * d.stride); }
int64_t groups(const Conv1dDims& d) { return (d.K + d.stride - 1) / d.stride; }

}  // namespace

bool GemmConv1d::applies(const Conv1dDims& d) {
  return d.channels_last && d.dilation == 1 && d.Cin >= 256 && d.Cout >= 256;
}

GemmConv1d::Rows GemmConv1d::interior(const Conv1dDims& d) {
  // Row t reads input positions [t*stride - padding, t*stride - padding + K).
  const int64_t t0 = (d.padding + d.stride - 1) / d.stride;
  const int64_t last = d.L + d.padding - d.K;  // t*stride <= last
  const int64_t t1 = last < 0 ? 0 : std::min(d.Lout, last / d.stride + 1);
  return {t0, std::max(t0, t1)};
}

bool GemmConv1d::folds(const Conv1dDims& d, int64_t interior_rows) {
  return d.bf16() && d.B > 1 && d.L == d.Lout * d.stride && interior_rows > 0;
}

void GemmConv1d::zero_edge_rows(Operand dy16, const Conv1dDims& d, int64_t n) const {
  // dy16 is this object's or the saved space's rounded copy, never the caller's dy.
  auto* rows = const_cast<uint16_t*>(dy16.h);
  for (int64_t e = 0; e < n; ++e)
    std::memset(rows + (edge_rows_[2 * e] * d.Lout + edge_rows_[2 * e + 1]) * d.Cout, 0, sizeof(uint16_t) * d.Cout);
}

float* GemmConv1d::buffer(std::vector<float>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

GemmConv1d::Operand GemmConv1d::operand(const float* p, int64_t n, bool bf16, std::vector<uint16_t>& copy) {
  if (!bf16) return {p, nullptr};
  if (static_cast<int64_t>(copy.size()) < n) copy.resize(static_cast<size_t>(n));
  to_bf16(p, n, copy.data());
  return {nullptr, copy.data()};
}

GemmConv1d::Operand GemmConv1d::operand(const float* p, int64_t n, bool bf16, std::vector<uint16_t>& copy,
                                         uint16_t* into) {
  if (!bf16 || !into) return operand(p, n, bf16, copy);
  to_bf16(p, n, into);
  return {nullptr, into};
}

namespace {
int64_t aligned(int64_t bytes) { return (bytes + 63) / 64 * 64; }
}  // namespace

// [weights | dy | x]: x last, so that the parts before it lie where they do whether or not
// the input came rounded (backward_data's dims do not say).
GemmConv1d::Parts GemmConv1d::parts(const Conv1dDims& d, void* space) {
  auto* base = static_cast<uint8_t*>(space);
  const int64_t wb = aligned(d.w_numel() * (d.bf16() ? 2 : 4)), yb = aligned(d.y_numel() * 2);
  return {base, d.bf16() && !d.x_bf16 ? reinterpret_cast<uint16_t*>(base + wb + yb) : nullptr,
          d.bf16() ? reinterpret_cast<uint16_t*>(base + wb) : nullptr};
}

int64_t GemmConv1d::saved_bytes(const Conv1dDims& d) {
  if (!d.bf16()) return aligned(d.w_numel() * 4);
  return aligned(d.w_numel() * 2) + aligned(d.y_numel() * 2) + (d.x_bf16 ? 0 : aligned(d.x_numel() * 2));
}

namespace {

// w (Cout, Cin, K) -> out (Cout, K, Cin), rounded to bf16 on the way when U is uint16_t.
// One output channel per task: its Cin * K weights stay in L1 while the taps are read
// across (16 x 16 tiles over a K of 4 or 8 took twice as long).
template <class U>
void taps_major(const float* w, const Conv1dDims& d, U* out) {
  parallel_for(d.Cout, d.w_numel() > 65536, [&](int64_t o) {
    const float* src = w + o * d.Cin * d.K;
    U* dst = out + o * d.K * d.Cin;
    for (int64_t k = 0; k < d.K; ++k)
      for (int64_t c = 0; c < d.Cin; ++c) {
        if constexpr (std::is_same_v<U, float>)
          dst[k * d.Cin + c] = src[c * d.K + k];
        else
          dst[k * d.Cin + c] = math::float_to_bf16(src[c * d.K + k]);
      }
  });
}

}  // namespace

GemmConv1d::Operand GemmConv1d::weights(const float* w, const Conv1dDims& d, void* into) {
  const int64_t n = d.w_numel();
  if (!d.bf16()) {
    float* wd = into ? static_cast<float*>(into) : buffer(w_, n);
    taps_major(w, d, wd);
    return {wd, nullptr};
  }
  uint16_t* wd = into ? static_cast<uint16_t*>(into) : [&] {
    if (static_cast<int64_t>(in16_[1].size()) < n) in16_[1].resize(static_cast<size_t>(n));
    return in16_[1].data();
  }();
  taps_major(w, d, wd);
  return {nullptr, wd};
}

int64_t GemmConv1d::list_edges(const Conv1dDims& d) {
  const Rows r = interior(d);
  edge_rows_.clear();
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t t = 0; t < d.Lout; ++t) {
      if (t == r.t0 && r.t1 > r.t0) t = r.t1;
      if (t >= d.Lout) break;
      edge_rows_.push_back(b), edge_rows_.push_back(t);
    }
  return static_cast<int64_t>(edge_rows_.size() / 2);
}

template <class E>
void GemmConv1d::gather_windows(const E* x, const Conv1dDims& d, int64_t n, E* win) const {
  const int64_t width = d.K * d.Cin;
  for (int64_t e = 0; e < n; ++e)
    for (int64_t k = 0; k < d.K; ++k) {
      const int64_t b = edge_rows_[2 * e], pos = edge_rows_[2 * e + 1] * d.stride - d.padding + k;
      E* dst = win + e * width + k * d.Cin;
      if (pos < 0 || pos >= d.L)
        std::memset(dst, 0, sizeof(E) * d.Cin);  // +0.0 in float and in bf16
      else
        std::memcpy(dst, x + (b * d.L + pos) * d.Cin, sizeof(E) * d.Cin);
    }
}

GemmConv1d::Operand GemmConv1d::edge_windows(Operand x, const Conv1dDims& d, int64_t n, std::vector<uint16_t>& copy) {
  const int64_t width = d.K * d.Cin;
  if (x.h) {  // rounded already: gather the bf16 values
    if (static_cast<int64_t>(copy.size()) < n * width) copy.resize(static_cast<size_t>(n * width));
    gather_windows(x.h, d, n, copy.data());
    return {nullptr, copy.data()};
  }
  float* win = buffer(edge_win_, n * width);
  gather_windows(x.f, d, n, win);
  return operand(win, n * width, d.bf16(), copy);
}

void GemmConv1d::gather_dy(const float* dy, const Conv1dDims& d, int64_t n) {
  float* rows = buffer(edge_out_, n * d.Cout);
  for (int64_t e = 0; e < n; ++e)
    std::memcpy(rows + e * d.Cout, dy + (edge_rows_[2 * e] * d.Lout + edge_rows_[2 * e + 1]) * d.Cout,
                sizeof(float) * d.Cout);
}

void GemmConv1d::forward(Operand x, const float* w, const float* bias, const Conv1dDims& d, float* y, Saved sv) {
  const int64_t width = d.K * d.Cin, J = groups(d), s = d.stride;
  const Parts kept = sv.space ? parts(d, sv.space) : Parts{nullptr, nullptr, nullptr};
  // The weights as (Cout, K * Cin) rows (W_j^T is columns j*s*Cin.. of them). bf16 reads
  // them transposed: oneDNN's bf16 matmul runs 5-15 % faster on that B than on a
  // (K * Cin, Cout) copy. Its sgemm runs ~40 % slower on it, so fp32 reorders once more.
  const Operand wd = weights(w, d, kept.w);
  Operand ws = wd;
  int64_t ldw = width;
  if (!d.bf16()) {
    float* wf = buffer(wf_, d.w_numel());
    transpose_last2(wd.f, wf, int64_t{1}, d.Cout, width, 0.f);
    ws = {wf, nullptr}, ldw = d.Cout;
  }
  const bool tw = d.bf16();
  // B of group j: taps j*s.. of the weights.
  auto wj = [&](int64_t j) { return ws.at(tw ? j * s * d.Cin : j * s * d.Cin * d.Cout); };
  // The input as the GEMMs read it: rounded by its producer, or here (into the saved space).
  const Operand xs = x.h ? x : operand(x.f, d.x_numel(), d.bf16(), in16_[0], kept.x);
  const Rows r = interior(d);
  const int64_t M = r.t1 - r.t0;
  // Folded (folds()): the edge rows between samples read windows across a sample
  // boundary; the edge pass below overwrites them.
  const bool fold = folds(d, M);
  const int64_t runs = fold ? 1 : d.B, rows = fold ? (d.B - 1) * d.Lout + M : M;
  for (int64_t b = 0; b < runs && M > 0; ++b) {
    float* yb = y + (b * d.Lout + r.t0) * d.Cout;
    if (bias)
      parallel_for(rows, rows * d.Cout > 65536,
                   [&](int64_t t) { std::memcpy(yb + t * d.Cout, bias, sizeof(float) * d.Cout); });
    for (int64_t j = 0; j < J; ++j) {
      const Operand a = xs.at((b * d.L + (r.t0 + j) * s - d.padding) * d.Cin);
      gemm(false, tw, rows, d.Cout, group_taps(d, j) * d.Cin, a, s * d.Cin, wj(j), ldw, (bias || j > 0) ? 1.f : 0.f,
           yb, d.Cout);
    }
  }
  const int64_t n = list_edges(d);
  if (n == 0) return;
  const Operand wins = edge_windows(x, d, n, edge16_);
  float* out = buffer(edge_out_, n * d.Cout);
  gemm(false, tw, n, d.Cout, width, wins, width, ws, ldw, 0.f, out, d.Cout);
  for (int64_t e = 0; e < n; ++e) {
    float* dst = y + (edge_rows_[2 * e] * d.Lout + edge_rows_[2 * e + 1]) * d.Cout;
    for (int64_t o = 0; o < d.Cout; ++o) dst[o] = out[e * d.Cout + o] + (bias ? bias[o] : 0.f);
  }
}

void GemmConv1d::backward_data(const float* dy, const float* w, const Conv1dDims& d, float* dx, bool accumulate,
                               Saved sv) {
  const int64_t width = d.K * d.Cin, J = groups(d), s = d.stride;
  const Parts kept = sv.space ? parts(d, sv.space) : Parts{nullptr, nullptr, nullptr};
  // (Cout, K * Cin): the forward's copy when saved.
  const Operand ws = !kept.w ? weights(w, d, nullptr)
                             : Operand{d.bf16() ? nullptr : static_cast<const float*>(kept.w),
                                       d.bf16() ? static_cast<const uint16_t*>(kept.w) : nullptr};
  const Operand dys = operand(dy, d.y_numel(), d.bf16(), in16_[0], kept.dy);
  if (kept.dy && sv.dy_ready) *sv.dy_ready = true;
  const Rows r = interior(d);
  const int64_t M = r.t1 - r.t0, n = list_edges(d);
  const bool fold = folds(d, M);
  if (fold) zero_edge_rows(dys, d, n);
  // The first group's GEMM writes input rows [t0*s - padding, t1*s - padding) whole when
  // K >= stride; whatever it does not write is zeroed first when overwriting. (Folded, it
  // also writes the rows between samples: the edge rows' zeros.)
  const bool covers = M > 0 && d.K >= s;
  if (!accumulate)
    for (int64_t b = 0; b < d.B; ++b) {
      float* dxb = dx + b * d.L * d.Cin;
      const int64_t lo = covers ? r.t0 * s - d.padding : d.L, hi = covers ? r.t1 * s - d.padding : d.L;
      std::memset(dxb, 0, sizeof(float) * lo * d.Cin);
      std::memset(dxb + hi * d.Cin, 0, sizeof(float) * (d.L - hi) * d.Cin);
    }
  const int64_t runs = fold ? 1 : d.B, rows = fold ? (d.B - 1) * d.Lout + M : M;
  for (int64_t b = 0; b < runs && M > 0; ++b)
    for (int64_t j = 0; j < J; ++j) {
      const float beta = (j == 0 && !accumulate && covers) ? 0.f : 1.f;
      gemm(false, false, rows, group_taps(d, j) * d.Cin, d.Cout, dys.at((b * d.Lout + r.t0) * d.Cout), d.Cout,
           ws.at(j * s * d.Cin), width, beta, dx + (b * d.L + (r.t0 + j) * s - d.padding) * d.Cin, s * d.Cin);
    }
  // Edge rows: their windows' gradients, added where they fall inside the input.
  if (n == 0) return;
  gather_dy(dy, d, n);
  float* win = buffer(edge_win_, n * width);
  gemm(false, false, n, width, d.Cout, operand(edge_out_.data(), n * d.Cout, d.bf16(), edge16_), d.Cout, ws, width, 0.f,
       win, width);
  for (int64_t e = 0; e < n; ++e)
    for (int64_t k = 0; k < d.K; ++k) {
      const int64_t pos = edge_rows_[2 * e + 1] * s - d.padding + k;
      if (pos < 0 || pos >= d.L) continue;
      float* dst = dx + (edge_rows_[2 * e] * d.L + pos) * d.Cin;
      const float* src = win + e * width + k * d.Cin;
      for (int64_t c = 0; c < d.Cin; ++c) dst[c] += src[c];
    }
}

void GemmConv1d::backward_weights(Operand x, const float* dy, const Conv1dDims& d, float* dw, float* dbias,
                                  Saved sv) {
  const int64_t width = d.K * d.Cin, J = groups(d), s = d.stride;
  float* g = buffer(dw_, d.Cout * width);  // (Cout, K, Cin), summed over the batch
  const Parts kept = sv.space ? parts(d, sv.space) : Parts{nullptr, nullptr, nullptr};
  // Under bf16 the rounded x from the forward, and the rounded dy from backward_data when it ran.
  const Operand dys = kept.dy && sv.dy_ready && *sv.dy_ready ? Operand{nullptr, kept.dy}
                                                             : operand(dy, d.y_numel(), d.bf16(), in16_[0]),
                xs = x.h      ? x
                     : kept.x ? Operand{nullptr, kept.x}
                              : operand(x.f, d.x_numel(), d.bf16(), in16_[1]);
  const Rows r = interior(d);
  const int64_t M = r.t1 - r.t0, n = list_edges(d);
  const bool fold = folds(d, M);
  // Folded, the edge rows between samples meet windows across a sample boundary: their dy
  // is zero in the rounded copy (backward_data's, or made here).
  if (fold && !(kept.dy && sv.dy_ready && *sv.dy_ready)) zero_edge_rows(dys, d, n);
  const int64_t runs = fold ? 1 : d.B, rows = fold ? (d.B - 1) * d.Lout + M : M;
  bool first = true;
  for (int64_t b = 0; b < runs && M > 0; ++b, first = false)
    for (int64_t j = 0; j < J; ++j)
      gemm(true, false, d.Cout, group_taps(d, j) * d.Cin, rows, dys.at((b * d.Lout + r.t0) * d.Cout), d.Cout,
           xs.at((b * d.L + (r.t0 + j) * s - d.padding) * d.Cin), s * d.Cin, first ? 0.f : 1.f, g + j * s * d.Cin,
           width);
  if (n > 0) {
    const Operand wins = edge_windows(x, d, n, edge16b_);
    gather_dy(dy, d, n);
    const Operand edge_dy = operand(edge_out_.data(), n * d.Cout, d.bf16(), edge16_);
    gemm(true, false, d.Cout, width, n, edge_dy, d.Cout, wins, width, first ? 0.f : 1.f, g, width);
  } else if (first) {
    std::memset(g, 0, sizeof(float) * d.Cout * width);
  }
  // (Cout, K, Cin) added into (Cout, Cin, K), one output channel per task as taps_major.
  parallel_for(d.Cout, d.w_numel() > 65536, [&](int64_t o) {
    const float* src = g + o * width;
    float* dst = dw + o * d.Cin * d.K;
    for (int64_t c = 0; c < d.Cin; ++c)
      for (int64_t k = 0; k < d.K; ++k) dst[c * d.K + k] += src[k * d.Cin + c];
  });
  if (dbias) rows::add_column_sums(dy, d.B * d.Lout, d.Cout, dbias);  // dy is (B * Lout, Cout)
}

}  // namespace cpc::cpu
