#include "kernels/cuda/runtime/copy_stream.h"

#include "engine/core/error.h"
#include "kernels/cuda/runtime/cuda_check.h"

namespace cpc::cuda {

uint64_t CopyStream::copy(void* dst, const void* src, size_t bytes, cudaStream_t compute, int device) {
  CPC_CUDA_CHECK(cudaSetDevice(device));  // this thread's current device: the events and stream live there
  std::lock_guard<std::mutex> issue(issue_mu_);
  {
    std::lock_guard<std::mutex> ev(event_mu_);
    if (!stream_) {
      CPC_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
      CPC_CUDA_CHECK(cudaEventCreateWithFlags(&compute_mark_, cudaEventDisableTiming));
      for (cudaEvent_t& e : done_) CPC_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    }
  }
  CPC_CUDA_CHECK(cudaEventRecord(compute_mark_, compute));
  CPC_CUDA_CHECK(cudaStreamWaitEvent(stream_, compute_mark_, 0));
  try {
    staging_.copy_to_device(dst, src, bytes, stream_);
  } catch (...) {  // no ticket for a failed copy: let no piece of it stay in flight into a buffer about to be freed
    cudaStreamSynchronize(stream_);
    throw;
  }
  std::lock_guard<std::mutex> ev(event_mu_);
  const uint64_t ticket = ++tickets_;
  CPC_CUDA_CHECK(cudaEventRecord(done_[ticket % kEvents], stream_));
  return ticket;
}

void CopyStream::wait(uint64_t ticket, cudaStream_t compute, int device) {
  if (ticket == 0) return;
  std::lock_guard<std::mutex> ev(event_mu_);
  CPC_CHECK(ticket <= tickets_, "wait_copy on cuda: ticket ", ticket, " was never issued (last ", tickets_, ")");
  CPC_CUDA_CHECK(cudaSetDevice(device));
  CPC_CUDA_CHECK(cudaStreamWaitEvent(compute, done_[ticket % kEvents], 0));
}

}  // namespace cpc::cuda
