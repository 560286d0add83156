#include "layers/gru.h"

#include <cmath>
#include <string>

namespace cpc {

GRU::GRU(int64_t in, int64_t h, int n, Generator& gen) : input_size(in), hidden_size(h), num_layers(n) {
  CPC_CHECK(in >= 1 && h >= 1 && n >= 1, "GRU: input ", in, ", hidden ", h, " and layers ", n, " must be >= 1");
  const float bound = 1.f / std::sqrt(static_cast<float>(h));  // PyTorch's default init
  for (int l = 0; l < n; ++l) {
    const std::string s = "_l" + std::to_string(l);
    const int64_t din = l == 0 ? in : h;
    ops::GruLayerParams p;
    p.w_ih = register_parameter("weight_ih" + s, gen.uniform_tensor({3 * h, din}, -bound, bound));
    p.w_hh = register_parameter("weight_hh" + s, gen.uniform_tensor({3 * h, h}, -bound, bound));
    p.b_ih = register_parameter("bias_ih" + s, gen.uniform_tensor({3 * h}, -bound, bound));
    p.b_hh = register_parameter("bias_hh" + s, gen.uniform_tensor({3 * h}, -bound, bound));
    layers_.push_back(p);
  }
}

ops::GruOutput GRU::forward(Var* x, Var* h0) {
  CPC_CHECK(x->value.rank() == 3 && x->value.size(2) == input_size, "GRU: input ", x->value.shape(),
            " expected (B, T, ", input_size, ")");
  return ops::gru(x, h0, layers_);
}

}  // namespace cpc
