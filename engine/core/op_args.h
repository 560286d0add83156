#pragma once
// The argument structs of the Backend ops that take more than tensors (GEMM, Adam, the
// fused contrastive loss), shared by the front and every backend's kernels. The plain
// dims structs the CUDA sources include are op_dims.h.
#include <cstdint>

#include "engine/core/op_dims.h"
#include "engine/core/tensor.h"

namespace cpc {

struct GemmArgs {  // C = alpha * op(A) * op(B) + beta * C, row-major, device pointers
  bool trans_a = false, trans_b = false;
  int64_t m = 0, n = 0, k = 0;
  float alpha = 1.f, beta = 0.f;
  const float* a = nullptr;
  int64_t lda = 0;
  const float* b = nullptr;
  int64_t ldb = 0;
  float* c = nullptr;
  int64_t ldc = 0;
  Precision precision = Precision::fp32;  // bf16: A and B rounded to bfloat16, fp32 accumulation
};

// What a convolution's forward leaves for its own backward, as cuDNN's reserve space:
// the backend sizes it (Backend::conv1d_saved_bytes) and alone reads it. On the CPU's
// GEMM path: the weights in the GEMMs' order and, under bf16, the rounded input (so
// backward neither transposes nor rounds them again); backward_data adds the rounded dy
// for backward_weights and sets dy_ready.
struct Conv1dSaved {
  Tensor space;  // raw bytes on the op's device; undefined when nothing is saved
  bool dy_ready = false;
};

struct AdamHyper {
  float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f, weight_decay = 0.f;
  bool decoupled = false;  // AdamW: decay the weights, not the gradient
  bool amsgrad = false;
  int64_t step = 1;  // 1-based, for bias correction
};

// One parameter's Adam tensors; max_exp_avg_sq is undefined without amsgrad.
struct AdamSlots {
  Tensor param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq;
};

// A fused contrastive cross-entropy problem (see ops::contrastive_loss). Index
// arrays are host memory owned by the caller for the duration of the call.
struct ContrastiveSpec {
  int64_t blocks = 1;  // rows and columns in equal blocks; candidates only within a row's block
  float scale = 1.f;   // score = scale * a.c, or -scale * ||a - c|| with neg_l2
  bool neg_l2 = false;
  float l2_eps = 1e-12f;
  bool logsumexp_positives = false;    // multi-positive form: false = SupCon mean, true = seed 003's logsumexp
  const int32_t* row_label = nullptr;  // positive iff row_label[i] == col_label[j]
  const int32_t* col_label = nullptr;
  const int32_t* row_group = nullptr;  // excluded iff row_group[i] == col_group[j] && j != row_keep[i]
  const int32_t* col_group = nullptr;
  const int32_t* row_keep = nullptr;
  const int32_t* excl_offsets = nullptr;  // excluded pairs, CSR over rows, ascending columns
  const int32_t* excl_cols = nullptr;
  bool column_argmax = false;
  // Sampled candidates: row i is scored against exactly the columns
  // row_candidates[i * candidates_per_row + j] (repeats count each time); blocks,
  // groups, exclusions, neg_l2 and column_argmax do not combine with it.
  const int32_t* row_candidates = nullptr;
  int64_t candidates_per_row = 0;
};

// A BatchNorm forward that ran with relu: its output y and the BatchNorm's beta. Its
// backward needs the ReLU's mask: a backend reads it from y, or recomputes it from x
// with beta as the forward computed y (the CPU: two fewer passes over memory).
struct BatchNormRelu {
  Tensor y, beta;
};

struct ContrastiveStats {
  double loss = 0;
  int64_t used = 0, skipped = 0, correct = 0, column_correct = 0;
};

}  // namespace cpc
