#pragma once
// `cpc-engine prepare wfdb`: a directory of PhysioNet WFDB records (.hea + format 16
// or 212 signal files) -> one ragged HDF5 file (layout (b), README "Data layout").
#include <cstdint>
#include <string>

#include "tools/prepare/prepare_common.h"

namespace cpc::tools {

struct PrepareWfdbArgs {
  std::string in, out;
  std::string labels;  // optional CSV record,label[,split]
  double rate = 0;     // resample every record to this rate; 0: keep (all records must agree)
  double test_fraction = 0.1;
  uint64_t seed = 0;
};

// Walks args.in recursively in sorted order for *.hea; every record must have the
// same channel count (the error names the first record that differs) and, without
// --rate, the same sampling rate. Writes signals (C, total) float32 in the header's
// physical units ((adc - baseline) / gain), offsets, split, and with --labels a
// `label` dataset; root attributes labels, label_names, rate_hz, leads (signal
// descriptions of the first record), units, source. A labels row matches a record by
// its path relative to --in without ".hea" (e.g. "records500/00000/00001_hr") or by
// its record name. Unreadable records are errors.
PrepareReport prepare_wfdb(const PrepareWfdbArgs& args);
int run_prepare_wfdb(const PrepareWfdbArgs& args);

}  // namespace cpc::tools
