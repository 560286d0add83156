// The importers: WAV decoding per sample format, the resampler's passband and
// stopband, WFDB formats 16/212, numeric CSV, the `prepare wav|wfdb|csv` files read
// back through WindowDataset, and one error message per kind of bad input.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "engine/core/error.h"
#include "engine/data/h5_file.h"
#include "engine/data/window_dataset.h"
#include "tools/prepare/prepare_audio.h"
#include "tools/prepare/prepare_csv.h"
#include "tools/prepare/prepare_wfdb.h"
#include "tools/prepare/resample.h"
#include "tools/prepare/wav_file.h"
#include "tools/prepare/wfdb_record.h"

namespace cpc::tools {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr double kPi = 3.14159265358979323846;

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/cpc_prepare_XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string operator/(const std::string& rel) const {
    const fs::path p = fs::path(path) / rel;
    fs::create_directories(p.parent_path());
    return p.string();
  }
};

template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// A 44-byte canonical header followed by raw sample bytes: independent of write_wav.
std::vector<uint8_t> wav_bytes(uint16_t tag, int channels, uint32_t rate, int bits, const std::vector<uint8_t>& data) {
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
const std::vector<float> kExact = {0.0f, 0.5f, -0.5f, -1.0f, 0.25f, -0.125f, 127.0f / 128, -0.0078125f};

// ---------------------------------------------------------------- WAV

TEST(PrepareWavFile, DecodesHandMadeFilesOfEachPcmWidth) {
  TempDir d;
  // 16-bit stereo: frames (0x4000, 0x8000) and (0xFFFF, 0x7FFF).
  write_bytes(d / "s16.wav", wav_bytes(1, 2, 8000, 16, {0x00, 0x40, 0x00, 0x80, 0xFF, 0xFF, 0xFF, 0x7F}));
  WavAudio a = read_wav(d / "s16.wav");
  ASSERT_EQ(a.channels, 2);
  ASSERT_EQ(a.frames, 2);
  EXPECT_EQ(a.rate, 8000);
  EXPECT_EQ(a.samples, (std::vector<float>{0.5f, -1.0f / 32768, -1.0f, 32767.0f / 32768}));  // planar
  // 8-bit unsigned: 128 is zero, 0 is -1, 255 is 127/128; odd data size + pad byte.
  std::vector<uint8_t> u8 = wav_bytes(1, 1, 11025, 8, {128, 0, 255});
  u8.push_back(0);
  write_bytes(d / "u8.wav", u8);
  a = read_wav(d / "u8.wav");
  EXPECT_EQ(a.encoding, WavEncoding::pcm_u8);
  EXPECT_EQ(a.samples, (std::vector<float>{0.0f, -1.0f, 127.0f / 128}));
  // 24-bit: 0x400000 = 0.5, 0xC00000 = -0.5, 0x800000 = -1.
  write_bytes(d / "s24.wav", wav_bytes(1, 1, 16000, 24, {0x00, 0x00, 0x40, 0x00, 0x00, 0xC0, 0x00, 0x00, 0x80}));
  a = read_wav(d / "s24.wav");
  EXPECT_EQ(a.encoding, WavEncoding::pcm_s24);
  EXPECT_EQ(a.samples, (std::vector<float>{0.5f, -0.5f, -1.0f}));
  // 32-bit: 0x20000000 = 0.25, 0x80000000 = -1.
  write_bytes(d / "s32.wav", wav_bytes(1, 1, 16000, 32, {0x00, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x80}));
  a = read_wav(d / "s32.wav");
  EXPECT_EQ(a.samples, (std::vector<float>{0.25f, -1.0f}));
  // IEEE float32: 0x3F400000 = 0.75.
  write_bytes(d / "f32.wav", wav_bytes(3, 1, 16000, 32, {0x00, 0x00, 0x40, 0x3F}));
  a = read_wav(d / "f32.wav");
  EXPECT_EQ(a.encoding, WavEncoding::float32);
  EXPECT_EQ(a.samples, (std::vector<float>{0.75f}));
}

TEST(PrepareWavFile, RoundTripsEveryEncodingPlainAndExtensible) {
  TempDir d;
  WavAudio in;
  in.channels = 2, in.rate = 22050, in.frames = static_cast<int64_t>(kExact.size());
  for (float v : kExact) in.samples.push_back(v);                       // channel 0
  in.samples.insert(in.samples.end(), kExact.rbegin(), kExact.rend());  // channel 1
  for (WavEncoding e : {WavEncoding::pcm_u8, WavEncoding::pcm_s16, WavEncoding::pcm_s24, WavEncoding::pcm_s32,
                        WavEncoding::float32, WavEncoding::float64}) {
    for (bool ext : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "encoding " << static_cast<int>(e) << " extensible " << ext);
      const std::string p = d / "x.wav";
      write_wav(p, in, {e, ext, false});
      const WavAudio out = read_wav(p);
      EXPECT_EQ(out.encoding, e);
      EXPECT_EQ(out.channels, 2);
      EXPECT_EQ(out.rate, 22050);
      ASSERT_EQ(out.frames, in.frames);
      EXPECT_EQ(out.samples, in.samples);
    }
  }
}

