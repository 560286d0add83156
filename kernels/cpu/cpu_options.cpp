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
  if (const char* l = std::getenv("CPC_CPU_LAYOUT")) set_option(o, "layout", l, "CPC_CPU_LAYOUT");
  if (const char* a = std::getenv("CPC_CPU_BF16_ACTIVATIONS"))
    set_option(o, "bf16_activations", a, "CPC_CPU_BF16_ACTIVATIONS");
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
  } else if (key == "layout") {
    CPC_CHECK(value == "auto" || value == "nwc" || value == "ncw", where, "='", value,
              "': expected auto, nwc or ncw");
    o.layout = value == "auto" ? ConvLayout::automatic : value == "nwc" ? ConvLayout::nwc : ConvLayout::ncw;
  } else if (key == "bf16_activations") {
    CPC_CHECK(value == "on" || value == "off", where, "='", value, "': expected on or off");
    o.bf16_activations = value == "on";
  } else {
    fail(where, ": unknown cpu option '", key,
         "' (expected gemm, conv, layout or bf16_activations; the arithmetic is train.precision)");
  }
}

CpuOptions& cpu_options() {
  static CpuOptions o = from_environment();
  return o;
}

std::string describe(const CpuOptions& o) {
  return cat("gemm: ", o.gemm == GemmLibrary::onednn ? "oneDNN sgemm" : "OpenBLAS sgemm",
             ", conv1d: ", o.conv == ConvAlgorithm::onednn ? "oneDNN convolution" : "im2col + gemm",
             o.channels_last() ? " (channels-last; 256+ channels as GEMMs over strided windows)" : "");
}

}  // namespace cpc::cpu
