// The loader's device copies (Backend::copy_async on a copy stream, wait_copy before
// the batch is used): every batch on the device equals the windows read directly, while
// the compute stream is kept busy so that copies and kernels really overlap, over more
// steps than the loader has slots (buffers are reused) and with batches larger than one
// 4 MiB pinned staging chunk.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "engine/data_loader.h"
#include "engine/h5_file.h"
#include "tests/gpu/cuda_test_util.h"

namespace cpc {
namespace {

using namespace gpu_test;

TEST(CudaLoader, DeviceBatchesEqualDirectReadsWhileKernelsRun) {
  SKIP_WITHOUT_CUDA();
  const int64_t R = 24, C = 16, L = 6000, window = 4096, batch = 16;  // 4 MiB per batch
  const std::string path = "/tmp/cpc_cuda_loader_" + std::to_string(getpid()) + ".h5";
  {
    H5File f(path, H5File::Mode::create);
    const std::vector<float> v = random_values(R * C * L, 5);
    f.write_floats("signals", {R, C, L}, v.data());
  }
  WindowDataset d(path, C, window);
  const std::vector<int64_t> rec = d.usable();
  std::vector<int64_t> lengths;
  for (int64_t r : rec) lengths.push_back(d.length(r));
  BatchSampler s(rec, lengths, window, batch, 9);
  const Tensor busy = Tensor::zeros({int64_t{1} << 24}, Device::cuda());
  {
    DataLoader loader(d, s, /*first_step=*/3, 0, 1, /*prefetch=*/2, Device::cuda());
    std::vector<float> w(static_cast<size_t>(C * window));
    for (int64_t step = 3; step < 15; ++step) {
      const Batch& b = loader.next();
      ASSERT_EQ(b.step, step);
      ASSERT_TRUE(b.x_device.defined());
      ASSERT_EQ(&b.input(), &b.x_device);
      // Work queued after next() reads the batch; more work keeps the stream busy while
      // the loader thread copies the following batches.
      const Tensor copy = Tensor::zeros(b.x_device.shape(), Device::cuda());
      cuda_be().axpy(1.f, b.x_device, copy);
      for (int i = 0; i < 8; ++i) cuda_be().axpy(0.5f, busy, busy);
      const std::vector<float> got = copy.to_vector();
      const auto expect = s.batch(step);
      for (size_t i = 0; i < expect.size(); ++i) {
        d.read_window(expect[i].recording, expect[i].start, w.data());
        for (size_t k = 0; k < w.size(); ++k)
          ASSERT_EQ(got[i * w.size() + k], w[k]) << "step " << step << ", window " << i << ", element " << k;
      }
    }
  }  // the loader's destructor orders its buffers' release after the copies in flight
  std::remove(path.c_str());
}

TEST(CudaLoaderBasics, CopyAsyncChecksItsArguments) {
  const std::string msg = error_of([] { cuda_be().copy_async(Tensor::zeros({4}), Tensor::zeros({4})); });
  EXPECT_NE(msg.find("copy_async on cuda"), std::string::npos) << msg;
  EXPECT_NE(error_of([] { cuda_be().wait_copy(1u << 30); }), "");
}

}  // namespace
}  // namespace cpc
