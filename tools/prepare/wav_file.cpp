#include "tools/prepare/wav_file.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <fstream>
#include <iterator>

#include "engine/core/error.h"
#include "tools/prepare/prepare_common.h"

namespace cpc::tools {

namespace {

constexpr uint16_t kTagPcm = 1, kTagFloat = 3, kTagExtensible = 0xFFFE;

uint16_t u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
uint32_t u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}

std::string fourcc(const uint8_t* p, size_t n) {
  std::string s;
  for (size_t i = 0; i < std::min<size_t>(n, 4); ++i) s += (p[i] >= 32 && p[i] < 127) ? static_cast<char>(p[i]) : '?';
  return s;
}

// Names of the compressed tags people meet most, so the error says what the file is.
std::string tag_name(uint16_t tag) {
  switch (tag) {
    case 2:
      return " (MS ADPCM)";
    case 6:
      return " (A-law)";
    case 7:
      return " (mu-law)";
    case 0x11:
      return " (IMA ADPCM)";
    case 0x31:
      return " (GSM 6.10)";
    case 0x50:
      return " (MPEG)";
    case 0x55:
      return " (MP3)";
    default:
      return "";
  }
}

std::string hex4(uint16_t v) {
  char b[8];
  std::snprintf(b, sizeof(b), "0x%04X", v);
  return b;
}

int bytes_per_sample(WavEncoding e) {
  switch (e) {
    case WavEncoding::pcm_u8:
      return 1;
    case WavEncoding::pcm_s16:
      return 2;
    case WavEncoding::pcm_s24:
      return 3;
    case WavEncoding::pcm_s32:
    case WavEncoding::float32:
      return 4;
    case WavEncoding::float64:
      return 8;
  }
  return 0;
}

void put16(std::vector<uint8_t>& b, uint32_t v) {
  b.push_back(static_cast<uint8_t>(v)), b.push_back(static_cast<uint8_t>(v >> 8));
}
void put32(std::vector<uint8_t>& b, uint32_t v) { put16(b, v & 0xFFFF), put16(b, v >> 16); }
void put_id(std::vector<uint8_t>& b, const char* id) { b.insert(b.end(), id, id + 4); }

}  // namespace

