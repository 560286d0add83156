#include "engine/data/window_dataset.h"

#include <cmath>
#include <sstream>

#include "engine/core/error.h"

namespace cpc {

WindowDataset::WindowDataset(const std::string& path, int64_t channels, int64_t window)
    : file_(std::make_unique<H5File>(path, H5File::Mode::read, "the layout in README \"Data layout\"")), channels_(channels), window_(window) {
  CPC_CHECK(file_->has("signals"), path, ": no dataset 'signals' (expected (N, C, L), or (C, total) with 'offsets')");
  const std::vector<int64_t> d = file_->dims("signals");
  const std::string type = file_->type_class("signals");
  CPC_CHECK(type == "float" || type == "integer", path, ": 'signals' holds ", type, " values; expected numbers");
  ragged_ = file_->has("offsets");
  if (!ragged_) {
    CPC_CHECK(d.size() == 3, path, ": 'signals' has rank ", d.size(),
              "; expected (N, C, L), or (C, total) / (total,) with an 'offsets' dataset");
    CPC_CHECK(d[1] == channels, path, ": 'signals' has ", d[1], " channels, the model expects ", channels);
    lengths_.assign(static_cast<size_t>(d[0]), d[2]);
  } else {
    CPC_CHECK(d.size() == 1 || d.size() == 2, path, ": ragged 'signals' must be (C, total) or (total,), found rank ",
              d.size());
    flat_ = d.size() == 1;
    const int64_t c = flat_ ? 1 : d[0], total = d.back();
    CPC_CHECK(c == channels, path, ": 'signals' has ", c, " channels, the model expects ", channels);
    CPC_CHECK(file_->type_class("offsets") == "integer" && file_->dims("offsets").size() == 1, path,
              ": 'offsets' must be a 1-D integer dataset, found ", file_->type_class("offsets"), " of rank ",
              file_->dims("offsets").size());
    offsets_ = file_->read_ints("offsets");
    CPC_CHECK(offsets_.size() >= 2, path, ": 'offsets' has ", offsets_.size(),
              " entries; expected at least 2 (recording r spans signals[offsets[r] : offsets[r + 1]])");
    CPC_CHECK(offsets_.front() == 0 && offsets_.back() == total, path,
              ": 'offsets' must start at 0 and end at the signal length ", total, ", found ", offsets_.size(),
              " entries from ", offsets_.front(), " to ", offsets_.back());
    for (size_t i = 0; i + 1 < offsets_.size(); ++i) {
      CPC_CHECK(offsets_[i + 1] >= offsets_[i], path, ": 'offsets' decreases at entry ", i + 1);
      lengths_.push_back(offsets_[i + 1] - offsets_[i]);
    }
  }
  const int64_t n = num_recordings();
  CPC_CHECK(n > 0, path, ": 'signals' holds no recordings");
  if (file_->has("split")) {
    split_ = file_->read_ints("split");
    CPC_CHECK(static_cast<int64_t>(split_.size()) == n, path, ": 'split' has ", split_.size(), " entries for ", n,
              " recordings");
  }
  std::string names;
  try {
    names = file_->attribute("", "labels");
  } catch (const Error&) {
    names.clear();  // no label datasets
  }
  std::stringstream ss(names);
  std::string name;
  while (std::getline(ss, name, ',')) {
    if (name.empty()) continue;
    CPC_CHECK(file_->has(name), path, ": attribute 'labels' names '", name, "' but there is no such dataset");
    CPC_CHECK(file_->type_class(name) == "integer", path, ": label '", name, "' holds ", file_->type_class(name),
              " values; expected integer class indices (names go in the attribute '", name, "_names')");
    std::vector<int64_t> v = file_->read_ints(name);
    CPC_CHECK(static_cast<int64_t>(v.size()) == n, path, ": label '", name, "' has ", v.size(), " entries for ", n,
              " recordings");
    label_names_.push_back(name);
    labels_[name] = std::move(v);
  }
  for (int64_t len : lengths_)
    if (len < window_) ++skipped_short_;
}

std::vector<int64_t> WindowDataset::usable(int split) const {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < num_recordings(); ++i) {
    if (length(i) < window_) continue;
    if (split >= 0 && has_split() && split_[static_cast<size_t>(i)] != split) continue;
    out.push_back(i);
  }
  return out;
}

const std::vector<int64_t>& WindowDataset::labels(const std::string& name) const {
  auto it = labels_.find(name);
  if (it == labels_.end()) {
    std::string have;
    for (const auto& n : label_names_) have += (have.empty() ? "" : ", ") + n;
    fail(path(), ": no label '", name, "' (the file has: ", have.empty() ? "none" : have, ")");
  }
  return it->second;
}

void WindowDataset::read_window(int64_t rec, int64_t start, float* out) const {
  CPC_CHECK(0 <= rec && rec < num_recordings(), path(), ": recording ", rec, " out of range [0, ", num_recordings(),
            ")");
  CPC_CHECK(0 <= start && start + window_ <= length(rec), path(), ": window [", start, ", ", start + window_,
            ") outside recording ", rec, " of length ", length(rec));
  if (!ragged_) {
    file_->read_floats("signals", {rec, 0, start}, {1, channels_, window_}, out);
  } else if (flat_) {
    file_->read_floats("signals", {offsets_[static_cast<size_t>(rec)] + start}, {window_}, out);
  } else {
    file_->read_floats("signals", {0, offsets_[static_cast<size_t>(rec)] + start}, {channels_, window_}, out);
  }
  // NaN/Inf samples are rejected where they are read (scanning a large file up front
  // would cost a full pass): the message names the recording and the sample.
  for (int64_t i = 0; i < channels_ * window_; ++i)
    if (!std::isfinite(out[i]))
      fail(path(), ": recording ", rec, " has a non-finite sample (", out[i], ") at channel ", i / window_,
           ", sample ", start + i % window_, "; clean or drop that recording (nothing is skipped silently)");
}

}  // namespace cpc
