// libFuzzer target: the HDF5 dataset validation of WindowDataset. The input bytes choose
// a layout (N, C, L) or ragged (C, total) / (total,) with offsets, the dtypes (float or
// integer signals, offsets, labels), shapes, offset values, labels and splits, written
// to a real HDF5 file; then the dataset is opened for a (channels, window) model and
// every usable recording's first window is read.
#include <algorithm>
#include <cmath>
#include <vector>

#include "engine/core/error.h"
#include "engine/data/h5_file.h"
#include "engine/data/window_dataset.h"
#include "tests/fuzz/fuzz_input.h"

namespace {

struct Bytes {
  const uint8_t* p;
  size_t n, i = 0;
  uint8_t u8() { return i < n ? p[i++] : 0; }
  int64_t small(int64_t mod) { return static_cast<int64_t>(u8()) % mod; }
  int64_t i64() {  // mostly small values, sometimes extreme ones
    const uint8_t k = u8();
    if (k < 200) return static_cast<int64_t>(k) - 20;
    if (k < 230) return static_cast<int64_t>(u8()) * 37;
    const int64_t extremes[] = {-1, INT64_MIN, INT64_MAX, 1 << 30, -(1 << 20), 0};
    return extremes[k % 6];
  }
  float f32() {
    const uint8_t k = u8();
    if (k == 255) return NAN;
    if (k == 254) return INFINITY;
    return static_cast<float>(k) / 16.f - 8.f;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes b{data, size};
  const std::string path = cpc::fuzz::scratch_dir() + "/data.h5";
  const int layout = static_cast<int>(b.small(4));  // 0: (N, C, L); 1: (C, total); 2: (total,); 3: no signals
  const int64_t C = b.small(4), N = b.small(6), L = b.small(48);
  const int64_t channels = 1 + b.small(3), window = 1 + b.small(40);
  try {
    {
      cpc::H5File f(path, cpc::H5File::Mode::create);
      if (layout == 0) {
        std::vector<float> v(static_cast<size_t>(N * C * L));
        for (float& x : v) x = b.f32();
        if (b.small(5) == 0)
          f.write_ints("signals", std::vector<int64_t>(v.size(), 1));
        else
          f.write_floats("signals", {N, C, L}, v.data());
      } else if (layout == 1 || layout == 2) {
        const int64_t total = b.small(120);
        std::vector<float> v(static_cast<size_t>((layout == 1 ? C : 1) * total));
        for (float& x : v) x = b.f32();
        if (layout == 1)
          f.write_floats("signals", {C, total}, v.data());
        else
          f.write_floats("signals", {total}, v.data());
        std::vector<int64_t> off(static_cast<size_t>(b.small(7)));
        for (int64_t& o : off) o = b.i64();
        if (b.small(3) == 0) std::sort(off.begin(), off.end());
        if (b.small(6) == 0) {
          std::vector<float> fo(off.begin(), off.end());
          f.write_floats("offsets", {static_cast<int64_t>(fo.size())}, fo.data());
        } else {
          f.write_ints("offsets", off);
        }
      }
      const int64_t n_labels = b.small(8);
      std::vector<int64_t> lab(static_cast<size_t>(n_labels));
      for (int64_t& x : lab) x = b.i64();
      if (b.small(2)) {
        f.write_ints("speaker", lab);
        f.set_attribute("", "labels", b.small(4) ? "speaker" : "speaker,missing");
      }
      if (b.small(2)) {
        std::vector<int64_t> split(static_cast<size_t>(b.small(8)));
        for (int64_t& x : split) x = b.small(4) - 1;
        f.write_ints("split", split);
      }
      f.commit();
    }
    cpc::WindowDataset d(path, channels, window);
    std::vector<float> out(static_cast<size_t>(channels * window));
    for (int64_t r : d.usable()) {
      if (d.length(r) < window) __builtin_trap();  // usable() promised a full window
      d.read_window(r, d.length(r) - window, out.data());
    }
  } catch (const cpc::Error&) {
  }
  return 0;
}