WavAudio read_wav(const std::string& path) {
  check_regular_file(path, "a WAV file");
  std::ifstream f(path, std::ios::binary);
  CPC_CHECK(f, path, ": cannot open the WAV file");
  const std::vector<uint8_t> b((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const size_t size = b.size();
  CPC_CHECK(size >= 12 && std::memcmp(b.data(), "RIFF", 4) == 0 && std::memcmp(b.data() + 8, "WAVE", 4) == 0, path,
            ": not a RIFF/WAVE file (expected 'RIFF....WAVE' at the start, found '", fourcc(b.data(), size),
            size >= 12 ? "...." + fourcc(b.data() + 8, 4) : std::string(), "', ", size, " bytes)");

  // Walk the chunks. A RIFF size that disagrees with the file is common (streaming
  // writers), so the chunks themselves are trusted, bounded by the real file size.
  const uint8_t* fmt = nullptr;
  size_t fmt_size = 0, data_pos = 0, data_size = 0;
  bool have_data = false;
  size_t pos = 12;
  while (pos + 8 <= size) {
    const uint8_t* h = b.data() + pos;
    const size_t chunk = u32(h + 4), body = pos + 8;
    if (std::memcmp(h, "fmt ", 4) == 0) {
      CPC_CHECK(chunk >= 16 && body + chunk <= size, path, ": truncated 'fmt ' chunk (", chunk, " bytes declared, ",
                size - body, " present, at least 16 needed)");
      fmt = b.data() + body, fmt_size = chunk;
    } else if (std::memcmp(h, "data", 4) == 0) {
      CPC_CHECK(body + chunk <= size, path, ": truncated data chunk: it declares ", chunk, " bytes but the file holds ",
                size - body, " after its header");
      data_pos = body, data_size = chunk, have_data = true;
    }
    pos = body + chunk + (chunk & 1);  // chunks are padded to even sizes
    if (have_data && fmt) break;       // anything after the audio is metadata we do not need
  }
  CPC_CHECK(fmt, path, ": no 'fmt ' chunk (truncated or not a WAV file)");
  CPC_CHECK(have_data, path, ": no 'data' chunk (truncated or not a WAV file)");

  uint16_t tag = u16(fmt);
  const int channels = u16(fmt + 2);
  const uint32_t rate = u32(fmt + 4);
  const int block_align = u16(fmt + 12), bits = u16(fmt + 14);
  if (tag == kTagExtensible) {
    CPC_CHECK(fmt_size >= 40, path, ": WAVE_FORMAT_EXTENSIBLE 'fmt ' chunk of ", fmt_size, " bytes, expected 40");
    tag = u16(fmt + 24);  // the sub-format GUID starts with the plain format tag
  }
  CPC_CHECK(tag == kTagPcm || tag == kTagFloat, path, ": unsupported WAV format tag ", hex4(tag), tag_name(tag),
            "; supported: PCM (0x0001), IEEE float (0x0003), or WAVE_FORMAT_EXTENSIBLE of either");
  CPC_CHECK(channels >= 1, path, ": WAV header says 0 channels");
  CPC_CHECK(rate >= 1, path, ": WAV header says sample rate 0");
  CPC_CHECK(block_align >= channels && block_align % channels == 0, path, ": WAV block align ", block_align,
            " is not a multiple of the channel count ", channels);
  // The container size comes from the block align: 20-bit audio in 24-bit containers
  // is left-justified, so dividing by the container's full scale is right.
  const int container = block_align / channels;
  WavAudio a;
  a.channels = channels;
  a.rate = rate;
  if (tag == kTagPcm) {
    CPC_CHECK(container >= 1 && container <= 4 && bits <= 8 * container, path, ": unsupported PCM layout: ", bits,
              " bits in ", 8 * container, "-bit containers (supported: 8, 16, 24, 32)");
    static const WavEncoding pcm[] = {WavEncoding::pcm_u8, WavEncoding::pcm_s16, WavEncoding::pcm_s24,
                                      WavEncoding::pcm_s32};
    a.encoding = pcm[container - 1];
  } else {
    CPC_CHECK(container == 4 || container == 8, path, ": unsupported float WAV of ", 8 * container,
              "-bit samples (supported: 32, 64)");
    a.encoding = container == 4 ? WavEncoding::float32 : WavEncoding::float64;
  }
  CPC_CHECK(data_size % static_cast<size_t>(block_align) == 0, path, ": truncated data chunk: ", data_size,
            " bytes is not a whole number of ", block_align, "-byte frames");
  a.frames = static_cast<int64_t>(data_size / static_cast<size_t>(block_align));
  a.samples.resize(static_cast<size_t>(a.frames) * static_cast<size_t>(channels));

  const uint8_t* p = b.data() + data_pos;
  for (int64_t i = 0; i < a.frames; ++i) {
    for (int c = 0; c < channels; ++c, p += container) {
      float v = 0;
      switch (a.encoding) {
        case WavEncoding::pcm_u8:
          v = static_cast<float>(static_cast<int>(p[0]) - 128) / 128.0f;
          break;
        case WavEncoding::pcm_s16:
          v = static_cast<float>(static_cast<int16_t>(u16(p))) / 32768.0f;
          break;
        case WavEncoding::pcm_s24: {
          const int32_t s = static_cast<int32_t>(static_cast<uint32_t>(p[0] | (p[1] << 8) | (p[2] << 16)) << 8) >> 8;
          v = static_cast<float>(s) / 8388608.0f;
          break;
        }
        case WavEncoding::pcm_s32:
          v = static_cast<float>(static_cast<double>(static_cast<int32_t>(u32(p))) / 2147483648.0);
          break;
        case WavEncoding::float32: {
          const uint32_t u = u32(p);
          std::memcpy(&v, &u, 4);
          break;
        }
        case WavEncoding::float64: {
          const uint64_t u = static_cast<uint64_t>(u32(p)) | (static_cast<uint64_t>(u32(p + 4)) << 32);
          double d;
          std::memcpy(&d, &u, 8);
          v = static_cast<float>(d);
          break;
        }
      }
      CPC_CHECK(std::isfinite(v), path, ": sample ", i, " of channel ", c, " is ", v,
                "; NaN/Inf samples are not supported");
      a.samples[static_cast<size_t>(c * a.frames + i)] = v;
    }
  }
  return a;
}

void write_wav(const std::string& path, const WavAudio& a, const WavWriteOptions& o) {
  CPC_CHECK(a.channels >= 1 && a.rate >= 1 && static_cast<int64_t>(a.samples.size()) == a.channels * a.frames, path,
            ": write_wav needs channels x frames samples, found ", a.samples.size(), " for ", a.channels, " x ",
            a.frames);
  const int bps = bytes_per_sample(o.encoding);
  const bool is_float = o.encoding == WavEncoding::float32 || o.encoding == WavEncoding::float64;
  const uint16_t tag = is_float ? kTagFloat : kTagPcm;
  const uint32_t data_size = static_cast<uint32_t>(a.frames * a.channels * bps);
  std::vector<uint8_t> b;
  put_id(b, "RIFF");
  put32(b, 0);  // patched below
  put_id(b, "WAVE");
  put_id(b, "fmt ");
  put32(b, o.extensible ? 40 : 16);
  put16(b, o.extensible ? kTagExtensible : tag);
  put16(b, static_cast<uint32_t>(a.channels));
  put32(b, static_cast<uint32_t>(a.rate));
  put32(b, static_cast<uint32_t>(a.rate) * static_cast<uint32_t>(a.channels * bps));
  put16(b, static_cast<uint32_t>(a.channels * bps));
  put16(b, static_cast<uint32_t>(8 * bps));
  if (o.extensible) {
    put16(b, 22);                              // cbSize
    put16(b, static_cast<uint32_t>(8 * bps));  // valid bits
    put32(b, 0);                               // channel mask: unspecified
    put16(b, tag);                             // sub-format GUID: tag + KSDATAFORMAT suffix
    const uint8_t guid[14] = {0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71};
    b.insert(b.end(), guid, guid + 14);
  }
  if (o.extra_chunk) {
    put_id(b, "LIST");
    put32(b, 3);
    b.insert(b.end(), {'a', 'b', 'c', 0});  // 3 bytes + 1 pad byte
  }
  put_id(b, "data");
  put32(b, data_size);
  for (int64_t i = 0; i < a.frames; ++i) {
    for (int c = 0; c < a.channels; ++c) {
      const double x = a.samples[static_cast<size_t>(c * a.frames + i)];
      auto quantize = [&](double scale, double lo, double hi) { return std::clamp(std::nearbyint(x * scale), lo, hi); };
      switch (o.encoding) {
        case WavEncoding::pcm_u8:
          b.push_back(static_cast<uint8_t>(quantize(128, -128, 127) + 128));
          break;
        case WavEncoding::pcm_s16:
          put16(b, static_cast<uint32_t>(static_cast<int32_t>(quantize(32768, -32768, 32767))));
          break;
        case WavEncoding::pcm_s24: {
          const uint32_t v = static_cast<uint32_t>(static_cast<int32_t>(quantize(8388608, -8388608, 8388607)));
          b.push_back(static_cast<uint8_t>(v)), b.push_back(static_cast<uint8_t>(v >> 8));
          b.push_back(static_cast<uint8_t>(v >> 16));
          break;
        }
        case WavEncoding::pcm_s32:
          put32(b, static_cast<uint32_t>(static_cast<int32_t>(quantize(2147483648.0, -2147483648.0, 2147483647.0))));
          break;
        case WavEncoding::float32: {
          const float v = static_cast<float>(x);
          uint32_t u;
          std::memcpy(&u, &v, 4);
          put32(b, u);
          break;
        }
        case WavEncoding::float64: {
          uint64_t u;
          std::memcpy(&u, &x, 8);
          put32(b, static_cast<uint32_t>(u)), put32(b, static_cast<uint32_t>(u >> 32));
          break;
        }
      }
    }
  }
  if (data_size & 1) b.push_back(0);
  const uint32_t riff = static_cast<uint32_t>(b.size() - 8);
  for (int k = 0; k < 4; ++k) b[4 + k] = static_cast<uint8_t>(riff >> (8 * k));
  std::ofstream f(path, std::ios::binary);
  CPC_CHECK(f, path, ": cannot create the WAV file");
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  CPC_CHECK(f.good(), path, ": cannot write the WAV file");
}

}  // namespace cpc::tools
