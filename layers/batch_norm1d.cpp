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

Var* BatchNorm1d::forward(Var* x, bool relu, bool round) {
  const bool update = is_training();
  if (update) {  // on the tensor's device, without a host round trip
    if (!one_.defined() || one_.device() != num_batches_tracked->device())
      one_ = Tensor::from_vector({}, {1.f}).to(num_batches_tracked->device());
    backend(num_batches_tracked->device()).axpy(1.f, one_, *num_batches_tracked);
  }
  if (!channels_last)
    return ops::batch_norm(x, weight, bias, *running_mean, *running_var, update, momentum, eps, sync, relu, round);
  // (B, L, C) is (B * L, C, 1) to the op: the same statistics per channel.
  const Shape s = x->value.shape();
  CPC_CHECK(s.rank() == 3, "BatchNorm1d: channels-last input ", s, " expected (B, L, C)");
  Var* y = ops::batch_norm(ops::reshape(x, {s[0] * s[1], s[2], 1}), weight, bias, *running_mean, *running_var, update,
                           momentum, eps, sync, relu, round);
  return ops::reshape(y, s);
}

}  // namespace cpc
