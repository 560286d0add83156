// libFuzzer target: the CSV reader (prepare csv), with and without a label column and
// an ignored column. The first input byte picks the options.
#include "engine/core/error.h"
#include "tests/fuzz/fuzz_input.h"
#include "tools/prepare/prepare_csv.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  cpc::tools::PrepareCsvArgs args;
  if (data[0] & 1) args.label_column = "label";
  if (data[0] & 2) args.ignore_columns = {"time"};
  const std::string path = cpc::fuzz::write_input("in.csv", data + 1, size - 1);
  try {
    const cpc::tools::CsvRecording r = cpc::tools::read_csv_recording(path, args);
    for (const auto& c : r.channels)
      if (static_cast<int64_t>(c.size()) != r.rows) __builtin_trap();
  } catch (const cpc::Error&) {
  }
  return 0;
}
