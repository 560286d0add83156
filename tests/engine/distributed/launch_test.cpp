// Rank, world size and node-local rank from each launcher's environment variables
// (mpirun, PMI, srun), and the local communicator of a process started without one.
#include <gtest/gtest.h>

#include <cstdlib>

#include "engine/distributed/communicator.h"
#include "engine/core/error.h"

namespace cpc {
namespace {

class Launch : public ::testing::Test {
 protected:
  void SetUp() override { clear(); }
  void TearDown() override { clear(); }
  static void clear() {
    for (const char* v : {"OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "PMI_SIZE",
                          "PMI_RANK", "PMIX_RANK", "MPI_LOCALRANKID", "SLURM_NTASKS", "SLURM_PROCID", "SLURM_LOCALID",
                          "SLURM_STEP_ID"})
      unsetenv(v);
  }
};

TEST_F(Launch, NoLauncherIsOneProcess) {
  const LaunchInfo l = launch_from_environment();
  EXPECT_EQ(l.world, 1);
  EXPECT_EQ(l.rank, 0);
  EXPECT_EQ(l.launcher, "none");
}

TEST_F(Launch, Mpirun) {
  setenv("OMPI_COMM_WORLD_SIZE", "8", 1), setenv("OMPI_COMM_WORLD_RANK", "5", 1);
  setenv("OMPI_COMM_WORLD_LOCAL_RANK", "1", 1);
  const LaunchInfo l = launch_from_environment();
  EXPECT_EQ(l.launcher, "mpirun");
  EXPECT_EQ(l.world, 8);
  EXPECT_EQ(l.rank, 5);
  EXPECT_EQ(l.local_rank, 1);
}

TEST_F(Launch, SrunJobStep) {
  setenv("SLURM_NTASKS", "16", 1), setenv("SLURM_PROCID", "9", 1), setenv("SLURM_LOCALID", "1", 1);
  setenv("PMIX_RANK", "9", 1);  // srun --mpi=pmix also sets PMIx's variables (but no PMI_SIZE)
  EXPECT_EQ(launch_from_environment().world, 1) << "an sbatch script (no job step) is one process";
  setenv("SLURM_STEP_ID", "0", 1);
  const LaunchInfo l = launch_from_environment();
  EXPECT_EQ(l.launcher, "srun");
  EXPECT_EQ(l.world, 16);
  EXPECT_EQ(l.rank, 9);
  EXPECT_EQ(l.local_rank, 1);
}

TEST_F(Launch, Pmi) {
  setenv("PMI_SIZE", "4", 1), setenv("PMI_RANK", "3", 1), setenv("MPI_LOCALRANKID", "3", 1);
  const LaunchInfo l = launch_from_environment();
  EXPECT_EQ(l.launcher, "pmi");
  EXPECT_EQ(l.world, 4);
  EXPECT_EQ(l.rank, 3);
  EXPECT_EQ(l.local_rank, 3);
}

TEST_F(Launch, InconsistentVariablesAreAnError) {
  setenv("OMPI_COMM_WORLD_SIZE", "2", 1), setenv("OMPI_COMM_WORLD_RANK", "2", 1);
  try {
    launch_from_environment();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("rank 2 of world 2 from mpirun is inconsistent"), std::string::npos);
  }
}

TEST_F(Launch, LocalCommunicatorCollectivesAreTheIdentity) {
  std::unique_ptr<Communicator> c = make_local_communicator();
  Tensor x = Tensor::from_vector({2, 2}, {1, 2, 3, 4}), y = Tensor::zeros({2, 2});
  c->allreduce(x, ReduceOp::mean);
  c->allgather(x, y);
  EXPECT_EQ(y.to_vector(), std::vector<float>({1, 2, 3, 4}));
  double v[2] = {1.5, -2};
  c->allreduce_host(v, 2);
  EXPECT_EQ(v[0], 1.5);
  EXPECT_THROW(c->broadcast(x, 1), Error);
}

}  // namespace
}  // namespace cpc
