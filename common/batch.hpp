#pragma once
// One step of the engine as data: a set of rows, each some positions of one sequence. Decode rows
// (one position) of many sessions and prefill chunks (or k verified drafts) run in the same step
// through every stage. No LibTorch: the scheduler builds these.
//
// The hidden states of a step are the rows' tokens concatenated in row order: x [T, H] with
// T = tokens(); a stage returns [T, H] in the same order, except the last stage of a plan, which
// returns only what each row asks for (its last `out` positions: a prompt chunk before the
// prompt's end asks for none, the end for one): outputs() rows, in row order (keep_outputs).
#include <cstdint>
#include <vector>

#include "common/kv_blocks.hpp"

namespace duet {

// Positions [start, start + n) of the sequence whose blocks are `table`. The table must already
// cover start + n positions (KvBlockAllocator::ensure) and start <= table->length (no gaps);
// positions at or after start that were written before are overwritten. After a successful step
// the caller records table->length = start + n.
struct BatchRow {
  const BlockTable* table = nullptr;
  int64_t start = 0;
  int64_t n = 0;
  int64_t out = -1;  // how many of the row's last positions the step returns, 0..n; -1: all n

  int64_t outputs() const { return out < 0 ? n : out; }
};

struct StepBatch {
  std::vector<BatchRow> rows;  // at most one row per sequence in a step

  int64_t tokens() const;
  int64_t outputs() const;  // rows of the final output: sum of the rows' outputs()
  bool all_decode() const;  // every row has n == 1 (and there is at least one)
  // Throws std::invalid_argument naming the row when a row breaks the rules above (block ids are
  // bounds-checked where they are read, in build_attention_input).
  void validate(int64_t block_size, int64_t num_blocks) const;
};

}  // namespace duet
