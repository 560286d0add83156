#include "engine/data/batch_sampler.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <random>

#include "engine/core/error.h"

namespace cpc {

namespace {
uint64_t mix(uint64_t a, uint64_t b) {  // splitmix64 of a combined key
  uint64_t x = a * 0x9e3779b97f4a7c15ULL + b + 0x632be59bd9b4e019ULL;
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
}  // namespace

BatchSampler::BatchSampler(std::vector<int64_t> recordings, std::vector<int64_t> lengths, int64_t window,
                           int64_t global_batch, uint64_t seed)
    : recordings_(std::move(recordings)),
      lengths_(std::move(lengths)),
      window_(window),
      global_batch_(global_batch),
      seed_(seed) {
  CPC_CHECK(!recordings_.empty(), "batch sampler: no recording is at least one window (", window, " samples) long");
  CPC_CHECK(recordings_.size() == lengths_.size(), "batch sampler: ", recordings_.size(), " recordings but ",
            lengths_.size(), " lengths");
  CPC_CHECK(global_batch_ >= 1, "batch sampler: batch size must be >= 1, found ", global_batch_);
}

const std::vector<int64_t>& BatchSampler::permutation(int64_t epoch) const {
  if (epoch != cached_epoch_) {
    perm_.resize(recordings_.size());
    std::iota(perm_.begin(), perm_.end(), 0);
    std::mt19937_64 rng(mix(seed_, static_cast<uint64_t>(epoch)));
    std::shuffle(perm_.begin(), perm_.end(), rng);
    cached_epoch_ = epoch;
  }
  return perm_;
}

void BatchSampler::set_groups(const std::vector<int64_t>& groups) {
  CPC_CHECK(groups.size() == recordings_.size(), "batch sampler: ", groups.size(), " groups for ", recordings_.size(),
            " recordings");
  std::map<int64_t, size_t> slot;
  members_.clear(), grouped_index_.clear(), group_of_.clear();
  for (size_t i = 0; i < groups.size(); ++i) {
    if (groups[i] < 0) continue;
    auto [it, fresh] = slot.emplace(groups[i], members_.size());
    if (fresh) members_.emplace_back();
    members_[it->second].push_back(static_cast<int64_t>(i));
    grouped_index_.push_back(static_cast<int64_t>(i));
    group_of_.push_back(static_cast<int64_t>(it->second));
  }
  CPC_CHECK(!members_.empty(), "batch sampler: no recording has a group (all labels are negative)");
}

std::vector<WindowRef> BatchSampler::grouped_batch(int64_t step, int rank, int world) const {
  const int64_t per_rank = global_batch_ / world;
  const uint64_t key = mix(seed_ ^ 0x5bd1e995ULL, static_cast<uint64_t>(step));
  const std::vector<int64_t>& m =
      members_[static_cast<size_t>(group_of_[static_cast<size_t>(key % grouped_index_.size())])];
  // The step's global batch of members: a seeded partial shuffle (without replacement)
  // when the group holds a batch, else independent draws.
  std::vector<int64_t> pick(static_cast<size_t>(global_batch_));
  std::mt19937_64 rng(mix(key, 0x1234567ULL));
  if (static_cast<int64_t>(m.size()) >= global_batch_) {
    std::vector<int64_t> pool = m;
    for (int64_t i = 0; i < global_batch_; ++i) {
      const size_t j = static_cast<size_t>(i) + static_cast<size_t>(rng() % (pool.size() - static_cast<size_t>(i)));
      std::swap(pool[static_cast<size_t>(i)], pool[j]);
      pick[static_cast<size_t>(i)] = pool[static_cast<size_t>(i)];
    }
  } else {
    for (int64_t& p : pick) p = m[static_cast<size_t>(rng() % m.size())];
  }
  std::vector<WindowRef> out;
  out.reserve(static_cast<size_t>(per_rank));
  for (int64_t i = rank * per_rank; i < (rank + 1) * per_rank; ++i) {
    const int64_t k = pick[static_cast<size_t>(i)];
    const int64_t span = lengths_[static_cast<size_t>(k)] - window_ + 1;
    const uint64_t r = mix(mix(seed_ ^ 0xa5a5a5a5ULL, static_cast<uint64_t>(step)), static_cast<uint64_t>(i));
    out.push_back({recordings_[static_cast<size_t>(k)], static_cast<int64_t>(r % static_cast<uint64_t>(span))});
  }
  return out;
}

std::vector<WindowRef> BatchSampler::batch(int64_t step, int rank, int world) const {
  CPC_CHECK(world >= 1 && 0 <= rank && rank < world, "batch sampler: rank ", rank, " of world ", world);
  CPC_CHECK(global_batch_ % world == 0, "batch sampler: global batch ", global_batch_, " does not split over ", world,
            " ranks");
  if (grouped()) return grouped_batch(step, rank, world);
  const int64_t per_rank = global_batch_ / world, n = size();
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<WindowRef> out;
  out.reserve(static_cast<size_t>(per_rank));
  for (int64_t i = rank * per_rank; i < (rank + 1) * per_rank; ++i) {
    const int64_t pos = step * global_batch_ + i;
    const int64_t k = permutation(pos / n)[static_cast<size_t>(pos % n)];
    const int64_t span = lengths_[static_cast<size_t>(k)] - window_ + 1;
    const uint64_t r = mix(mix(seed_ ^ 0xa5a5a5a5ULL, static_cast<uint64_t>(step)), static_cast<uint64_t>(i));
    out.push_back({recordings_[static_cast<size_t>(k)], static_cast<int64_t>(r % static_cast<uint64_t>(span))});
  }
  return out;
}

}  // namespace cpc
