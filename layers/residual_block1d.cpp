#include "layers/residual_block1d.h"

#include "engine/ops/ops.h"

namespace cpc {

ResidualBlock1d::ResidualBlock1d(int64_t in, int64_t out, int64_t kernel, int64_t stride, NormKind norm,
                                 Generator& gen) {
  CPC_CHECK(kernel % 2 == 1, "ResidualBlock1d: kernel ", kernel, " must be odd so that padding keeps the length");
  const int64_t pad = kernel / 2;
  conv1 = register_module("conv1", std::make_unique<Conv1d>(in, out, kernel, Conv1dGeometry{stride, pad, 1}, false, gen));
  bn1 = register_module("bn1", make_norm(norm, out));
  conv2 = register_module("conv2", std::make_unique<Conv1d>(out, out, kernel, Conv1dGeometry{1, pad, 1}, false, gen));
  bn2 = register_module("bn2", make_norm(norm, out));
  if (stride != 1 || in != out) {
    downsample = register_module("downsample", std::make_unique<Sequential>());
    downsample->add(std::make_unique<Conv1d>(in, out, 1, Conv1dGeometry{stride, 0, 1}, false, gen));
    downsample->add(make_norm(norm, out));
  }
}

Var* ResidualBlock1d::forward(Var* x) {
  Var* h = bn1->forward_relu(conv1->forward(x));
  h = bn2->forward(conv2->forward(h));
  Var* skip = downsample ? downsample->forward(x) : x;
  return ops::relu(ops::add(h, skip));
}

}  // namespace cpc
