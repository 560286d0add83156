#include "layers/linear.h"

#include <cmath>

#include "engine/ops/ops.h"

namespace cpc {

Linear::Linear(int64_t in, int64_t out, bool has_bias, Generator& gen) {
  const float bound = 1.f / std::sqrt(static_cast<float>(in));  // PyTorch's default init
  weight = register_parameter("weight", gen.uniform_tensor({out, in}, -bound, bound));
  if (has_bias) bias = register_parameter("bias", gen.uniform_tensor({out}, -bound, bound));
}

Var* Linear::forward(Var* x) { return ops::linear(x, weight, bias); }

}  // namespace cpc
