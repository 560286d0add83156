// embed writes per-window features with the labels carried over; probe separates
// separable classes and reports its confusion matrix.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "engine/data/h5_file.h"
#include "tools/cli/embed_command.h"
#include "tools/prepare/synth_ecg.h"
#include "tools/cli/probe_command.h"
#include "tools/cli/train_command.h"
#include "tests/support/error_of.h"

namespace cpc::tools {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using test::error_of;

const std::string kDir = "/tmp/cpc_embed_test_" + std::to_string(getpid());

void write_blobs(const std::string& path, int n, uint64_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0, 1);
  std::vector<float> x;
  std::vector<int64_t> y, speaker;
  for (int i = 0; i < n; ++i) {
    const int c = i % 3;
    y.push_back(10 + c);
    speaker.push_back(i % 5);
    for (int d = 0; d < 8; ++d) x.push_back(nd(rng) + (d == c ? 4.f : 0.f));
  }
  H5File f(path, H5File::Mode::create);
  f.write_floats("context", {n, 8}, x.data());
  f.write_ints("rhythm", y);
  f.write_ints("speaker", speaker);
  f.set_attribute("", "labels", "rhythm,speaker");
  f.commit();
}

TEST(Probe, SeparatesSeparableClasses) {
  std::filesystem::create_directories(kDir);
  write_blobs(kDir + "/tr.h5", 90, 1);
  write_blobs(kDir + "/te.h5", 60, 2);
  ProbeArgs a;
  a.train = kDir + "/tr.h5", a.test = kDir + "/te.h5", a.label = "rhythm";
  const ProbeResult r = fit_probe(a);
  EXPECT_GT(r.accuracy, 0.9);
  EXPECT_EQ(r.classes, std::vector<long long>({10, 11, 12}));
  int total = 0;
  for (const auto& row : r.confusion)
    for (int v : row) total += v;
  EXPECT_EQ(total, 60);
  a.feature = "z_mean";
  EXPECT_THAT(error_of([&] { fit_probe(a); }), HasSubstr("no feature dataset 'z_mean'"));
  std::filesystem::remove_all(kDir);
}

TEST(Probe, WhereFiltersKeepTheNamedWindows) {
  std::filesystem::create_directories(kDir);
  write_blobs(kDir + "/tr.h5", 90, 1);
  write_blobs(kDir + "/te.h5", 60, 2);
  ProbeArgs a;
  a.train = kDir + "/tr.h5", a.test = kDir + "/te.h5", a.label = "rhythm";
  a.train_where = "speaker=0,1,2", a.test_where = "speaker=4";  // 12 of the 60 test windows
  const ProbeResult r = fit_probe(a);
  int total = 0;
  for (const auto& row : r.confusion)
    for (int v : row) total += v;
  EXPECT_EQ(total, 12);
  EXPECT_GT(r.accuracy, 0.9);
  a.test_where = "speaker=7";
  EXPECT_THAT(error_of([&] { fit_probe(a); }), AllOf(HasSubstr("--test-where speaker=7"), HasSubstr("keeps no window")));
  a.test_where = "voice=1";
  EXPECT_THAT(error_of([&] { fit_probe(a); }), AllOf(HasSubstr("'voice', not a dataset"), HasSubstr("rhythm,speaker")));
  a.test_where = "speaker=x";
  EXPECT_THAT(error_of([&] { fit_probe(a); }), HasSubstr("'x' is not an integer"));
  a.test_where = "speaker";
  EXPECT_THAT(error_of([&] { fit_probe(a); }), HasSubstr("expected NAME=V[,V...]"));
  std::filesystem::remove_all(kDir);
}

TEST(Embed, FeaturesAndLabelsPerWindow) {
  std::filesystem::create_directories(kDir);
  SynthEcgOptions o;
  o.recordings = 10, o.seconds = 3;
  write_synthetic_ecg(kDir + "/ecg.h5", o);
  TrainArgs t;
  t.config = CPC_SOURCE_DIR "/models/configs/ecg12.json";
  t.data = kDir + "/ecg.h5", t.out = kDir + "/run", t.steps = 1, t.quiet = true;
  t.overrides = {"data.window=1024", "train.batch_size=4"};
  ASSERT_EQ(run_train(t), 0);
  EmbedArgs e;
  e.ckpt = kDir + "/run", e.data = kDir + "/ecg.h5", e.out = kDir + "/emb.h5", e.windows_per_recording = 2;
  ASSERT_EQ(run_embed(e), 0);
  H5File f(e.out, H5File::Mode::read);
  EXPECT_EQ(f.dims("context"), std::vector<int64_t>({20, 256}));
  EXPECT_EQ(f.dims("z_mean"), std::vector<int64_t>({20, 128}));
  const std::vector<int64_t> rec = f.read_ints("recording"), rhythm = f.read_ints("rhythm");
  const std::vector<int64_t> start = f.read_ints("start");
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(rec[i], i / 2);
    EXPECT_EQ(start[i], i % 2 ? 3 * 500 - 1024 : 0);  // 3 s at 500 Hz: first and last position
    EXPECT_EQ(rhythm[i], (i / 2) % kNumRhythms);
  }
  // Deterministic: the same command gives the same features; random init differs.
  e.out = kDir + "/emb2.h5";
  ASSERT_EQ(run_embed(e), 0);
  EXPECT_EQ(H5File(e.out, H5File::Mode::read).read("context").values, f.read("context").values);
  e.out = kDir + "/rnd.h5", e.random_init = true;
  ASSERT_EQ(run_embed(e), 0);
  EXPECT_NE(H5File(e.out, H5File::Mode::read).read("context").values, f.read("context").values);
  std::filesystem::remove_all(kDir);
}

}  // namespace
}  // namespace cpc::tools
