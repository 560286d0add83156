#include "layers/batch_norm1d.h"

#include <vector>

#include "engine/core/backend.h"
#include "engine/ops/ops.h"

namespace cpc {

BatchNorm1d::BatchNorm1d(int64_t c, float eps_, float momentum_) : eps(eps_), momentum(momentum_) {
  weight = register_parameter("weight", Tensor::from_vector({c}, std::vector<float>(c, 1.f)));
  bias = register_parameter("bias", Tensor::zeros({c}));
  running_mean = register_buffer("running_mean", Tensor::zeros({c}));
  running_var = register_buffer("running_var", Tensor::from_vector({c}, std::vector<float>(c, 1.f)));
  num_batches_tracked = register_buffer("num_batches_tracked", Tensor::zeros({}));
}

Var* BatchNorm1d::forward(Var* x) {
  const bool update = is_training();
  if (update) {  // on the tensor's device, without a host round trip
    if (!one_.defined() || one_.device() != num_batches_tracked->device())
      one_ = Tensor::from_vector({}, {1.f}).to(num_batches_tracked->device());
    backend(num_batches_tracked->device()).axpy(1.f, one_, *num_batches_tracked);
  }
  return ops::batch_norm(x, weight, bias, *running_mean, *running_var, update, momentum, eps, sync);
}

}  // namespace cpc
