#pragma once
// Fused contrastive cross-entropy on the CPU: anchors A (R, D) against candidates
// C (M, D), score s_ij = scale * a_i.c_j (or -scale * ||a_i - c_j||). Rows are
// processed in tiles: one GEMM computes a (tile_rows, M) block of scores, the per-row
// passes (kernels/common/contrastive_row.h) reduce it, and the tile is dropped.
// Memory: O(tile_rows * M + (R + M) * D), never the (R, M) matrix.
//
// A tile holds complete rows, so each row's logsumexp is final while its scores are
// still in cache: when gradients are wanted, the same pass turns the tile into
// d(loss)/d(score) and two GEMMs produce dA and dC for g = 1, kept (O((R + M) * D))
// until backward scales them by the upstream gradient. That is 3 GEMMs per tile
// instead of the 4 a recomputing backward needs; nothing (R, M)-sized is stored.
// Templated for the double-precision gradient checks.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "kernels/common/contrastive_row.h"
#include "kernels/cpu/blas.h"
#include "engine/core/op_args.h"
#include "kernels/cpu/cpu_options.h"
#include "kernels/cpu/fast_math.h"
#include "kernels/cpu/parallel.h"

namespace cpc::cpu {

// The backend's ContrastiveSpec (engine/core/op_args.h) with the problem's extents.
struct ContrastiveProblem : ContrastiveSpec {
  int64_t R = 0, M = 0, D = 0;
  int64_t max_tile_rows = 0;  // 0: automatic; tests force 1 (fused) or R (one tile: unfused)

