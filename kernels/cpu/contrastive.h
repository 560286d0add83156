#pragma once
// Fused contrastive cross-entropy on the CPU: anchors A (R, D) against candidates
// C (M, D), score s_ij = scale * a_i.c_j (or -scale * ||a_i - c_j||). Rows are
// processed in blocks: one GEMM computes a (rows_in_block, M) tile, the per-row
// online statistics (kernels/common/contrastive_row.h) reduce it, and the tile is
// dropped; backward recomputes it. Memory: O(rows_in_block * M + (R + M) * D), never
// the (R, M) matrix. Templated for the double-precision gradient checks.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/common/contrastive_row.h"
#include "kernels/cpu/blas.h"
#include "kernels/cpu/parallel.h"

namespace cpc::cpu {

struct ContrastiveProblem {
  int64_t R = 0, M = 0, D = 0;
  int64_t blocks = 1;  // rows and columns split into equal blocks; candidates only within a row's block
  float scale = 1.f;
  bool neg_l2 = false;    // s = -scale * sqrt(||a - c||^2 + l2_eps) instead of scale * a.c
  float l2_eps = 1e-12f;  // keeps d/dq finite for identical vectors
  math::MultiPositiveForm form = math::MultiPositiveForm::supcon;
  // Column j is a positive of row i iff row_label[i] == col_label[j] (and j is valid).
  const int32_t* row_label = nullptr;
  const int32_t* col_label = nullptr;
  // Column j is invalid for row i if row_group[i] == col_group[j] and j != row_keep[i]
  // (self-similarity, other time steps of one's own sequence). Optional.
  const int32_t* row_group = nullptr;
  const int32_t* col_group = nullptr;
  const int32_t* row_keep = nullptr;
  // Explicitly excluded (row, column) pairs as CSR over rows, columns ascending. Optional.
  const int32_t* excl_offsets = nullptr;
  const int32_t* excl_cols = nullptr;
  // Also count columns whose best row (by row-normalised score s_ij - lse_i, as seed
  // 004's argmax over dim 0 of the softmax) is one of their positives.
  bool column_argmax = false;
  int64_t max_tile_rows = 0;  // 0: automatic; tests force 1 (fused) or R (one tile: unfused)

