#include "engine/core/random.h"

#include <vector>

namespace cpc {

Tensor Generator::uniform_tensor(const Shape& shape, float lo, float hi, Device device) {
  std::vector<float> v(static_cast<size_t>(shape.numel()));
  for (float& x : v) x = uniform(lo, hi);
  return Tensor::from_vector(shape, v, device);
}

Tensor Generator::normal_tensor(const Shape& shape, float mean, float stddev, Device device) {
  std::vector<float> v(static_cast<size_t>(shape.numel()));
  for (float& x : v) x = normal(mean, stddev);
  return Tensor::from_vector(shape, v, device);
}

}  // namespace cpc
