#pragma once
// How the next token is chosen. Plain data: configs and the wire carry it without LibTorch.
#include <cstdint>

namespace duet {

struct SamplingOptions {
  double temperature = 0.0;        // 0: greedy
  int64_t top_k = 0;               // 0: off
  double top_p = 1.0;              // 1: off
  double repetition_penalty = 1.0; // 1: off (transformers' rule: divide positive logits, multiply negative)
  uint64_t seed = 0;               // sampled runs with the same seed pick the same tokens
  bool greedy() const { return temperature <= 0.0; }
};

}  // namespace duet
