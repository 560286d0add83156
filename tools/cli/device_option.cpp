#include "tools/cli/device_option.h"

#include <cstdlib>

#include "engine/core/backend.h"
#include "engine/core/error.h"

namespace cpc::tools {

Device select_device(const std::string& spec, const Communicator& comm) {
  const Device d = parse_device(spec);
  if (d.kind == DeviceKind::cpu) return d;
  CPC_CHECK(has_backend(DeviceKind::cuda), "--device ", spec,
            ": this cpc-engine was built without the CUDA backend (configure with -DCPC_CUDA=ON)");
  // The CUDA backend serves the device that is current when it is first used: expose
  // only the chosen GPU (before any CUDA call), so it is device 0 of this process.
  const int gpu = comm.world() > 1 ? comm.local_rank() : d.index;
  if (!std::getenv("CUDA_VISIBLE_DEVICES"))
    setenv("CUDA_VISIBLE_DEVICES", std::to_string(gpu).c_str(), 1);
  else  // a launcher (SLURM) already chose: ranks pick local_rank % visible in NCCL
    CPC_CHECK(comm.world() > 1 || d.index == 0, "--device ", spec,
              ": CUDA_VISIBLE_DEVICES is set; choose the GPU there and pass --device cuda");
  Backend& cuda = backend(Device::cuda(0));
  CPC_CHECK(cuda.available(), "--device ", spec, ": ", cuda.describe());
  return Device::cuda(0);
}

}  // namespace cpc::tools
