#pragma once
// Per-row math of the fused contrastive losses (InfoNCE, NT-Xent, SupCon), shared by
// the CPU backend and the CUDA kernel. A row's scores are reduced in two passes over
// its tile: (1) maxima and counts, (2) exponentials relative to those maxima, so
// every exp() argument is <= 0 and nothing overflows at any temperature; then the
// loss and d(loss)/d(score) follow from the row's statistics.
#include "kernels/common/host_device.h"

namespace cpc::math {

CPC_HD float log_(float x) { return logf(x); }
CPC_HD double log_(double x) { return log(x); }

enum class MultiPositiveForm : int {
  supcon = 0,     // lse(all) - mean(positive scores)   (Khosla et al., L_out)
  logsumexp = 1,  // lse(all) - lse(positive scores)    (seed 003)
};

// Pass 1 over a row's valid candidates.
template <class T>
struct RowPass1 {
  T max_all = -INFINITY, max_pos = -INFINITY, pos_sum = 0;
  int n_valid = 0, n_pos = 0;
  bool best_is_pos = false;  // the first maximum is a positive
  CPC_HD void push(T s, bool positive) {
    ++n_valid;
    if (s > max_all) max_all = s, best_is_pos = positive;
    if (positive) {
      ++n_pos;
      pos_sum += s;
      if (s > max_pos) max_pos = s;
    }
  }
  // A row without positives (or without candidates) is skipped and counted.
  CPC_HD bool used() const { return n_pos > 0; }
};

// Pass 2 value stored for candidate j: exp(s - max_pos) for positives (their own
// reference, so the logsumexp form never underflows), exp(s - max_all) otherwise.
template <class T>
CPC_HD T row_exp(T s, bool positive, const RowPass1<T>& p1) {
  return exp_(s - (positive ? p1.max_pos : p1.max_all));
}

// Row statistics after pass 2: sum_neg = sum of exp(s - max_all) over negatives,
// sum_pos = sum of exp(s - max_pos) over positives.
template <class T>
struct RowStats {
  T lse_all, lse_pos;  // logsumexp over all valid / over positives
  T loss;
};

template <class T>
CPC_HD RowStats<T> row_stats(const RowPass1<T>& p1, T sum_neg, T sum_pos, MultiPositiveForm form) {
  RowStats<T> r;
  // All candidates: negatives relative to max_all plus positives rescaled from max_pos.
  const T sum_all = sum_neg + sum_pos * exp_(p1.max_pos - p1.max_all);
  r.lse_all = p1.max_all + log_(sum_all);
  r.lse_pos = p1.max_pos + log_(sum_pos);
  r.loss = form == MultiPositiveForm::supcon ? r.lse_all - p1.pos_sum / T(p1.n_pos) : r.lse_all - r.lse_pos;
  return r;
}

// Per-row constants turning a stored pass-2 value e into probabilities.
template <class T>
struct RowGradFactors {
  T neg;         // exp(max_all - lse_all): softmax of a negative = e * neg
  T pos_all;     // exp(max_pos - lse_all): softmax of a positive = e * pos_all
  T pos_target;  // exp(max_pos - lse_pos): softmax among positives = e * pos_target
  T inv_n_pos;
  bool supcon;
};

template <class T>
CPC_HD RowGradFactors<T> row_grad_factors(const RowPass1<T>& p1, const RowStats<T>& st, MultiPositiveForm form) {
  return {exp_(p1.max_all - st.lse_all), exp_(p1.max_pos - st.lse_all), exp_(p1.max_pos - st.lse_pos),
          T(1) / T(p1.n_pos), form == MultiPositiveForm::supcon};
}

// d(row loss)/d(s_j): softmax over all minus the target weight (1/n_pos for SupCon,
// the softmax over positives for the logsumexp form).
template <class T>
CPC_HD T row_score_grad(T e, bool positive, const RowGradFactors<T>& f) {
  if (!positive) return e * f.neg;
  return e * f.pos_all - (f.supcon ? f.inv_n_pos : e * f.pos_target);
}

// Row-normalised probability (seed 004's softmax over dim 1, for its column argmax).
template <class T>
CPC_HD T row_probability(T e, bool positive, const RowGradFactors<T>& f) {
  return e * (positive ? f.pos_all : f.neg);
}

}  // namespace cpc::math
