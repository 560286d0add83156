#include "kernels/cuda/contrastive_sampled_kernels.h"

namespace cpc::cuda {

namespace {

constexpr int kThreads = 128;

__global__ void sampled_rows_kernel(SampledDeviceProblem p, bool grad, float* score, float* row_loss,
                                    int32_t* row_flag) {
  const int64_t i = blockIdx.x;
  const float* a = p.A + i * p.D;
  const int32_t* ci = p.cand + i * p.S;
  float* s = score + i * p.S;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  for (int64_t j = warp; j < p.S; j += warps) {
    const float* c = p.C + static_cast<int64_t>(ci[j]) * p.D;
    float acc = 0.f;
    for (int64_t d = lane; d < p.D; d += 32) acc += a[d] * c[d];
    for (int off = 16; off > 0; off >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, off);
    if (lane == 0) s[j] = p.scale * acc;
  }
  __syncthreads();
  if (threadIdx.x != 0) return;
  // The row's passes, serially in one thread: S is small (the sampled candidates).
  const int32_t label = p.row_label[i];
  math::RowPass1<float> p1;
  for (int64_t j = 0; j < p.S; ++j) p1.push(s[j], label == p.col_label[ci[j]]);
  row_flag[i] = p1.used() ? (p1.best_is_pos ? 2 : 1) : 0;
  row_loss[i] = 0.f;
  if (!p1.used()) {
    for (int64_t j = 0; j < p.S; ++j) s[j] = 0.f;
    return;
  }
  float sum_neg = 0.f, sum_pos = 0.f;
  for (int64_t j = 0; j < p.S; ++j) {
    const bool pos = label == p.col_label[ci[j]];
    s[j] = math::row_exp(s[j], pos, p1);
    (pos ? sum_pos : sum_neg) += s[j];
  }
  const math::RowStats<float> st = math::row_stats(p1, sum_neg, sum_pos, p.form);
  row_loss[i] = st.loss;
  if (!grad) return;
  const math::RowGradFactors<float> f = math::row_grad_factors(p1, st, p.form);
  for (int64_t j = 0; j < p.S; ++j) s[j] = math::row_score_grad(s[j], label == p.col_label[ci[j]], f);
}

__global__ void sampled_anchor_grad_kernel(SampledDeviceProblem p, const float* score, float g, float* dA) {
  const int64_t i = blockIdx.x;
  for (int64_t d = threadIdx.x; d < p.D; d += blockDim.x) {
    float acc = 0.f;
    for (int64_t j = 0; j < p.S; ++j)
      acc += score[i * p.S + j] * p.C[static_cast<int64_t>(p.cand[i * p.S + j]) * p.D + d];
    dA[i * p.D + d] += g * acc;
  }
}

__global__ void sampled_candidate_grad_kernel(SampledDeviceProblem p, const float* score, const int32_t* col_first,
                                              const int32_t* col_entry, float g, float* dC) {
  const int64_t c = blockIdx.x;
  const int32_t first = col_first[c], end = col_first[c + 1];
  if (first == end) return;
  for (int64_t d = threadIdx.x; d < p.D; d += blockDim.x) {
    float acc = 0.f;
    for (int32_t k = first; k < end; ++k) {
      const int64_t e = col_entry[k];
      acc += score[e] * p.A[(e / p.S) * p.D + d];
    }
    dC[c * p.D + d] += g * acc;
  }
}

}  // namespace

cudaError_t launch_sampled_rows(const SampledDeviceProblem& p, bool grad, float* score, float* row_loss,
                                int32_t* row_flag, cudaStream_t s) {
  if (p.R == 0) return cudaSuccess;
  sampled_rows_kernel<<<static_cast<unsigned>(p.R), kThreads, 0, s>>>(p, grad, score, row_loss, row_flag);
  return cudaGetLastError();
}

cudaError_t launch_sampled_anchor_grad(const SampledDeviceProblem& p, const float* score, float g, float* dA,
                                       cudaStream_t s) {
  if (p.R == 0 || p.D == 0) return cudaSuccess;
  sampled_anchor_grad_kernel<<<static_cast<unsigned>(p.R), kThreads, 0, s>>>(p, score, g, dA);
  return cudaGetLastError();
}

cudaError_t launch_sampled_candidate_grad(const SampledDeviceProblem& p, const float* score, const int32_t* col_first,
                                          const int32_t* col_entry, float g, float* dC, cudaStream_t s) {
  if (p.M == 0 || p.D == 0) return cudaSuccess;
  sampled_candidate_grad_kernel<<<static_cast<unsigned>(p.M), kThreads, 0, s>>>(p, score, col_first, col_entry, g,
                                                                                 dC);
  return cudaGetLastError();
}

}  // namespace cpc::cuda
