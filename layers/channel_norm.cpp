#include "layers/channel_norm.h"

#include <vector>

#include "engine/ops/ops.h"

namespace cpc {

ChannelNorm::ChannelNorm(int64_t c, float eps_) : eps(eps_) {
  weight = register_parameter("weight", Tensor::from_vector({c}, std::vector<float>(c, 1.f)));
  bias = register_parameter("bias", Tensor::zeros({c}));
}

Var* ChannelNorm::forward(Var* x) {
  if (!channels_last) return ops::channel_norm(x, weight, bias, eps);
  // (B, L, C) is (B * L, C, 1) to the op: each time step normalised over its channels.
  const Shape s = x->value.shape();
  CPC_CHECK(s.rank() == 3, "ChannelNorm: channels-last input ", s, " expected (B, L, C)");
  return ops::reshape(ops::channel_norm(ops::reshape(x, {s[0] * s[1], s[2], 1}), weight, bias, eps), s);
}

}  // namespace cpc
