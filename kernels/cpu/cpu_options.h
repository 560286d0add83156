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
};

CpuOptions& cpu_options();
// key gemm = onednn|openblas, conv = onednn|im2col; `where`
// names the source in errors.
void set_option(CpuOptions& o, const std::string& key, const std::string& value, const std::string& where);
std::string describe(const CpuOptions& o);

}  // namespace cpc::cpu
