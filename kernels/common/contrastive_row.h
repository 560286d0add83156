#pragma once
// Per-row math of the fused contrastive losses (InfoNCE, NT-Xent, SupCon), shared by
// the CPU backend and the CUDA kernel. A row's scores arrive one by one (one score
// tile at a time); an online logsumexp keeps a running max and a rescaled sum, so no
// row of the score matrix is ever stored whole, and nothing overflows at any
// temperature: every exp() argument is <= 0.
#include "kernels/common/hd.h"

namespace cpc::math {

template <class T>
CPC_HD T log_(T x);
template <>
CPC_HD float log_(float x) {
  return logf(x);
}
template <>
CPC_HD double log_(double x) {
  return log(x);
}

// Running logsumexp: value() = log(sum exp(x)) over the pushed x; -inf when empty.
template <class T>
struct OnlineLse {
  T max = -INFINITY;
  T sum = 0;
  CPC_HD void push(T x) {
    if (x > max) {
      sum = sum * exp_(max - x) + T(1);  // exp(-inf) = 0 on the first push
      max = x;
    } else {
      sum += exp_(x - max);
    }
  }
  CPC_HD T value() const { return sum > T(0) ? max + log_(sum) : T(-INFINITY); }
};

// Everything the loss, its gradient and the accuracy need from one row.
template <class T>
struct ContrastiveRow {
  OnlineLse<T> all;  // over valid candidates
  OnlineLse<T> pos;  // over positives
  T pos_sum = 0;     // sum of positive scores (SupCon's mean)
  int n_pos = 0;
  int n_valid = 0;
  T best = -INFINITY;
  bool best_is_pos = false;

  CPC_HD void push(T s, bool positive) {
    ++n_valid;
    all.push(s);
    if (s > best) best = s, best_is_pos = positive;  // first maximum wins ties
    if (positive) {
      ++n_pos;
      pos.push(s);
      pos_sum += s;
    }
  }
  // A row without positives (or without candidates) is skipped and counted.
  CPC_HD bool used() const { return n_pos > 0; }
};

enum class MultiPositiveForm : int {
  supcon = 0,     // lse(all) - mean(positives)       (Khosla et al., L_out)
  logsumexp = 1,  // lse(all) - lse(positives)         (seed 003)
};

template <class T>
CPC_HD T contrastive_row_loss(const ContrastiveRow<T>& r, MultiPositiveForm form) {
  const T lse = r.all.value();
  return form == MultiPositiveForm::supcon ? lse - r.pos_sum / T(r.n_pos) : lse - r.pos.value();
}

// d(row loss)/d(score) for one candidate: softmax over all minus the target weight
// (1/n_pos for SupCon, the softmax over positives for the logsumexp form).
template <class T>
CPC_HD T contrastive_score_grad(T s, bool positive, T lse_all, T lse_pos, int n_pos, MultiPositiveForm form) {
  T g = exp_(s - lse_all);
  if (positive) g -= form == MultiPositiveForm::supcon ? T(1) / T(n_pos) : exp_(s - lse_pos);
  return g;
}

}  // namespace cpc::math
