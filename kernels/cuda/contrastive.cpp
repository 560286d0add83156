#include "kernels/cuda/contrastive.h"

#include <algorithm>
#include <climits>

#include "engine/core/error.h"
#include "kernels/cuda/contrastive_kernels.h"
#include "kernels/cuda/contrastive_sampled.h"
#include "kernels/cuda/cublas_gemm.h"
#include "kernels/cuda/runtime/cuda_check.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/layout.h"

namespace cpc::cuda {

namespace {

// Tile shape: whole blocks batched together when a block's scores fit the budget,
// else row slices of one block (at least one row).
struct TilePlan {
  int64_t rows_per_tile;    // n: rows of each block per tile
  int64_t blocks_per_tile;  // nb
};

TilePlan plan_tiles(int64_t Rg, int64_t Mg, int64_t blocks, int64_t budget) {
  const int64_t per_block = Rg * std::max<int64_t>(Mg, 1);
  if (per_block <= budget) return {Rg, std::clamp<int64_t>(budget / std::max<int64_t>(per_block, 1), 1, blocks)};
  return {std::clamp<int64_t>(budget / std::max<int64_t>(Mg, 1), 1, Rg), 1};
}

}  // namespace

ContrastiveOutcome reduce_and_read_stats(const CudaContext& ctx, const ContrastiveDeviceProblem& p,
                                         const ContrastiveRowState& st, bool column_argmax) {
  const cudaStream_t s = ctx.stream;
  DeviceScratch stats_s = ctx.scratch(sizeof(ContrastiveDeviceStats));
  auto* dstats = stats_s.get<ContrastiveDeviceStats>();
  CPC_CUDA_CHECK(launch_contrastive_stats(p, st, column_argmax, dstats, s));
  ContrastiveDeviceStats hs{};
  CPC_CUDA_CHECK(cudaMemcpyAsync(&hs, dstats, sizeof(hs), cudaMemcpyDeviceToHost, s));
  CPC_CUDA_CHECK(cudaStreamSynchronize(s));
  ContrastiveOutcome out;
  out.used = static_cast<int64_t>(hs.used);
  out.skipped = static_cast<int64_t>(hs.skipped);
  out.correct = static_cast<int64_t>(hs.correct);
  out.column_correct = static_cast<int64_t>(hs.column_correct);
  out.loss = out.used ? hs.loss_sum / static_cast<double>(out.used) : 0.0;
  return out;
}

ContrastiveOutcome contrastive_forward(const CudaContext& ctx, HostStaging& staging, const float* A, const float* C,
                                       int64_t R, int64_t M, int64_t D, const ContrastiveSpec& hp, float* dA,
                                       float* dC, int64_t tile_elements) {
  if (hp.row_candidates) return contrastive_sampled(ctx, staging, A, C, R, M, D, hp, dA, dC);
  const cudaStream_t s = ctx.stream;
  const int64_t Rg = R / hp.blocks, Mg = M / hp.blocks;
  CPC_CHECK(R <= INT_MAX && M <= INT_MAX, "contrastive_loss on cuda: ", R, " anchors and ", M,
            " candidates exceed the int32 index range");
  const bool grad = dA || dC;

  // Index arrays to the device: one buffer, staged through pinned memory.
  const int64_t nnz = hp.excl_offsets ? hp.excl_offsets[R] : 0;
  const bool groups = hp.row_group != nullptr;
  const int64_t n_idx = R + M + (groups ? 2 * R + M : 0) + (hp.excl_offsets ? R + 1 + nnz : 0);
  DeviceScratch idx = ctx.scratch(sizeof(int32_t) * static_cast<size_t>(n_idx));
  int32_t* cursor = idx.get<int32_t>();
  auto upload = [&](const int32_t* host, int64_t n) -> const int32_t* {
    int32_t* dst = cursor;
    staging.copy_to_device(dst, host, sizeof(int32_t) * static_cast<size_t>(n), s);
    cursor += n;
    return dst;
  };
  ContrastiveDeviceProblem p;
  p.A = A, p.C = C, p.R = R, p.M = M, p.D = D, p.Rg = Rg, p.Mg = Mg;
  p.scale = hp.scale, p.neg_l2 = hp.neg_l2, p.l2_eps = hp.l2_eps;
  p.form = hp.logsumexp_positives ? math::MultiPositiveForm::logsumexp : math::MultiPositiveForm::supcon;
  p.row_label = upload(hp.row_label, R);
  p.col_label = upload(hp.col_label, M);
  if (groups) {
    p.row_group = upload(hp.row_group, R);
    p.col_group = upload(hp.col_group, M);
    p.row_keep = upload(hp.row_keep, R);
  }
  if (hp.excl_offsets) {
    p.excl_offsets = upload(hp.excl_offsets, R + 1);
    p.excl_cols = nnz ? upload(hp.excl_cols, nnz) : nullptr;
    if (!nnz) p.excl_offsets = nullptr, p.excl_cols = nullptr;  // nothing excluded
  }

  // Workspace: the score tile (and neg_l2's second tile), per-row and per-column state.
  const TilePlan plan = plan_tiles(Rg, Mg, hp.blocks, std::max<int64_t>(tile_elements, 1));
  const int64_t tile_rows = plan.rows_per_tile * plan.blocks_per_tile, tile_cap = tile_rows * Mg;
  DeviceScratch tile_s = ctx.scratch(sizeof(float) * static_cast<size_t>(tile_cap));
  DeviceScratch dup_s = ctx.scratch(hp.neg_l2 ? sizeof(float) * static_cast<size_t>(tile_cap) : 0);
  DeviceScratch rows_s = ctx.scratch(sizeof(float) * static_cast<size_t>(2 * R) +
                                     sizeof(math::RowGradFactors<float>) * static_cast<size_t>(tile_rows));
  DeviceScratch norms_s = ctx.scratch(hp.neg_l2 ? sizeof(float) * static_cast<size_t>(R + M) : 0);
  DeviceScratch cols_s = ctx.scratch(hp.column_argmax ? 2 * sizeof(float) * static_cast<size_t>(M) : 0);
  float* tile = tile_s.get<float>();
  float* dup_w = dup_s.get<float>();
  ContrastiveRowState st;
  st.row_loss = rows_s.get<float>();
  st.row_flag = reinterpret_cast<int32_t*>(st.row_loss + R);
  st.factors = reinterpret_cast<math::RowGradFactors<float>*>(st.row_flag + R);
  if (hp.column_argmax) {
    st.col_best = cols_s.get<float>();
    st.col_best_row = reinterpret_cast<int32_t*>(st.col_best + M);
    // -1: any probability (>= 0) of a used row beats it; no row yet.
    CPC_CUDA_CHECK(launch_fill(st.col_best, M, -1.f, s));
    CPC_CUDA_CHECK(launch_fill_int(st.col_best_row, M, -1, s));
  }
  if (hp.neg_l2) {
    float* a_norm = norms_s.get<float>();
    CPC_CUDA_CHECK(launch_squared_norms(A, R, D, a_norm, s));
    CPC_CUDA_CHECK(launch_squared_norms(C, M, D, a_norm + R, s));
    p.a_norm = a_norm, p.c_norm = a_norm + R;
  }
  if (dA) CPC_CUDA_CHECK(cudaMemsetAsync(dA, 0, sizeof(float) * static_cast<size_t>(R * D), s));
  if (dC && dC != dA) CPC_CUDA_CHECK(cudaMemsetAsync(dC, 0, sizeof(float) * static_cast<size_t>(M * D), s));

  for (int64_t g0 = 0; g0 < hp.blocks; g0 += plan.blocks_per_tile) {
    for (int64_t q0 = 0; q0 < Rg; q0 += plan.rows_per_tile) {
      ContrastiveTile t;
      t.g0 = g0, t.nb = std::min(plan.blocks_per_tile, hp.blocks - g0);
      t.q0 = q0, t.n = std::min(plan.rows_per_tile, Rg - q0);
      // Scores: tile_b (n, Mg) = alpha A_b (n, D) . C_b^T for each block b of the tile.
      RowMajorGemm sc;
      sc.trans_b = true, sc.m = t.n, sc.n = Mg, sc.k = D, sc.alpha = hp.neg_l2 ? 1.f : hp.scale;
      sc.a = A + (g0 * Rg + q0) * D, sc.lda = D, sc.stride_a = Rg * D;
      sc.b = C + g0 * Mg * D, sc.ldb = D, sc.stride_b = Mg * D;
      sc.c = tile, sc.ldc = Mg, sc.stride_c = t.n * Mg, sc.batch = t.nb;
      gemm(ctx, sc, "contrastive_loss scores");
      if (hp.neg_l2) CPC_CUDA_CHECK(launch_l2_scores(p, t, tile, s));
      CPC_CUDA_CHECK(launch_row_pass(p, t, tile, dup_w, st, s));
      if (hp.column_argmax) CPC_CUDA_CHECK(launch_column_argmax(p, t, tile, st, s));
      if (!grad) continue;
      CPC_CUDA_CHECK(launch_score_grad(p, t, tile, dup_w, st, s));
      // dot: dA_b += scale W_b C_b, dC_b += scale W_b^T A_b; neg_l2 (W = d/dq): the
      // -2 a.c part of q here, the norm and near-duplicate parts in the fix-ups.
      const float alpha = hp.neg_l2 ? -2.f : hp.scale;
      if (dA) {
        RowMajorGemm g;
        g.m = t.n, g.n = D, g.k = Mg, g.alpha = alpha, g.beta = 1.f;
        g.a = tile, g.lda = Mg, g.stride_a = t.n * Mg;
        g.b = C + g0 * Mg * D, g.ldb = D, g.stride_b = Mg * D;
        g.c = dA + (g0 * Rg + q0) * D, g.ldc = D, g.stride_c = Rg * D, g.batch = t.nb;
        gemm(ctx, g, "contrastive_loss anchor gradient");
        if (hp.neg_l2) CPC_CUDA_CHECK(launch_l2_row_fixup(p, t, tile, dup_w, dA, s));
      }
      if (dC) {
        RowMajorGemm g;
        g.trans_a = true, g.m = Mg, g.n = D, g.k = t.n, g.alpha = alpha, g.beta = 1.f;
        g.a = tile, g.lda = Mg, g.stride_a = t.n * Mg;
        g.b = A + (g0 * Rg + q0) * D, g.ldb = D, g.stride_b = Rg * D;
        g.c = dC + g0 * Mg * D, g.ldc = D, g.stride_c = Mg * D, g.batch = t.nb;
        gemm(ctx, g, "contrastive_loss candidate gradient");
        if (hp.neg_l2) CPC_CUDA_CHECK(launch_l2_col_fixup(p, t, tile, dup_w, dC, s));
      }
    }
  }

  const ContrastiveOutcome out = reduce_and_read_stats(ctx, p, st, hp.column_argmax);
  if (grad && out.used) {  // the mean over used rows, as the CPU: one float factor
    const float inv = 1.f / static_cast<float>(out.used);
    if (dA) CPC_CUDA_CHECK(launch_scale(dA, R * D, inv, s));
    if (dC && dC != dA) CPC_CUDA_CHECK(launch_scale(dC, M * D, inv, s));
  }
  return out;
}

}  // namespace cpc::cuda
