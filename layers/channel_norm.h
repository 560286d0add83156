#pragma once
#include "layers/module.h"

namespace cpc {

// Channel LayerNorm on (B, C, L): normalises over C at every time step, so samples
// and time steps stay independent of each other (CPC_audio's ChannelNorm, which
// CPC found better than BatchNorm). Biased variance, as nn.LayerNorm: the PyTorch
// equivalent is LayerNorm(C) applied to x.transpose(1, 2). Parameters weight, bias (C).
// channels_last: x is (B, L, C) (LayerNorm(C) itself).
class ChannelNorm : public Layer {
 public:
  explicit ChannelNorm(int64_t channels, float eps = 1e-5f);
  Var* forward(Var* x) override;
  float eps;
  bool channels_last = false;
  Parameter* weight;
  Parameter* bias;
};

}  // namespace cpc
