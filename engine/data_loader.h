#pragma once
// Reads the batches of consecutive steps on one background thread (all HDF5 calls
// stay there) while the model trains on the previous one. Buffers are reused, so a
// steady-state step allocates nothing here.
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "engine/batch_sampler.h"
#include "engine/tensor.h"
#include "engine/window_dataset.h"

namespace cpc {

struct Batch {
  int64_t step = -1;
  Tensor x;  // (B, C, L) on the CPU
  std::vector<WindowRef> windows;
};

class DataLoader {
 public:
  DataLoader(const WindowDataset& dataset, const BatchSampler& sampler, int64_t first_step, int rank = 0, int world = 1,
             int prefetch = 2);
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;
  // The batch of the next step; valid until the following call. Rethrows a read error.
  const Batch& next();

 private:
  const WindowDataset& dataset_;
  const BatchSampler& sampler_;
  int rank_, world_;
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
