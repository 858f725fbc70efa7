#pragma once
// What the generation loop (common/generator.hpp) returns: the ids, the loop's stop reason and one
// StepStats per backbone call. Plain data, no LibTorch: GenerationJob's outcome carries the rounds
// to its sinks (the CLI's --json report) through headers that must stay light.
#include <cstdint>
#include <string>
#include <vector>

#include "common/round_timing.hpp"

namespace duet {

// One backbone call (a round trip when the backbone is remote).
struct StepStats {
  int64_t positions = 0;   // sent in this step (prompt length for the prefill; 1 + drafts when speculating)
  int64_t tokens = 1;      // tokens this step emitted (accepted drafts + one drawn)
  int64_t drafted = 0;     // draft tokens sent for verification
  int64_t accepted = 0;    // of them kept
  double edge_ms = 0;      // embedding + norm + head + sampling
  double backbone_ms = 0;  // the backbone call: in-process compute, or the network round trip
  double cloud_ms = -1;    // compute time the backbone reported (-1: none)
  // edge_ms in parts (the logits processor, e.g. the music constraint, counts as sampling)
  double embed_ms = 0, head_ms = 0, sample_ms = 0;
  RoundTiming backbone;    // the backbone's own account of the call (backbone.last_timing())
};

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated ids, the stop token included
  std::string stop_reason;      // "eos", "max_new_tokens" or "max_positions"
  std::vector<StepStats> steps;
};

}  // namespace duet
