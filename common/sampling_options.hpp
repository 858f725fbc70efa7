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
  // false: temperature, then top-k and top-p (transformers). true: top-k and top-p on the
  // untempered distribution, then the temperature on the kept tokens' probabilities (NotaGen's
  // samplings package: p_i^(1/T), renormalised).
  bool temperature_last = false;
  bool greedy() const { return temperature <= 0.0; }
};

}  // namespace duet
