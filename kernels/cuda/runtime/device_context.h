#pragma once
// The CUDA backend's device state: the compute stream (made on first use, which fixes
// the device served), the cuBLAS and cuDNN handles bound to it, the caching allocator,
// the reduction scratch and the math modes. The op implementations get a CudaContext
// snapshot of it per call.
//
// Handles and the stream are deliberately never destroyed: the backend dies during
// static destruction, when the CUDA runtime may already be torn down; the driver
// reclaims them at process exit.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include <mutex>

#include "engine/core/tensor.h"
#include "kernels/cuda/runtime/caching_allocator.h"
#include "kernels/cuda/runtime/cuda_context.h"

namespace cpc::cuda {

class DeviceContext {
 public:
  DeviceContext();

  cudaStream_t stream();  // fails with no_device_reason() without a device
  cudaStream_t stream_if_made() const { return stream_; }
  int device();           // the device index this backend serves
  cublasHandle_t blas();
  cudnnHandle_t dnn();
  double* scratch();  // kReduceScratch doubles for reductions
  CachingAllocator& alloc() { return alloc_; }
  const CachingAllocator& alloc() const { return alloc_; }

  bool tf32() const { return tf32_; }
  void set_tf32(bool on);
  // Fails unless the device has bf16 tensor cores (compute capability 8.0+); asked once.
  void require_bf16();

  // What the op implementations share; cuDNN is created only for ops that use it. bf16:
  // the op runs in the step's mixed precision (convolution and batched-GEMM inputs).
  CudaContext ctx(bool need_dnn, bool bf16 = false);

  // The device pointer of a checked tensor, after checking it lives on the device this
  // context serves (the front checks kind, dtype and layout, not the index).
  float* ptr(const Tensor& t, const char* op, const char* role);
  float* ptr_opt(const Tensor& t, const char* op, const char* role) { return t.defined() ? ptr(t, op, role) : nullptr; }
  // GemmArgs carries raw pointers: a host pointer is caught here rather than as an
  // illegal-address fault that would poison the context.
  void check_device_pointer(const void* p, const char* op, const char* what);

 private:
  std::once_flag stream_once_, blas_once_, dnn_once_, scratch_once_;
  cudaStream_t stream_ = nullptr;
  int device_ = -1;
  cublasHandle_t blas_ = nullptr;
  cudnnHandle_t dnn_ = nullptr;
  double* scratch_ = nullptr;
  bool tf32_ = false;
  std::once_flag bf16_once_;
  // Never destroyed (like the handles): Buffers of static tensors may be freed after
  // the backend object during static destruction.
  CachingAllocator& alloc_ = *new CachingAllocator;
};

}  // namespace cpc::cuda
