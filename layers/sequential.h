#pragma once
#include <memory>
#include <string>
#include <vector>

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
  Var* forward(Var* x) override {
    for (Layer* l : layers_) x = l->forward(x);
    return x;
  }
  size_t size() const { return layers_.size(); }
  Layer* operator[](size_t i) const { return layers_[i]; }

 private:
  std::vector<Layer*> layers_;
};

}  // namespace cpc
