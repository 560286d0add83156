// `prepare wav`: the stratified split, label folders, resampling and stereo, manifests, bad inputs.
#include "tests/tools/prepare/prepare_test_util.h"

namespace cpc::tools {
namespace {

using namespace prepare_test;  // fs, AllOf, HasSubstr, the files and helpers

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

TEST(PrepareWav, ManifestHeaderNamesSeveralLabels) {
  TempDir d;
  for (int k = 0; k < 4; ++k) write_wav(d / ("in/" + std::to_string(k) + ".wav"), mono(ramp(600, k), 16000));
  write_text(d / "m.csv",
             "path,speaker,split,language\n"
             "0.wav,bob,train,en\n"
             "1.wav,ann,test,de\n"
             "2.wav,bob,train,de\n"
             "3.wav,cat,test,en\n");
  PrepareWavArgs a;
  a.in = d / "in", a.out = d / "out.h5", a.manifest = d / "m.csv";
  const PrepareReport rep = prepare_wav(a);
  EXPECT_EQ(rep.label_names, (std::vector<std::string>{"ann", "bob", "cat"}));
  WindowDataset ds(a.out, 1, 600);
  EXPECT_EQ(ds.label_names(), (std::vector<std::string>{"speaker", "language"}));
  EXPECT_EQ(ds.labels("speaker"), (std::vector<int64_t>{1, 0, 1, 2}));
  EXPECT_EQ(ds.labels("language"), (std::vector<int64_t>{1, 0, 0, 1}));
  EXPECT_EQ(ds.usable(1), (std::vector<int64_t>{1, 3}));
  H5File f(a.out, H5File::Mode::read);
  EXPECT_EQ(f.attribute("", "speaker_names"), "ann,bob,cat");
  EXPECT_EQ(f.attribute("", "language_names"), "de,en");
  EXPECT_FALSE(f.has("label"));

  write_text(d / "bad.csv", "path,speaker,language\n0.wav,bob\n");
  a.manifest = d / "bad.csv";
  EXPECT_THAT(error_of([&] { prepare_wav(a); }),
              AllOf(HasSubstr("line 2"), HasSubstr("expected 3 fields as the header says"), HasSubstr("found 2")));
  write_text(d / "bad2.csv", "path,speaker,speaker\n0.wav,bob,ann\n");
  a.manifest = d / "bad2.csv";
  EXPECT_THAT(error_of([&] { prepare_wav(a); }), HasSubstr("column 'speaker' appears twice"));
  write_text(d / "bad3.csv", "path,offsets\n0.wav,bob\n");
  a.manifest = d / "bad3.csv";
  EXPECT_THAT(error_of([&] { prepare_wav(a); }), HasSubstr("'offsets' is reserved"));
  write_text(d / "bad4.csv", "path,the speaker\n0.wav,bob\n");
  a.manifest = d / "bad4.csv";
  EXPECT_THAT(error_of([&] { prepare_wav(a); }), HasSubstr("letters, digits or _"));
  EXPECT_FALSE(fs::exists(a.out + ".tmp"));
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

}  // namespace
}  // namespace cpc::tools
