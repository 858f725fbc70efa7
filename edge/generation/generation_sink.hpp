#pragma once
// Where a GenerationJob delivers: text as it becomes safe to show (stop strings applied), then
// the outcome with the one stop reason. The CLI prints, the OpenAI routes write JSON or SSE with
// finish_reason (finish_reason(outcome.stop)), the music page writes its chunks, the CLI prints
// (and writes its --json report from the rounds). No LibTorch.
#include <cstdint>
#include <string>
#include <vector>

#include "common/generation_result.hpp"
#include "edge/client/stop_reason.hpp"

namespace duet::edge {

struct GenerationOutcome {
  std::vector<int32_t> tokens;  // generated ids (the stop token included); a piece's: its characters
  std::string text;             // everything delivered, stop string cut off ("" without a tokenizer;
                                // a piece's: without NotaGen's stream markers)
  StopReason stop = StopReason::budget;
  // the token loop's own reason ("eos", "max_new_tokens", ...): stop says why the text ended, this
  // also tells a budget that ran out after a tune's ending rule had begun (stop: ending_rule)
  std::string loop_reason;
  // one per backbone call (round trip): the CLI's --json timings. A NotaGen piece's: one per
  // patch, tokens = the characters its decoder ran
  std::vector<StepStats> steps;
  int64_t prompt_tokens = 0, completion_tokens = 0;
  double ttft_ms = 0, decode_tok_s = 0;
  double run_ms = 0;            // the whole run, first call to last
  int64_t relaxed_steps = 0;    // a tune's or folk piece's: steps where the bar constraint lifted its mask
  int64_t patches = 0;          // a NotaGen piece's patches drawn (the EOS patch included)
  int cuts = 0;                 // times a NotaGen piece was cut and re-encoded (the long-piece rule)
  bool chars_on_device = false; // a NotaGen piece's characters were drawn on the device (DeviceSampler)
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
