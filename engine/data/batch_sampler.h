#pragma once
// Which windows each training step reads. The global batch of step s is a pure
// function of (seed, s): a resumed run needs only the step to continue exactly, and
// N ranks x batch B read the same windows as 1 rank x batch N*B (rank r takes rows
// [r*B, (r+1)*B) of the global batch). Recordings are visited in a fresh seeded
// permutation per epoch; each window's start is drawn uniformly within its recording.
//
// Grouped (set_groups, config data.group_by): every global batch comes from recordings
// sharing one group (e.g. one speaker), so in-batch negatives are same-group negatives.
// The group of step s is the group of a recording drawn uniformly (groups weighted by
// size); its members are drawn without replacement when the group holds at least a
// batch, with replacement otherwise. Still a pure function of (seed, s).
#include <cstdint>
#include <mutex>
#include <vector>

namespace cpc {

struct WindowRef {
  int64_t recording;
  int64_t start;
};

class BatchSampler {
 public:
  // recordings: usable recording indices; lengths: their lengths (samples).
  BatchSampler(std::vector<int64_t> recordings, std::vector<int64_t> lengths, int64_t window, int64_t global_batch,
               uint64_t seed);
  std::vector<WindowRef> batch(int64_t step, int rank = 0, int world = 1) const;
  // groups[i]: the group of recordings[i] (any integers; negative: not in any group,
  // never drawn). Fails when no recording has a group.
  void set_groups(const std::vector<int64_t>& groups);
  bool grouped() const { return !members_.empty(); }
  int64_t global_batch() const { return global_batch_; }
  int64_t size() const { return static_cast<int64_t>(recordings_.size()); }

 private:
  std::vector<int64_t> recordings_, lengths_;
  int64_t window_, global_batch_;
  uint64_t seed_;
  mutable std::mutex mu_;  // batch() may be called from the loader thread and others
  mutable int64_t cached_epoch_ = -1;
  mutable std::vector<int64_t> perm_;
  std::vector<std::vector<int64_t>> members_;  // per group: indices into recordings_
  std::vector<int64_t> grouped_index_;          // every grouped recording, for drawing a step's group
  std::vector<int64_t> group_of_;               // per grouped_index_ entry: its group's slot in members_
  std::vector<WindowRef> grouped_batch(int64_t step, int rank, int world) const;
  const std::vector<int64_t>& permutation(int64_t epoch) const;
};

}  // namespace cpc
