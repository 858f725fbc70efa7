#include "edge/music/tune_ending.hpp"

#include <algorithm>

namespace duet::music {

namespace {

// Bars the push keeps between where it acts as at the style's p90 and where the budget rule takes
// over: one 8-bar section, time for the steer towards :| || |] and a cadence on the tonic.
constexpr int64_t kLandingBars = 8;
// The next section's length, guessed from the last one (8 bars before the first ends).
constexpr int64_t kSectionBars = 8, kMinSectionBars = 4, kMaxSectionBars = 16;


// What an end off the tonic (or in a monotonous tune) gets where the push does not take it yet.
void hold_back(bool refuse, double bias, EndingPush& p) {
  if (refuse) p.end_refused = true;
  else p.end_bias = bias;
}

}  // namespace

EndingPush ending_push(const TuneEndingOptions& o, int64_t new_tokens, int64_t bars, int64_t new_bars, bool can_end,
                       bool ends_section, bool last_tonic, int64_t section_bars, bool monotonous,
                       int64_t open_bars) {
  EndingPush p;
  // the note aimed at: the tonic, or (aim_off_tonic) any other; the rules below say "tonic" for it
  last_tonic = last_tonic != o.aim_off_tonic;
  // tokens per bar so far (a bar of 6/8 in L:1/8 takes ~10 characters, of 4/4 in L:1/16 ~40)
  const int64_t per_bar = new_bars > 0 ? (new_tokens + new_bars - 1) / new_bars : std::max<int64_t>(16, new_tokens);
  const int64_t reserve = std::max<int64_t>(12, 3 * per_bar);
  if (o.budget_tokens > 0 && o.budget_tokens - new_tokens <= reserve) {
    p.end_only = can_end;
    p.ending = !can_end;
    p.close_repeats = true;
    return p;
  }
  if (o.long_after_bars <= 0) return p;
  // The budget: at this tune's tokens per bar, `room` more bars fit before the budget rule ends the
  // tune. In the last kLandingBars of that room the push runs `ahead` of the tune's bars, at p90's
  // strength and one bar more for each bar the room shrinks, with no brake, so the tune can still
  // end by itself at a section's end (16th-note styles: 40 tokens a bar, 768 tokens). Before that
  // the push counts the tune's own bars (a greedy reel asked for 400 tokens is not ended at bar 2).
  int64_t ahead = 0;
  bool landing = false;  // in the last kLandingBars of room
  bool last_room = false;  // in the last off_tonic_room bars of it
  if (o.budget_tokens > 0) {
    // tokens per bar counting the bar being written as one (at the second bar line of a tune with a
    // pickup, two bars' tokens over one closed bar would halve the room and end the tune at once)
    const int64_t per_bar_now = std::max<int64_t>(1, (new_tokens + new_bars) / (new_bars + 1));
    const int64_t room = (o.budget_tokens - new_tokens - reserve) / per_bar_now;
    landing = room <= kLandingBars;
    last_room = landing && room <= o.off_tonic_room;
    if (landing) ahead = std::max<int64_t>(0, o.long_after_bars + (kLandingBars - room) - bars);
  }
  p.close_repeats = last_room;
  const bool brake = bars < o.min_bars && ahead == 0;
  const int64_t b = bars + ahead;  // the bar count the push acts on
  const int64_t start = o.start_bars > 0 ? std::min(o.start_bars, o.long_after_bars) : o.long_after_bars;
  const double over = static_cast<double>(b - o.long_after_bars);  // past the style's p90
  const double past_start = static_cast<double>(b - start);
  // may an end off the tonic be pushed? Past p90 (as pushed), once the tune's own bars are
  // off_tonic_grace_bars past it or the budget's last off_tonic_room bars of room are reached
  const bool off_ok = over > 0 && (bars - o.long_after_bars > o.off_tonic_grace_bars || last_room);
  // would a section as long as the last one end past p90? Then a section's end here is the tune's
  const int64_t next_section =
      section_bars > 0 ? std::clamp(section_bars, kMinSectionBars, kMaxSectionBars) : kSectionBars;
  const double next_over = over > 0 || brake ? 0 : static_cast<double>(b + next_section - o.long_after_bars);
  // the last section: would the next section end too far past p90 to wait for an end on the aimed
  // note? Then a section's end off it is allowed (last_section_bias) instead of refused, and the
  // cadence is stronger
  const bool last_zone =
      o.last_section_slack >= 0 && bars >= o.min_bars && next_over > static_cast<double>(o.last_section_slack);
  const bool last_section = ends_section && last_zone;
  const double push = 1.0 + o.push_slope * std::max(past_start, next_over);  // at a section's end after the tonic
  // the cadence: from the bar before start; where the tune should end at the next section's end
  // (or is past p90) one logit more, since there an end after another note than the tonic is pushed too
  if (!o.aim_off_tonic && (b + 1 >= start || next_over > 0))
    p.cadence_bias =
        o.cadence_bias + (next_over > 0 || over > 0 ? 1.0 : 0.0) + (last_zone ? o.last_section_cadence : 0.0);
  // at a plain bar line past p90 the push waits 8 bars for a section's end, but not for the budget
  const double plain_after = ahead > 0 ? 0 : 8;
  // towards :| || |] wherever the tune is not right after one: where no end is allowed (an open
  // repeat needs its :|), and after a plain bar line's "|" ("||" or "|]" one character away) where
  // the end after it would get the push (after the tonic, or past p90), not a "||" for nothing
  const bool section_long = open_bars < 0 || open_bars >= o.min_section_bars || over > 0;
  if (!ends_section && !brake && (past_start > 0 || next_over > 0) && section_long &&
      ((!can_end && o.steer_open_repeats) || last_tonic || off_ok))
    p.steer_bias = std::min(12.0, push);
  if (!can_end) {
  } else if (brake) {
    p.end_bias = o.early_bias;
  } else if (monotonous && (o.refuse_monotonous_end ? !last_room : over <= 0 && ahead == 0)) {
    hold_back(o.refuse_monotonous_end, o.early_bias, p);
  } else if (ends_section && last_tonic) {
    if (past_start > 0 || next_over > 0) p.end_bias = std::min(12.0, push);
  } else if (!last_tonic && !off_ok && !last_section) {
    hold_back(o.refuse_off_tonic, o.off_tonic_bias, p);
  } else if (!last_tonic && !off_ok) {
    p.end_bias = o.last_section_bias;  // the last section's end in p10-p90: the tune may end here
  } else if (ends_section) {
    p.end_bias = std::min(12.0, 1.0 + over);
  } else if (over > plain_after) {
    p.end_bias = std::min(12.0, 0.5 * (over - plain_after));
  }
  return p;
}

}  // namespace duet::music
