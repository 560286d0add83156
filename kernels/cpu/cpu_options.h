#pragma once
// Which library the CPU backend uses for GEMM and Conv1d. Defaults are chosen by
// measurement (bench/core_bench.cpp, README "Benchmarks"): oneDNN for both, because
// it detects AVX-512 by itself while OpenBLAS is pinned to its Haswell kernels on
// these machines (OPENBLAS_CORETYPE). Environment overrides, read once at start-up:
//   CPC_CPU_GEMM=onednn|openblas   CPC_CPU_CONV=onednn|im2col
// The alternatives stay tested (tests run the parity cases under both).
#include <string>

namespace cpc::cpu {

enum class GemmLibrary { onednn, openblas };
enum class ConvAlgorithm { onednn, im2col };  // im2col runs on the selected GEMM

struct CpuOptions {
  GemmLibrary gemm = GemmLibrary::onednn;
  ConvAlgorithm conv = ConvAlgorithm::onednn;
  // Mixed precision: convolution and GEMM inputs rounded to bf16, products accumulated
  // in fp32 (outputs, gradients, weights, norms and the losses stay fp32).
  bool bf16 = false;
};

CpuOptions& cpu_options();
// key gemm = onednn|openblas, conv = onednn|im2col, precision = fp32|bf16; `where`
// names the source in errors.
void set_option(CpuOptions& o, const std::string& key, const std::string& value, const std::string& where);
std::string describe(const CpuOptions& o);

}  // namespace cpc::cpu
