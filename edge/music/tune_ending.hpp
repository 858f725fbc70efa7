#pragma once
// Ending a tune in time and on the tonic: a push towards the end token once a tune is as long as
// the style's human tunes, a preference for the tonic where it can be the last note, and a clean
// end at a bar line before the token budget or the context runs out.
//
// Why: the bar constraint keeps bars right and the repetition guard stops exact loops, but the
// small model then writes near-repeats and runs to the budget, cut mid-bar, and ends on the tonic
// half as often as people do (issue 24). Human tunes end at a section's end (:| || |]: 99 % of the
// training tunes) after a length the style keeps to, mostly on the tonic. duet.json has each
// style's 10th, 50th and 90th percentile of bars per tune and its share of tonic endings
// (`style_defaults.<style>`, scripts/abc/style_stats.py).
//
// The rule, applied only where the bar constraint allows an end (right after a bar line, nothing
// open), with start = the style's median bars (or p90 when unknown):
//   - bars closed < p10: the end token's logit gets early_bias (a tune shorter than the style's);
//   - at a section's end after the tonic, past start: +1, push_slope more per bar beyond, at most
//     +12 (push_slope: at least 1, steeper where the style's p90 is near its median);
//     after another note, up to p90: off_tonic_bias (go on to a tonic cadence), past p90 the push
//     again (a long tune must end); at a plain bar line: off_tonic_bias before p90 when off the
//     tonic, and from 8 bars past p90 on the push, half as steep;
//   - the next section: where a section of the length of the last one (4-16 bars; 8 before the
//     first) would end past p90, a section's end after the tonic is where the tune should end: the
//     end gets the push as if the tune were past p90 by that much, also before start, and so do
//     the steer and the cadence below (19 % of 110 tunes ended past p90, most at the section after
//     one that ended inside p10-p90; pushing ends after other notes too cost tonic endings: 57-64 %
//     on 44 development tunes);
//   - a tune where one bar makes up a quarter of the bars (monotonous) gets early_bias at an end
//     until p90, unless the budget is near: a few bars more, the guard's new bars, and it is not
//     (tunes that ended at 12 bars with one bar 3 times: 3 of 44 development tunes); with
//     refuse_monotonous_end it may not end at all until the budget's last off_tonic_room bars;
//   - an end off the tonic: with refuse_off_tonic refused (not off_tonic_bias) wherever it would
//     not be pushed, except at a section's end from p10 on where the next section would end more
//     than last_section_slack bars past p90 (there the tune may end, with last_section_bias,
//     rather than run long; the cadence gets last_section_cadence more there); past p90
//     it is pushed only off_tonic_grace_bars after p90 (the tune's own bars), and in the budget's
//     landing only in its last off_tonic_room bars of room (before, the landing pushed ends after
//     any note, and 16th-note tunes ended off the tonic from bar 10 on); the steer below towards a
//     section's end after another note than the tonic waits as long;
//   - past start, where the bar is as long as a section's last bar may be (full, or the pickup's
//     complement), or a bar line after it is begun ("|" may still become "||" or "|]"), the tokens
//     that lead to a section's end (":|", "||", "|]") get the push (steer_bias): a long tune closes
//     its repeat or section and can end there; before p90 only after the tonic (an open repeat's
//     ":|" too unless steer_open_repeats) and in a section of min_section_bars bar lines or more;
//   - from the bar before start on, where one more note can finish the bar, the tonic's notes get
//     cadence_bias (so the section the tune ends with ends on the tonic more often), one more where
//     the next section's end is pushed (above) or the tune is past p90;
//   - the budget: in the last 8 bars before the budget rule below (at the tune's own tokens per
//     bar), every rule above counts bars as if the tune were past p90 by as many bars as that room
//     has shrunk (at least its own bars), with no brake, and ends at a plain bar line get the push
//     too: a tune of 16th notes, whose p90 does not fit the budget, still ends by itself at a
//     section's end;
//   - fewer tokens left than three bars take so far (at least 12): the tune is ending. Where an end
//     is allowed, only the end token is; where a token or two can make it allowed (a full bar inside
//     an open repeat needs ":|"), only those tokens are; inside a bar, the bar is finished as
//     sampled. So the tune ends at a bar line instead of being cut inside a bar. There and in the
//     landing's last off_tonic_room bars the tune is closing: no repeat opens, and an open repeat
//     that began with a pickup gets its complement bar and :| next (BarConstraint::set_closing).
// Everything else is the model's distribution as the sampler draws it. Off: --no-ending-push.
#include <cstdint>

