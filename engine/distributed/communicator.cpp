#include "engine/distributed/communicator.h"

#include <cstdlib>
#include <cstring>

#include "engine/core/backend.h"
#include "engine/core/error.h"

namespace cpc {

namespace {

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : fallback;
}

class LocalCommunicator final : public Communicator {
 public:
  std::string name() const override { return "local"; }
  int rank() const override { return 0; }
  int world() const override { return 1; }
  int local_rank() const override { return 0; }
  void allreduce(const Tensor&, ReduceOp) override {}
  void allgather(const Tensor& x, const Tensor& y) override { copy_into(x, y, "allgather"); }
  void reduce_scatter(const Tensor& x, const Tensor& y) override { copy_into(x, y, "reduce_scatter"); }
  void broadcast(const Tensor&, int root) override {
    CPC_CHECK(root == 0, "broadcast: root ", root, " out of range for world 1");
  }
  void broadcast_bytes(void*, size_t, int root) override {
    CPC_CHECK(root == 0, "broadcast: root ", root, " out of range for world 1");
  }
  void allreduce_host(double*, int) override {}
  void barrier() override {}
  [[noreturn]] void abort(int code) override { std::exit(code); }

 private:
  static void copy_into(const Tensor& x, const Tensor& y, const char* op) {
    CPC_CHECK(x.numel() == y.numel(), op, ": ", x.shape(), " -> ", y.shape(), " in world 1");
    if (x.raw() != y.raw()) Tensor(y).copy_from(x.reshape(y.shape()));
  }
};

std::unique_ptr<Communicator>& current() {
  static std::unique_ptr<Communicator> c;
  return c;
}

}  // namespace

LaunchInfo launch_from_environment() {
  LaunchInfo l;
  if (std::getenv("OMPI_COMM_WORLD_SIZE")) {
    l.launcher = "mpirun";
    l.world = env_int("OMPI_COMM_WORLD_SIZE", 1), l.rank = env_int("OMPI_COMM_WORLD_RANK", 0);
    l.local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK", 0);
  } else if (std::getenv("SLURM_NTASKS") && std::getenv("SLURM_PROCID") && std::getenv("SLURM_STEP_ID")) {
    l.launcher = "srun";  // an srun job step (SLURM_STEP_ID), not just an sbatch script; any --mpi plugin
    l.world = env_int("SLURM_NTASKS", 1), l.rank = env_int("SLURM_PROCID", 0);
    l.local_rank = env_int("SLURM_LOCALID", 0);
  } else if (std::getenv("PMI_SIZE")) {
    l.launcher = "pmi";
    l.world = env_int("PMI_SIZE", 1), l.rank = env_int("PMI_RANK", env_int("PMIX_RANK", 0));
    l.local_rank = env_int("MPI_LOCALRANKID", 0);
  }
  CPC_CHECK(l.world >= 1 && l.rank >= 0 && l.rank < l.world, "launch: rank ", l.rank, " of world ", l.world, " from ",
            l.launcher, " is inconsistent");
  return l;
}

Communicator& communicator() {
  std::unique_ptr<Communicator>& c = current();
  if (!c) {
    const LaunchInfo l = launch_from_environment();
    if (l.world > 1) {
      CPC_CHECK(built_with_mpi(), "launched as rank ", l.rank, " of ", l.world, " by ", l.launcher,
                ", but this cpc-engine was built without MPI (configure with -DCPC_MPI=ON)");
      c = make_mpi_communicator();
      CPC_CHECK(c->world() == l.world, "launch: ", l.launcher, " says ", l.world, " processes but MPI sees ",
                c->world(), " (is this OpenMPI built for the launcher? with srun, pass --mpi=pmix or pmi2)");
    } else {
      c = make_local_communicator();
    }
  }
  return *c;
}

bool has_communicator() { return current() != nullptr; }

std::unique_ptr<Communicator> set_communicator(std::unique_ptr<Communicator> c) {
  std::unique_ptr<Communicator> prev = std::move(current());
  current() = std::move(c);
  return prev;
}

std::unique_ptr<Communicator> make_local_communicator() { return std::make_unique<LocalCommunicator>(); }

namespace {
NcclFactory& nccl_factory() {
  static NcclFactory f = nullptr;
  return f;
}
std::string& nccl_version_string() {
  static std::string v = "not built";
  return v;
}
}  // namespace

void register_nccl_factory(NcclFactory factory, std::string version) {
  nccl_factory() = factory;
  nccl_version_string() = std::move(version);
}
std::string nccl_version() { return nccl_version_string(); }

std::unique_ptr<Communicator> make_nccl_communicator(std::unique_ptr<Communicator> host) {
  CPC_CHECK(nccl_factory() != nullptr,
            "NCCL: this cpc-engine was built without the CUDA backend (configure with -DCPC_CUDA=ON)");
  return nccl_factory()(std::move(host));
}

}  // namespace cpc
