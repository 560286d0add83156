#include "kernels/cuda/runtime/device_context.h"

#include <cstdlib>
#include <cstring>

#include "engine/core/error.h"
#include "kernels/cuda/elementwise.h"
#include "kernels/cuda/runtime/cuda_check.h"
#include "kernels/cuda/runtime/device_probe.h"

namespace cpc::cuda {

namespace {
bool env_on(const char* name) {
  const char* v = std::getenv(name);
  return v && (std::strcmp(v, "1") == 0 || std::strcmp(v, "on") == 0 || std::strcmp(v, "true") == 0);
}
}  // namespace

DeviceContext::DeviceContext() : tf32_(env_on("CPC_CUDA_TF32")) {}

// call_once retries after a throw, so a failed first attempt is not cached.
cudaStream_t DeviceContext::stream() {
  std::call_once(stream_once_, [this] {
    CPC_CHECK(device_count() > 0, "cuda: cannot run kernels: ", no_device_reason());
    int dev = 0;
    CPC_CUDA_CHECK(cudaGetDevice(&dev));
    cudaStream_t s = nullptr;
    CPC_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    device_ = dev;
    stream_ = s;
  });
  return stream_;
}

int DeviceContext::device() {
  stream();
  return device_;
}

cublasHandle_t DeviceContext::blas() {
  std::call_once(blas_once_, [this] {
    cudaStream_t s = stream();
    cublasHandle_t h = nullptr;
    CPC_CUBLAS_CHECK(cublasCreate(&h));
    try {
      CPC_CUBLAS_CHECK(cublasSetStream(h, s));
      // No TF32 unless asked for: fp32 GEMMs then agree with the CPU backend to fp32 rounding.
      CPC_CUBLAS_CHECK(cublasSetMathMode(h, tf32_ ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
    } catch (...) {
      cublasDestroy(h);
      throw;
    }
    blas_ = h;
  });
  return blas_;
}

cudnnHandle_t DeviceContext::dnn() {
  std::call_once(dnn_once_, [this] {
    cudaStream_t s = stream();
    cudnnHandle_t h = nullptr;
    CPC_CUDNN_CHECK(cudnnCreate(&h));
    try {
      CPC_CUDNN_CHECK(cudnnSetStream(h, s));
    } catch (...) {
      cudnnDestroy(h);
      throw;
    }
    dnn_ = h;
  });
  return dnn_;
}

double* DeviceContext::scratch() {
  std::call_once(scratch_once_, [this] {
    scratch_ = static_cast<double*>(alloc_.allocate(sizeof(double) * kReduceScratch, stream()));
  });
  return scratch_;
}

void DeviceContext::set_tf32(bool on) {
  tf32_ = on;
  if (blas_) CPC_CUBLAS_CHECK(cublasSetMathMode(blas_, tf32_ ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH));
}

void DeviceContext::require_bf16() {
  std::call_once(bf16_once_, [this] {  // bf16 tensor cores (and cuDNN's bf16 convolutions) need sm_80+
    CPC_CHECK(device_count() > 0, "precision bf16 on cuda: ", no_device_reason());
    const int dev = device();
    int major = 0, minor = 0;
    CPC_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev));
    CPC_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev));
    CPC_CHECK(major >= 8, "precision bf16 needs compute capability 8.0 or newer (bf16 tensor cores); ", "cuda:", dev,
              " is ", major, ".", minor, ": use train.precision=fp32");
  });
}

CudaContext DeviceContext::ctx(bool need_dnn, bool bf16) {
  CudaContext c;
  c.stream = stream();
  c.blas = blas();
  c.dnn = need_dnn ? dnn() : nullptr;
  c.alloc = &alloc_;
  c.tf32 = tf32_;
  c.bf16 = bf16;
  return c;
}

float* DeviceContext::ptr(const Tensor& t, const char* op, const char* role) {
  const int dev = device();
  CPC_CHECK(t.device().index == dev, op, " on cuda: ", role, " is on ", t.device().str(),
            " but this backend serves cuda:", dev, " (the device current at its first use)");
  return t.f32();
}

void DeviceContext::check_device_pointer(const void* p, const char* op, const char* what) {
  CPC_CHECK(p != nullptr, op, " on cuda: ", what, " is a null pointer");
  const int dev = device();
  cudaPointerAttributes attr{};
  CPC_CUDA_CHECK(cudaPointerGetAttributes(&attr, p));
  CPC_CHECK(attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged, op, " on cuda: ", what,
            " is not device memory (pass the f32() of cuda tensors)");
  CPC_CHECK(attr.type == cudaMemoryTypeManaged || attr.device == dev, op, " on cuda: ", what, " lives on cuda:",
            attr.device, " but this backend serves cuda:", dev);
}

}  // namespace cpc::cuda