TEST(PrepareWavFile, SkipsUnknownOddSizedChunksAndQuantizesToNearest) {
  TempDir d;
  WavAudio in;
  in.channels = 3, in.rate = 8000, in.frames = 3;  // 3 channels x 3 frames x 1 byte: odd data chunk
  in.samples = {0.5f, 0.004f, -0.006f, 0, 0, 0, -1, 1, 2};
  write_wav(d / "odd.wav", in, {WavEncoding::pcm_u8, false, true});
  const WavAudio out = read_wav(d / "odd.wav");
  ASSERT_EQ(out.channels, 3);
  ASSERT_EQ(out.frames, 3);
  // 0.004 * 128 = 0.512 -> 1; -0.006 * 128 = -0.768 -> -1; 1 and 2 clamp to 127/128.
  EXPECT_EQ(out.samples, (std::vector<float>{0.5f, 1.0f / 128, -1.0f / 128, 0, 0, 0, -1, 127.0f / 128, 127.0f / 128}));
}

TEST(PrepareWavFile, BadFilesGiveOneClearError) {
  TempDir d;
  const std::string not_riff = d / "notes.wav";
  write_text(not_riff, "hello, this is a text file and not audio at all\n");
  EXPECT_THAT(error_of([&] { read_wav(not_riff); }),
              AllOf(HasSubstr(not_riff), HasSubstr("not a RIFF/WAVE file"), HasSubstr("'hell")));

  WavAudio a;
  a.channels = 1, a.rate = 16000, a.frames = 100, a.samples.assign(100, 0.25f);
  const std::string truncated = d / "truncated.wav";
  write_wav(truncated, a);
  std::vector<uint8_t> b = read_bytes(truncated);
  b.resize(b.size() - 50);
  write_bytes(truncated, b);
  EXPECT_THAT(error_of([&] { read_wav(truncated); }), AllOf(HasSubstr(truncated), HasSubstr("truncated data chunk"),
                                                            HasSubstr("declares 200 bytes"), HasSubstr("holds 150")));

  const std::string mulaw = d / "mulaw.wav";
  write_bytes(mulaw, wav_bytes(7, 1, 8000, 8, {0x7F, 0xFF}));
  EXPECT_THAT(error_of([&] { read_wav(mulaw); }),
              AllOf(HasSubstr(mulaw), HasSubstr("unsupported WAV format tag 0x0007 (mu-law)"), HasSubstr("PCM")));

  const std::string nan = d / "nan.wav";
  a.samples[42] = std::nanf("");
  write_wav(nan, a, {WavEncoding::float32, false, false});
  EXPECT_THAT(error_of([&] { read_wav(nan); }), AllOf(HasSubstr(nan), HasSubstr("sample 42"), HasSubstr("NaN")));

  EXPECT_THAT(error_of([&] { read_wav(d / "missing.wav"); }), HasSubstr("missing.wav: no such file"));
}

// ---------------------------------------------------------------- resampler

std::vector<float> sine(double freq, double rate, int64_t n, double amplitude) {
  std::vector<float> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    x[static_cast<size_t>(i)] = static_cast<float>(amplitude * std::sin(2 * kPi * freq * i / rate));
  return x;
}

struct Fit {
  double amplitude, residual;  // of y against the ideal sine at the output rate
};

