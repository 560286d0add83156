#pragma once
// Kernels of the fused contrastive loss on the GPU (contrastive_kernels.cu); the
// orchestration (GEMMs, tiling, workspace) is contrastive.cpp. The row math is
// kernels/common/contrastive_row.h, the functions the CPU backend runs.
//
// A tile covers `nb` consecutive blocks and rows [q0, q0 + n) of each: its local row
// rho = b * n + r is anchor i = (g0 + b) * Rg + q0 + r, scored against the Mg columns
// of its block, c0 = (g0 + b) * Mg. The score tile is (nb * n, Mg), row-major.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/common/contrastive_row.h"

namespace cpc::cuda {

struct ContrastiveDeviceProblem {
  const float* A = nullptr;  // (R, D)
  const float* C = nullptr;  // (M, D)
  int64_t R = 0, M = 0, D = 0, Rg = 0, Mg = 0;
  float scale = 1.f;
  bool neg_l2 = false;
  float l2_eps = 1e-12f;
  math::MultiPositiveForm form = math::MultiPositiveForm::supcon;
  // Device copies of the index arrays (null when absent).
  const int32_t* row_label = nullptr;
  const int32_t* col_label = nullptr;
  const int32_t* row_group = nullptr;
  const int32_t* col_group = nullptr;
  const int32_t* row_keep = nullptr;
  const int32_t* excl_offsets = nullptr;
  const int32_t* excl_cols = nullptr;
  const float* a_norm = nullptr;  // neg_l2: squared row norms of A and C
  const float* c_norm = nullptr;
};

struct ContrastiveTile {
  int64_t g0 = 0, nb = 1, q0 = 0, n = 0;
  CPC_HD int64_t rows() const { return nb * n; }
};

// Per-row results, indexed by anchor i (R entries each).
struct ContrastiveRowState {
  float* row_loss = nullptr;
  int32_t* row_flag = nullptr;                     // 0 skipped, 1 used, 2 used and correct
  math::RowGradFactors<float>* factors = nullptr;  // per local tile row
  float* col_best = nullptr;                       // column_argmax: best row probability per column (M), init -1
  int32_t* col_best_row = nullptr;                 // and its row (M), init -1
};

struct ContrastiveDeviceStats {
  double loss_sum;
  unsigned long long used, skipped, correct, column_correct;
};

// out[i] = ||X[i]||^2 for the n rows of X (n, D).
cudaError_t launch_squared_norms(const float* X, int64_t n, int64_t D, float* out, cudaStream_t s);
// y[i] = v for n int32.
cudaError_t launch_fill_int(int32_t* y, int64_t n, int32_t v, cudaStream_t s);
// neg_l2: the tile holds a.c (alpha 1); it becomes -scale * sqrt(||a - c||^2 + eps),
// near-duplicate pairs from explicit differences (as the CPU's score_tile).
cudaError_t launch_l2_scores(const ContrastiveDeviceProblem& p, const ContrastiveTile& t, float* tile, cudaStream_t s);
// Pass A, one block per tile row: statistics, loss, flags, gradient factors; the tile
// keeps e = exp(s - max) (-1 marks invalid candidates), dup_w (neg_l2) keeps s.
cudaError_t launch_row_pass(const ContrastiveDeviceProblem& p, const ContrastiveTile& t, float* tile, float* dup_w,
                            const ContrastiveRowState& st, cudaStream_t s);
// Seed 004's column argmax: per column, the best row of this tile (rows in order).
cudaError_t launch_column_argmax(const ContrastiveDeviceProblem& p, const ContrastiveTile& t, const float* tile,
                                 const ContrastiveRowState& st, cudaStream_t s);
// Pass B: the tile becomes d(row loss)/d(score) (neg_l2: d/dq, near-duplicate pairs'
// weights moved to dup_w for the explicit-difference fix-ups).
cudaError_t launch_score_grad(const ContrastiveDeviceProblem& p, const ContrastiveTile& t, float* tile, float* dup_w,
                              const ContrastiveRowState& st, cudaStream_t s);
// neg_l2 after the GEMMs: dA_i += 2 a_i sum_j W_ij + 2 sum_dup w (a_i - c_j) and
// dC_j += 2 c_j sum_i W_ij - 2 sum_dup w (a_i - c_j).
cudaError_t launch_l2_row_fixup(const ContrastiveDeviceProblem& p, const ContrastiveTile& t, const float* tile,
                                const float* dup_w, float* dA, cudaStream_t s);
cudaError_t launch_l2_col_fixup(const ContrastiveDeviceProblem& p, const ContrastiveTile& t, const float* tile,
                                const float* dup_w, float* dC, cudaStream_t s);
// Loss sum (double) and counts over all rows, and the column-argmax count.
cudaError_t launch_contrastive_stats(const ContrastiveDeviceProblem& p, const ContrastiveRowState& st,
                                     bool column_argmax, ContrastiveDeviceStats* out, cudaStream_t s);

}  // namespace cpc::cuda
