#pragma once
// RIFF/WAVE files: a reader for the common uncompressed encodings and a small writer
// (used by the tests). Supported: PCM 8-bit unsigned, 16/24/32-bit signed, IEEE float
// 32/64, and WAVE_FORMAT_EXTENSIBLE wrapping either; any channel count. Samples come
// back as float in [-1, 1) (PCM full scale) or as stored (float formats).
#include <cstdint>
#include <string>
#include <vector>

namespace cpc::tools {

enum class WavEncoding { pcm_u8, pcm_s16, pcm_s24, pcm_s32, float32, float64 };

struct WavAudio {
  int channels = 0;
  double rate = 0;  // Hz
  int64_t frames = 0;
  WavEncoding encoding = WavEncoding::pcm_s16;
  std::vector<float> samples;  // planar: samples[c * frames + i]
};

// Reads a whole file. Throws cpc::Error naming the file for anything that is not a
// complete, supported WAV file (not RIFF, truncated, unsupported format tag, NaN/Inf
// float samples). Unknown chunks are skipped, odd-sized chunks padded as RIFF says.
WavAudio read_wav(const std::string& path);

struct WavWriteOptions {
  WavEncoding encoding = WavEncoding::pcm_s16;
  bool extensible = false;   // WAVE_FORMAT_EXTENSIBLE header instead of the plain one
  bool extra_chunk = false;  // an odd-sized unknown chunk before "data" (reader tests)
};

// Writes planar samples (channels x frames) quantized to the encoding: PCM rounds to
// nearest and clamps to full scale.
void write_wav(const std::string& path, const WavAudio& audio, const WavWriteOptions& options = {});

}  // namespace cpc::tools