// Least-squares fit of a sin + b cos at `freq` over the middle of y (edges see zeros).
Fit fit_sine(const std::vector<float>& y, double freq, double rate, double amplitude) {
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

TEST(PrepareResample, OneKilohertzKeepsAmplitudeAndFrequency) {
  for (auto [in_rate, out_rate] : {std::pair{44100.0, 16000.0},
                                   {8000.0, 16000.0},
                                   {22050.0, 16000.0},
                                   {48000.0, 16000.0},
                                   {44100.0, 16000.0 * std::sqrt(2.0)},
                                   {16000.0, 8000.0 * kPi}}) {
    SCOPED_TRACE(::testing::Message() << in_rate << " -> " << out_rate);
    const Resampler r(in_rate, out_rate);
    const std::vector<float> x = sine(1000, in_rate, static_cast<int64_t>(in_rate), 0.8);
    const std::vector<float> y = r.process(x);
    EXPECT_EQ(static_cast<int64_t>(y.size()), static_cast<int64_t>(std::ceil(in_rate * out_rate / in_rate - 1e-6)));
    const Fit f = fit_sine(y, 1000, out_rate, 0.8);
    EXPECT_NEAR(f.amplitude, 0.8, 0.008);  // within 1%
    EXPECT_LT(f.residual, 0.01);           // the ideal sine in phase and frequency, to 1%
  }
  EXPECT_TRUE(Resampler(44100, 16000).exact_phases());
  EXPECT_FALSE(Resampler(44100, 16000 * std::sqrt(2.0)).exact_phases());
  EXPECT_EQ(Resampler(44100, 16000).output_length(44100), 16000);
  EXPECT_EQ(Resampler(8000, 16000).output_length(3), 6);
}

TEST(PrepareResample, ToneAboveTheNewNyquistIsRemoved) {
  for (auto [freq, in_rate, out_rate] : {std::tuple{10000.0, 44100.0, 16000.0},
                                         {9000.0, 22050.0, 16000.0},
                                         {8600.0, 44100.0, 16000.0 * std::sqrt(2.0) / 1.4}}) {
    SCOPED_TRACE(::testing::Message() << freq << " Hz, " << in_rate << " -> " << out_rate);
    const std::vector<float> x = sine(freq, in_rate, static_cast<int64_t>(in_rate), 1.0);
    const std::vector<float> y = Resampler(in_rate, out_rate).process(x);
    double e = 0;
    const size_t lo = y.size() / 5, hi = y.size() - y.size() / 5;
    for (size_t i = lo; i < hi; ++i) e += static_cast<double>(y[i]) * y[i];
    const double rms = std::sqrt(e / static_cast<double>(hi - lo));
    const double db = 20 * std::log10(rms / std::sqrt(0.5));
    EXPECT_LT(db, -40.0);
    EXPECT_LT(db, -70.0) << "designed for 80 dB";
  }
}

TEST(PrepareResample, ConstantStaysConstantAndPassbandIsFlat) {
  const std::vector<float> one(8000, 1.0f);
  const std::vector<float> y = Resampler(8000, 16000).process(one);
  for (size_t i = 200; i + 200 < y.size(); ++i) ASSERT_NEAR(y[i], 1.0f, 1e-4f) << i;
  // 0.85 x the output Nyquist is in the passband: amplitude within 0.1%.
  const std::vector<float> x = sine(6800, 44100, 44100, 0.5);
  EXPECT_NEAR(fit_sine(Resampler(44100, 16000).process(x), 6800, 16000, 0.5).amplitude, 0.5, 0.0005);
}

// ---------------------------------------------------------------- prepare wav

TEST(PrepareSplit, StratifiedExactTotalAndDeterministic) {
  auto count = [](const std::vector<int64_t>& split, const std::vector<int64_t>& groups, int64_t g) {
    int64_t n = 0;
    for (size_t i = 0; i < split.size(); ++i) n += split[i] == 1 && (g < 0 || groups[i] == g);
    return n;
  };
  // Singletons: half of them, not all (per-group rounding would send every one to test).
  const std::vector<int64_t> single = {0, 1, 2, 3};
  EXPECT_EQ(count(assign_split(single, 0.5, 1), single, -1), 2);
  // 10, 20 and 3 members at 0.1: 1 + 2 + 0 = round(3.3) = 3.
  std::vector<int64_t> groups;
  for (int64_t g = 0; g < 3; ++g) groups.insert(groups.end(), g == 0 ? 10 : g == 1 ? 20 : 3, g);
  const std::vector<int64_t> s = assign_split(groups, 0.1, 5);
  EXPECT_EQ(count(s, groups, 0), 1);
  EXPECT_EQ(count(s, groups, 1), 2);
  EXPECT_EQ(count(s, groups, 2), 0);
  EXPECT_EQ(assign_split(groups, 0.1, 5), s);
  EXPECT_NE(assign_split(groups, 0.1, 6), s);
  EXPECT_EQ(count(assign_split(groups, 0.3, 0), groups, -1), 10);  // round(9.9)
  EXPECT_THAT(error_of([&] { assign_split(groups, 1.0, 0); }), HasSubstr("[0, 1)"));
}

WavAudio mono(const std::vector<float>& v, double rate) {
  WavAudio a;
  a.channels = 1, a.rate = rate, a.frames = static_cast<int64_t>(v.size()), a.samples = v;
  return a;
}

std::vector<float> ramp(int64_t n, int k) {  // exact 16-bit values, distinct per file
  std::vector<float> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    v[static_cast<size_t>(i)] = static_cast<float>((i * 37 + k * 1000) % 20000 - 10000) / 32768.0f;
  return v;
}

std::vector<float> read_recording(const WindowDataset& d, int64_t rec) {
  std::vector<float> out(static_cast<size_t>(d.channels() * d.length(rec)));
  WindowDataset full(d.path(), d.channels(), d.length(rec));
  full.read_window(rec, 0, out.data());
  return out;
}

TEST(PrepareWav, SubFoldersBecomeLabelsWithExactSamples) {
  TempDir d;
  // Sorted order: cats/a, cats/b, dogs/a, dogs/b, dogs/c.
  const std::vector<std::string> files = {"dogs/c.wav", "cats/b.wav", "dogs/a.wav", "cats/a.wav", "dogs/b.wav"};
  const std::vector<std::string> sorted = {"cats/a.wav", "cats/b.wav", "dogs/a.wav", "dogs/b.wav", "dogs/c.wav"};
  for (size_t i = 0; i < files.size(); ++i) {
    const size_t k = static_cast<size_t>(std::find(sorted.begin(), sorted.end(), files[i]) - sorted.begin());
    write_wav(d / ("in/" + files[i]), mono(ramp(1000 + 100 * static_cast<int64_t>(k), static_cast<int>(k)), 16000));
  }
  write_text(d / "in/dogs/readme.txt", "not audio");
  write_text(d / "in/dogs/broken.wav", "RIFF");
  PrepareWavArgs a;
  a.in = d / "in/", a.out = d / "out.h5", a.test_fraction = 0.5, a.seed = 7;
  const PrepareReport rep = prepare_wav(a);
  EXPECT_EQ(rep.found, 6);
  EXPECT_EQ(rep.recordings, 5);
  ASSERT_EQ(rep.skipped.size(), 1u);
  EXPECT_EQ(rep.skipped[0].first, "dogs/broken.wav");
  EXPECT_THAT(rep.skipped[0].second, HasSubstr("not a RIFF/WAVE file"));
  EXPECT_EQ(rep.samples, 1000 + 1100 + 1200 + 1300 + 1400);
  EXPECT_NEAR(rep.hours(), 6000.0 / 16000 / 3600, 1e-12);

  WindowDataset ds(a.out, 1, 500);
  EXPECT_TRUE(ds.ragged());
  ASSERT_EQ(ds.num_recordings(), 5);
  EXPECT_EQ(ds.label_names(), std::vector<std::string>{"label"});
  EXPECT_EQ(ds.labels("label"), (std::vector<int64_t>{0, 0, 1, 1, 1}));
  ASSERT_TRUE(ds.has_split());
  // round(0.5 x 5) = 3 in the test split: 1 cat, 1 dog + the larger remainder (dogs: 0.5).
  EXPECT_EQ(ds.usable(1).size(), 3u);
  EXPECT_EQ(ds.usable(0).size(), 2u);
  for (int64_t r = 0; r < 5; ++r) {
    EXPECT_EQ(ds.length(r), 1000 + 100 * r);
    EXPECT_EQ(read_recording(ds, r), ramp(1000 + 100 * r, static_cast<int>(r))) << r;
  }
  H5File f(a.out, H5File::Mode::read);
  EXPECT_EQ(f.attribute("", "label_names"), "cats,dogs");
  EXPECT_EQ(f.attribute("", "rate_hz"), "16000");
  EXPECT_EQ(f.attribute("", "labels"), "label");
  EXPECT_THAT(f.attribute("", "source"), HasSubstr("prepare wav --in "));
  EXPECT_EQ(f.dims("signals"), std::vector<int64_t>{6000});

  // The same seed gives the same split; another seed (almost surely) another.
  const std::vector<int64_t> split = f.read_ints("split");
  a.out = d / "again.h5";
  prepare_wav(a);
  EXPECT_EQ(H5File(a.out, H5File::Mode::read).read_ints("split"), split);
}

TEST(PrepareWav, ResamplesAveragesStereoAndTakesRootFilesAsDot) {
  TempDir d;
  write_wav(d / "in/tone8k.wav", mono(sine(440, 8000, 8000, 0.5), 8000));
  WavAudio st;
  st.channels = 2, st.rate = 16000, st.frames = 4;
  st.samples = {0.5f, 0.25f, -1.0f, 0.0f, 0.25f, 0.25f, 0.5f, 0.0f};
  write_wav(d / "in/sub/stereo.wav", st);
  PrepareWavArgs a;
  a.in = d / "in", a.out = d / "out.h5", a.test_fraction = 0;
  const PrepareReport rep = prepare_wav(a);
  EXPECT_EQ(rep.source_rates.at(8000), 1);
  EXPECT_EQ(rep.source_rates.at(16000), 1);
  WindowDataset ds(a.out, 1, 4);
  ASSERT_EQ(ds.num_recordings(), 2);
  // Sorted: "sub/stereo.wav" < "tone8k.wav".
  EXPECT_EQ(read_recording(ds, 0), (std::vector<float>{0.375f, 0.25f, -0.25f, 0.0f}));
  EXPECT_EQ(ds.length(1), 16000);
  const Fit fit = fit_sine(read_recording(ds, 1), 440, 16000, 0.5);
  EXPECT_NEAR(fit.amplitude, 0.5, 0.005);
  EXPECT_LT(fit.residual, 0.01);
  EXPECT_EQ(ds.labels("label"), (std::vector<int64_t>{1, 0}));  // names ".", "sub"
  EXPECT_EQ(H5File(a.out, H5File::Mode::read).attribute("", "label_names"), ".,sub");
  EXPECT_EQ(ds.usable(1).size(), 0u);

  // --keep-channels: (2, total); the mono file is skipped.
  a.keep_channels = true, a.out = d / "stereo.h5";
  const PrepareReport rep2 = prepare_wav(a);
  ASSERT_EQ(rep2.skipped.size(), 1u);
  EXPECT_THAT(rep2.skipped[0].second, HasSubstr("1 channels, the first file has 2"));
  WindowDataset ds2(a.out, 2, 4);
  EXPECT_EQ(read_recording(ds2, 0), st.samples);
}

TEST(PrepareWav, ManifestGivesLabelsAndSplit) {
  TempDir d;
  for (int k = 0; k < 4; ++k) write_wav(d / ("in/x/" + std::to_string(k) + ".wav"), mono(ramp(600, k), 16000));
  write_text(d / "m.csv",
             "path,label,split\n"
             "x/3.wav,yes,test\n"
             "\n"
             "x/0.wav,no,0\n"
             "\"x/2.wav\",yes,train\n");
  PrepareWavArgs a;
  a.in = d / "in", a.out = d / "out.h5", a.manifest = d / "m.csv";
  const PrepareReport rep = prepare_wav(a);
  EXPECT_EQ(rep.found, 3);
  WindowDataset ds(a.out, 1, 600);
  ASSERT_EQ(ds.num_recordings(), 3);  // manifest order
  EXPECT_EQ(ds.labels("label"), (std::vector<int64_t>{1, 0, 1}));
  EXPECT_EQ(ds.usable(1), std::vector<int64_t>{0});
  EXPECT_EQ(read_recording(ds, 0), ramp(600, 3));
  EXPECT_EQ(read_recording(ds, 2), ramp(600, 2));
  EXPECT_EQ(H5File(a.out, H5File::Mode::read).attribute("", "label_names"), "no,yes");

  write_text(d / "bad.csv", "x/0.wav,no\nx/9.wav,yes\n");
  a.manifest = d / "bad.csv";
  EXPECT_THAT(error_of([&] { prepare_wav(a); }),
              AllOf(HasSubstr(a.manifest), HasSubstr("line 2"), HasSubstr("'x/9.wav' not found")));
  write_text(d / "bad2.csv", "x/0.wav,no,maybe\n");
  a.manifest = d / "bad2.csv";
  EXPECT_THAT(error_of([&] { prepare_wav(a); }), AllOf(HasSubstr("line 1"), HasSubstr("split 'maybe'")));
}

TEST(PrepareWav, EmptyOrMissingInputIsAnError) {
  TempDir d;
  fs::create_directories(d / "empty/sub");
  PrepareWavArgs a;
  a.in = d / "empty", a.out = d / "out.h5";
  EXPECT_THAT(error_of([&] { prepare_wav(a); }), AllOf(HasSubstr(a.in), HasSubstr("no *.wav files found")));
  EXPECT_FALSE(fs::exists(a.out));
  a.out = d.path + "/no_dir/out.h5";
  EXPECT_THAT(error_of([&] { prepare_wav(a); }), AllOf(HasSubstr("--out"), HasSubstr("no_dir does not exist")));
  a.out = d / "out.h5";
  a.in = d / "nope";
  EXPECT_THAT(error_of([&] { prepare_wav(a); }), AllOf(HasSubstr(a.in), HasSubstr("not a directory")));
  write_text(d / "junk/a.wav", "junk");
  a.in = d / "junk";
  EXPECT_THAT(error_of([&] { prepare_wav(a); }), AllOf(HasSubstr("none of the 1 WAV files"), HasSubstr("a.wav")));
  EXPECT_FALSE(fs::exists(a.out + ".tmp"));
}

// ---------------------------------------------------------------- WFDB

const char* kLeads[12] = {"I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"};

// Physical test signal (mV) of lead s, sample i.
double ecg_value(int s, int64_t i) { return 1.5 * std::sin(0.01 * i * (s + 1)) - 0.3 * s / 12.0; }

void write_ecg_record(const std::string& dir, const std::string& name, int format, double gain, int baseline, int64_t n,
                      int leads = 12) {
  fs::create_directories(dir);
  std::vector<WfdbWriteSignal> sig;
  std::vector<int32_t> adc;
  for (int s = 0; s < leads; ++s) {
    sig.push_back({kLeads[s % 12], "mV", gain, baseline});
    for (int64_t i = 0; i < n; ++i) adc.push_back(static_cast<int32_t>(std::lround(ecg_value(s, i) * gain + baseline)));
  }
  write_wfdb_record(dir, name, format, 500, sig, adc, n);
}

TEST(PrepareWfdbRecord, ParsesHeaderFieldsAndDefaults) {
  TempDir d;
  write_text(d / "r.hea",
             "# a comment line\n"
             "r 4 360/1.5(0) 0 12:00:00 01/01/2000\n"
             "r.dat 212 200(5)/uV 11 1024 995 -22131 0 MLII lead, filtered\n"
             "r.dat 212 0 11 1024 995\n"
             "s.dat 16+24 1000/mV\n"
             "  # an indented comment\n"
             "t.dat 16\n");
  const WfdbHeader h = parse_wfdb_header(d / "r.hea");
  EXPECT_EQ(h.name, "r");
  EXPECT_EQ(h.rate, 360);
  EXPECT_EQ(h.samples, -1);
  ASSERT_EQ(h.signals.size(), 4u);
  EXPECT_EQ(h.signals[0].gain, 200);
  EXPECT_EQ(h.signals[0].baseline, 5);
  EXPECT_EQ(h.signals[0].units, "uV");
  EXPECT_EQ(h.signals[0].adc_zero, 1024);
  EXPECT_TRUE(h.signals[0].has_checksum);
  EXPECT_EQ(h.signals[0].checksum, -22131);
  EXPECT_EQ(h.signals[0].description, "MLII lead, filtered");
  EXPECT_EQ(h.signals[1].gain, 200);       // 0 means 200
  EXPECT_EQ(h.signals[1].baseline, 1024);  // baseline defaults to ADC zero
  EXPECT_EQ(h.signals[2].format, 16);
  EXPECT_EQ(h.signals[2].byte_offset, 24);
  EXPECT_EQ(h.signals[2].gain, 1000);
  EXPECT_EQ(h.signals[3].gain, 200);
  EXPECT_EQ(h.signals[3].units, "mV");
  EXPECT_EQ(h.signals[3].description, "record r, signal 3");
  EXPECT_FALSE(h.signals[3].has_checksum);
}

TEST(PrepareWfdbRecord, Format212DecodesHandPackedBytesAndNegativeOddCounts) {
  TempDir d;
  // Samples -1 (0xFFF) and -256 (0xF00) packed as FF, FF, 00; then 2047 alone (odd stream).
  write_bytes(d / "h.dat", {0xFF, 0xFF, 0x00, 0xFF, 0x07});
  write_text(d / "h.hea", "h 1 100 3\nh.dat 212 100(-1)/mV 12 0\n");
  WfdbRecord r = read_wfdb_record(d / "h.hea");
  ASSERT_EQ(r.samples, 3);
  EXPECT_EQ(r.physical, (std::vector<float>{0.0f, -2.55f, 20.48f}));

  // MIT-BIH record 100 starts with bytes E3 33 F3: MLII 995, V5 1011, the initial values
  // its header lists (ADC zero 1024, gain 200 -> -0.145 and -0.065 mV).
  write_bytes(d / "100.dat", {0xE3, 0x33, 0xF3, 0xE3, 0x33, 0xF3});
  write_text(d / "100.hea",
             "100 2 360 2\n100.dat 212 200 11 1024 995 1990 0 MLII\n100.dat 212 200 11 1024 1011 2022 0 V5\n");
  r = read_wfdb_record(d / "100.hea");
  EXPECT_EQ(r.physical, (std::vector<float>{-0.145f, -0.145f, -0.065f, -0.065f}));

  // 3 signals x 5 samples = 15 (odd), extremes and negatives, through the writer.
  const std::vector<int32_t> adc = {-2047, -1, 0, 1, 2047, -1000, 999, -2, 3, -4, 5, -6, 7, -8, -2000};
  write_wfdb_record(d.path, "odd", 212, 250, {{"a", "mV", 200, 0}, {"b", "mV", 200, 0}, {"c", "uV", 0.5, -6}}, adc, 5);
  r = read_wfdb_record(d / "odd.hea");
  ASSERT_EQ(r.samples, 5);
  EXPECT_TRUE(r.warnings.empty());
  EXPECT_EQ(r.header.signals[2].units, "uV");
  for (size_t k = 0; k < adc.size(); ++k) {
    const double gain = k < 10 ? 200 : 0.5, base = k < 10 ? 0 : -6;
    EXPECT_EQ(r.physical[k], static_cast<float>((adc[k] - base) / gain)) << k;
  }
  EXPECT_EQ(fs::file_size(d / "odd.dat"), 24u);  // 8 pairs, the last padded
}

TEST(PrepareWfdb, TwelveLeadRecordsInBothFormatsReadBackWithinOneAdcStep) {
  TempDir d;
  write_ecg_record(d / "in/a", "rec212", 212, 200, 0, 1001);
  write_ecg_record(d / "in/b", "rec16", 16, 1000, -50, 1500);
  write_text(d / "labels.csv", "record,label\nrec212,afib\nb/rec16,normal\nextra,unused\n");
  PrepareWfdbArgs a;
  a.in = d / "in", a.out = d / "out.h5", a.labels = d / "labels.csv", a.test_fraction = 0;
  const PrepareReport rep = prepare_wfdb(a);
  EXPECT_EQ(rep.recordings, 2);
  EXPECT_EQ(rep.channels, 12);
  WindowDataset ds(a.out, 12, 1000);
  ASSERT_EQ(ds.num_recordings(), 2);
  EXPECT_EQ(ds.labels("label"), (std::vector<int64_t>{0, 1}));
  const double step[2] = {1.0 / 200, 1.0 / 1000};
  for (int64_t r = 0; r < 2; ++r) {
    const std::vector<float> x = read_recording(ds, r);
    const int64_t n = ds.length(r);
    EXPECT_EQ(n, r == 0 ? 1001 : 1500);
    double worst = 0;
    for (int s = 0; s < 12; ++s)
      for (int64_t i = 0; i < n; ++i)
        worst = std::max(worst, std::abs(x[static_cast<size_t>(s * n + i)] - ecg_value(s, i)));
    EXPECT_LE(worst, step[r] / 2 + 1e-6) << r;
  }
  H5File f(a.out, H5File::Mode::read);
  EXPECT_EQ(f.attribute("", "leads"), "I,II,III,aVR,aVL,aVF,V1,V2,V3,V4,V5,V6");
  EXPECT_EQ(f.attribute("", "rate_hz"), "500");
  EXPECT_EQ(f.attribute("", "label_names"), "afib,normal");
  EXPECT_EQ(f.dims("signals"), (std::vector<int64_t>{12, 2501}));
}

TEST(PrepareWfdb, ResamplesToTheRequestedRate) {
  TempDir d;
  write_ecg_record(d / "in", "r1", 16, 1000, 0, 1000, 2);
  PrepareWfdbArgs a;
  a.in = d / "in", a.out = d / "out.h5", a.rate = 250;
  const PrepareReport rep = prepare_wfdb(a);
  EXPECT_EQ(rep.samples, 500);
  WindowDataset ds(a.out, 2, 500);
  EXPECT_EQ(ds.length(0), 500);
  EXPECT_EQ(H5File(a.out, H5File::Mode::read).attribute("", "rate_hz"), "250");
}

TEST(PrepareWfdb, BadRecordsGiveOneClearError) {
  TempDir d;
  for (int fmt : {80, 310}) {
    const std::string hea = d / ("f" + std::to_string(fmt) + "/r.hea");
    write_text(hea, "r 1 500 10\nr.dat " + std::to_string(fmt) + " 200 12 0\n");
    write_bytes(d / ("f" + std::to_string(fmt) + "/r.dat"), std::vector<uint8_t>(20, 0));
    EXPECT_THAT(error_of([&] { read_wfdb_record(hea); }),
                AllOf(HasSubstr("record 'r'"), HasSubstr(hea), HasSubstr("format " + std::to_string(fmt)),
                      HasSubstr("supported formats are 16 and 212")));
  }
  // Header says 1000 samples, the file holds 999.
  write_ecg_record(d / "len", "short", 16, 200, 0, 1000, 2);
  std::vector<uint8_t> b = read_bytes(d / "len/short.dat");
  b.resize(b.size() - 4);
  write_bytes(d / "len/short.dat", b);
  EXPECT_THAT(error_of([&] { read_wfdb_record(d / "len/short.hea"); }),
              AllOf(HasSubstr("record 'short'"), HasSubstr("header/data length mismatch"), HasSubstr("need 4000 bytes"),
                    HasSubstr("holds 3996")));
  // Missing-sample value in format 212.
  write_bytes(d / "gap/g.dat", {0x00, 0x08, 0x00});  // -2048, 0
  write_text(d / "gap/g.hea", "g 1 100 2\ng.dat 212 200 12 0\n");
  EXPECT_THAT(error_of([&] { read_wfdb_record(d / "gap/g.hea"); }),
              AllOf(HasSubstr("sample 0"), HasSubstr("missing-sample value -2048")));
  // A wrong checksum is a warning, as in WFDB's own tools.
  write_text(d / "gap/c.hea", "c 1 100 1\nc.dat 16 200 16 0 0 123\n");
  write_bytes(d / "gap/c.dat", {0x01, 0x00});
  const WfdbRecord c = read_wfdb_record(d / "gap/c.hea");
  EXPECT_EQ(c.physical, std::vector<float>{0.005f});
  ASSERT_EQ(c.warnings.size(), 1u);
  EXPECT_THAT(c.warnings[0],
              AllOf(HasSubstr("checksum mismatch"), HasSubstr("header says 123"), HasSubstr("sum to 1")));

  // Inconsistent channel count across records.
  write_ecg_record(d / "mix", "a12", 16, 200, 0, 100, 12);
  write_ecg_record(d / "mix", "b2", 212, 200, 0, 100, 2);
  PrepareWfdbArgs a;
  a.in = d / "mix", a.out = d / "out.h5";
  EXPECT_THAT(error_of([&] { prepare_wfdb(a); }), AllOf(HasSubstr("record 'b2'"), HasSubstr("has 2 signals"),
                                                        HasSubstr("first record 'a12'"), HasSubstr("has 12")));
  EXPECT_FALSE(fs::exists(a.out));
  // Different rates without --rate.
  write_ecg_record(d / "rates/x", "x", 16, 200, 0, 100, 2);
  write_text(d / "rates/x/x.hea", std::string("x 2 250 100\n") + "x.dat 16 200 16 0\nx.dat 16 200 16 0\n");
  write_ecg_record(d / "rates/y", "y", 16, 200, 0, 100, 2);
  a.in = d / "rates";
  EXPECT_THAT(error_of([&] { prepare_wfdb(a); }),
              AllOf(HasSubstr("record 'y'"), HasSubstr("500 Hz"), HasSubstr("250 Hz"), HasSubstr("--rate")));
  // A labels file without a row for a record.
  write_text(d / "l.csv", "x,normal\n");
  a.labels = d / "l.csv", a.rate = 500;
  EXPECT_THAT(error_of([&] { prepare_wfdb(a); }), AllOf(HasSubstr("no row for 1 of the 2 records"), HasSubstr("y/y")));
  // No records at all.
  fs::create_directories(d / "none");
  a.in = d / "none";
  EXPECT_THAT(error_of([&] { prepare_wfdb(a); }), HasSubstr("no *.hea files found"));
}

// ---------------------------------------------------------------- CSV

TEST(PrepareCsv, FilesBecomeRecordingsWithLabels) {
  TempDir d;
  write_text(d / "in/p1.csv", "time,I,II,dx\r\n0,0.5,-1.25,sick\r\n0.1,+2,3e-1,sick\r\n0.2,-0,1,sick\r\n");
  write_text(d / "in/p0.csv", "time,I,II,dx\n0,1,2,well\n\n0.1,3,4,well\n");
  PrepareCsvArgs a;
  a.in = d / "in", a.out = d / "out.h5", a.rate = 10, a.label_column = "dx", a.ignore_columns = {"time"};
  a.test_fraction = 0;
  const PrepareReport rep = prepare_csv(a);
  EXPECT_EQ(rep.recordings, 2);
  WindowDataset ds(a.out, 2, 2);
  ASSERT_EQ(ds.num_recordings(), 2);
  EXPECT_EQ(read_recording(ds, 0), (std::vector<float>{1, 3, 2, 4}));
  EXPECT_EQ(read_recording(ds, 1), (std::vector<float>{0.5f, 2, -0.0f, -1.25f, 0.3f, 1}));
  EXPECT_EQ(ds.labels("label"), (std::vector<int64_t>{1, 0}));
  H5File f(a.out, H5File::Mode::read);
  EXPECT_EQ(f.attribute("", "channel_names"), "I,II");
  EXPECT_EQ(f.attribute("", "label_names"), "sick,well");
  EXPECT_EQ(f.attribute("", "rate_hz"), "10");

  // One file, one column, no label.
  write_text(d / "one.csv", "x\n1\n2\n3\n");
  a.in = d / "one.csv", a.label_column.clear(), a.ignore_columns.clear(), a.out = d / "one.h5";
  prepare_csv(a);
  EXPECT_EQ(read_recording(WindowDataset(a.out, 1, 3), 0), (std::vector<float>{1, 2, 3}));
}

TEST(PrepareCsv, BadCellsNameFileLineAndColumn) {
  TempDir d;
  PrepareCsvArgs a;
  a.out = d / "out.h5";
  a.in = d / "nan.csv";
  write_text(a.in, "a,b\n1,2\n3,4\n5,nan\n");
  EXPECT_THAT(error_of([&] { prepare_csv(a); }), AllOf(HasSubstr(a.in), HasSubstr("sample 2"), HasSubstr("line 4"),
                                                       HasSubstr("column 'b'"), HasSubstr("NaN/Inf")));
  a.in = d / "inf.csv";
  write_text(a.in, "a,b\n1,-inf\n");
  EXPECT_THAT(error_of([&] { prepare_csv(a); }), AllOf(HasSubstr("sample 0"), HasSubstr("-inf")));
  a.in = d / "text.csv";
  write_text(a.in, "a,b\n1,2\n3,abc\n");
  EXPECT_THAT(error_of([&] { prepare_csv(a); }),
              AllOf(HasSubstr(a.in), HasSubstr("line 3, column 2 ('b')"), HasSubstr("'abc' is not a number")));
  a.in = d / "short.csv";
  write_text(a.in, "a,b\n1,2\n3\n");
  EXPECT_THAT(error_of([&] { prepare_csv(a); }), AllOf(HasSubstr("line 3"), HasSubstr("1 fields, the header has 2")));
  a.in = d / "label.csv";
  a.label_column = "y";
  write_text(a.in, "a,b\n1,2\n");
  EXPECT_THAT(error_of([&] { prepare_csv(a); }), AllOf(HasSubstr("no column 'y'"), HasSubstr("a, b")));
  a.label_column.clear();
  write_text(d / "dir/x.csv", "a,b\n1,2\n");
  write_text(d / "dir/y.csv", "a\n1\n");
  a.in = d / "dir";
  EXPECT_THAT(error_of([&] { prepare_csv(a); }),
              AllOf(HasSubstr("y.csv: 1 channel columns"), HasSubstr("x.csv has 2")));
  fs::create_directories(d / "empty");
  a.in = d / "empty";
  EXPECT_THAT(error_of([&] { prepare_csv(a); }), HasSubstr("no *.csv files found"));
}

}  // namespace
}  // namespace cpc::tools
