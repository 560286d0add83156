#pragma once
// Reads the batches of consecutive steps on one background thread (all HDF5 calls
// stay there) while the model trains on the previous one. Buffers are reused, so a
// steady-state step allocates nothing here. With a device other than the CPU the same
// thread also starts each batch's copy to the device (Backend::copy_async: on CUDA a
// copy stream, so the transfer overlaps the running step); next() makes the device's
// work wait for that copy.
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/data/augment.h"
#include "engine/data/batch_sampler.h"
#include "engine/core/tensor.h"
#include "engine/data/window_dataset.h"

namespace cpc {

struct Batch {
  int64_t step = -1;
  int micro = 0;  // which of the step's micro-batches (gradient accumulation)
  Tensor x;  // (B, C, L) on the CPU
  std::vector<WindowRef> windows;
  Tensor x_device;      // x on the loader's device (undefined for the CPU)
  uint64_t ticket = 0;  // of x_device's copy_async
  // What the model should read: x_device when there is one.
  const Tensor& input() const { return x_device.defined() ? x_device : x; }
};

// Augmentation of the loader's windows (augment.h); off when options.any() is false.
struct LoaderAugment {
  AugmentOptions options;
  double rate_hz = 0;  // the data's sample rate (transforms given in Hz or seconds)
  uint64_t seed = 0;   // train.seed: with (step, micro-batch, rank, row) it fixes every draw
};

class DataLoader {
 public:
  // micro > 1 (gradient accumulation): each step's global batch (the sampler's) is read
  // as `micro` consecutive micro-batches; this rank's part of micro-batch i is the
  // global batch's rows of shard i * world + rank of micro * world (micro = 1: rank r's
  // rows [r * B, (r + 1) * B), as before).
  DataLoader(const WindowDataset& dataset, const BatchSampler& sampler, int64_t first_step, int rank = 0, int world = 1,
             int prefetch = 2, Device device = Device::cpu(), int micro = 1, LoaderAugment augment = {});
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;
  // The next (micro-)batch; valid until the following call (device work reading its
  // input() must be queued before then). Rethrows a read error.
  const Batch& next();

 private:
  const WindowDataset& dataset_;
  const BatchSampler& sampler_;
  int rank_, world_, micro_;
  Device device_;
  LoaderAugment augment_;
  uint64_t last_ticket_ = 0;  // the newest copy_async (waited for before the buffers go)
  std::vector<Batch> ring_;
  int64_t next_fill_, next_take_;
  bool stop_ = false;
  std::string error_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread worker_;
  void run();
};

}  // namespace cpc
