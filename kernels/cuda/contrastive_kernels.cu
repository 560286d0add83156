// Row, column and fix-up kernels of the fused contrastive loss. Per-row math from
// kernels/common/contrastive_row.h (shared with the CPU backend); the first pass's
// statistics are reduced across a block with the CPU's tie rule (the first maximum,
// by column index, decides whether the row is counted correct).
#include <climits>

#include "kernels/common/contrastive_row.h"
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/contrastive_kernels.h"

namespace cpc::cuda {
namespace {

constexpr int kThreads = 256;

struct RowIndex {
  int64_t i;   // anchor row
  int64_t c0;  // first column of its block
};

__device__ __forceinline__ RowIndex row_index(const ContrastiveDeviceProblem& p, const ContrastiveTile& t,
                                              int64_t rho) {
  const int64_t b = rho / t.n, r = rho % t.n;
  return {(t.g0 + b) * p.Rg + t.q0 + r, (t.g0 + b) * p.Mg};
}

// Validity of column j (global) for row i: group exclusion, then the row's sorted
// exclusion list (binary search; the CPU walks a cursor, same membership).
__device__ bool candidate_valid(const ContrastiveDeviceProblem& p, int64_t i, int64_t j) {
  if (p.row_group && p.row_group[i] == p.col_group[j] && j != p.row_keep[i]) return false;
  if (p.excl_cols) {
    int32_t lo = p.excl_offsets[i], hi = p.excl_offsets[i + 1];
    while (lo < hi) {
      const int32_t mid = lo + (hi - lo) / 2;
      const int32_t v = p.excl_cols[mid];
      if (v == j) return false;
      if (v < j)
        lo = mid + 1;
      else
        hi = mid;
    }
  }
  return true;
}

__device__ __forceinline__ bool near_duplicate(float q, float na, float nc) { return q < 1e-3f * (na + nc); }

__device__ float squared_distance(const float* a, const float* c, int64_t D) {
  float s = 0.f;
  for (int64_t d = 0; d < D; ++d) s += (a[d] - c[d]) * (a[d] - c[d]);
  return s;
}

__global__ void squared_norms_kernel(const float* __restrict__ X, int64_t n, int64_t D, float* __restrict__ out) {
  const int lane = threadIdx.x & 31;
  const int64_t warps = static_cast<int64_t>(gridDim.x) * (blockDim.x >> 5);
  for (int64_t r = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5; r < n; r += warps) {
    float s = 0.f;
    for (int64_t d = lane; d < D; d += 32) s += X[r * D + d] * X[r * D + d];
    s = warp_sum(s);
    if (lane == 0) out[r] = s;
  }
}

__global__ void fill_int_kernel(int32_t* y, int64_t n, int32_t v) {
  for (int64_t e = global_index(); e < n; e += global_stride()) y[e] = v;
}

__global__ void l2_scores_kernel(ContrastiveDeviceProblem p, ContrastiveTile t, float* __restrict__ tile) {
  const int64_t total = t.rows() * p.Mg;
  for (int64_t e = global_index(); e < total; e += global_stride()) {
    const int64_t rho = e / p.Mg, j = e % p.Mg;
    const RowIndex ri = row_index(p, t, rho);
    const int64_t cj = ri.c0 + j;
    const float na = p.a_norm[ri.i], nc = p.c_norm[cj];
    float q = fmaxf(0.f, na + nc - 2.f * tile[e]);
    // |a|^2 + |c|^2 - 2 a.c loses all precision when a ~ c: explicit differences then.
    if (near_duplicate(q, na, nc)) q = squared_distance(p.A + ri.i * p.D, p.C + cj * p.D, p.D);
    tile[e] = -p.scale * sqrtf(q + p.l2_eps);
  }
}

// Pass-1 statistics of a thread's share of a row, with the column of its first maximum.
struct Pass1 {
  float max_all, max_pos, pos_sum;
  int n_valid, n_pos, best_j;
  bool best_is_pos;
};

__device__ __forceinline__ void combine(Pass1& a, const Pass1& b) {
  if (b.max_all > a.max_all || (b.max_all == a.max_all && b.best_j < a.best_j)) {
    a.max_all = b.max_all, a.best_j = b.best_j, a.best_is_pos = b.best_is_pos;
  }
  if (b.max_pos > a.max_pos) a.max_pos = b.max_pos;
  a.pos_sum += b.pos_sum;
  a.n_valid += b.n_valid;
  a.n_pos += b.n_pos;
}

// One block (power-of-two threads) per tile row.
__global__ void row_pass_kernel(ContrastiveDeviceProblem p, ContrastiveTile t, float* __restrict__ tile,
                                float* __restrict__ dup_w, ContrastiveRowState st) {
  __shared__ Pass1 sh[kThreads];
  __shared__ float red[32];
  const int64_t rho = blockIdx.x;
  const RowIndex ri = row_index(p, t, rho);
  const int64_t i = ri.i;
  float* row = tile + rho * p.Mg;
  const int32_t label = p.row_label[i];

  // Pass 1: maxima, counts, positive sum; each thread walks its columns in order.
  Pass1 a{-INFINITY, -INFINITY, 0.f, 0, 0, INT_MAX, false};
  for (int64_t j = threadIdx.x; j < p.Mg; j += blockDim.x) {
    if (!candidate_valid(p, i, ri.c0 + j)) continue;
    const float s = row[j];
    const bool pos = label == p.col_label[ri.c0 + j];
    ++a.n_valid;
    if (s > a.max_all) a.max_all = s, a.best_is_pos = pos, a.best_j = static_cast<int>(j);
    if (pos) {
      ++a.n_pos;
      a.pos_sum += s;
      if (s > a.max_pos) a.max_pos = s;
    }
  }
  sh[threadIdx.x] = a;
  __syncthreads();
  for (unsigned k = blockDim.x / 2; k > 0; k >>= 1) {
    if (threadIdx.x < k) combine(sh[threadIdx.x], sh[threadIdx.x + k]);
    __syncthreads();
  }
  math::RowPass1<float> p1;
  p1.max_all = sh[0].max_all, p1.max_pos = sh[0].max_pos, p1.pos_sum = sh[0].pos_sum;
  p1.n_valid = sh[0].n_valid, p1.n_pos = sh[0].n_pos, p1.best_is_pos = sh[0].best_is_pos;
  if (!p1.used()) {  // no positive (or no candidate): skipped, its tile row is ignored
    if (threadIdx.x == 0) st.row_flag[i] = 0, st.row_loss[i] = 0.f;
    return;  // uniform across the block
  }

  // Pass 2: exponentials relative to the row's maxima.
  float sum_neg = 0.f, sum_pos = 0.f;
  for (int64_t j = threadIdx.x; j < p.Mg; j += blockDim.x) {
    if (!candidate_valid(p, i, ri.c0 + j)) {
      row[j] = -1.f;
      continue;
    }
    const bool pos = label == p.col_label[ri.c0 + j];
    if (p.neg_l2) dup_w[rho * p.Mg + j] = row[j];
    const float e = math::row_exp(row[j], pos, p1);
    (pos ? sum_pos : sum_neg) += e;
    row[j] = e;
  }
  sum_neg = block_sum(sum_neg, red);
  sum_pos = block_sum(sum_pos, red);
  if (threadIdx.x == 0) {
    const math::RowStats<float> rs = math::row_stats(p1, sum_neg, sum_pos, p.form);
    st.row_loss[i] = rs.loss;
    st.row_flag[i] = p1.best_is_pos ? 2 : 1;
    st.factors[rho] = math::row_grad_factors(p1, rs, p.form);
  }
}

// One thread per column of the tile; rows in order, a strictly better probability
// replaces (the first best row wins, as the CPU's serial loop).
__global__ void column_argmax_kernel(ContrastiveDeviceProblem p, ContrastiveTile t, const float* __restrict__ tile,
                                     ContrastiveRowState st) {
  for (int64_t k = global_index(); k < t.nb * p.Mg; k += global_stride()) {
    const int64_t b = k / p.Mg, j = k % p.Mg, col = (t.g0 + b) * p.Mg + j;
    float best = st.col_best[col];
    int32_t best_row = st.col_best_row[col];
    for (int64_t r = 0; r < t.n; ++r) {
      const int64_t rho = b * t.n + r, i = (t.g0 + b) * p.Rg + t.q0 + r;
      if (st.row_flag[i] == 0) continue;
      const float e = tile[rho * p.Mg + j];
      if (e < 0.f) continue;
      const float prob = math::row_probability(e, p.row_label[i] == p.col_label[col], st.factors[rho]);
      if (prob > best) best = prob, best_row = static_cast<int32_t>(i);
    }
    st.col_best[col] = best;
    st.col_best_row[col] = best_row;
  }
}

__global__ void score_grad_kernel(ContrastiveDeviceProblem p, ContrastiveTile t, float* __restrict__ tile,
                                  float* __restrict__ dup_w, ContrastiveRowState st) {
  const int64_t total = t.rows() * p.Mg;
  for (int64_t e = global_index(); e < total; e += global_stride()) {
    const int64_t rho = e / p.Mg, j = e % p.Mg;
    const RowIndex ri = row_index(p, t, rho);
    const float v = tile[e];
    if (st.row_flag[ri.i] == 0 || v < 0.f) {  // skipped row or invalid candidate
      tile[e] = 0.f;
      if (p.neg_l2) dup_w[e] = 0.f;
      continue;
    }
    const int64_t cj = ri.c0 + j;
    float d = math::row_score_grad(v, p.row_label[ri.i] == p.col_label[cj], st.factors[rho]);
    if (p.neg_l2) {
      // s = -scale * sqrt(q + eps)  =>  ds/dq = scale^2 / (2 s)
      const float s = dup_w[e];
      d *= p.scale * p.scale / (2.f * s);
      dup_w[e] = 0.f;
      const float na = p.a_norm[ri.i], nc = p.c_norm[cj];
      const float q_from_s = (s / p.scale) * (s / p.scale) - p.l2_eps;
      if (q_from_s < 2e-3f * (na + nc) &&
          near_duplicate(squared_distance(p.A + ri.i * p.D, p.C + cj * p.D, p.D), na, nc)) {
        // d is ~1/sqrt(eps) here: the GEMM form would cancel catastrophically; the
        // fix-up kernels apply 2 d (a - c) from explicit differences instead.
        dup_w[e] = d;
        d = 0.f;
      }
    }
    tile[e] = d;
  }
}

// One block per tile row: the neg_l2 terms of dA that are not a GEMM.
__global__ void l2_row_fixup_kernel(ContrastiveDeviceProblem p, ContrastiveTile t, const float* __restrict__ tile,
                                    const float* __restrict__ dup_w, float* dA) {
  __shared__ float red[32];
  const int64_t rho = blockIdx.x;
  const RowIndex ri = row_index(p, t, rho);
  const float* row = tile + rho * p.Mg;
  const float* wrow = dup_w + rho * p.Mg;
  float rs = 0.f;
  int any = 0;
  for (int64_t j = threadIdx.x; j < p.Mg; j += blockDim.x) rs += row[j], any |= wrow[j] != 0.f;
  rs = block_sum(rs, red);
  any = __syncthreads_or(any);
  const float* a = p.A + ri.i * p.D;
  float* da = dA + ri.i * p.D;
  for (int64_t d = threadIdx.x; d < p.D; d += blockDim.x) {
    float v = 2.f * rs * a[d];
    if (any)
      for (int64_t j = 0; j < p.Mg; ++j) {
        const float w = wrow[j];
        if (w != 0.f) v += 2.f * w * (a[d] - p.C[(ri.c0 + j) * p.D + d]);
      }
    da[d] += v;
  }
}

// One block per tile column: the neg_l2 terms of dC that are not a GEMM.
__global__ void l2_col_fixup_kernel(ContrastiveDeviceProblem p, ContrastiveTile t, const float* __restrict__ tile,
                                    const float* __restrict__ dup_w, float* dC) {
  __shared__ float red[32];
  const int64_t b = blockIdx.x / p.Mg, j = blockIdx.x % p.Mg, col = (t.g0 + b) * p.Mg + j;
  float cs = 0.f;
  int any = 0;
  for (int64_t r = threadIdx.x; r < t.n; r += blockDim.x) {
    const int64_t e = (b * t.n + r) * p.Mg + j;
    cs += tile[e], any |= dup_w[e] != 0.f;
  }
  cs = block_sum(cs, red);
  any = __syncthreads_or(any);
  const float* c = p.C + col * p.D;
  float* dc = dC + col * p.D;
  for (int64_t d = threadIdx.x; d < p.D; d += blockDim.x) {
    float v = 2.f * cs * c[d];
    if (any)
      for (int64_t r = 0; r < t.n; ++r) {
        const float w = dup_w[(b * t.n + r) * p.Mg + j];
        if (w != 0.f) v -= 2.f * w * (p.A[((t.g0 + b) * p.Rg + t.q0 + r) * p.D + d] - c[d]);
      }
    dc[d] += v;
  }
}

// One block: the loss sum in double and the counts, in a fixed order (deterministic).
__global__ void stats_kernel(ContrastiveDeviceProblem p, ContrastiveRowState st, ContrastiveDeviceStats* out) {
  __shared__ double red_d[32];
  __shared__ unsigned long long red_u[32];
  double loss = 0.0;
  unsigned long long used = 0, correct = 0;
  for (int64_t i = threadIdx.x; i < p.R; i += blockDim.x) {
    const int32_t f = st.row_flag[i];
    if (f == 0) continue;
    ++used;
    correct += f == 2;
    loss += static_cast<double>(st.row_loss[i]);
  }
  loss = block_sum(loss, red_d);
  used = block_sum(used, red_u);
  correct = block_sum(correct, red_u);
  if (threadIdx.x == 0) {
    out->loss_sum = loss;
    out->used = used;
    out->correct = correct;
    out->skipped = static_cast<unsigned long long>(p.R) - used;
    out->column_correct = 0;
  }
}

__global__ void column_correct_kernel(ContrastiveDeviceProblem p, ContrastiveRowState st, ContrastiveDeviceStats* out) {
  __shared__ unsigned long long red_u[32];
  unsigned long long n = 0;
  for (int64_t j = threadIdx.x; j < p.M; j += blockDim.x) {
    const int32_t i = st.col_best_row[j];
    n += i >= 0 && p.row_label[i] == p.col_label[j];
  }
  n = block_sum(n, red_u);
  if (threadIdx.x == 0) out->column_correct = n;
}

int row_threads(int64_t Mg) {
  int t = 32;
  while (t < kThreads && t < Mg) t <<= 1;
  return t;
}

}  // namespace

cudaError_t launch_squared_norms(const float* X, int64_t n, int64_t D, float* out, cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  squared_norms_kernel<<<grid_for(n * 32, kThreads), kThreads, 0, s>>>(X, n, D, out);
  return cudaGetLastError();
}

cudaError_t launch_fill_int(int32_t* y, int64_t n, int32_t v, cudaStream_t s) {
  if (n == 0) return cudaSuccess;
  fill_int_kernel<<<grid_for(n, kThreads), kThreads, 0, s>>>(y, n, v);
  return cudaGetLastError();
}

cudaError_t launch_l2_scores(const ContrastiveDeviceProblem& p, const ContrastiveTile& t, float* tile, cudaStream_t s) {
  const int64_t total = t.rows() * p.Mg;
  if (total == 0) return cudaSuccess;
  l2_scores_kernel<<<grid_for(total, kThreads), kThreads, 0, s>>>(p, t, tile);
  return cudaGetLastError();
}

cudaError_t launch_row_pass(const ContrastiveDeviceProblem& p, const ContrastiveTile& t, float* tile, float* dup_w,
                            const ContrastiveRowState& st, cudaStream_t s) {
  if (t.rows() == 0) return cudaSuccess;
  row_pass_kernel<<<static_cast<unsigned>(t.rows()), row_threads(p.Mg), 0, s>>>(p, t, tile, dup_w, st);
  return cudaGetLastError();
}

cudaError_t launch_column_argmax(const ContrastiveDeviceProblem& p, const ContrastiveTile& t, const float* tile,
                                 const ContrastiveRowState& st, cudaStream_t s) {
  const int64_t cols = t.nb * p.Mg;
  if (cols == 0) return cudaSuccess;
  column_argmax_kernel<<<grid_for(cols, kThreads), kThreads, 0, s>>>(p, t, tile, st);
  return cudaGetLastError();
}

cudaError_t launch_score_grad(const ContrastiveDeviceProblem& p, const ContrastiveTile& t, float* tile, float* dup_w,
                              const ContrastiveRowState& st, cudaStream_t s) {
  const int64_t total = t.rows() * p.Mg;
  if (total == 0) return cudaSuccess;
  score_grad_kernel<<<grid_for(total, kThreads), kThreads, 0, s>>>(p, t, tile, dup_w, st);
  return cudaGetLastError();
}

cudaError_t launch_l2_row_fixup(const ContrastiveDeviceProblem& p, const ContrastiveTile& t, const float* tile,
                                const float* dup_w, float* dA, cudaStream_t s) {
  if (t.rows() == 0) return cudaSuccess;
  l2_row_fixup_kernel<<<static_cast<unsigned>(t.rows()), 128, 0, s>>>(p, t, tile, dup_w, dA);
  return cudaGetLastError();
}

cudaError_t launch_l2_col_fixup(const ContrastiveDeviceProblem& p, const ContrastiveTile& t, const float* tile,
                                const float* dup_w, float* dC, cudaStream_t s) {
  const int64_t cols = t.nb * p.Mg;
  if (cols == 0) return cudaSuccess;
  l2_col_fixup_kernel<<<static_cast<unsigned>(cols), 128, 0, s>>>(p, t, tile, dup_w, dC);
  return cudaGetLastError();
}

cudaError_t launch_contrastive_stats(const ContrastiveDeviceProblem& p, const ContrastiveRowState& st,
                                     bool column_argmax, ContrastiveDeviceStats* out, cudaStream_t s) {
  stats_kernel<<<1, 1024, 0, s>>>(p, st, out);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess || !column_argmax) return e;
  column_correct_kernel<<<1, 1024, 0, s>>>(p, st, out);
  return cudaGetLastError();
}

}  // namespace cpc::cuda
