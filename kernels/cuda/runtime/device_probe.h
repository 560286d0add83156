#pragma once
// Is there a CUDA device, and what is it: asked once per process, answerable without a
// driver (the count is then 0 and the reason says why).
#include <string>

namespace cpc::cuda {

int device_count();
// Why there is no device (for messages); meaningful when device_count() == 0.
std::string no_device_reason();
// " [0] NVIDIA H200 (sm_90, 132 SMs, 143771 MiB)" per device, or the reason there is none.
std::string describe_devices();
// Runtime and driver versions, cuDNN and cuBLAS: "CUDA runtime 13.0 (driver 13.0), cuDNN 9.x.y, cuBLAS a.b.c".
std::string describe_libraries();

}  // namespace cpc::cuda
