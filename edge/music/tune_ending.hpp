#pragma once
// Ending a tune in time: a push towards the end token once a tune is longer than the style's
// human tunes, and a clean end at a bar line before the token budget or the context runs out.
//
// Why: the bar constraint keeps bars right and the repetition guard stops exact loops, but the
// small model then writes near-repeats and runs to the budget, cut mid-bar (11 of 100 tunes). Human
// tunes end at a section's end (:| || |]: 99 % of the training tunes) after a length the style
// keeps to (its 90th percentile of bars is in duet.json, `style_defaults.<style>.bars_p90`).
//
// The rule, applied only where the bar constraint allows an end (right after a bar line, no repeat
// open):
//   - bars closed > bars_p90: the end token's logit gets +2 at a section's end, one more per bar
//     beyond, at most +12; at a plain bar line the same from 8 bars beyond on, half as steep; where
//     no end is allowed but a full bar can close an open repeat (":|"), the tokens that do get the
//     section's push (steer_bias), so a long tune closes its repeat and can end;
//   - fewer tokens left than three bars take so far (at least 12): the tune is ending. Where an end
//     is allowed, only the end token is; where a token or two can make it allowed (a full bar inside
//     an open repeat needs ":|"), only those tokens are; inside a bar, the bar is finished as
//     sampled. So the tune ends at a bar line instead of being cut inside a bar.
// Everything else is the model's distribution as the sampler draws it. Off: --no-ending-push.
#include <cstdint>

namespace duet::music {

struct TuneEndingOptions {
  int64_t long_after_bars = 0;  // the style's 90th percentile of bars (0: no push, only the clean end)
  int64_t budget_tokens = 0;    // new tokens the tune may take (budget or context left; 0: no limit)
};

struct EndingPush {
  double end_bias = 0;    // added to the end token's logit
  bool end_only = false;  // only the end token is allowed
  bool ending = false;    // the budget is nearly spent: no end allowed here yet, so steer towards one
  double steer_bias = 0;  // no end allowed here: add this to the tokens that lead to one (at a full bar)
};

// new_tokens: written so far (the prompt not counted); bars: bars closed in the whole tune;
// new_bars: bars closed in the tokens written; can_end / ends_section: BarConstraint's answers now.
EndingPush ending_push(const TuneEndingOptions& o, int64_t new_tokens, int64_t bars, int64_t new_bars, bool can_end,
                       bool ends_section);

}  // namespace duet::music
