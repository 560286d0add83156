#include "losses/negative_sampler.h"

#include "engine/core/error.h"
#include "engine/core/random.h"

namespace cpc {

int64_t NegativePool::size() const {
  switch (kind) {
    case Kind::same_step: return global_batch - 1;
    case Kind::all_steps: return steps * global_batch - 1;
    case Kind::other_sequences: return steps * (global_batch - 1);
    case Kind::same_sequence: return steps - 1;
  }
  return 0;
}

int64_t NegativePool::global_row(int64_t i) const {
  if (kind == Kind::same_sequence) return rank * batch * steps + i;  // (b, t) rows
  return (i / batch) * global_batch + rank * batch + i % batch;     // (t, b) rows
}

int64_t NegativePool::positive(int64_t i) const { return kind == Kind::same_sequence ? i : global_row(i); }

int64_t NegativePool::member(int64_t i, int64_t u) const {
  auto skip = [](int64_t u, int64_t own) { return u < own ? u : u + 1; };  // u-th of [0, n) without own
  const int64_t g = global_row(i);
  switch (kind) {
    case Kind::same_step: {
      const int64_t t = g / global_batch, b = g % global_batch;
      return t * global_batch + skip(u, b);
    }
    case Kind::all_steps: return skip(u, g);
    case Kind::other_sequences: {
      const int64_t b = g % global_batch;
      return (u / (global_batch - 1)) * global_batch + skip(u % (global_batch - 1), b);
    }
    case Kind::same_sequence: {  // this rank's columns only
      const int64_t b = i / steps, t = i % steps;
      return b * steps + skip(u, t);
    }
  }
  return -1;
}

void sample_negatives(const NegativePool& pool, uint64_t seed, int64_t k, int64_t n, std::vector<int32_t>& out) {
  const int64_t P = pool.size(), R = pool.rows(), S = 1 + n;
  CPC_CHECK(P >= 1, "negatives_count: the pool of negatives is empty (one sequence at one step)");
  out.resize(static_cast<size_t>(R * S));
  const uint64_t sk = splitmix64(seed ^ splitmix64(static_cast<uint64_t>(k)));
  for (int64_t i = 0; i < R; ++i) {
    const int64_t g = pool.global_row(i);
    const uint64_t si = splitmix64(sk ^ static_cast<uint64_t>(g));
    out[static_cast<size_t>(i * S)] = static_cast<int32_t>(pool.positive(i));
    for (int64_t j = 0; j < n; ++j) {
      // Uniform in [0, P): the high 64 bits of a 64 x 64-bit product (Lemire), unbiased to 2^-64 P.
      const uint64_t h = splitmix64(si + static_cast<uint64_t>(j) * 0xd1b54a32d192ed03ULL);
      const auto u = static_cast<int64_t>((static_cast<unsigned __int128>(h) * static_cast<uint64_t>(P)) >> 64);
      out[static_cast<size_t>(i * S + 1 + j)] = static_cast<int32_t>(pool.member(i, u));
    }
  }
}

}  // namespace cpc
