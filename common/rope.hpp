#pragma once
// Rotary position embedding tables, computed as transformers computes them for each rope_type
// (inv_freq in fp32, cos/sin scaled by the type's attention factor, then cast to the compute
// dtype), one row per position.
//
// Types whose frequencies depend on the sequence length in transformers (dynamic, longrope)
// switch there per forward call: with its KV cache each new position is rotated by the
// frequencies of a sequence that ends at it, while a full recompute rotates every position by
// those of the whole sequence. duet rotates position p as transformers' cached decoding does
// when it reaches p one token at a time, so a position's keys never change once written
// (incremental == full recompute here). Within the original context both agree with
// transformers exactly; beyond it, duet agrees with transformers' cached decoding.
#include <torch/types.h>

#include <memory>

#include "common/rope_config.hpp"

namespace duet {

class RopeTable {
 public:
  RopeTable(const RopeSpec& spec, int64_t head_dim, int64_t max_positions, c10::ScalarType dtype,
            c10::Device device);

  torch::Tensor cos, sin;  // [max_positions, rotary_dim], compute dtype, on the device
  int64_t rotary_dim() const { return cos.size(1); }

  // x [T, heads, d] with the rows at each token's position picked: c, s [T, 1, rotary_dim]. The
  // first rotary_dim dimensions of each head rotate (halves paired as in transformers'
  // rotate_half); the rest pass through (partial rotary).
  static torch::Tensor apply_rows(const torch::Tensor& x, const torch::Tensor& c, const torch::Tensor& s);

  // inv_freq [rotary_dim / 2] of a type that does not depend on the position (fp32, on the CPU).
  static torch::Tensor inv_freq(const RopeSpec& spec, int64_t head_dim, bool long_factors = false);
};

// One table per (spec, head_dim, max_positions, dtype, device), shared by the blocks of a process.
std::shared_ptr<const RopeTable> shared_rope_table(const RopeSpec& spec, int64_t head_dim, int64_t max_positions,
                                                   c10::ScalarType dtype, c10::Device device);

}  // namespace duet