  ContrastiveProblem() = default;
  ContrastiveProblem(const ContrastiveSpec& s, int64_t r, int64_t m, int64_t d) : ContrastiveSpec(s), R(r), M(m), D(d) {}
  math::MultiPositiveForm form() const {
    return logsumexp_positives ? math::MultiPositiveForm::logsumexp : math::MultiPositiveForm::supcon;
  }
  int64_t rows_per_block() const { return R / blocks; }
  int64_t cols_per_block() const { return M / blocks; }
  // Row-tile height: keeps the score tile near 4 MiB of floats, at least 16 rows.
  int64_t tile_rows() const {
    if (max_tile_rows > 0) return std::min(max_tile_rows, rows_per_block());
    return std::max<int64_t>(
        16, std::min<int64_t>(rows_per_block(), (int64_t{1} << 20) / std::max<int64_t>(cols_per_block(), 1)));
  }
  // Many small blocks (InfoNCE with batch negatives: one block of B x B scores per
  // selected step) are processed in parallel, one block per thread, each with its own
  // tile: a block's row passes are too small to share between threads, and its GEMMs
  // then run single-threaded (oneDNN's sgemm inside a parallel region). Blocks write
  // disjoint rows of dA and columns of dC.
  int tile_threads() const {
    const bool small_blocks = blocks >= 2 && tile_rows() >= rows_per_block() && rows_per_block() * cols_per_block() <= 16384;
    const bool parallel = small_blocks && !neg_l2 && !column_argmax && cpu_options().gemm == GemmLibrary::onednn;
    return parallel ? std::max(1, omp_get_max_threads()) : 1;
  }
  int64_t workspace() const {  // elements of T
    const int64_t tile = tile_rows() * cols_per_block();
    const int64_t factors = tile_rows() * 8;  // RowGradFactors per tile row (<= 8 T each)
    return tile * (neg_l2 ? 2 : 1) + 2 * R + (neg_l2 ? R + 2 * M : 0) + (column_argmax ? 2 * M : 0) + factors +
           (tile_threads() - 1) * (tile + factors);  // the other threads' tiles and factors
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
// Whether candidate_valid is true for every (i, j): no groups, no exclusion lists.
inline bool all_candidates_valid(const ContrastiveProblem& p) { return !p.row_group && !p.excl_cols; }

inline bool candidate_valid(const ContrastiveProblem& p, int64_t i, int64_t j, int32_t& cursor, int32_t end) {
  if (p.row_group && p.row_group[i] == p.col_group[j] && j != p.row_keep[i]) return false;
  if (p.excl_cols) {
    while (cursor < end && p.excl_cols[cursor] < j) ++cursor;
    if (cursor < end && p.excl_cols[cursor] == j) return false;
  }
  return true;
}

// Counts and the mean loss from the per-row flags (0 skipped, 1 used, 2 used and
// correct), summed in row order: deterministic for any thread count. Keeps
// res.column_correct.
template <class T, class Result>
void reduce_rows(const T* row_flag, const T* row_loss, int64_t R, Result& res) {
  double total = 0;
  for (int64_t i = 0; i < R; ++i) {
    if (row_flag[i] == T(0)) {
      ++res.skipped;
      continue;
    }
    ++res.used;
    if (row_flag[i] == T(2)) ++res.correct;
    total += static_cast<double>(row_loss[i]);
  }
  res.loss = res.used ? total / static_cast<double>(res.used) : 0.0;
}

// Pass 1 over a row whose candidates are all valid, as vector loops: the maxima, the
// positives' sum and count, then whether the first maximum is a positive (what
// RowPass1::push computes one candidate at a time; the positives' sum in lanes).
template <class T>
math::RowPass1<T> row_pass1_all_valid(const T* row, const int32_t* col_label, int32_t label, int64_t n) {
  T max_all = -INFINITY, max_pos = -INFINITY, pos_sum = 0;
  int n_pos = 0;
#pragma omp simd reduction(max : max_all, max_pos) reduction(+ : pos_sum, n_pos)
  for (int64_t j = 0; j < n; ++j) {
    const bool pos = col_label[j] == label;
    max_all = std::max(max_all, row[j]);
    max_pos = std::max(max_pos, pos ? row[j] : T(-INFINITY));
    pos_sum += pos ? row[j] : T(0);
    n_pos += pos ? 1 : 0;
  }
  math::RowPass1<T> p1;
  p1.max_all = max_all, p1.max_pos = max_pos, p1.pos_sum = pos_sum;
  p1.n_valid = static_cast<int>(n), p1.n_pos = n_pos;
  for (int64_t j = 0; j < n; ++j)
    if (row[j] == max_all) {  // NaN scores: no maximum, as push() leaves it
      p1.best_is_pos = col_label[j] == label;
      break;
    }
  return p1;
}

// |a|^2 + |c|^2 - 2 a.c loses all precision when a ~ c (duplicates): such pairs get
// their distance, and their gradient, from explicit differences.
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

template <class T>
void squared_norms(const T* X, int64_t n, int64_t D, T* out) {
  parallel_for(n, n * D > 65536, [&](int64_t i) {
    T s = 0;
    for (int64_t d = 0; d < D; ++d) s += X[i * D + d] * X[i * D + d];
    out[i] = s;
  });
}

// Fills tile (n, Mg) with the scores of rows [r0, r0 + n) against columns [c0, c0 + Mg).
template <class T>
void score_tile(const T* A, const T* C, const ContrastiveProblem& p, const T* a_norm, const T* c_norm, int64_t r0,
                int64_t n, int64_t c0, int64_t Mg, T* tile) {
  const T alpha = p.neg_l2 ? T(1) : T(p.scale);
  gemm_exact(false, true, n, Mg, p.D, alpha, A + r0 * p.D, p.D, C + c0 * p.D, p.D, T(0), tile, Mg);
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

}  // namespace detail

// Loss, accuracy and (when dA / dC are given) the gradient of the mean loss:
// dA (R, D) and dC (M, D) are overwritten with d(loss)/dA and d(loss)/dC.
template <class T>
ContrastiveResult contrastive_forward(const T* A, const T* C, const ContrastiveProblem& p, T* ws, T* dA = nullptr,
                                      T* dC = nullptr) {
  const int64_t Rg = p.rows_per_block(), Mg = p.cols_per_block(), tr = p.tile_rows();
  const bool grad = dA || dC;
  T* tile = ws;
  T* dup_w = tile + tr * Mg;  // neg_l2: W of near-duplicate pairs (explicit differences)
  T* row_loss = dup_w + (p.neg_l2 ? tr * Mg : 0);
  T* row_flag = row_loss + p.R;  // 0 skipped, 1 used, 2 used and correct
  T* a_norm = row_flag + p.R;
  T* c_norm = a_norm + (p.neg_l2 ? p.R : 0);
  T* col_sum = c_norm + (p.neg_l2 ? p.M : 0);
  T* col_best = col_sum + (p.neg_l2 ? p.M : 0);
  T* col_best_row = col_best + (p.column_argmax ? p.M : 0);
  auto* factors = reinterpret_cast<math::RowGradFactors<T>*>(col_best_row + (p.column_argmax ? p.M : 0));
  if (p.neg_l2) {
    detail::squared_norms(A, p.R, p.D, a_norm);
    detail::squared_norms(C, p.M, p.D, c_norm);
  }
  // Pass over rows: statistics, loss, and (grad) the tile becomes d(loss)/d(score)
  // up to the 1 / used factor, applied once `used` is known.
  ContrastiveResult res;
  if (dA) std::fill(dA, dA + p.R * p.D, T(0));
  if (dC) std::fill(dC, dC + p.M * p.D, T(0));
  const int threads = p.tile_threads();
  T* extra = reinterpret_cast<T*>(factors + tr);  // threads 1.. : (tile, factors) each
  // One block: its row tiles, with the tile and factors of the thread running it.
  auto run_block = [&](int64_t g, T* tile, math::RowGradFactors<T>* factors) {
    const int64_t c0 = g * Mg;
    if (p.column_argmax)
      for (int64_t j = 0; j < Mg; ++j) col_best[c0 + j] = -1, col_best_row[c0 + j] = -1;
    for (int64_t r0 = g * Rg; r0 < (g + 1) * Rg; r0 += tr) {
      const int64_t n = std::min(tr, (g + 1) * Rg - r0);
      detail::score_tile(A, C, p, a_norm, c_norm, r0, n, c0, Mg, tile);
      // Pass A, per row: statistics and loss; the tile keeps e = exp(s - max) (-1 marks
      // invalid candidates), dup_w keeps s for neg_l2's chain rule.
      parallel_for(n, n * Mg > 16384, [&](int64_t r) {
        const int64_t i = r0 + r;
        T* row = tile + r * Mg;
        const int32_t first = p.excl_offsets ? p.excl_offsets[i] : 0;
        const int32_t end = p.excl_offsets ? p.excl_offsets[i + 1] : 0;
        const int32_t label = p.row_label[i];
        const bool all_valid = detail::all_candidates_valid(p) && !p.neg_l2;
        math::RowPass1<T> p1 = all_valid ? detail::row_pass1_all_valid(row, p.col_label + c0, label, Mg)
                                         : math::RowPass1<T>{};
        int32_t cur = first;
        if (!all_valid)
          for (int64_t j = 0; j < Mg; ++j)
            if (detail::candidate_valid(p, i, c0 + j, cur, end)) p1.push(row[j], label == p.col_label[c0 + j]);
        row_flag[i] = p1.used() ? (p1.best_is_pos ? 2 : 1) : 0;
        row_loss[i] = 0;
        if (!p1.used()) return;
        T sum_neg = 0, sum_pos = 0;
        if (all_valid) {
          // Every candidate valid (InfoNCE's batch and sequence negatives, NT-Xent without
          // exclusions) and no neg_l2 copy to keep: math::row_exp over the row as one vector
          // loop (fast_math.h's exp; lanes of partial sums).
          const int32_t* cl = p.col_label + c0;
          const T mp = p1.max_pos, ma = p1.max_all;
          T sp = 0, sn = 0;
#pragma omp simd reduction(+ : sp, sn)
          for (int64_t j = 0; j < Mg; ++j) {
            const bool pos = label == cl[j];
            const T e = fast_exp(row[j] - (pos ? mp : ma));
            sp += pos ? e : T(0);
            sn += pos ? T(0) : e;
            row[j] = e;
          }
          sum_pos = sp, sum_neg = sn;
        } else {
          cur = first;
          for (int64_t j = 0; j < Mg; ++j) {
            if (!detail::candidate_valid(p, i, c0 + j, cur, end)) {
              row[j] = T(-1);
              continue;
            }
            const bool pos = label == p.col_label[c0 + j];
            if (p.neg_l2) dup_w[r * Mg + j] = row[j];
            const T e = math::row_exp(row[j], pos, p1);
            (pos ? sum_pos : sum_neg) += e;
            row[j] = e;
          }
        }
        const math::RowStats<T> st = math::row_stats(p1, sum_neg, sum_pos, p.form());
        row_loss[i] = st.loss;
        factors[r] = math::row_grad_factors(p1, st, p.form());
      });
      if (p.column_argmax) {  // serial: columns are shared between rows
        for (int64_t r = 0; r < n; ++r) {
          if (row_flag[r0 + r] == T(0)) continue;
          for (int64_t j = 0; j < Mg; ++j) {
            const T e = tile[r * Mg + j];
            if (e < T(0)) continue;
            const T prob = math::row_probability(e, p.row_label[r0 + r] == p.col_label[c0 + j], factors[r]);
            if (prob > col_best[c0 + j]) col_best[c0 + j] = prob, col_best_row[c0 + j] = T(r0 + r);
          }
        }
      }
      if (!grad) continue;
      // Pass B, per row: the tile becomes d(row loss)/d(score) (neg_l2: d/dq).
      parallel_for(n, n * Mg > 16384, [&](int64_t r) {
        const int64_t i = r0 + r;
        T* row = tile + r * Mg;
        if (row_flag[i] == T(0)) {
          for (int64_t j = 0; j < Mg; ++j) row[j] = 0;
          if (p.neg_l2)
            for (int64_t j = 0; j < Mg; ++j) dup_w[r * Mg + j] = 0;
          return;
        }
        const int32_t label = p.row_label[i];
        if (detail::all_candidates_valid(p) && !p.neg_l2) {  // no -1 markers: one vector loop
          const int32_t* cl = p.col_label + c0;
          const math::RowGradFactors<T> f = factors[r];
#pragma omp simd
          for (int64_t j = 0; j < Mg; ++j) row[j] = math::row_score_grad(row[j], label == cl[j], f);
          return;
        }
        for (int64_t j = 0; j < Mg; ++j) {
          if (row[j] < T(0)) {
            row[j] = 0;
            if (p.neg_l2) dup_w[r * Mg + j] = 0;
            continue;
          }
          T d = math::row_score_grad(row[j], label == p.col_label[c0 + j], factors[r]);
          if (p.neg_l2) {
            // s = -scale * sqrt(q + eps)  =>  ds/dq = -scale / (2 sqrt(q + eps)) = scale^2 / (2 s)
            const T s = dup_w[r * Mg + j];
            d *= T(p.scale) * T(p.scale) / (T(2) * s);
            dup_w[r * Mg + j] = 0;
            const T* a = A + i * p.D;
            const T* cj = C + (c0 + j) * p.D;
            const T q_from_s = (s / T(p.scale)) * (s / T(p.scale)) - T(p.l2_eps);
            if (q_from_s < T(2e-3) * (a_norm[i] + c_norm[c0 + j]) &&
                detail::near_duplicate(detail::squared_distance(a, cj, p.D), a_norm[i], c_norm[c0 + j])) {
              // d is ~1/sqrt(eps) here; the GEMM form 2 a sum(W) - 2 W c would cancel
              // catastrophically: use 2 W (a - c). dA's row is this thread's; dC's
              // part is applied serially below.
              if (dA)
                for (int64_t k = 0; k < p.D; ++k) dA[i * p.D + k] += T(2) * d * (a[k] - cj[k]);
              dup_w[r * Mg + j] = d;
              d = 0;
            }
          }
          row[j] = d;
        }
      });
      if (!grad) continue;
      if (!p.neg_l2) {
        if (dA) gemm_exact(false, false, n, p.D, Mg, T(p.scale), tile, Mg, C + c0 * p.D, p.D, T(1), dA + r0 * p.D, p.D);
        if (dC) gemm_exact(true, false, Mg, p.D, n, T(p.scale), tile, Mg, A + r0 * p.D, p.D, T(1), dC + c0 * p.D, p.D);
        continue;
      }
      // q = |a|^2 + |c|^2 - 2 a.c: dA_i += 2 a_i sum_j W_ij - 2 W C; dC_j += 2 c_j sum_i W_ij - 2 W^T A.
      if (dA) {
        gemm_exact(false, false, n, p.D, Mg, T(-2), tile, Mg, C + c0 * p.D, p.D, T(1), dA + r0 * p.D, p.D);
        parallel_for(n, n * Mg > 16384, [&](int64_t r) {
          T rs = 0;
          for (int64_t j = 0; j < Mg; ++j) rs += tile[r * Mg + j];
          for (int64_t d = 0; d < p.D; ++d) dA[(r0 + r) * p.D + d] += T(2) * rs * A[(r0 + r) * p.D + d];
        });
      }
      if (dC) {
        gemm_exact(true, false, Mg, p.D, n, T(-2), tile, Mg, A + r0 * p.D, p.D, T(1), dC + c0 * p.D, p.D);
        for (int64_t j = 0; j < Mg; ++j) col_sum[j] = 0;
        for (int64_t r = 0; r < n; ++r)
          for (int64_t j = 0; j < Mg; ++j) col_sum[j] += tile[r * Mg + j];
        for (int64_t j = 0; j < Mg; ++j)
          for (int64_t d = 0; d < p.D; ++d) dC[(c0 + j) * p.D + d] += T(2) * col_sum[j] * C[(c0 + j) * p.D + d];
        for (int64_t r = 0; r < n; ++r)
          for (int64_t j = 0; j < Mg; ++j) {
            const T w = dup_w[r * Mg + j];
            if (w == T(0)) continue;
            const T* a = A + (r0 + r) * p.D;
            const T* cj = C + (c0 + j) * p.D;
            for (int64_t d = 0; d < p.D; ++d) dC[(c0 + j) * p.D + d] -= T(2) * w * (a[d] - cj[d]);
          }
      }
    }
    if (p.column_argmax)
      for (int64_t j = 0; j < Mg; ++j) {
        const int64_t i = static_cast<int64_t>(col_best_row[c0 + j]);
        if (i >= 0 && p.row_label[i] == p.col_label[c0 + j]) ++res.column_correct;
      }
  };
  if (threads > 1) {
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t g = 0; g < p.blocks; ++g) {
      const int t = omp_get_thread_num();
      T* mine = t == 0 ? tile : extra + (t - 1) * (tr * Mg + tr * 8);
      run_block(g, mine, t == 0 ? factors : reinterpret_cast<math::RowGradFactors<T>*>(mine + tr * Mg));
    }
  } else {
    for (int64_t g = 0; g < p.blocks; ++g) run_block(g, tile, factors);
  }
  detail::reduce_rows(row_flag, row_loss, p.R, res);
  if (grad && res.used) {  // the mean over used rows
    const T inv = T(1) / static_cast<T>(res.used);
    if (dA) parallel_for(p.R * p.D, p.R * p.D > 65536, [&](int64_t k) { dA[k] *= inv; });
    if (dC && dC != dA) parallel_for(p.M * p.D, p.M * p.D > 65536, [&](int64_t k) { dC[k] *= inv; });
  }
  return res;
}

}  // namespace cpc::cpu
