#include "layers/channel_norm.h"

#include <vector>

#include "engine/ops/ops.h"

namespace cpc {

ChannelNorm::ChannelNorm(int64_t c, float eps_) : eps(eps_) {
  weight = register_parameter("weight", Tensor::from_vector({c}, std::vector<float>(c, 1.f)));
  bias = register_parameter("bias", Tensor::zeros({c}));
}

Var* ChannelNorm::forward(Var* x) { return ops::channel_norm(x, weight, bias, eps); }

}  // namespace cpc
