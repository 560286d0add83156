#include "engine/window_dataset.h"

#include <sstream>

#include "engine/error.h"

namespace cpc {

WindowDataset::WindowDataset(const std::string& path, int64_t channels, int64_t window)
    : file_(std::make_unique<H5File>(path, H5File::Mode::read)), channels_(channels), window_(window) {
  CPC_CHECK(file_->has("signals"), path, ": no dataset 'signals' (expected (N, C, L), or (C, total) with 'offsets')");
  const std::vector<int64_t> d = file_->dims("signals");
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
    offsets_ = file_->read_ints("offsets");
    CPC_CHECK(offsets_.size() >= 2 && offsets_.front() == 0 && offsets_.back() == total, path,
              ": 'offsets' must start at 0 and end at the signal length ", total, ", found ", offsets_.size(),
              " entries ending at ", offsets_.empty() ? -1 : offsets_.back());
    for (size_t i = 0; i + 1 < offsets_.size(); ++i) {
      CPC_CHECK(offsets_[i + 1] >= offsets_[i], path, ": 'offsets' decreases at entry ", i + 1);
      lengths_.push_back(offsets_[i + 1] - offsets_[i]);
    }
  }
  const int64_t n = num_recordings();
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
}

}  // namespace cpc
