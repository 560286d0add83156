#pragma once
// Per-element optimizer updates, written to match torch.optim (1.13, single-tensor
// path) operation by operation so that float rounding agrees as closely as possible.
#include <cmath>
#include <cstdint>

#include "kernels/common/host_device.h"

namespace cpc::math {

struct AdamScalars {
  float lr, beta1, beta2, eps, weight_decay;
  float step_size;        // lr / (1 - beta1^step), computed in double on the host
  float bias_corr2_sqrt;  // sqrt(1 - beta2^step)
  bool decoupled, amsgrad;
};

// Host side: one step's scalars, the bias corrections in double (as torch.optim).
inline AdamScalars adam_scalars(float lr, float beta1, float beta2, float eps, float weight_decay, bool decoupled,
                                bool amsgrad, int64_t step) {
  AdamScalars s{lr, beta1, beta2, eps, weight_decay, 0.f, 0.f, decoupled, amsgrad};
  s.step_size = static_cast<float>(lr / (1.0 - std::pow(static_cast<double>(beta1), step)));
  s.bias_corr2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(static_cast<double>(beta2), step)));
  return s;
}

CPC_HD void adam_element(float& p, float g, float& m, float& v, float& vmax, const AdamScalars& s) {
  if (s.decoupled) {
    p = p * (1.f - s.lr * s.weight_decay);
  } else if (s.weight_decay != 0.f) {
    g = g + s.weight_decay * p;
  }
  m = m * s.beta1 + (1.f - s.beta1) * g;
  v = v * s.beta2 + (1.f - s.beta2) * g * g;
  float denom;
  if (s.amsgrad) {
    vmax = vmax > v ? vmax : v;
    denom = sqrt_(vmax) / s.bias_corr2_sqrt + s.eps;
  } else {
    denom = sqrt_(v) / s.bias_corr2_sqrt + s.eps;
  }
  p = p + (-s.step_size) * (m / denom);
}

struct SgdScalars {
  float lr, momentum, dampening, weight_decay;
  bool nesterov, first_step;
};

CPC_HD void sgd_element(float& p, float g, float& buf, const SgdScalars& s) {
  float d = g;
  if (s.weight_decay != 0.f) d = d + s.weight_decay * p;
  if (s.momentum != 0.f) {
    buf = s.first_step ? d : buf * s.momentum + (1.f - s.dampening) * d;
    d = s.nesterov ? d + s.momentum * buf : buf;
  }
  p = p + (-s.lr) * d;
}

}  // namespace cpc::math
