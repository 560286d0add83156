#pragma once
// What the importers' tests share: a temporary directory, byte and text files, a WAV
// header written by hand (independent of write_wav), and error messages.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/core/error.h"
#include "engine/data/h5_file.h"
#include "engine/data/window_dataset.h"
#include "tests/support/error_of.h"
#include "tools/prepare/prepare_audio.h"
#include "tools/prepare/prepare_csv.h"
#include "tools/prepare/prepare_wfdb.h"
#include "tools/prepare/resample.h"
#include "tools/prepare/wav_file.h"
#include "tools/prepare/wfdb_record.h"

namespace cpc::tools::prepare_test {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;

inline constexpr double kPi = 3.14159265358979323846;

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/cpc_prepare_XXXXXX";
    const char* made = mkdtemp(tmpl);
    if (!made) throw std::runtime_error(std::string("cannot create a directory from /tmp/cpc_prepare_XXXXXX: ") +
                                        std::strerror(errno));
    path = made;
  }
  ~TempDir() { fs::remove_all(path); }
  std::string operator/(const std::string& rel) const {
    const fs::path p = fs::path(path) / rel;
    fs::create_directories(p.parent_path());
    return p.string();
  }
};

using test::error_of;

inline void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

inline std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

inline void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// A 44-byte canonical header followed by raw sample bytes: independent of write_wav.
inline std::vector<uint8_t> wav_bytes(uint16_t tag, int channels, uint32_t rate, int bits, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> b;
  auto p16 = [&](uint32_t v) { b.push_back(v & 0xFF), b.push_back((v >> 8) & 0xFF); };
  auto p32 = [&](uint32_t v) { p16(v & 0xFFFF), p16(v >> 16); };
  auto id = [&](const char* s) { b.insert(b.end(), s, s + 4); };
  const uint32_t align = static_cast<uint32_t>(channels * bits / 8);
  id("RIFF"), p32(36 + static_cast<uint32_t>(data.size())), id("WAVE");
  id("fmt "), p32(16), p16(tag), p16(static_cast<uint32_t>(channels)), p32(rate), p32(rate * align), p16(align),
      p16(static_cast<uint32_t>(bits));
  id("data"), p32(static_cast<uint32_t>(data.size()));
  b.insert(b.end(), data.begin(), data.end());
  return b;
}

// Values exact in every encoding (multiples of 1/128 in [-1, 127/128]).
inline const std::vector<float> kExact = {0.0f, 0.5f, -0.5f, -1.0f, 0.25f, -0.125f, 127.0f / 128, -0.0078125f};

inline std::vector<float> sine(double freq, double rate, int64_t n, double amplitude) {
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    x[static_cast<size_t>(i)] = static_cast<float>(amplitude * std::sin(2 * kPi * freq * i / rate));
  return x;
}

struct Fit {
  double amplitude, residual;  // of y against the ideal sine at the output rate
};

// Least-squares fit of a sin + b cos at `freq` over the middle of y (edges see zeros).
inline Fit fit_sine(const std::vector<float>& y, double freq, double rate, double amplitude) {
  const int64_t n = static_cast<int64_t>(y.size()), lo = n / 5, hi = n - n / 5;
  double ss = 0, sc = 0, err = 0, energy = 0;
  for (int64_t i = lo; i < hi; ++i) {
    const double w = 2 * kPi * freq * i / rate;
    ss += y[static_cast<size_t>(i)] * std::sin(w), sc += y[static_cast<size_t>(i)] * std::cos(w);
    const double e = y[static_cast<size_t>(i)] - amplitude * std::sin(w);
    err += e * e, energy += amplitude * amplitude * std::sin(w) * std::sin(w);
  }
  const double m = static_cast<double>(hi - lo);
  return {std::hypot(2 * ss / m, 2 * sc / m), std::sqrt(err / energy)};
}

inline std::vector<float> read_recording(const WindowDataset& d, int64_t rec) {
  std::vector<float> out(static_cast<size_t>(d.channels() * d.length(rec)));
  WindowDataset full(d.path(), d.channels(), d.length(rec));
  full.read_window(rec, 0, out.data());
  return out;
}

}  // namespace cpc::tools::prepare_test
