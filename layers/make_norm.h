#pragma once
// The normalisation a config names ("batch" | "channel") as a layer.
#include <cstdint>
#include <memory>
#include <string>

#include "layers/module.h"

namespace cpc {

enum class NormKind { batch, channel };
NormKind parse_norm_kind(const std::string& s);  // "batch" | "channel"; anything else is an error
std::unique_ptr<Layer> make_norm(NormKind kind, int64_t channels);

}  // namespace cpc
