#pragma once
// Which library the CPU backend uses for GEMM and Conv1d. Defaults are chosen by
// measurement (bench/core_bench.cpp, README "Benchmarks"): oneDNN for both, because
// it detects AVX-512 by itself while OpenBLAS is pinned to its Haswell kernels on
// these machines (OPENBLAS_CORETYPE). Environment overrides, read once at start-up:
//   CPC_CPU_GEMM=onednn|openblas   CPC_CPU_CONV=onednn|im2col   CPC_CPU_LAYOUT=auto|nwc|ncw
// The alternatives stay tested (tests run the parity cases under both). layout: the
// encoder's activations channels-last (B, L, C), where oneDNN 2.6 runs its direct
// convolution kernels, or (B, C, L), where it runs im2col + GEMM. auto (the default):
// channels-last for encoders no wider than kChannelsLastWidest channels. Measured over
// each config's convolutions (fwd + bwd data + bwd weights, 2 threads, channels-last vs
// not): ecg12 (64-128 channels, batch 64) 121 vs 202 ms; audio_cpc_content (256, batch 8)
// 135 vs 120 ms; audio_cdck2 (512) 687 vs 426 ms: oneDNN's weight-gradient kernel on
// (B, L, C) is 1.6-3x slower than im2col's at 256-512 channels over 1000s of steps.
#include <cstdint>
#include <string>

namespace cpc::cpu {

enum class GemmLibrary { onednn, openblas };
enum class ConvAlgorithm { onednn, im2col };  // im2col runs on the selected GEMM
enum class ConvLayout { automatic, nwc, ncw };
constexpr int64_t kChannelsLastWidest = 128;

struct CpuOptions {
  GemmLibrary gemm = GemmLibrary::onednn;
  ConvAlgorithm conv = ConvAlgorithm::onednn;
  ConvLayout layout = ConvLayout::automatic;  // channels-last needs oneDNN convolution
  // Whether the CPU backend runs conv1d on channels-last activations at all.
  bool channels_last() const { return conv == ConvAlgorithm::onednn && layout != ConvLayout::ncw; }
  // Whether an encoder whose widest convolution has `widest` channels should use it.
  bool prefer_channels_last(int64_t widest) const {
    return channels_last() && (layout == ConvLayout::nwc || widest <= kChannelsLastWidest);
  }
};

CpuOptions& cpu_options();
// key gemm = onednn|openblas, conv = onednn|im2col, layout = auto|nwc|ncw; `where`
// names the source in errors.
void set_option(CpuOptions& o, const std::string& key, const std::string& value, const std::string& where);
std::string describe(const CpuOptions& o);

}  // namespace cpc::cpu
