// The NCCL communicator on one GPU (world 1 over the local host communicator): every
// collective on a device tensor gives the identity, and CPU tensors go to the host
// communicator. Multi-GPU equality with one process is what the data-parallel CLI test
// checks on CPUs; on a multi-GPU machine run it with `--device cuda` (docs/gpu.md).
#include "engine/distributed/communicator.h"
#include "tests/gpu/cuda_test_util.h"

namespace cpc {
namespace {

TEST(CudaNccl, VersionIsKnownWithoutAGpu) { EXPECT_NE(nccl_version(), "not built"); }

TEST(CudaNccl, CollectivesOnOneRankAreTheIdentity) {
  SKIP_WITHOUT_CUDA();
  std::unique_ptr<Communicator> c = make_nccl_communicator(make_local_communicator());
  ASSERT_EQ(c->world(), 1);
  const std::vector<float> v{1.f, -2.f, 3.5f, 4.f, 0.25f, 6.f};
  Tensor x = Tensor::from_vector({2, 3}, v).to(Device::cuda());
  c->allreduce(x, ReduceOp::sum);
  EXPECT_EQ(x.to_vector(), v);
  c->allreduce(x, ReduceOp::mean);
  EXPECT_EQ(x.to_vector(), v);
  Tensor y = Tensor::zeros({2, 3}, Device::cuda());
  c->allgather(x, y);
  EXPECT_EQ(y.to_vector(), v);
  Tensor z = Tensor::zeros({2, 3}, Device::cuda());
  c->reduce_scatter(y, z);
  EXPECT_EQ(z.to_vector(), v);
  c->broadcast(z, 0);
  EXPECT_EQ(z.to_vector(), v);
  Tensor h = Tensor::from_vector({2, 3}, v);  // host tensors: the host communicator
  c->allreduce(h, ReduceOp::sum);
  EXPECT_EQ(h.to_vector(), v);
}

}  // namespace
}  // namespace cpc
