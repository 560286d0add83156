#pragma once
// `cpc-engine prepare wav`: a directory of WAV files -> one ragged HDF5 file (layout
// (b), README "Data layout") with labels and a train/test split.
#include <cstdint>
#include <string>

#include "tools/prepare/prepare_common.h"

namespace cpc::tools {

struct PrepareWavArgs {
  std::string in, out;
  std::string manifest;  // optional CSV: path,label[,split] or a header path,<labels>[,split]; paths relative to `in`
  double rate = 16000;   // every file is resampled to this rate
  double test_fraction = 0.1;
  uint64_t seed = 0;
  bool keep_channels = false;  // default: average the channels to mono
};

// Walks args.in recursively in sorted order for *.wav. Labels: the first-level
// sub-folder of each file ("." for files directly in `in`; none at all when every
// file is), or the manifest's label columns (a header row `path,speaker,language,split`
// makes datasets speaker and language). Writes signals (total,) float32 (PCM
// full scale = 1; resampling may overshoot it slightly), offsets, label (when
// labelled), split, and root attributes labels, label_names, rate_hz, source. With
// keep_channels, signals is (C, total) and files with another channel count are
// skipped. Unreadable files are skipped and reported; an empty directory, a manifest
// naming a missing file, or no readable file at all is an error.
PrepareReport prepare_wav(const PrepareWavArgs& args);

// prepare_wav plus the printed summary; returns the exit code.
int run_prepare_wav(const PrepareWavArgs& args);

}  // namespace cpc::tools