namespace duet::music {

struct TuneEndingOptions {
  int64_t long_after_bars = 0;  // the style's 90th percentile of bars (0: no push, only the clean end)
  int64_t start_bars = 0;       // the style's median bars: the push and the cadence start (0: at long_after_bars)
  int64_t min_bars = 0;         // the style's 10th percentile of bars (0: none)
  int64_t budget_tokens = 0;    // new tokens the tune may take (budget or context left; 0: no limit)
  double off_tonic_bias = 0;    // added to the end token after a note other than the tonic (before p90)
  double early_bias = 0;        // added to the end token before min_bars
  double cadence_bias = 0;      // added to the tonic's notes where one note can finish the bar (past start - 1)
  // logits the push grows by per bar past start (and per bar the next section would end past p90);
  // a style whose p90 is near its median gets a steeper push (ending_options: 6 logits by p90)
  double push_slope = 1;
  int64_t min_section_bars = 0;    // a section with fewer bar lines is not steered to its end before p90
  bool steer_open_repeats = true;  // an open repeat is steered to its :| after any note (false: after the tonic)
  // Ends off the tonic (sixth pass). Before p90 (and outside the budget's last bars) such an end is
  // refused outright rather than given off_tonic_bias; past p90 it waits off_tonic_grace_bars more
  // before the push takes it; in the budget's landing it waits until off_tonic_room bars of room
  // are left (the defaults are the fifth pass's rule: off_tonic_bias, no grace, the whole landing).
  bool refuse_off_tonic = false;
  int64_t off_tonic_grace_bars = 0;
  int64_t off_tonic_room = 8;
  // a monotonous tune (one bar a quarter of its bars) may not end until the budget's landing
  // (false: early_bias there until p90, the fifth pass's rule)
  bool refuse_monotonous_end = false;
  // The note this tune aims to end on (seventh pass): false, the tonic; true, another note. With
  // it every rule above swaps the tonic and the other notes (an end on the tonic is what is refused
  // or held back, an end after another note is pushed) and the cadence is off. Drawn per tune
  // (tune_steering.hpp: aims_off_tonic) so that a style's tunes aim off the tonic as often as its
  // corpus tunes end there: refusing every end off the tonic overshot the corpus by 7 points.
  bool aim_off_tonic = false;
  // The last section (eighth pass). A tune aimed at the tonic whose section ends off it before p90
  // was refused that end and played one more section: where the next section (as long as the last
  // one) would end past p90, that took it past p90 (17.5 % of the seventh pass's tunes against the
  // corpus's 8-10 %). From min_bars on, an end off the aimed note at a section's end is allowed
  // (with last_section_bias) where the next section would end more than last_section_slack bars
  // past p90 (-1: refused as before); there, where one note can finish the bar, the tonic's notes
  // get last_section_cadence more than the cadence (a tune aimed at the tonic).
  int64_t last_section_slack = -1;
  double last_section_bias = 0;
  double last_section_cadence = 0;
};

struct EndingPush {
  double end_bias = 0;      // added to the end token's logit
  bool end_only = false;    // only the end token is allowed
  bool ending = false;      // the budget is nearly spent: no end allowed here yet, so steer towards one
  double steer_bias = 0;    // no end allowed here: add this to the tokens that lead to one (at a full bar)
  double cadence_bias = 0;  // add this to the tonic's notes where one more note can finish the bar
  bool end_refused = false; // the end token is not allowed here (off the tonic, or a monotonous tune)
  // the tune is closing (the budget rule, or the landing's last off_tonic_room bars): no repeat opens
  // and an open one closes at the next bar that can close it (BarConstraint::set_closing)
  bool close_repeats = false;
};

// new_tokens: written so far (the prompt not counted); bars: bars closed in the whole tune;
// new_bars: bars closed in the tokens written; can_end / ends_section / last_tonic / section_bars:
// BarConstraint's answers now (last_tonic: the last note written is the key's tonic; section_bars:
// the last section's bars, 0 before the first section's end; monotonous: one bar is a quarter of them;
// with o.aim_off_tonic the rules read last_tonic as "the last note is not the tonic").
// open_bars: bar lines since the last section's end (or the tune's start; -1: unknown).
EndingPush ending_push(const TuneEndingOptions& o, int64_t new_tokens, int64_t bars, int64_t new_bars, bool can_end,
                       bool ends_section, bool last_tonic = true, int64_t section_bars = 0,
                       bool monotonous = false, int64_t open_bars = -1);

}  // namespace duet::music
