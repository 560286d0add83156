#pragma once
// NVTX ranges (header-only NVTX v3 from the CUDA toolkit) so that Nsight Systems shows
// each backend op as a named range over the kernels it launched, and Nsight Compute
// can filter kernels by op (ncu --nvtx --nvtx-include "cpc@conv1d_forward"). All
// ranges live in the "cpc" domain. Without a profiler attached a push/pop costs a few
// nanoseconds (NVTX's entry points are no-ops until a tool injects itself).
#include <nvtx3/nvToolsExt.h>

namespace cpc::cuda {

inline nvtxDomainHandle_t nvtx_domain() {
  static const nvtxDomainHandle_t d = nvtxDomainCreateA("cpc");
  return d;
}

class NvtxRange {
 public:
  explicit NvtxRange(const char* name) {
    nvtxEventAttributes_t a{};
    a.version = NVTX_VERSION;
    a.size = NVTX_EVENT_ATTRIB_STRUCT_SIZE;
    a.messageType = NVTX_MESSAGE_TYPE_ASCII;
    a.message.ascii = name;
    nvtxDomainRangePushEx(nvtx_domain(), &a);
  }
  ~NvtxRange() { nvtxDomainRangePop(nvtx_domain()); }
  NvtxRange(const NvtxRange&) = delete;
  NvtxRange& operator=(const NvtxRange&) = delete;
};

}  // namespace cpc::cuda

#define CPC_NVTX_CONCAT_(a, b) a##b
#define CPC_NVTX_CONCAT(a, b) CPC_NVTX_CONCAT_(a, b)
// One range for the rest of the enclosing scope.
#define CPC_NVTX_RANGE(name) ::cpc::cuda::NvtxRange CPC_NVTX_CONCAT(cpc_nvtx_range_, __LINE__)(name)
