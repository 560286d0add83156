#include "engine/core/backend.h"

#include <array>

#include "engine/core/error.h"

namespace cpc {

namespace {
std::array<Backend*, kNumDeviceKinds>& registry() {
  static std::array<Backend*, kNumDeviceKinds> r{};
  return r;
}
const char* kind_name(DeviceKind k) { return k == DeviceKind::cpu ? "cpu" : "cuda"; }
}  // namespace

void register_backend(DeviceKind kind, Backend* b) { registry()[static_cast<int>(kind)] = b; }

bool has_backend(DeviceKind kind) { return registry()[static_cast<int>(kind)] != nullptr; }

Backend& backend(Device device) {
  Backend* b = registry()[static_cast<int>(device.kind)];
  CPC_CHECK(b != nullptr, "device ", device.str(), ": this build has no ", kind_name(device.kind),
            " backend (configure with -DCPC_CUDA=ON for cuda)");
  return *b;
}

void Backend::set_option(const std::string& key, const std::string&) {
  fail("backend ", name(), " has no option '", key, "'");
}

}  // namespace cpc
