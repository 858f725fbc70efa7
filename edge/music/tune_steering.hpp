#pragma once
// One sampling step of a tune, without LibTorch: which tokens the bar constraint allows and what
// the ending push and the cadence preference add to the logits (edge/music/tune_ending.hpp). The
// edge's logits processor applies the answer; the options come from the model's duet.json.
//
//   auto c = std::make_shared<BarConstraint>(constraint_options(spec, opts, 3), texts, end_ids);
//   auto eo = ending_options(spec, opts, max_new_tokens, seed);
//   // each step, after c->advance() for the tokens written since the last one:
//   SteerStep s = steer_step(*c, eo, new_tokens, opening_bars, end_ids, vocab);
//   // logits[id] = s.allowed[id] ? logits[id] + s.bias[id] : -inf
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "edge/music/bar_constraint.hpp"
#include "edge/music/music_options.hpp"
#include "edge/music/tune_ending.hpp"

namespace duet::music {

// The constraint for a checked request: meter, unit, key, the style's repetition figures and the
// model's corpus passages (the copy guard).
BarConstraintOptions constraint_options(const MusicModelSpec& spec, const CheckedMusicOptions& opts,
                                        int max_identical_bars);
// The ending push for a checked request: the style's lengths, and the tonic preferences; the
// tune's seed draws the note it aims to end on (aims_off_tonic with aim_tonic_share).
TuneEndingOptions ending_options(const MusicModelSpec& spec, const CheckedMusicOptions& opts, int64_t budget_tokens,
                                 uint64_t seed);

// Does the tune of this seed aim to end off the tonic? True for a share 1 - tonic_share of seeds:
// u = frac(seed / golden ratio + a hash of the style), off when u >= tonic_share. The golden-ratio
// sequence spreads consecutive seeds evenly over [0, 1), so any run of n consecutive seeds of a
// style aims off the tonic within about one tune of n * (1 - tonic_share) times (random draws
// would miss a 10-tune figure by 10 points in about 4 styles of 22); the same seed, the same aim.
bool aims_off_tonic(double tonic_share, const std::string& style, uint64_t seed);
// The share of a style's tunes to aim at the tonic so that, after the tunes that end elsewhere than
// they aimed (a long tune ends where it can), the style's corpus share of tonic endings comes out.
double aim_tonic_share(double tonic_share);

struct SteerStep {
  std::vector<uint8_t> allowed;  // one flag per token id (vocab long)
  std::vector<float> bias;       // added to the allowed tokens' logits
  bool ended_by_budget = false;  // the budget rule chose the tokens this step
};

// new_tokens: tokens written after the prompt; opening_bars: bars the prompt's opening closed.
// Without `ending`, only the constraint's mask.
SteerStep steer_step(BarConstraint& c, const std::optional<TuneEndingOptions>& ending, int64_t new_tokens,
                     int64_t opening_bars, const std::vector<int32_t>& end_ids, size_t vocab);

}  // namespace duet::music
