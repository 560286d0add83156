#include "tools/info_command.h"

#include <hdf5.h>

#include <cstdio>

#include "engine/backend.h"
#include "engine/build_info.h"

namespace cpc::tools {

int run_info() {
  unsigned maj = 0, min = 0, rel = 0;
  H5get_libversion(&maj, &min, &rel);
  std::printf("cpc-engine %s (%s build)\n", build_info::version, build_info::build_type);
  std::printf("options: CPC_CUDA=%s CPC_MPI=%s\n", build_info::cuda ? "ON" : "OFF", build_info::mpi ? "ON" : "OFF");
  std::printf("HDF5 %u.%u.%u\n", maj, min, rel);
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