  int64_t rows_per_block() const { return R / blocks; }
  int64_t cols_per_block() const { return M / blocks; }
  // Row-tile height: keeps the score tile near 2 MiB of floats, at least 16 rows.
  int64_t tile_rows() const {
    if (max_tile_rows > 0) return std::min(max_tile_rows, rows_per_block());
    return std::max<int64_t>(
        16, std::min<int64_t>(rows_per_block(), (int64_t{1} << 19) / std::max<int64_t>(cols_per_block(), 1)));
  }
  int64_t workspace() const {  // elements of T
    return tile_rows() * cols_per_block() * (neg_l2 ? 2 : 1) + 2 * R + (neg_l2 ? R + 2 * M : 0) +
           (column_argmax ? 2 * M : 0);
  }
};

struct ContrastiveResult {
  double loss = 0;      // mean over used rows
  int64_t used = 0;     // rows with at least one positive
  int64_t skipped = 0;  // rows without positives (or without candidates)
  int64_t correct = 0;  // used rows whose best candidate is a positive
  int64_t column_correct = 0;
};

namespace detail {

// Validity of candidate j for row i; `cursor` walks row i's sorted exclusion list.
inline bool candidate_valid(const ContrastiveProblem& p, int64_t i, int64_t j, int32_t& cursor, int32_t end) {
  if (p.row_group && p.row_group[i] == p.col_group[j] && j != p.row_keep[i]) return false;
  if (p.excl_cols) {
    while (cursor < end && p.excl_cols[cursor] < j) ++cursor;
    if (cursor < end && p.excl_cols[cursor] == j) return false;
  }
  return true;
}

// |a|^2 + |c|^2 - 2 a.c loses all precision when a ~ c (duplicates): such pairs get
// their distance, and in backward their gradient, from explicit differences.
template <class T>
bool near_duplicate(T q, T na, T nc) {
  return q < T(1e-3) * (na + nc);
}

template <class T>
T squared_distance(const T* a, const T* c, int64_t D) {
  T s = 0;
  for (int64_t d = 0; d < D; ++d) s += (a[d] - c[d]) * (a[d] - c[d]);
  return s;
}

// Fills tile (n, Mg) with scores of rows [r0, r0 + n) against columns [c0, c0 + Mg).
// For neg_l2, q_out (if given) receives the squared distances.
template <class T>
void score_tile(const T* A, const T* C, const ContrastiveProblem& p, const T* a_norm, const T* c_norm, int64_t r0,
                int64_t n, int64_t c0, int64_t Mg, T* tile) {
  const T alpha = p.neg_l2 ? T(1) : T(p.scale);
  gemm(false, true, n, Mg, p.D, alpha, A + r0 * p.D, p.D, C + c0 * p.D, p.D, T(0), tile, Mg);
  if (!p.neg_l2) return;
  parallel_for(n, n * Mg > 16384, [&](int64_t r) {
    for (int64_t j = 0; j < Mg; ++j) {
      const T na = a_norm[r0 + r], nc = c_norm[c0 + j];
      T q = std::max(T(0), na + nc - T(2) * tile[r * Mg + j]);
      if (near_duplicate(q, na, nc)) q = squared_distance(A + (r0 + r) * p.D, C + (c0 + j) * p.D, p.D);
      tile[r * Mg + j] = -T(p.scale) * std::sqrt(q + T(p.l2_eps));
    }
  });
}

template <class T>
void squared_norms(const T* X, int64_t n, int64_t D, T* out) {
  parallel_for(n, n * D > 65536, [&](int64_t i) {
    T s = 0;
    for (int64_t d = 0; d < D; ++d) s += X[i * D + d] * X[i * D + d];
    out[i] = s;
  });
}

}  // namespace detail

// Forward: saves per row lse_all, lse_pos and n_pos (0 = skipped) for backward.
template <class T>
ContrastiveResult contrastive_forward(const T* A, const T* C, const ContrastiveProblem& p, T* lse_all, T* lse_pos,
                                      T* n_pos, T* ws) {
  const int64_t Rg = p.rows_per_block(), Mg = p.cols_per_block(), tr = p.tile_rows();
  T* tile = ws;
  T* row_loss = tile + tr * Mg;
  T* row_ok = row_loss + p.R;  // 1 where the best candidate is a positive
  T* a_norm = row_ok + p.R;
  T* c_norm = a_norm + (p.neg_l2 ? p.R : 0);
  T* col_best = c_norm + (p.neg_l2 ? 2 * p.M : 0);
  T* col_best_row = col_best + (p.column_argmax ? p.M : 0);
  if (p.neg_l2) {
    detail::squared_norms(A, p.R, p.D, a_norm);
    detail::squared_norms(C, p.M, p.D, c_norm);
  }
  ContrastiveResult res;
  for (int64_t g = 0; g < p.blocks; ++g) {
    const int64_t c0 = g * Mg;
    if (p.column_argmax)
      for (int64_t j = 0; j < Mg; ++j) col_best[c0 + j] = -INFINITY, col_best_row[c0 + j] = -1;
    for (int64_t r0 = g * Rg; r0 < (g + 1) * Rg; r0 += tr) {
      const int64_t n = std::min(tr, (g + 1) * Rg - r0);
      detail::score_tile(A, C, p, a_norm, c_norm, r0, n, c0, Mg, tile);
      parallel_for(n, n * Mg > 16384, [&](int64_t r) {
        const int64_t i = r0 + r;
        int32_t cur = p.excl_offsets ? p.excl_offsets[i] : 0;
        const int32_t end = p.excl_offsets ? p.excl_offsets[i + 1] : 0;
        math::ContrastiveRow<T> row;
        for (int64_t j = 0; j < Mg; ++j) {
          if (!detail::candidate_valid(p, i, c0 + j, cur, end)) continue;
          row.push(tile[r * Mg + j], p.row_label[i] == p.col_label[c0 + j]);
        }
        n_pos[i] = static_cast<T>(row.n_pos);
        lse_all[i] = row.all.value();
        lse_pos[i] = row.pos.value();
        row_loss[i] = row.used() ? math::contrastive_row_loss(row, p.form) : T(0);
        row_ok[i] = row.used() && row.best_is_pos ? T(1) : T(0);
      });
      if (p.column_argmax) {
        for (int64_t r = 0; r < n; ++r) {
          const int64_t i = r0 + r;
          int32_t cur = p.excl_offsets ? p.excl_offsets[i] : 0;
          const int32_t end = p.excl_offsets ? p.excl_offsets[i + 1] : 0;
          for (int64_t j = 0; j < Mg; ++j) {
            if (!detail::candidate_valid(p, i, c0 + j, cur, end)) continue;
            // Seed 004 takes argmax over dim 0 of the row-softmaxed matrix: compare s - lse(row).
            const T v = tile[r * Mg + j] - lse_all[i];
            if (v > col_best[c0 + j]) col_best[c0 + j] = v, col_best_row[c0 + j] = T(i);
          }
        }
      }
    }
    if (p.column_argmax)
      for (int64_t j = 0; j < Mg; ++j) {
        const int64_t i = static_cast<int64_t>(col_best_row[c0 + j]);
        if (i >= 0 && p.row_label[i] == p.col_label[c0 + j]) ++res.column_correct;
      }
  }
  double total = 0;  // summed in row order: deterministic for any thread count
  for (int64_t i = 0; i < p.R; ++i) {
    if (n_pos[i] == T(0)) {
      ++res.skipped;
      continue;
    }
    ++res.used;
    if (row_ok[i] != T(0)) ++res.correct;
    total += static_cast<double>(row_loss[i]);
  }
  res.loss = res.used ? total / static_cast<double>(res.used) : 0.0;
  return res;
}

// Backward of g * loss: accumulates into dA and dC (either may be null; they may be
// the same buffer when A and C are the same tensor).
template <class T>
void contrastive_backward(const T* A, const T* C, const ContrastiveProblem& p, const T* lse_all, const T* lse_pos,
                          const T* n_pos, int64_t used, T g, T* dA, T* dC, T* ws) {
  if (used == 0) return;
  const int64_t Rg = p.rows_per_block(), Mg = p.cols_per_block(), tr = p.tile_rows();
  T* tile = ws;
  T* row_sum = tile + tr * Mg;  // neg_l2: sum_j W_ij per row of the tile
  T* a_norm = row_sum + 2 * p.R;
  T* c_norm = a_norm + (p.neg_l2 ? p.R : 0);
  T* col_sum = c_norm + p.M;  // neg_l2: sum_i W_ij per column of the tile
  T* dup_w = col_sum + p.M;   // neg_l2: W of near-duplicate pairs, handled by explicit differences
  if (p.neg_l2) {
    detail::squared_norms(A, p.R, p.D, a_norm);
    detail::squared_norms(C, p.M, p.D, c_norm);
  }
  const T coef = g / static_cast<T>(used);
  for (int64_t gi = 0; gi < p.blocks; ++gi) {
    const int64_t c0 = gi * Mg;
    for (int64_t r0 = gi * Rg; r0 < (gi + 1) * Rg; r0 += tr) {
      const int64_t n = std::min(tr, (gi + 1) * Rg - r0);
      detail::score_tile(A, C, p, a_norm, c_norm, r0, n, c0, Mg, tile);
      // Tile := d(loss)/d(score), then (neg_l2) chain through the distance.
      parallel_for(n, n * Mg > 16384, [&](int64_t r) {
        const int64_t i = r0 + r;
        T* row = tile + r * Mg;
        if (n_pos[i] == T(0)) {
          for (int64_t j = 0; j < Mg; ++j) row[j] = 0;
          if (p.neg_l2) {
            row_sum[r] = 0;
            for (int64_t j = 0; j < Mg; ++j) dup_w[r * Mg + j] = 0;
          }
          return;
        }
        int32_t cur = p.excl_offsets ? p.excl_offsets[i] : 0;
        const int32_t end = p.excl_offsets ? p.excl_offsets[i + 1] : 0;
        const int np = static_cast<int>(n_pos[i]);
        T rs = 0;
        for (int64_t j = 0; j < Mg; ++j) {
          if (!detail::candidate_valid(p, i, c0 + j, cur, end)) {
            row[j] = 0;
            if (p.neg_l2) dup_w[r * Mg + j] = 0;
            continue;
          }
          const T s = row[j];
          T d = coef * math::contrastive_score_grad(s, p.row_label[i] == p.col_label[c0 + j], lse_all[i], lse_pos[i],
                                                    np, p.form);
          if (p.neg_l2) {
            // s = -scale * sqrt(q + eps)  =>  ds/dq = -scale / (2 sqrt(q + eps)) = scale^2 / (2 s)
            d *= T(p.scale) * T(p.scale) / (T(2) * s);
            dup_w[r * Mg + j] = 0;
            const T q_from_s = (s / T(p.scale)) * (s / T(p.scale)) - T(p.l2_eps);
            const T* a = A + i * p.D;
            const T* cj = C + (c0 + j) * p.D;
            if (q_from_s < T(2e-3) * (a_norm[i] + c_norm[c0 + j]) &&
                detail::near_duplicate(detail::squared_distance(a, cj, p.D), a_norm[i], c_norm[c0 + j])) {
              // d is huge here (~1/sqrt(eps)); its GEMM form 2 a sum(W) - 2 W c would cancel
              // catastrophically: use 2 W (a - c) directly. dA's row is this thread's; dC's
              // part is applied serially below.
              if (dA)
                for (int64_t e = 0; e < p.D; ++e) dA[i * p.D + e] += T(2) * d * (a[e] - cj[e]);
              dup_w[r * Mg + j] = d;
              d = 0;
            }
            rs += d;
          }
          row[j] = d;
        }
        if (p.neg_l2) row_sum[r] = rs;
      });
      if (p.neg_l2 && dC) {
        for (int64_t r = 0; r < n; ++r)
          for (int64_t j = 0; j < Mg; ++j) {
            const T w = dup_w[r * Mg + j];
            if (w == T(0)) continue;
            const T* a = A + (r0 + r) * p.D;
            const T* cj = C + (c0 + j) * p.D;
            for (int64_t e = 0; e < p.D; ++e) dC[(c0 + j) * p.D + e] -= T(2) * w * (a[e] - cj[e]);
          }
      }
      if (!p.neg_l2) {
        if (dA) gemm(false, false, n, p.D, Mg, T(p.scale), tile, Mg, C + c0 * p.D, p.D, T(1), dA + r0 * p.D, p.D);
        if (dC) gemm(true, false, Mg, p.D, n, T(p.scale), tile, Mg, A + r0 * p.D, p.D, T(1), dC + c0 * p.D, p.D);
        continue;
      }
      // q = |a|^2 + |c|^2 - 2 a.c: dA_i += 2 a_i sum_j W_ij - 2 W C; dC_j += 2 c_j sum_i W_ij - 2 W^T A.
      if (dA) {
        gemm(false, false, n, p.D, Mg, T(-2), tile, Mg, C + c0 * p.D, p.D, T(1), dA + r0 * p.D, p.D);
        for (int64_t r = 0; r < n; ++r)
          for (int64_t d = 0; d < p.D; ++d) dA[(r0 + r) * p.D + d] += T(2) * row_sum[r] * A[(r0 + r) * p.D + d];
      }
      if (dC) {
        gemm(true, false, Mg, p.D, n, T(-2), tile, Mg, A + r0 * p.D, p.D, T(1), dC + c0 * p.D, p.D);
        for (int64_t j = 0; j < Mg; ++j) {
          T s = 0;
          for (int64_t r = 0; r < n; ++r) s += tile[r * Mg + j];
          col_sum[j] = s;
        }
        for (int64_t j = 0; j < Mg; ++j)
          for (int64_t d = 0; d < p.D; ++d) dC[(c0 + j) * p.D + d] += T(2) * col_sum[j] * C[(c0 + j) * p.D + d];
      }
    }
  }
}

}  // namespace cpc::cpu
