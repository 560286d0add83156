#pragma once
// Which library the CPU backend uses for GEMM and Conv1d. Defaults are chosen by
// measurement (bench/core_bench.cpp, README "Benchmarks"): oneDNN for both, because
// it detects AVX-512 by itself while OpenBLAS is pinned to its Haswell kernels on
// these machines (OPENBLAS_CORETYPE). Environment overrides, read once at start-up:
//   CPC_CPU_GEMM=onednn|openblas   CPC_CPU_CONV=onednn|im2col   CPC_CPU_LAYOUT=auto|nwc|ncw
//   CPC_CPU_BF16_ACTIVATIONS=on|off
// The alternatives stay tested (tests run the parity cases under both). layout: the
// encoder's activations channels-last (B, L, C) or (B, C, L). Channels-last, oneDNN 2.6
// runs its direct convolution kernels up to 128 channels, and wider layers run as GEMMs
// over strided windows (conv1d_gemm.h); (B, C, L), oneDNN runs im2col + its GEMM.
// auto (the default) = channels-last: measured per config (whole training step, batch
// 64 / 8 / 8, 2 threads, channels-last vs not): ecg12 (64-128 channels) 1.7x faster
// convolutions; audio_cdck2 (512) 407 vs 467 ms; audio_cpc_content (256) 147 vs 182 ms;
// audio_cdck2 bf16 285 vs 295 ms.
#include <cstdint>
#include <string>

namespace cpc::cpu {

enum class GemmLibrary { onednn, openblas };
enum class ConvAlgorithm { onednn, im2col };  // im2col runs on the selected GEMM
enum class ConvLayout { automatic, nwc, ncw };

struct CpuOptions {
  GemmLibrary gemm = GemmLibrary::onednn;
  ConvAlgorithm conv = ConvAlgorithm::onednn;
  ConvLayout layout = ConvLayout::automatic;  // channels-last needs oneDNN convolution
  // Under precision bf16, a BatchNorm (+ ReLU) whose output feeds a GEMM convolution
  // stores it as bf16: the values that convolution rounds its input to, written once at
  // half the bytes (autocast's bf16 activations). off: f32, rounded by the convolution.
  bool bf16_activations = true;
  // Whether the CPU backend runs conv1d on channels-last activations (and encoders use them).
  bool channels_last() const { return conv == ConvAlgorithm::onednn && layout != ConvLayout::ncw; }
};

CpuOptions& cpu_options();
// key gemm = onednn|openblas, conv = onednn|im2col, layout = auto|nwc|ncw,
// bf16_activations = on|off; `where`
// names the source in errors.
void set_option(CpuOptions& o, const std::string& key, const std::string& value, const std::string& where);
std::string describe(const CpuOptions& o);

}  // namespace cpc::cpu
