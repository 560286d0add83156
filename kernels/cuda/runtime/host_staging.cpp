#include "kernels/cuda/runtime/host_staging.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "kernels/cuda/runtime/cuda_check.h"

namespace cpc::cuda {

namespace {

bool staging_enabled_by_env() {
  const char* v = std::getenv("CPC_CUDA_PINNED");
  return !(v && (std::strcmp(v, "0") == 0 || std::strcmp(v, "off") == 0 || std::strcmp(v, "false") == 0));
}

constexpr size_t kAlign = 256;

}  // namespace

HostStaging::HostStaging(int chunks, const char* what)
    : enabled_(staging_enabled_by_env()), count_(chunks < 1 ? 1 : chunks), what_(what) {}

void HostStaging::init() {
  if (!chunks_.empty() || !enabled_) return;
  std::vector<Chunk> made;
  for (int i = 0; i < count_; ++i) {
    Chunk c;
    const cudaError_t e = cudaHostAlloc(&c.host, kChunkBytes, cudaHostAllocDefault);
    if (e != cudaSuccess) {
      // Pinned memory is a resource limit (ulimit -l, containers): fall back to pageable copies.
      cudaGetLastError();
      std::fprintf(stderr, "cpc: cuda: cudaHostAlloc of %zu bytes failed (%s); %s stay pageable\n", kChunkBytes,
                   cudaGetErrorName(e), what_);
      for (Chunk& m : made) {
        cudaFreeHost(m.host);
        cudaEventDestroy(m.done);
      }
      enabled_ = false;
      return;
    }
    CPC_CUDA_CHECK(cudaEventCreateWithFlags(&c.done, cudaEventDisableTiming));
    made.push_back(c);
  }
  chunks_ = std::move(made);
}

void HostStaging::copy_to_device(void* dst, const void* src, size_t bytes, cudaStream_t stream) {
  if (bytes == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  init();
  if (!enabled_) {
    CPC_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream));
    return;
  }
  // The current chunk is filled from offset_ on; a piece that does not fit moves to the
  // next chunk, which is reused only after its previous transfers have completed.
  auto* d = static_cast<char*>(dst);
  const auto* s = static_cast<const char*>(src);
  while (bytes > 0) {
    if (offset_ >= kChunkBytes) {
      next_ = (next_ + 1) % count_;
      CPC_CUDA_CHECK(cudaEventSynchronize(chunks_[next_].done));
      offset_ = 0;
    }
    Chunk& c = chunks_[next_];
    const size_t piece = std::min(bytes, kChunkBytes - offset_);
    char* staged = static_cast<char*>(c.host) + offset_;
    std::memcpy(staged, s, piece);
    CPC_CUDA_CHECK(cudaMemcpyAsync(d, staged, piece, cudaMemcpyHostToDevice, stream));
    CPC_CUDA_CHECK(cudaEventRecord(c.done, stream));
    offset_ += (piece + kAlign - 1) / kAlign * kAlign;
    d += piece, s += piece, bytes -= piece;
  }
}

}  // namespace cpc::cuda
