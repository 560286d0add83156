// WFDB headers, formats 16 and 212, `prepare wfdb` read back within one ADC step, bad records.
#include "tests/tools/prepare/prepare_test_util.h"

namespace cpc::tools {
namespace {

using namespace prepare_test;  // fs, AllOf, HasSubstr, the files and helpers

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

}  // namespace
}  // namespace cpc::tools
