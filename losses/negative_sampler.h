#pragma once
// InfoNCE's sampled negatives (loss.negatives_count), as CPC_audio draws them: for each
// row, N candidates uniformly with replacement from the row's pool, the pool being
// what the negative mode scores against, minus the positive. Draws are addressed by
// (seed, k, global row, j) alone: resume is exact, and N ranks with global negatives
// draw for their rows exactly what one process holding the global batch would.
#include <cstdint>
#include <vector>

namespace cpc {

struct NegativePool {
  // same_step: the other sequences at the row's step (negatives batch); all_steps:
  // every other column (batch_time); other_sequences: every column of the other
  // sequences (batch_time with exclude_own_sequence); same_sequence: the other steps
  // of the row's sequence (sequence).
  enum class Kind { same_step, all_steps, other_sequences, same_sequence } kind = Kind::same_step;
  int64_t steps = 1;         // nt, the selected steps
  int64_t batch = 1;         // B, this rank's sequences
  int64_t global_batch = 1;  // BG, all ranks' sequences (columns)
  int64_t rank = 0;

  int64_t rows() const { return steps * batch; }
  int64_t size() const;  // candidates in each row's pool (the positive excluded)
  // Rows are ordered (t, b), or (b, t) for same_sequence; columns alike, over the
  // global batch except for same_sequence (this rank's). The global row of local row i
  // (what its draws are keyed by), and its positive column.
  int64_t global_row(int64_t i) const;
  int64_t positive(int64_t i) const;
  int64_t member(int64_t i, int64_t u) const;  // column of pool member u of row i
};

// out (rows, 1 + n): per row its positive column, then n draws from its pool.
void sample_negatives(const NegativePool& pool, uint64_t seed, int64_t k, int64_t n, std::vector<int32_t>& out);

}  // namespace cpc
