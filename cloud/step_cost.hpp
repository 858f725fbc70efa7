#pragma once
// What a step costs, learnt from the steps that ran: a decode-only step's time and a prefill
// token's time (exponential moving averages). The scheduler sizes a step's prefill with it so a
// decode row waiting beside a flood of prompts never waits more than one bounded step (issue 20:
// another key's 1,024-position prefills raised a victim's decode p99 216x), and so no step runs
// much longer than max_step (a stop, a newcomer, a close wait for the step in flight). No LibTorch.
#include <cstdint>

namespace duet::cloud {

struct PrefillBudget {
  bool decodes = false;     // the step carries decode rows, or sessions are mid-generation
  double factor = 0;        // such a step lasts at most factor decode-only steps (0: no such cap)
  double max_step_s = 0;    // no step lasts longer than this (0: no cap)
  int64_t floor = 1;        // prefill positions a step carries at least (prompts always move on)
  int64_t ceiling = 0;      // the token budget left (max_batch_tokens minus decode rows)
};

class StepCost {
 public:
  static constexpr int64_t kProbeTokens = 64;  // a step's prefill until a position's time is known

  // A step of `decode_rows` single positions and `prefill_tokens` other positions took `seconds`.
  void observe(int64_t decode_rows, int64_t prefill_tokens, double seconds);
  // Prefill positions the next step may carry under `b`'s caps, in [min(floor, ceiling), ceiling].
  int64_t prefill_budget(const PrefillBudget& b) const;

  double decode_step_seconds() const { return decode_s_; }  // 0 until a decode-only step ran
  double prefill_token_seconds() const { return token_s_; }  // 0 until a step with prefill ran

 private:
  double decode_s_ = 0, token_s_ = 0;
};

}  // namespace duet::cloud
