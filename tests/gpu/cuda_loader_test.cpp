// The loader's device copies (Backend::copy_async on a copy stream, wait_copy before
// the batch is used). Every batch on the device must equal the windows read directly,
// checked only after all steps were queued without any host synchronisation in
// between: each step queues several reads of its batch (into its own accumulator) and
// busy work, so a refill of a ring slot that did not wait for the slot's earlier
// readers would corrupt an accumulator. Two sizes: 17 windows (4.5 MB, not a multiple
// of a 4 MiB staging chunk) and 260 windows (68 MB, more than the 64 MiB pinned ring,
// so one copy wraps around it). Whether the copies overlap the kernels is a timing
// question for nsys (docs/gpu.md), not for a test.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "engine/data/data_loader.h"
#include "engine/data/h5_file.h"
#include "tests/gpu/cuda_test_util.h"

namespace cpc {
namespace {

using namespace gpu_test;

class CudaLoader : public ::testing::TestWithParam<int64_t> {};

TEST_P(CudaLoader, DeviceBatchesEqualDirectReadsWithoutHostSyncs) {
  SKIP_WITHOUT_CUDA();
  const int64_t batch = GetParam(), R = 300, C = 16, L = 4200, window = 4096, reads = 4;
  const int64_t first = 3, steps = 12;
  const std::string path = "/tmp/cpc_cuda_loader_" + std::to_string(getpid()) + ".h5";
  {
    H5File f(path, H5File::Mode::create);
    const std::vector<float> v = random_values(R * C * L, 5);
    f.write_floats("signals", {R, C, L}, v.data());
    f.commit();
  }
  WindowDataset d(path, C, window);
  const std::vector<int64_t> rec = d.usable();
  std::vector<int64_t> lengths;
  for (int64_t r : rec) lengths.push_back(d.length(r));
  BatchSampler s(rec, lengths, window, batch, 9);
  const Tensor busy = Tensor::zeros({int64_t{1} << 24}, Device::cuda());
  std::vector<Tensor> acc;
  {
    DataLoader loader(d, s, first, 0, 1, /*prefetch=*/2, Device::cuda());
    for (int64_t step = first; step < first + steps; ++step) {
      const Batch& b = loader.next();
      ASSERT_EQ(b.step, step);
      ASSERT_TRUE(b.x_device.defined());
      ASSERT_EQ(&b.input(), &b.x_device);
      ASSERT_NE(b.ticket, 0u) << "the batch was not copied with copy_async";
      acc.push_back(Tensor::zeros(b.x_device.shape(), Device::cuda()));
      for (int64_t k = 0; k < reads; ++k) {  // reads of the slot, interleaved with busy work
        cuda_be().axpy(1.f, b.x_device, acc.back());
        for (int i = 0; i < 4; ++i) cuda_be().axpy(0.5f, busy, busy);
      }
    }
  }  // the loader's destructor orders its buffers' release after the copies in flight
  std::vector<float> w(static_cast<size_t>(C * window)), want(w.size());
  for (int64_t step = first; step < first + steps; ++step) {
    const std::vector<float> got = acc[static_cast<size_t>(step - first)].to_vector();
    const auto expect = s.batch(step);
    ASSERT_EQ(static_cast<int64_t>(expect.size()), batch);
    for (size_t i = 0; i < expect.size(); ++i) {
      d.read_window(expect[i].recording, expect[i].start, w.data());
      for (size_t k = 0; k < w.size(); ++k) {
        float a = 0.f;  // the same float additions as on the device
        for (int64_t r = 0; r < reads; ++r) a += w[k];
        want[k] = a;
      }
      for (size_t k = 0; k < w.size(); ++k)
        ASSERT_EQ(got[i * w.size() + k], want[k]) << "step " << step << ", window " << i << ", element " << k;
    }
  }
  std::remove(path.c_str());
}

INSTANTIATE_TEST_SUITE_P(Batches, CudaLoader, ::testing::Values(int64_t{17}, int64_t{260}),
                         [](const ::testing::TestParamInfo<int64_t>& i) { return "batch" + std::to_string(i.param); });

TEST(CudaLoaderBasics, CopyAsyncChecksItsArguments) {
  const std::string msg = error_of([] { cuda_be().copy_async(Tensor::zeros({4}), Tensor::zeros({4})); });
  EXPECT_NE(msg.find("copy_async on cuda"), std::string::npos) << msg;
  EXPECT_NE(error_of([] { cuda_be().wait_copy(1u << 30); }), "");
}

}  // namespace
}  // namespace cpc
