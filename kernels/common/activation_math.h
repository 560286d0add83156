#pragma once
// Pointwise activation formulas and their derivatives (PyTorch's definitions).
#include "kernels/common/host_device.h"

namespace cpc::math {

template <class T>
CPC_HD T sigmoid(T x) {
  return T(1) / (T(1) + exp_(-x));
}

// NaN stays NaN (as torch.relu): a diverged activation must not turn into a finite 0.
template <class T>
CPC_HD T relu(T x) {
  return x > T(0) || x != x ? x : T(0);
}

// Gradient of relu from its output: PyTorch passes no gradient at exactly 0.
template <class T>
CPC_HD T relu_grad_from_output(T y, T dy) {
  return y > T(0) ? dy : T(0);
}

// Exact GELU (approximate='none'): x * Phi(x).
template <class T>
CPC_HD T gelu(T x) {
  return T(0.5) * x * (T(1) + erf_(x * T(0.70710678118654752440)));
}

template <class T>
CPC_HD T gelu_grad(T x) {
  const T cdf = T(0.5) * (T(1) + erf_(x * T(0.70710678118654752440)));
  const T pdf = exp_(T(-0.5) * x * x) * T(0.39894228040143267794);
  return cdf + x * pdf;
}

}  // namespace cpc::math
