// Stand-ins when built without MPI (CPC_MPI=OFF): a launched job reports the build.
#include "engine/distributed/communicator.h"
#include "engine/core/error.h"

namespace cpc {

std::unique_ptr<Communicator> make_mpi_communicator() {
  fail("this cpc-engine was built without MPI (configure with -DCPC_MPI=ON and install libopenmpi-dev)");
}
bool built_with_mpi() { return false; }
std::string mpi_library_version() { return "not built"; }

}  // namespace cpc
