#include "kernels/cuda/runtime/device_probe.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <library_types.h>

#include "engine/core/error.h"

static_assert(CUDNN_MAJOR >= 9, "describe_libraries() decodes cudnnGetVersion() as cuDNN 9 (major*10000 + ...)");

namespace cpc::cuda {

namespace {

// cudaGetDeviceCount, asked once. Without a driver it fails (cudaErrorInsufficientDriver)
// and leaves the count unwritten, hence the 0 default.
struct DeviceProbe {
  int count = 0;
  cudaError_t status = cudaSuccess;
};

const DeviceProbe& probe() {
  static const DeviceProbe p = [] {
    DeviceProbe r;
    r.status = cudaGetDeviceCount(&r.count);
    if (r.status != cudaSuccess) {
      r.count = 0;
      cudaGetLastError();  // do not let the probe's failure surface at the next launch check
    }
    return r;
  }();
  return p;
}

std::string cuda_version(int v) { return v <= 0 ? std::string("none") : cat(v / 1000, ".", (v % 1000) / 10); }

std::string cublas_version() {
  int major = 0, minor = 0, patch = 0;
  // Library constants: no handle and no GPU needed.
  if (cublasGetProperty(MAJOR_VERSION, &major) != CUBLAS_STATUS_SUCCESS ||
      cublasGetProperty(MINOR_VERSION, &minor) != CUBLAS_STATUS_SUCCESS ||
      cublasGetProperty(PATCH_LEVEL, &patch) != CUBLAS_STATUS_SUCCESS)
    return "unknown";
  return cat(major, ".", minor, ".", patch);
}

}  // namespace

int device_count() { return probe().count; }

std::string no_device_reason() {
  const DeviceProbe& p = probe();
  if (p.status != cudaSuccess)
    return cat("no CUDA device present (cudaGetDeviceCount: ", cudaGetErrorName(p.status), ", ",
               cudaGetErrorString(p.status), ")");
  return "no CUDA device present (cudaGetDeviceCount found 0 devices)";
}

std::string describe_devices() {
  const DeviceProbe& p = probe();
  if (p.count == 0) return no_device_reason();
  std::string s = cat(p.count, p.count == 1 ? " device:" : " devices:");
  for (int i = 0; i < p.count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) {
      cudaGetLastError();
      s += cat(" [", i, "] (properties unavailable)");
      continue;
    }
    s += cat(" [", i, "] ", prop.name, " (sm_", prop.major, prop.minor, ", ", prop.multiProcessorCount, " SMs, ",
             prop.totalGlobalMem >> 20, " MiB)");
  }
  return s;
}

std::string describe_libraries() {
  int runtime = 0, driver = 0;
  cudaRuntimeGetVersion(&runtime);
  cudaDriverGetVersion(&driver);  // 0 when no driver is installed
  const size_t dnn = cudnnGetVersion();
  return cat("CUDA runtime ", cuda_version(runtime), " (driver ", cuda_version(driver), "), cuDNN ", dnn / 10000, ".",
             (dnn % 10000) / 100, ".", dnn % 100, ", cuBLAS ", cublas_version());
}

}  // namespace cpc::cuda
