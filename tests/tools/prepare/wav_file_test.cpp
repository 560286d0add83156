// WAV decoding per sample format and encoding, odd chunks, one error per bad file.
#include "tests/tools/prepare/prepare_test_util.h"

namespace cpc::tools {
namespace {

using namespace prepare_test;  // fs, AllOf, HasSubstr, the files and helpers

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

}  // namespace
}  // namespace cpc::tools
