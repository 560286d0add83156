#pragma once
// Windows of multichannel signals read from HDF5. Two layouts (README "Data layout"):
//   (a) fixed:  dataset `signals` (N, C, L), one recording per row;
//   (b) ragged: dataset `signals` (C, total) or (total,) with `offsets` (n + 1):
//       recording i is signals[..., offsets[i]:offsets[i+1]].
// Optional per-recording integer datasets: `split` (0 train, 1 validation/test) and
// label datasets named in the root attribute `labels` (comma-separated, e.g.
// "rhythm,speaker"). Recordings shorter than the window are skipped and counted.
// HDF5 here is not thread-safe: every read goes through H5File's process-wide lock.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/data/h5_file.h"

namespace cpc {

class WindowDataset {
 public:
  // channels / window: what the model expects; mismatches are errors naming the file.
  WindowDataset(const std::string& path, int64_t channels, int64_t window);

  int64_t channels() const { return channels_; }
  int64_t window() const { return window_; }
  bool ragged() const { return ragged_; }
  int64_t num_recordings() const { return static_cast<int64_t>(lengths_.size()); }
  int64_t length(int64_t rec) const { return lengths_[static_cast<size_t>(rec)]; }
  // Recordings long enough for a window, optionally only those of one split (-1: all).
  std::vector<int64_t> usable(int split = -1) const;
  int64_t skipped_short() const { return skipped_short_; }
  bool has_split() const { return !split_.empty(); }
  const std::vector<std::string>& label_names() const { return label_names_; }
  const std::vector<int64_t>& labels(const std::string& name) const;
  const std::string& path() const { return file_->path(); }

  // Copies channels x window samples of recording rec from `start` into out (C * window).
  void read_window(int64_t rec, int64_t start, float* out) const;

 private:
  std::unique_ptr<H5File> file_;
  int64_t channels_, window_;
  bool ragged_ = false;
  bool flat_ = false;  // ragged signals stored as (total,)
  std::vector<int64_t> offsets_, lengths_, split_;
  std::vector<std::string> label_names_;
  std::map<std::string, std::vector<int64_t>> labels_;
  int64_t skipped_short_ = 0;
};

}  // namespace cpc
