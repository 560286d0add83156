#include "kernels/cpu/cpu_options.h"

#include <oneapi/dnnl/dnnl.h>

#include <cstdlib>

#include "engine/core/error.h"

namespace cpc::cpu {

namespace {
CpuOptions from_environment() {
  CpuOptions o;
  if (const char* g = std::getenv("CPC_CPU_GEMM")) set_option(o, "gemm", g, "CPC_CPU_GEMM");
  if (const char* c = std::getenv("CPC_CPU_CONV")) set_option(o, "conv", c, "CPC_CPU_CONV");
  return o;
}
}  // namespace

void set_option(CpuOptions& o, const std::string& key, const std::string& value, const std::string& where) {
  if (key == "gemm") {
    CPC_CHECK(value == "onednn" || value == "openblas", where, "='", value, "': expected onednn or openblas");
    o.gemm = value == "onednn" ? GemmLibrary::onednn : GemmLibrary::openblas;
  } else if (key == "conv") {
    CPC_CHECK(value == "onednn" || value == "im2col", where, "='", value, "': expected onednn or im2col");
    o.conv = value == "onednn" ? ConvAlgorithm::onednn : ConvAlgorithm::im2col;
  } else if (key == "precision") {
    CPC_CHECK(value == "fp32" || value == "bf16", where, "='", value, "': expected fp32 or bf16");
    const unsigned isa = static_cast<unsigned>(dnnl_get_effective_cpu_isa()), need = dnnl_cpu_isa_avx512_core;
    CPC_CHECK(value == "fp32" || (isa & need) == need, where,
              "=bf16: this CPU lacks AVX-512, which oneDNN's bf16 convolutions need; use fp32");
    o.bf16 = value == "bf16";
  } else {
    fail(where, ": unknown cpu option '", key, "' (expected gemm, conv or precision)");
  }
}

CpuOptions& cpu_options() {
  static CpuOptions o = from_environment();
  return o;
}

std::string describe(const CpuOptions& o) {
  return cat("gemm: ", o.gemm == GemmLibrary::onednn ? "oneDNN sgemm" : "OpenBLAS sgemm",
             ", conv1d: ", o.conv == ConvAlgorithm::onednn ? "oneDNN convolution" : "im2col + gemm",
             o.bf16 ? ", precision: bf16 inputs, fp32 accumulation" : ", precision: fp32");
}

}  // namespace cpc::cpu
