#include "models/conv_encoder.h"

#include "layers/activations.h"
#include "layers/conv1d.h"

namespace cpc {

std::unique_ptr<Sequential> make_conv_encoder(int64_t in_channels, const std::vector<ConvLayerSpec>& layers,
                                              NormKind norm, Generator& gen) {
  auto enc = std::make_unique<Sequential>();
  int64_t c = in_channels;
  for (const ConvLayerSpec& l : layers) {
    enc->add(std::make_unique<Conv1d>(c, l.channels, l.kernel, Conv1dGeometry{l.stride, l.padding, 1}, false, gen));
    enc->add(make_norm(norm, l.channels));
    enc->add(std::make_unique<ReLU>());
    c = l.channels;
  }
  return enc;
}

std::vector<ConvLayerSpec> cdck2_encoder_layers() {
  return {{512, 10, 5, 3}, {512, 8, 4, 2}, {512, 4, 2, 1}, {512, 4, 2, 1}, {512, 4, 2, 1}};
}

}  // namespace cpc
