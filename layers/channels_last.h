#pragma once
// Switches a module tree's convolutions and norms between (B, C, L) and channels-last
// (B, L, C) activations (Conv1d's geometry, BatchNorm1d's and ChannelNorm's flags);
// pointwise layers and residual adds do not depend on the layout. The caller feeds the
// matching input layout.
#include "layers/module.h"

namespace cpc {

void set_channels_last(Module& root, bool on);

}  // namespace cpc
