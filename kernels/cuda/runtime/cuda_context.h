#pragma once
// What the op implementations of the CUDA backend share: the compute stream, the
// library handles bound to it, the caching allocator and the math-mode switch.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "kernels/cuda/runtime/caching_allocator.h"

namespace cpc::cuda {

struct CudaContext {
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  cudnnHandle_t dnn = nullptr;  // null until an op needs cuDNN
  CachingAllocator* alloc = nullptr;
  // TF32 tensor-core math for fp32 GEMMs and convolutions (CPC_CUDA_TF32=1). Off by
  // default: fp32 results then agree with the CPU backend to fp32 rounding.
  bool tf32 = false;
  // Mixed precision (precision = bf16): convolutions and the batched GEMMs take bf16
  // inputs with fp32 accumulation; per-step GRU GEMMs and the losses stay fp32.
  bool bf16 = false;

  DeviceScratch scratch(size_t bytes) const { return DeviceScratch(*alloc, bytes, stream); }
};

}  // namespace cpc::cuda
