#include "kernels/cuda/runtime/caching_allocator.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "engine/core/error.h"

namespace cpc::cuda {

namespace {

constexpr size_t kSmallLimit = size_t{1} << 20;  // 1 MiB
constexpr size_t kSmallStep = 512;

bool cache_enabled_by_env() {
  const char* v = std::getenv("CPC_CUDA_CACHE");
  return !(v && (std::strcmp(v, "0") == 0 || std::strcmp(v, "off") == 0 || std::strcmp(v, "false") == 0));
}

}  // namespace

size_t size_class(size_t bytes) {
  if (bytes == 0) return 0;
  if (bytes <= kSmallLimit) return (bytes + kSmallStep - 1) / kSmallStep * kSmallStep;
  int log2 = 63;
  while (!(bytes >> log2)) --log2;  // 2^log2 <= bytes
  const size_t step = size_t{1} << (log2 - 2);
  return (bytes + step - 1) / step * step;
}

CachingAllocator::CachingAllocator() : caching_(cache_enabled_by_env()) {}

void* CachingAllocator::allocate(size_t bytes, cudaStream_t stream) {
  if (bytes == 0) return nullptr;
  const size_t cls = caching_ ? size_class(bytes) : bytes;
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.allocations;
  if (caching_) {
    auto it = free_.find(cls);
    if (it != free_.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      live_.emplace(p, cls);
      stats_.cached -= cls;
      stats_.in_use += cls;
      if (stats_.in_use > stats_.peak_in_use) stats_.peak_in_use = stats_.in_use;
      ++stats_.cache_hits;
      return p;
    }
  }
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, cls);
  if (e != cudaSuccess && caching_ && stats_.cached > 0) {
    // Out of memory with blocks parked in the cache: give them back and retry once.
    cudaGetLastError();
    if (stream) cudaStreamSynchronize(stream);
    for (auto& [size, blocks] : free_)
      for (void* q : blocks) cudaFree(q);
    free_.clear();
    stats_.cached = 0;
    cudaGetLastError();
    e = cudaMalloc(&p, cls);
  }
  if (e != cudaSuccess) {
    cudaGetLastError();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    cudaGetLastError();
    fail("cuda: cudaMalloc of ", cls, " bytes (request ", bytes, ") failed: ", cudaGetErrorName(e), " (",
         cudaGetErrorString(e), "); ", free_b >> 20, " MiB free of ", total_b >> 20, " MiB, ", stats_.in_use >> 20,
         " MiB in use by this process", caching_ ? "" : " (cache off: CPC_CUDA_CACHE=0)");
  }
  ++stats_.cuda_mallocs;
  live_.emplace(p, cls);
  stats_.in_use += cls;
  if (stats_.in_use > stats_.peak_in_use) stats_.peak_in_use = stats_.in_use;
  return p;
}

void CachingAllocator::deallocate(void* p, cudaStream_t stream) noexcept {
  if (p == nullptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_.find(p);
  if (it == live_.end()) {
    std::fprintf(stderr, "cpc: cuda: deallocate of %p, which this allocator did not hand out (ignored)\n", p);
    return;
  }
  const size_t cls = it->second;
  live_.erase(it);
  stats_.in_use -= cls;
  if (caching_) {
    free_[cls].push_back(p);  // stream-ordered reuse: no synchronisation needed
    stats_.cached += cls;
    return;
  }
  // Queued kernels may still read p; cudaErrorCudartUnloading is the normal end at exit.
  if (stream) cudaStreamSynchronize(stream);
  const cudaError_t e = cudaFree(p);
  if (e != cudaSuccess && e != cudaErrorCudartUnloading) {
    cudaGetLastError();
    std::fprintf(stderr, "cpc: cuda: cudaFree failed: %s (%s)\n", cudaGetErrorName(e), cudaGetErrorString(e));
  }
}

void CachingAllocator::release_cached(cudaStream_t stream) noexcept {
  std::lock_guard<std::mutex> lock(mu_);
  if (free_.empty()) return;
  if (stream) cudaStreamSynchronize(stream);
  for (auto& [size, blocks] : free_)
    for (void* q : blocks) cudaFree(q);
  cudaGetLastError();
  free_.clear();
  stats_.cached = 0;
}

CachingAllocator::Stats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace cpc::cuda
