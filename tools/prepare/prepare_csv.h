#pragma once
// `cpc-engine prepare csv`: numeric CSV files (one column per channel, a header row;
// one file = one recording) -> one ragged HDF5 file (layout (b), README "Data layout").
#include <cstdint>
#include <string>
#include <vector>

#include "tools/prepare/prepare_common.h"

namespace cpc::tools {

struct PrepareCsvArgs {
  std::string in, out;                      // in: a .csv file or a directory searched recursively
  double rate = 0;                          // the rows' sampling rate, recorded as rate_hz (0: unknown)
  std::string label_column;                 // this column is the recording's label (constant per file)
  std::vector<std::string> ignore_columns;  // e.g. a time column
  double test_fraction = 0.1;
  uint64_t seed = 0;
};

struct CsvRecording {
  std::vector<std::string> channel_names;
  std::vector<std::vector<float>> channels;
  std::string label;
  int64_t rows = 0;
};
// One file: the columns' roles from args (label, ignored), every cell checked.
CsvRecording read_csv_recording(const std::string& path, const PrepareCsvArgs& args);

// Delimiter: ',' (or ';' / tab when the header has no comma). Every file must have the
// same number of channel columns. Errors name the file, line and column: non-numeric
// or empty cells, rows of the wrong length, NaN/Inf samples (also the sample index),
// a label that changes within a file. Writes signals (C, total) float32, offsets,
// split, `label` with --label-column; root attributes labels, label_names,
// channel_names (the first file's header), rate_hz (with --rate), source.
PrepareReport prepare_csv(const PrepareCsvArgs& args);
int run_prepare_csv(const PrepareCsvArgs& args);

}  // namespace cpc::tools
