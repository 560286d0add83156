#include "kernels/cpu/cpu_options.h"

#include <cstdlib>

#include "engine/error.h"

namespace cpc::cpu {

namespace {
CpuOptions from_environment() {
  CpuOptions o;
  if (const char* g = std::getenv("CPC_CPU_GEMM")) {
    const std::string s = g;
    CPC_CHECK(s == "onednn" || s == "openblas", "CPC_CPU_GEMM='", s, "': expected onednn or openblas");
    o.gemm = s == "onednn" ? GemmLibrary::onednn : GemmLibrary::openblas;
  }
  if (const char* c = std::getenv("CPC_CPU_CONV")) {
    const std::string s = c;
    CPC_CHECK(s == "onednn" || s == "im2col", "CPC_CPU_CONV='", s, "': expected onednn or im2col");
    o.conv = s == "onednn" ? ConvAlgorithm::onednn : ConvAlgorithm::im2col;
  }
  return o;
}
}  // namespace

CpuOptions& cpu_options() {
  static CpuOptions o = from_environment();
  return o;
}

std::string describe(const CpuOptions& o) {
  return cat("gemm: ", o.gemm == GemmLibrary::onednn ? "oneDNN sgemm" : "OpenBLAS sgemm",
             ", conv1d: ", o.conv == ConvAlgorithm::onednn ? "oneDNN convolution" : "im2col + gemm");
}

}  // namespace cpc::cpu
