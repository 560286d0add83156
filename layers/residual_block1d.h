#pragma once
#include <memory>
#include <string>

#include "engine/core/random.h"
#include "layers/conv1d.h"
#include "layers/make_norm.h"
#include "layers/module.h"
#include "layers/sequential.h"

namespace cpc {

// The 1-D ResNet basic block used for 12-lead ECG:
//   relu(norm2(conv2(relu(norm1(conv1(x))))) + skip(x))
// conv1 has the stride; both convs are bias-free with padding kernel/2. The skip is
// the identity, or a 1x1 strided conv + norm ("downsample.0", "downsample.1") when
// the stride or the channel count changes. Names follow torchvision's BasicBlock.
class ResidualBlock1d : public Layer {
 public:
  ResidualBlock1d(int64_t in, int64_t out, int64_t kernel, int64_t stride, NormKind norm, Generator& gen);
  Var* forward(Var* x) override;
  Conv1d* conv1;
  Layer* bn1;
  Conv1d* conv2;
  Layer* bn2;
  Sequential* downsample = nullptr;
};

}  // namespace cpc
