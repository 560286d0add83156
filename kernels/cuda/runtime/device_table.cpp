#include "kernels/cuda/runtime/device_table.h"

#include <cstring>

namespace cpc::cuda {

const void* DeviceTable::upload(const void* data, size_t bytes, CachingAllocator& alloc, HostStaging& staging,
                                cudaStream_t s) {
  if (device_ && bytes == host_.size() && std::memcmp(data, host_.data(), bytes) == 0) return device_;
  if (bytes > capacity_) {
    void* grown = alloc.allocate(bytes, s);  // throws on failure; the old table stays valid
    if (device_) alloc.deallocate(device_, s);
    device_ = grown;
    capacity_ = bytes;
  }
  staging.copy_to_device(device_, data, bytes, s);
  const auto* p = static_cast<const unsigned char*>(data);
  host_.assign(p, p + bytes);
  return device_;
}

}  // namespace cpc::cuda
