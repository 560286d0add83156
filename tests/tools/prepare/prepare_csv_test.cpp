// Numeric CSV files as recordings with labels; bad cells named by file, line and column.
#include "tests/tools/prepare/prepare_test_util.h"

namespace cpc::tools {
namespace {

using namespace prepare_test;  // fs, AllOf, HasSubstr, the files and helpers

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
