#pragma once
#include <memory>
#include <string>
#include <vector>

#include "layers/activations.h"
#include "layers/module.h"

namespace cpc {

// Layers applied in order, named "0", "1", ... as nn.Sequential.
class Sequential : public Layer {
 public:
  template <class L>
  L* add(std::unique_ptr<L> layer) {
    L* raw = register_module(std::to_string(layers_.size()), std::move(layer));
    layers_.push_back(raw);
    return raw;
  }
  // A layer followed by ReLU runs as forward_relu (BatchNorm and ReLU in one pass); the
  // ReLU stays a layer of its own, so names and indices are nn.Sequential's. When the
  // layer after the ReLU rounds its input to bf16 anyway, the pair may hand it over so.
  Var* forward(Var* x) override {
    for (size_t i = 0; i < layers_.size(); ++i) {
      if (i + 1 < layers_.size() && dynamic_cast<ReLU*>(layers_[i + 1])) {
        const bool round = i + 2 < layers_.size() && layers_[i + 2]->takes_rounded_input();
        x = round ? layers_[i]->forward_relu_rounded(x) : layers_[i]->forward_relu(x);
        ++i;
      } else {
        x = layers_[i]->forward(x);
      }
    }
    return x;
  }
  size_t size() const { return layers_.size(); }
  Layer* operator[](size_t i) const { return layers_[i]; }

 private:
  std::vector<Layer*> layers_;
};

}  // namespace cpc
