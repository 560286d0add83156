#pragma once
// The strided convolutional encoder of CPC: [Conv1d (no bias) - norm - ReLU] per layer,
// as an nn.Sequential with PyTorch's indices (encoder.0.weight, encoder.1.running_mean, ...).
#include <cstdint>
#include <memory>
#include <vector>

#include "engine/core/random.h"
#include "layers/residual_block1d.h"
#include "layers/sequential.h"

namespace cpc {

struct ConvLayerSpec {
  int64_t channels, kernel, stride, padding;
};

std::unique_ptr<Sequential> make_conv_encoder(int64_t in_channels, const std::vector<ConvLayerSpec>& layers,
                                              NormKind norm, Generator& gen);

// Seed 004's CDCK2 encoder: 1 -> 512 channels, kernels 10, 8, 4, 4, 4, strides 5, 4, 2,
// 2, 2 (downsampling 160), BatchNorm.
std::vector<ConvLayerSpec> cdck2_encoder_layers();

}  // namespace cpc
