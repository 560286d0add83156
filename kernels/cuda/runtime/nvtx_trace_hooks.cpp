// Registers NVTX push/pop (domain "cpc") as the engine's trace hooks, so the step
// phases that tools/ mark with cpc::TraceRange appear in Nsight Systems.
#include "engine/core/trace.h"
#include "kernels/cuda/runtime/nvtx.h"

namespace cpc {
namespace {

void push(const char* name) {
  nvtxEventAttributes_t a{};
  a.version = NVTX_VERSION;
  a.size = NVTX_EVENT_ATTRIB_STRUCT_SIZE;
  a.messageType = NVTX_MESSAGE_TYPE_ASCII;
  a.message.ascii = name;
  nvtxDomainRangePushEx(cuda::nvtx_domain(), &a);
}
void pop() { nvtxDomainRangePop(cuda::nvtx_domain()); }

const bool registered = (set_trace_hooks({&push, &pop}), true);

}  // namespace
}  // namespace cpc
