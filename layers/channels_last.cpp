#include "layers/channels_last.h"

#include "layers/batch_norm1d.h"
#include "layers/channel_norm.h"
#include "layers/conv1d.h"

namespace cpc {

void set_channels_last(Module& root, bool on) {
  root.apply([&](Module& m) {
    if (auto* conv = dynamic_cast<Conv1d*>(&m)) conv->geometry.channels_last = on;
    if (auto* bn = dynamic_cast<BatchNorm1d*>(&m)) bn->channels_last = on;
    if (auto* cn = dynamic_cast<ChannelNorm*>(&m)) cn->channels_last = on;
  });
}

}  // namespace cpc
