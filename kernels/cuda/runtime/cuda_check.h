#pragma once
// Status checks for the CUDA runtime, cuBLAS and cuDNN. Every failing call becomes a
// cpc::Error naming the call, the library's status name and text, and file:line, so a
// failure far from the GPU (a tool's top level) still says exactly what went wrong.
#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>

#include "engine/core/error.h"

namespace cpc::cuda {

[[noreturn]] inline void throw_status(const char* lib, const char* status_name, const char* status_text,
                                      const char* call, const char* file, int line) {
  fail(lib, " error: ", call, " returned ", status_name, " (", status_text, ") at ", file, ":", line);
}

inline void check_cuda(cudaError_t e, const char* call, const char* file, int line) {
  if (e == cudaSuccess) return;
  cudaGetLastError();  // clear a non-sticky error so the next check does not report it again
  throw_status("CUDA", cudaGetErrorName(e), cudaGetErrorString(e), call, file, line);
}

inline void check_cublas(cublasStatus_t s, const char* call, const char* file, int line) {
  if (s == CUBLAS_STATUS_SUCCESS) return;
  throw_status("cuBLAS", cublasGetStatusName(s), cublasGetStatusString(s), call, file, line);
}

inline void check_cudnn(cudnnStatus_t s, const char* call, const char* file, int line) {
  if (s == CUDNN_STATUS_SUCCESS) return;
  // cuDNN 9 names the status only; its last-error log says why (e.g. which descriptor).
  char detail[512] = "";
  cudnnGetLastErrorString(detail, sizeof(detail));
  throw_status("cuDNN", cudnnGetErrorString(s), detail[0] ? detail : "no detail", call, file, line);
}

}  // namespace cpc::cuda

// One checker per library: the status enums do not convert into each other, so a
// call wrapped in the wrong macro fails to compile instead of misreporting.
#define CPC_CUDA_CHECK(expr) ::cpc::cuda::check_cuda((expr), #expr, __FILE__, __LINE__)
#define CPC_CUBLAS_CHECK(expr) ::cpc::cuda::check_cublas((expr), #expr, __FILE__, __LINE__)
#define CPC_CUDNN_CHECK(expr) ::cpc::cuda::check_cudnn((expr), #expr, __FILE__, __LINE__)
