#pragma once
// Which windows each training step reads. The global batch of step s is a pure
// function of (seed, s): a resumed run needs only the step to continue exactly, and
// N ranks x batch B read the same windows as 1 rank x batch N*B (rank r takes rows
// [r*B, (r+1)*B) of the global batch). Recordings are visited in a fresh seeded
// permutation per epoch; each window's start is drawn uniformly within its recording.
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
  int64_t global_batch() const { return global_batch_; }
  int64_t size() const { return static_cast<int64_t>(recordings_.size()); }

 private:
  std::vector<int64_t> recordings_, lengths_;
  int64_t window_, global_batch_;
  uint64_t seed_;
  mutable std::mutex mu_;  // batch() may be called from the loader thread and others
  mutable int64_t cached_epoch_ = -1;
  mutable std::vector<int64_t> perm_;
  const std::vector<int64_t>& permutation(int64_t epoch) const;
};

}  // namespace cpc
