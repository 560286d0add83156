// HDF5 windows in both layouts, labels, splits, short recordings, the seeded sampler
// (determinism, resume, sharding without overlap) and the prefetching loader.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <limits>
#include <map>
#include <set>

#include "engine/data/data_loader.h"
#include "engine/core/error.h"

namespace cpc {
namespace {

std::string temp_path(const std::string& name) {
  return "/tmp/cpc_test_" + std::to_string(getpid()) + "_" + name + ".h5";
}

// Value of channel c at sample t of recording r: unique, so reads are checkable.
float value(int64_t r, int64_t c, int64_t t) { return static_cast<float>(r * 10000 + c * 1000 + t); }

std::string write_fixed() {
  const std::string p = temp_path("fixed");
  H5File f(p, H5File::Mode::create);
  std::vector<float> v;
  for (int r = 0; r < 5; ++r)
    for (int c = 0; c < 2; ++c)
      for (int t = 0; t < 40; ++t) v.push_back(value(r, c, t));
  f.write_floats("signals", {5, 2, 40}, v.data());
  f.write_ints("rhythm", {0, 1, 2, 1, 0});
  f.write_ints("split", {0, 0, 0, 1, 1});
  f.set_attribute("", "labels", "rhythm");
  f.commit();
  return p;
}

std::string write_ragged() {  // lengths 50, 10 (too short), 70
  const std::string p = temp_path("ragged");
  H5File f(p, H5File::Mode::create);
  const std::vector<int64_t> offsets{0, 50, 60, 130};
  std::vector<float> v(2 * 130);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 2; ++c)
      for (int64_t t = offsets[r]; t < offsets[r + 1]; ++t) v[c * 130 + t] = value(r, c, t - offsets[r]);
  f.write_floats("signals", {2, 130}, v.data());
  f.write_ints("offsets", offsets);
  f.write_ints("speaker", {7, 8, 9});
  f.set_attribute("", "labels", "speaker");
  f.commit();
  return p;
}

TEST(WindowDataset, FixedLayoutReadsWindowsLabelsAndSplits) {
  const std::string p = write_fixed();
  WindowDataset d(p, 2, 16);
  EXPECT_FALSE(d.ragged());
  EXPECT_EQ(d.num_recordings(), 5);
  EXPECT_EQ(d.usable(0), std::vector<int64_t>({0, 1, 2}));
  EXPECT_EQ(d.usable(1), std::vector<int64_t>({3, 4}));
  EXPECT_EQ(d.labels("rhythm"), std::vector<int64_t>({0, 1, 2, 1, 0}));
  std::vector<float> w(2 * 16);
  d.read_window(3, 5, w.data());
  EXPECT_EQ(w[0], value(3, 0, 5));
  EXPECT_EQ(w[15], value(3, 0, 20));
  EXPECT_EQ(w[16], value(3, 1, 5));
  EXPECT_THROW(d.read_window(3, 30, w.data()), Error);
  try {
    d.labels("speaker");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no label 'speaker' (the file has: rhythm)"), std::string::npos);
  }
  std::remove(p.c_str());
}

TEST(WindowDataset, RaggedLayoutSkipsShortRecordings) {
  const std::string p = write_ragged();
  WindowDataset d(p, 2, 16);
  EXPECT_TRUE(d.ragged());
  EXPECT_EQ(d.skipped_short(), 1);
  EXPECT_EQ(d.usable(), std::vector<int64_t>({0, 2}));
  std::vector<float> w(2 * 16);
  d.read_window(2, 54, w.data());  // the last window of recording 2 (length 70)
  EXPECT_EQ(w[0], value(2, 0, 54));
  EXPECT_EQ(w[31], value(2, 1, 69));
  EXPECT_EQ(d.labels("speaker"), std::vector<int64_t>({7, 8, 9}));
  std::remove(p.c_str());
}

TEST(WindowDataset, MismatchesAreClearErrors) {
  const std::string p = write_fixed();
  try {
    WindowDataset d(p, 12, 16);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'signals' has 2 channels, the model expects 12"), std::string::npos);
  }
  std::remove(p.c_str());
  EXPECT_THROW(WindowDataset("/nonexistent.h5", 1, 16), Error);
}

// Each bad file gives one message naming the file and what was expected vs found.
TEST(WindowDataset, BadFilesAreClearErrors) {
  auto error_of = [](const std::string& path, int64_t channels = 2, int64_t window = 16) {
    try {
      WindowDataset d(path, channels, window);
      std::vector<float> w(static_cast<size_t>(channels * window));
      for (int64_t r : d.usable()) d.read_window(r, 0, w.data());
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  auto contains = [](const std::string& msg, const std::string& part) {
    return msg.find(part) != std::string::npos ? ::testing::AssertionSuccess()
                                               : ::testing::AssertionFailure() << "'" << msg << "' lacks '" << part << "'";
  };
  const std::string p = temp_path("bad");
  EXPECT_TRUE(contains(error_of("/nonexistent/x.h5"), "/nonexistent/x.h5: no such file"));
  {
    FILE* f = std::fopen(p.c_str(), "w");
    std::fputs("time,lead1\n0,1\n", f);
    std::fclose(f);
  }
  EXPECT_TRUE(contains(error_of(p), p + ": not an HDF5 file"));
  {
    H5File f(p, H5File::Mode::create);
    f.write_ints("rhythm", {1, 2});
    f.commit();
  }
  EXPECT_TRUE(contains(error_of(p), p + ": no dataset 'signals'"));
  {
    H5File f(p, H5File::Mode::create);
    const std::vector<float> v(80, 1.f);
    f.write_floats("signals", {2, 40}, v.data());  // rank 2 without offsets
    f.commit();
  }
  EXPECT_TRUE(contains(error_of(p), "'signals' has rank 2; expected (N, C, L)"));
  {
    H5File f(p, H5File::Mode::create);
    const std::vector<float> v(80, 1.f);
    f.write_floats("signals", {2, 40}, v.data());
    const std::vector<float> off{0.f, 40.f};
    f.write_floats("offsets", {2}, off.data());  // offsets must be integers
    f.commit();
  }
  EXPECT_TRUE(contains(error_of(p), "'offsets' must be a 1-D integer dataset, found float"));
  {
    H5File f(p, H5File::Mode::create);
    f.write_floats("signals", {0, 2, 40}, nullptr);
    f.commit();
  }
  EXPECT_TRUE(contains(error_of(p), "'signals' holds no recordings"));
  {
    H5File f(p, H5File::Mode::create);
    const std::vector<float> v(3 * 2 * 40, 1.f);
    f.write_floats("signals", {3, 2, 40}, v.data());
    f.write_ints("rhythm", {0, 1});  // 2 labels for 3 recordings
    f.set_attribute("", "labels", "rhythm");
    f.commit();
  }
  EXPECT_TRUE(contains(error_of(p), "label 'rhythm' has 2 entries for 3 recordings"));
  {
    H5File f(p, H5File::Mode::create);
    const std::vector<float> v(3 * 2 * 40, 1.f), lab{0.f, 1.f, 0.f};
    f.write_floats("signals", {3, 2, 40}, v.data());
    f.write_floats("rhythm", {3}, lab.data());
    f.set_attribute("", "labels", "rhythm");
    f.commit();
  }
  EXPECT_TRUE(contains(error_of(p), "label 'rhythm' holds float values; expected integer class indices"));
  {
    H5File f(p, H5File::Mode::create);
    std::vector<float> v(3 * 2 * 40, 1.f);
    v[(2 * 2 + 1) * 40 + 5] = std::numeric_limits<float>::quiet_NaN();  // recording 2, channel 1, sample 5
    f.write_floats("signals", {3, 2, 40}, v.data());
    f.commit();
  }
  EXPECT_TRUE(contains(error_of(p), "recording 2 has a non-finite sample (nan) at channel 1, sample 5"));
  std::remove(p.c_str());
}

TEST(BatchSampler, DeterministicAndShardedWithoutOverlap) {
  BatchSampler s({0, 2, 5, 7}, {100, 40, 64, 16}, 16, 4, 42);
  EXPECT_EQ(s.batch(3)[1].recording, BatchSampler({0, 2, 5, 7}, {100, 40, 64, 16}, 16, 4, 42).batch(3)[1].recording);
  for (int64_t step = 0; step < 10; ++step) {
    const auto all = s.batch(step);
    const auto r0 = s.batch(step, 0, 2), r1 = s.batch(step, 1, 2);
    ASSERT_EQ(r0.size(), 2u);
    // The two ranks' windows are exactly the single-process global batch.
    EXPECT_EQ(r0[0].recording, all[0].recording);
    EXPECT_EQ(r0[1].start, all[1].start);
    EXPECT_EQ(r1[0].recording, all[2].recording);
    EXPECT_EQ(r1[1].start, all[3].start);
    // A global batch of 4 over 4 recordings is one epoch: each recording once.
    std::set<int64_t> recs;
    for (const auto& w : all) {
      recs.insert(w.recording);
      EXPECT_GE(w.start, 0);
    }
    EXPECT_EQ(recs.size(), 4u);
  }
  EXPECT_THROW(s.batch(0, 0, 3), Error);
}

TEST(DataLoader, PrefetchedBatchesEqualDirectReads) {
  const std::string p = write_ragged();
  WindowDataset d(p, 2, 16);
  const auto rec = d.usable();
  BatchSampler s(rec, {d.length(rec[0]), d.length(rec[1])}, 16, 3, 5);
  DataLoader loader(d, s, /*first_step=*/4);
  for (int64_t step = 4; step < 12; ++step) {
    const Batch& b = loader.next();
    ASSERT_EQ(b.step, step);
    const auto expect = s.batch(step);
    std::vector<float> w(2 * 16);
    for (size_t i = 0; i < expect.size(); ++i) {
      EXPECT_EQ(b.windows[i].recording, expect[i].recording);
      d.read_window(expect[i].recording, expect[i].start, w.data());
      for (int k = 0; k < 32; ++k) ASSERT_EQ(b.x.f32()[i * 32 + k], w[k]);
    }
  }
  std::remove(p.c_str());
}

// data.group_by: every global batch from one group, deterministic in (seed, step),
// the same windows over 2 ranks as in one process, groups drawn by size, members without
// replacement when the group holds a batch, ungrouped (-1) recordings never drawn.
TEST(BatchSampler, GroupedBatchesShareOneGroup) {
  // 9 recordings: group 7 has 5, group 3 has 3, recording 8 has none.
  const std::vector<int64_t> recs = {0, 1, 2, 3, 4, 5, 6, 7, 8}, groups = {7, 7, 3, 7, 3, 7, 3, 7, -1};
  BatchSampler s(recs, std::vector<int64_t>(9, 100), 16, 4, 42);
  s.set_groups(groups);
  std::map<int64_t, int> seen;
  for (int64_t step = 0; step < 400; ++step) {
    const std::vector<WindowRef> b = s.batch(step);
    ASSERT_EQ(b.size(), 4u);
    const int64_t g = groups[static_cast<size_t>(b[0].recording)];
    ASSERT_NE(g, -1);
    std::set<int64_t> distinct;
    for (const WindowRef& w : b) {
      EXPECT_EQ(groups[static_cast<size_t>(w.recording)], g) << "step " << step;
      distinct.insert(w.recording);
    }
    if (g == 7) {
      EXPECT_EQ(distinct.size(), 4u) << "a group of 5 gives 4 distinct recordings";
    }
    ++seen[g];
    const auto r0 = s.batch(step, 0, 2), r1 = s.batch(step, 1, 2);
    EXPECT_EQ(r0[1].recording, b[1].recording);
    EXPECT_EQ(r1[0].start, b[2].start);
  }
  EXPECT_NEAR(seen[7] / 400.0, 5.0 / 8, 0.08);  // groups weighted by their size
  EXPECT_NEAR(seen[3] / 400.0, 3.0 / 8, 0.08);
  BatchSampler again(recs, std::vector<int64_t>(9, 100), 16, 4, 42);
  again.set_groups(groups);
  EXPECT_EQ(again.batch(17)[3].recording, s.batch(17)[3].recording);
  EXPECT_EQ(again.batch(17)[3].start, s.batch(17)[3].start);
  BatchSampler none(recs, std::vector<int64_t>(9, 100), 16, 4, 42);
  try {
    none.set_groups(std::vector<int64_t>(9, -1));
    ADD_FAILURE() << "no groups accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no recording has a group"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace cpc
