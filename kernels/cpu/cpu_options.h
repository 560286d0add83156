#pragma once
// Which library the CPU backend uses for GEMM and Conv1d. Defaults are chosen by
// measurement (bench/core_bench.cpp, README "Benchmarks"): oneDNN for both, because
// it detects AVX-512 by itself while OpenBLAS is pinned to its Haswell kernels on
// these machines (OPENBLAS_CORETYPE). Environment overrides, read once at start-up:
//   CPC_CPU_GEMM=onednn|openblas   CPC_CPU_CONV=onednn|im2col   CPC_CPU_LAYOUT=nwc|ncw
// The alternatives stay tested (tests run the parity cases under both). layout: the
// encoder's activations channels-last (B, L, C), where oneDNN's direct convolution
// kernels run (the default with oneDNN convolution), or (B, C, L), where oneDNN falls
// back to im2col + GEMM.
#include <string>

namespace cpc::cpu {

enum class GemmLibrary { onednn, openblas };
enum class ConvAlgorithm { onednn, im2col };  // im2col runs on the selected GEMM
enum class ConvLayout { nwc, ncw };

struct CpuOptions {
  GemmLibrary gemm = GemmLibrary::onednn;
  ConvAlgorithm conv = ConvAlgorithm::onednn;
  ConvLayout layout = ConvLayout::nwc;  // nwc takes effect with oneDNN convolution only
  bool channels_last() const { return conv == ConvAlgorithm::onednn && layout == ConvLayout::nwc; }
};

CpuOptions& cpu_options();
// key gemm = onednn|openblas, conv = onednn|im2col, layout = nwc|ncw; `where`
// names the source in errors.
void set_option(CpuOptions& o, const std::string& key, const std::string& value, const std::string& where);
std::string describe(const CpuOptions& o);

}  // namespace cpc::cpu
