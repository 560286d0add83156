#pragma once
// The loader's host -> device copies on a second stream with its own pinned staging
// ring, so a batch's transfer overlaps the step queued on the compute stream.
//
// Before it writes, the copy stream waits for everything queued on the compute stream
// so far (the buffer's previous batch was read by that work); the compute stream waits
// for the copy's event in wait(). Events are kept in a ring: waiting on a later copy's
// event is conservative (the copy stream runs in order). copy() runs on the loader
// thread. Two locks: issue_mu_ serialises whole copies (the staging ring may block this
// thread until an earlier chunk's transfer is done), event_mu_ guards only the tickets
// and events, so wait() on the main thread never waits for a transfer on the host.
// The stream and events are never destroyed (like the backend's handles).
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <mutex>

#include "kernels/cuda/runtime/host_staging.h"

namespace cpc::cuda {

class CopyStream {
 public:
  // Copies `bytes` from host src to device dst after the work queued on `compute`;
  // returns the ticket to wait() for.
  uint64_t copy(void* dst, const void* src, size_t bytes, cudaStream_t compute, int device);
  // Work queued on `compute` after this call waits for copy `ticket` (0: nothing).
  void wait(uint64_t ticket, cudaStream_t compute, int device);

 private:
  // 32 events: with fewer copies in flight (the loader keeps prefetch + 1), every wait is exact.
  static constexpr uint64_t kEvents = 32;
  std::mutex issue_mu_, event_mu_;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t compute_mark_ = nullptr;
  cudaEvent_t done_[kEvents] = {};
  uint64_t tickets_ = 0;
  // 16 chunks (64 MiB pinned): an ecg12 batch of 64 (13.8 MB) spans 4, so the copies of
  // the loader's batches in flight rarely wait for a chunk.
  HostStaging staging_{16, "the loader's host->device copies"};
};

}  // namespace cpc::cuda
