#include "tools/cli/info_command.h"

#include <hdf5.h>

#include <cstdio>

#include "engine/core/backend.h"
#include "engine/core/build_info.h"
#include "engine/distributed/communicator.h"

namespace cpc::tools {

int run_info() {
  unsigned maj = 0, min = 0, rel = 0;
  H5get_libversion(&maj, &min, &rel);
  std::printf("cpc-engine %s (%s build)\n", build_info::version, build_info::build_type);
  std::printf("options: CPC_CUDA=%s CPC_MPI=%s\n", build_info::cuda ? "ON" : "OFF", build_info::mpi ? "ON" : "OFF");
  std::printf("HDF5 %u.%u.%u\n", maj, min, rel);
  const LaunchInfo launch = launch_from_environment();
  std::printf("MPI: %s; NCCL: %s; this process: rank %d of %d (launcher: %s)\n", mpi_library_version().c_str(),
              nccl_version().c_str(), launch.rank, launch.world, launch.launcher.c_str());
  std::printf("%s\n", backend(Device::cpu()).describe().c_str());
  if (has_backend(DeviceKind::cuda)) {
    Backend& cuda = backend(Device::cuda());
    std::printf("%s\n", cuda.describe().c_str());
  } else {
    std::printf("cuda: not built (configure with -DCPC_CUDA=ON)\n");
  }
  return 0;
}

}  // namespace cpc::tools
