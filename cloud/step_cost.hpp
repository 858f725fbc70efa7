#pragma once
// What a step costs, learnt from the steps that ran: a decode-only step's time, and what carrying
// prefill adds to a step: a fixed part (paid by any step with a prompt in it: on a GPU the step
// leaves its captured graph, on a CPU every row's attention has its own ops) plus a part per
// position. The scheduler sizes a step's prefill with it so a decode row waiting beside a flood of
// prompts never waits more than one bounded step (issue 20: another key's 1,024-position prefills
// raised a victim's decode p99 216x), and so no step runs much longer than max_step (a stop, a
// newcomer, a close wait for the step in flight). The fixed part is what keeps prompts from being
// cut one position per step: measured as a cost per position, it made every cut look dearer, so
// the next cut was smaller (64 prompts of 128 positions took 15 s on an H100). No LibTorch.
#include <cstdint>

namespace duet::cloud {

struct PrefillBudget {
  bool decodes = false;     // the step carries decode rows, or sessions are mid-generation
  double factor = 0;        // such a step lasts at most factor decode-only steps (0: no such cap)
  double max_step_s = 0;    // no step lasts longer than this (0: no cap)
  int64_t floor = 1;        // prefill positions a step carries at least (prompts always move on)
  int64_t ceiling = 0;      // the token budget left (max_batch_tokens minus decode rows)
  // Let a step's fixed prefill part set a least cut (see prefill_budget). Stages on CUDA: a step
  // with a prompt leaves the captured decode graph, a fixed cost that is real and large. On a CPU
  // there is none to speak of, and a fit of noisy step times could invent one.
  bool amortize_fixed = false;
};

class StepCost {
 public:
  static constexpr int64_t kProbeTokens = 64;  // a step's prefill until a position's time is known
  // Steps with 2 to this many prefill positions estimate the fixed part, the larger ones the slope.
  // A step whose prefill is one position is not learnt from: that position is a decode row to the
  // step (on a GPU it replays the decode graph), so it shows none of the fixed part; counting it
  // made a GPU's cuts look free at one position and dear at two, and they stayed at one.
  static constexpr int64_t kSmallPrefill = 8;

  // A step of `decode_rows` single positions and `prefill_tokens` other positions took `seconds`.
  void observe(int64_t decode_rows, int64_t prefill_tokens, double seconds);
  // Prefill positions the next step may carry under `b`'s caps, in [min(floor, ceiling), ceiling].
  // With amortize_fixed, the latency cap (factor) gives way where carrying a prompt at all costs
  // more than it allows: then a step carries at least as many positions as its fixed part is worth
  // (half of its prefill time is positions, not overhead), so prompts still move at a useful rate.
  int64_t prefill_budget(const PrefillBudget& b) const;

  double decode_step_seconds() const { return decode_s_; }        // 0 until a decode-only step ran
  double prefill_token_seconds() const { return token_s_; }       // 0 until a step with prefill ran
  double prefill_overhead_seconds() const { return overhead_s_; }  // 0 until small and large ones ran

 private:
  struct Mean {  // exponentially weighted means of a bucket's positions and extra seconds
    double tokens = 0, seconds = 0;
    bool seen = false;
  };
  void refit();
  double decode_s_ = 0, token_s_ = 0, overhead_s_ = 0;
  Mean small_, large_;  // each decays only with its own steps: one old large step keeps the slope
};

}  // namespace duet::cloud
