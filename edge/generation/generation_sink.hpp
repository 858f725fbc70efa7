#pragma once
// Where a GenerationJob delivers: text as it becomes safe to show (stop strings applied), then
// the outcome with the one stop reason. The CLI prints, the OpenAI routes write JSON or SSE with
// finish_reason (finish_reason(outcome.stop)), the music page writes its chunks. No LibTorch.
#include <cstdint>
#include <string>
#include <vector>

#include "edge/client/stop_reason.hpp"

namespace duet::edge {

struct GenerationOutcome {
  std::vector<int32_t> tokens;  // generated ids (the stop token included)
  std::string text;             // everything delivered, stop string cut off
  StopReason stop = StopReason::budget;
  int64_t prompt_tokens = 0, completion_tokens = 0;
  double ttft_ms = 0, decode_tok_s = 0;
  int64_t relaxed_steps = 0;    // a tune's: steps where the bar constraint lifted its mask
};

class GenerationSink {
 public:
  virtual ~GenerationSink() = default;
  // A piece of text; false when the reader went away: the job ends (StopReason::cancelled) and
  // with it the request's cloud session.
  virtual bool text(const std::string& delta) = 0;
  // Once, at the end: after a cancel too (outcome.stop == cancelled), when there is no one to tell.
  virtual void finish(const GenerationOutcome& outcome) = 0;
};

}  // namespace duet::edge
