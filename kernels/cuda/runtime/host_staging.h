#pragma once
// Host -> device copies through pinned (page-locked) staging buffers. cudaMemcpyAsync
// from pageable memory is synchronous with the host and goes through the driver's own
// small staging area; here the host source is memcpy'd into one of a ring of pinned
// chunks and the DMA is queued on the compute stream, so copy() returns before the
// transfer ends and the next chunk's memcpy overlaps the previous chunk's DMA. The
// caller may reuse its source at once (the bytes are already in the chunk). Each chunk
// carries an event: it is refilled only after its last transfer has completed.
//
// CPC_CUDA_PINNED=0 turns staging off (plain cudaMemcpyAsync from pageable memory).
#include <cuda_runtime_api.h>

#include <cstddef>
#include <mutex>
#include <vector>

namespace cpc::cuda {

class HostStaging {
 public:
  // `chunks` pinned chunks of kChunkBytes; `what` names the copies in the message
  // printed if pinned memory cannot be had.
  explicit HostStaging(int chunks = kDefaultChunks, const char* what = "host->device copies");
  // Pinned chunks and events are never released: this object dies during static
  // destruction, when the CUDA runtime may already be gone.
  ~HostStaging() = default;

  // Queues dst (device) <- src (pageable host) on stream; returns when src may be reused.
  void copy_to_device(void* dst, const void* src, size_t bytes, cudaStream_t stream);
  bool enabled() const { return enabled_; }

  static constexpr size_t kChunkBytes = size_t{4} << 20;
  static constexpr int kDefaultChunks = 4;

 private:
  struct Chunk {
    void* host = nullptr;
    cudaEvent_t done = nullptr;
  };
  bool enabled_ = true;
  int count_;
  const char* what_;
  std::mutex mu_;
  std::vector<Chunk> chunks_;
  int next_ = 0;       // the chunk being filled
  size_t offset_ = 0;  // its first free byte
  void init();         // pinned allocation on first use (needs a device)
};

}  // namespace cpc::cuda
