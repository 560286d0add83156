#pragma once
// Collectives across the processes of a data-parallel job. A process started without a
// launcher is world 1 and every collective is the identity. Launched by mpirun or srun
// (rank and size in OMPI_* / PMI_* / SLURM_* variables), the MPI communicator serves
// CPU tensors; the NCCL one (kernels/cuda, its id broadcast over MPI) serves GPU tensors.
// All ranks must call the same collectives in the same order.
#include <memory>
#include <string>

#include "engine/core/tensor.h"

namespace cpc {

struct LaunchInfo {
  int rank = 0, world = 1, local_rank = 0;
  std::string launcher = "none";  // none | mpirun | srun | pmi
};
// What the launcher told this process (no MPI call).
LaunchInfo launch_from_environment();

enum class ReduceOp { sum, mean };

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual std::string name() const = 0;
  virtual int rank() const = 0;
  virtual int world() const = 0;
  virtual int local_rank() const = 0;

  // x = sum (or mean) over ranks of x, in place.
  virtual void allreduce(const Tensor& x, ReduceOp op) = 0;
  // y (world * n, ...) = the x (n, ...) of every rank, concatenated in rank order.
  virtual void allgather(const Tensor& x, const Tensor& y) = 0;
  // y (n, ...) = sum over ranks of their x (world * n, ...) rows [rank * n, (rank + 1) * n).
  virtual void reduce_scatter(const Tensor& x, const Tensor& y) = 0;
  virtual void broadcast(const Tensor& x, int root) = 0;
  virtual void broadcast_bytes(void* data, size_t bytes, int root) = 0;  // ids, handshakes
  // Host values (losses, statistics): v = sum over ranks, in place.
  virtual void allreduce_host(double* v, int n) = 0;
  virtual void barrier() = 0;
  // Ends every process of the job with `code` (after a rank's error, so none hangs).
  [[noreturn]] virtual void abort(int code) = 0;
  // Seconds spent inside collectives so far (transfer plus waiting for other ranks).
  virtual double seconds() const { return seconds_; }

 protected:
  double seconds_ = 0;
};

// The process's communicator: created on first use from the launch environment (MPI
// when world > 1), finalized at exit.
Communicator& communicator();
bool has_communicator();  // whether communicator() has been created
// Replaces it (tests); returns the previous one.
std::unique_ptr<Communicator> set_communicator(std::unique_ptr<Communicator> c);
// World 1: every collective copies or does nothing.
std::unique_ptr<Communicator> make_local_communicator();
// MPI_COMM_WORLD (initialises MPI). An error when built without MPI (CPC_MPI=OFF).
std::unique_ptr<Communicator> make_mpi_communicator();
bool built_with_mpi();
std::string mpi_library_version();  // "not built" without MPI
// GPU tensors over NCCL (registered by kernels/cuda when built with CUDA): its unique id
// is broadcast over `host` (MPI), the GPU is picked from the node-local rank, and CPU
// tensors and host values keep going through `host`.
using NcclFactory = std::unique_ptr<Communicator> (*)(std::unique_ptr<Communicator> host);
void register_nccl_factory(NcclFactory factory, std::string version);
std::string nccl_version();  // "not built" without the CUDA backend
std::unique_ptr<Communicator> make_nccl_communicator(std::unique_ptr<Communicator> host);

}  // namespace cpc
