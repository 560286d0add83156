#pragma once
// A caching device allocator: freed blocks go to a free list per size class and are
// handed out again without cudaMalloc/cudaFree (both synchronise the device and cost
// 10-1000 us). Every op runs on one compute stream, so a block freed by the host while
// kernels that use it are still queued may be reused at once: the next user's kernels
// are queued behind them on the same stream. (The data loader's copy stream writes only
// into the loader's own long-lived buffers, whose release waits for its copies.)
//
// Size classes: 512-byte granularity up to 1 MiB, then four classes per power of two
// (at most 25% slack). A miss calls cudaMalloc; when that fails the cache is emptied
// and the allocation retried once. CPC_CUDA_CACHE=0 turns caching off (every free is a
// stream synchronisation + cudaFree): for compute-sanitizer runs.
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace cpc::cuda {

// The bytes actually reserved for a request of `bytes` (the request's size class).
size_t size_class(size_t bytes);

class CachingAllocator {
 public:
  CachingAllocator();
  // The cached blocks are never released: this object dies during static destruction,
  // when the CUDA runtime may already be gone; the driver reclaims them at exit.
  ~CachingAllocator() = default;

  // stream: the compute stream (for the synchronisation before a real cudaFree).
  void* allocate(size_t bytes, cudaStream_t stream);
  void deallocate(void* p, cudaStream_t stream) noexcept;
  // Returns every cached (free) block to the driver; blocks in use are untouched.
  void release_cached(cudaStream_t stream) noexcept;

  bool caching() const { return caching_; }
  struct Stats {
    size_t in_use = 0, cached = 0, peak_in_use = 0;  // bytes (size classes)
    int64_t allocations = 0, cuda_mallocs = 0, cache_hits = 0;
  };
  Stats stats() const;

 private:
  bool caching_ = true;
  mutable std::mutex mu_;
  std::map<size_t, std::vector<void*>> free_;  // size class -> free blocks
  std::unordered_map<void*, size_t> live_;     // block -> size class
  Stats stats_;
};

// Scratch device memory for one op, returned to the allocator at scope end. With
// the cache on that is free; the memory is stream-ordered like everything else.
class DeviceScratch {
 public:
  DeviceScratch(CachingAllocator& a, size_t bytes, cudaStream_t s)
      : alloc_(&a), stream_(s), p_(bytes ? a.allocate(bytes, s) : nullptr), bytes_(bytes) {}
  ~DeviceScratch() {
    if (p_) alloc_->deallocate(p_, stream_);
  }
  DeviceScratch(const DeviceScratch&) = delete;
  DeviceScratch& operator=(const DeviceScratch&) = delete;
  template <class T = void>
  T* get() const {
    return static_cast<T*>(p_);
  }
  size_t bytes() const { return bytes_; }

 private:
  CachingAllocator* alloc_;
  cudaStream_t stream_;
  void* p_;
  size_t bytes_;
};

}  // namespace cpc::cuda
