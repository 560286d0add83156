#include "layers/conv1d.h"

#include <cmath>

#include "engine/core/autograd.h"
#include "engine/core/backend.h"
#include "engine/ops/ops.h"

namespace cpc {

Conv1d::Conv1d(int64_t in, int64_t out, int64_t kernel, Conv1dGeometry g, bool has_bias, Generator& gen)
    : geometry(g) {
  CPC_CHECK(in >= 1 && out >= 1 && kernel >= 1, "Conv1d: channels ", in, " -> ", out, " and kernel ", kernel,
            " must be >= 1");
  const float bound = 1.f / std::sqrt(static_cast<float>(in * kernel));  // PyTorch's default init
  weight = register_parameter("weight", gen.uniform_tensor({out, in, kernel}, -bound, bound));
  if (has_bias) bias = register_parameter("bias", gen.uniform_tensor({out}, -bound, bound));
}

Var* Conv1d::forward(Var* x) { return ops::conv1d(x, weight, bias, geometry); }

bool Conv1d::takes_rounded_input() const {
  const Tensor& w = weight->value;
  Conv1dDims d{0, w.size(1), 0, w.size(0), w.size(2), 0, geometry.stride, geometry.padding, geometry.dilation};
  d.precision = Tape::current().precision(), d.channels_last = geometry.channels_last;
  return d.bf16() && backend(w.device()).conv1d_rounded_input(d);
}

}  // namespace cpc
