#pragma once
// A small host table mirrored on the device: the chunk lists of the multi-tensor ops
// (adam_update_multi, sum_squares_multi). It is uploaded only when its bytes change, so
// steady-state steps, whose parameter and gradient pointers repeat, copy nothing.
// Rewriting it is safe while earlier kernels that read it are still queued: everything
// runs on one stream, so the copy waits for them.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <vector>

#include "kernels/cuda/runtime/caching_allocator.h"
#include "kernels/cuda/runtime/host_staging.h"

namespace cpc::cuda {

class DeviceTable {
 public:
  // The device copy of data[0, bytes). Never freed: like the backend that owns it, it
  // dies during static destruction, when the runtime may be gone.
  const void* upload(const void* data, size_t bytes, CachingAllocator& alloc, HostStaging& staging, cudaStream_t s);

 private:
  std::vector<unsigned char> host_;  // what the device copy holds
  void* device_ = nullptr;
  size_t capacity_ = 0;
};

}  // namespace cpc::cuda
