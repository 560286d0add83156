#include "engine/core/device.h"

#include "engine/core/error.h"

namespace cpc {

Device parse_device(const std::string& s) {
  if (s == "cpu") return Device::cpu();
  if (s == "cuda") return Device::cuda(0);
  if (s.rfind("cuda:", 0) == 0) {
    const std::string idx = s.substr(5);
    CPC_CHECK(!idx.empty() && idx.find_first_not_of("0123456789") == std::string::npos, "device '", s,
              "': expected cpu, cuda or cuda:N");
    return Device::cuda(std::stoi(idx));
  }
  fail("device '", s, "': expected cpu, cuda or cuda:N");
}

}  // namespace cpc
