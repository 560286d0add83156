// The synthetic ECG set: layout, labels and split readable by WindowDataset, and the
// rhythm classes differ the way their names say (beats per recording on lead II).
#include "tools/prepare/synth_ecg.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>

#include "engine/data/window_dataset.h"

namespace cpc::tools {
namespace {

// R peaks on lead II: local maxima above half the recording's maximum, >= 0.25 s apart.
int count_beats(const std::vector<float>& x, int64_t L, double rate) {
  const float* lead2 = x.data() + L;
  float mx = 0;
  for (int64_t i = 0; i < L; ++i) mx = std::max(mx, lead2[i]);
  int beats = 0;
  int64_t last = -1000000;
  for (int64_t i = 1; i + 1 < L; ++i)
    if (lead2[i] > 0.5f * mx && lead2[i] >= lead2[i - 1] && lead2[i] > lead2[i + 1] && i - last > 0.25 * rate)
      ++beats, last = i;
  return beats;
}

TEST(SynthEcg, RhythmClassesHaveTheirHeartRates) {
  SynthEcgOptions o;
  const int64_t L = static_cast<int64_t>(o.rate * o.seconds);
  std::vector<float> x(12 * L);
  double mean_beats[kNumRhythms] = {};
  for (int r = 0; r < kNumRhythms; ++r) {
    for (int k = 0; k < 6; ++k) {
      synthesize_ecg(static_cast<Rhythm>(r), o, 100 * r + k, x.data(), L);
      for (float v : x) ASSERT_TRUE(std::isfinite(v));
      mean_beats[r] += count_beats(x, L, o.rate) / 6.0;
    }
  }
  // 10 s: tachycardia 110-150 bpm (18-25 beats), normal 60-95 (10-16), bradycardia 38-55 (6-9).
  EXPECT_GT(mean_beats[1], 17);
  EXPECT_GT(mean_beats[0], 9.5);
  EXPECT_LT(mean_beats[0], 17);
  EXPECT_LT(mean_beats[2], 9.5);
}

TEST(SynthEcg, FileIsAWindowDatasetWithBalancedLabels) {
  const std::string path = "/tmp/cpc_synth_" + std::to_string(getpid()) + ".h5";
  SynthEcgOptions o;
  o.recordings = 20;
  o.seed = 3;
  write_synthetic_ecg(path, o);
  WindowDataset d(path, 12, 4500);
  EXPECT_EQ(d.num_recordings(), 20);
  EXPECT_EQ(d.skipped_short(), 0);
  EXPECT_TRUE(d.has_split());
  EXPECT_EQ(d.usable(0).size() + d.usable(1).size(), 20u);
  const auto& rhythm = d.labels("rhythm");
  int counts[kNumRhythms] = {};
  for (int64_t r : rhythm) ++counts[r];
  for (int c : counts) EXPECT_EQ(c, 4);
  std::vector<float> w(12 * 4500);
  d.read_window(7, 500, w.data());
  float mx = 0;
  for (float v : w) mx = std::max(mx, std::fabs(v));
  EXPECT_GT(mx, 0.3f);  // millivolt-scale QRS complexes
  EXPECT_LT(mx, 5.0f);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace cpc::tools
