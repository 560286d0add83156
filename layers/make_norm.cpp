#include "layers/make_norm.h"

#include "engine/core/error.h"
#include "layers/batch_norm1d.h"
#include "layers/channel_norm.h"

namespace cpc {

NormKind parse_norm_kind(const std::string& s) {
  if (s == "batch") return NormKind::batch;
  if (s == "channel") return NormKind::channel;
  fail("norm '", s, "': expected \"batch\" or \"channel\"");
}

std::unique_ptr<Layer> make_norm(NormKind kind, int64_t channels) {
  if (kind == NormKind::batch) return std::make_unique<BatchNorm1d>(channels);
  return std::make_unique<ChannelNorm>(channels);
}

}  // namespace cpc
