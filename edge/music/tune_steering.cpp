#include "edge/music/tune_steering.hpp"

#include <algorithm>

namespace duet::music {

namespace {

// How strongly the ending prefers the tonic (logit units): after another note, an end is ~e^2 times
// less likely before the style's p90 of bars; where one note can finish a bar near the end, the
// tonic's notes are e^1.5 times more likely. Chosen on development seeds (models/abc-folk/README.md).
constexpr double kOffTonicBias = -2.0;
constexpr double kEarlyBias = -3.0;
constexpr double kCadenceBias = 1.5;
constexpr double kTonicShareAsBefore = 0.8;  // a style whose tunes end on the tonic this often gets the above
// The ending push per style (issue 24, fifth pass, on development seeds 46001-46020 x 22 styles:
// tonic endings 76 % -> 79 %, the styles more than 10 points under their corpus share 7 -> 3, past
// p90 12 % -> 12 %): by p90 the push after the tonic is at least 1 + kPushByP90 logits; no section's
// end is steered to before the section has kMinSectionBars bar lines, nor off the tonic (an open
// repeat's :| included) before p90: the steer closed 2-bar sections off the tonic every 2 bars.
constexpr double kPushByP90 = 6.0;
constexpr int64_t kMinSectionBars = 4;
// Ends off the tonic and monotonous ends (issue 24, sixth pass, on development seeds 48001-48020):
// no end off the note the tune aims at before its p90, nor for kOffTonicGraceBars past it (-2
// logits were not enough: the model's own end after a section is near certain); in the budget's
// landing such an end waits for the last kOffTonicRoomBars of room (16th-note strathspeys ended off
// the tonic from bar 10 on); a tune where one bar is a quarter of its bars does not end before that
// either (one bar more is usually enough: the guard keeps that bar from coming again). The sixth
// pass refused ends off the tonic in every tune of a style whose corpus ends on it 85 % of the time
// or more, and biased the rest: 7 points over the corpus on average, 2-3 styles 10 points under.
// Now each tune of a style with statistics aims at the tonic or off it, drawn from its seed as
// often as the style's corpus tunes end there (aims_off_tonic), and is refused the other.
constexpr int64_t kOffTonicGraceBars = 2;
// The aim leaks: a tune aimed at the tonic that finds no end on it by p90 + kOffTonicGraceBars (or
// the budget's last bars, or in its last section: kLastSectionSlack below) ends where it can, and
// so does one aimed off it. The aim is drawn so that the share after the leaks is the corpus's:
// aim share = (share - kAimedOffLeak) / (1 - kAimedTonicLeak - kAimedOffLeak), at most 1. Measured
// with the last-section rule on the eighth pass's tuning seeds (81001-81010 x 22): 39 of 196 tunes
// aimed at the tonic ended off it, 6 of 24 aimed off it ended on it (the seventh pass's rule: 22 of
// 253 and 4 of 67, 0.087 and 0.06). Over the eighth and ninth passes' later sets of 22 styles
// (83001, 91001, 93001 x 10; tenth pass) 60 of 594 tunes aimed at the tonic ended off it (10.1 %)
// and 14 of 66 aimed off it ended on it: with 0.199, the 13 styles whose corpus ends on the tonic
// 80.1 % of the time or more aimed every tune at it and ended on it 12-19 points more often than
// their corpus where no tune of ten leaked. With 0.10 only styles at 91.5 % or more aim every tune.
constexpr double kAimedTonicLeak = 0.10;
constexpr double kAimedOffLeak = 0.25;
constexpr int64_t kOffTonicRoomBars = 3;
// The last section (issue 24, eighth pass): refusing every end off the aimed note before p90 took
// 17.5 % of the seventh pass's tunes past their style's p90 of bars (the corpus: 8-10 %); 39 of
// its 77 long tunes (71011-71030 x 22) had passed a section's end off their aim in p10-p90, refused,
// and the section after it ended past p90. Such an end is allowed from p10 on where the next
// section, as long as the last one, would end more than kLastSectionSlack bars past p90, with
// kLastSectionBias; there the tonic's notes get kLastSectionCadence more (a tune aimed at the
// tonic). On the tuning seeds 81001-81010 x 22 (main's binary: 22.7 % past p90): allowed with the
// model's own odds, 14.1 %; with +1 and the cadence +1, 10.9 %.
constexpr int64_t kLastSectionSlack = 1;
constexpr double kLastSectionBias = 1.0;
constexpr double kLastSectionCadence = 1.0;

// The repeat cap below the corpus's (seventh pass): max_repeat_share is the 75th percentile of the
// share of a corpus tune's bars that repeat an earlier one, and the model writes up to it (the
// default style: 67.5 % distinct bars on fresh seeds against the 68 %, humans 75 %); the
// guard lets a tune repeat kRepeatShareScale of that.
constexpr double kRepeatShareScale = 0.85;

const StyleStats* stats_of(const MusicModelSpec& spec, const CheckedMusicOptions& opts) {
  auto it = spec.style_stats.find(opts.style);
  return it == spec.style_stats.end() ? nullptr : &it->second;
}

}  // namespace

BarConstraintOptions constraint_options(const MusicModelSpec& spec, const CheckedMusicOptions& opts,
                                        int max_identical_bars) {
  BarConstraintOptions bo;
  bo.bar = opts.meter.bar();
  bo.unit = opts.unit;
  bo.compound = opts.meter.compound();
  bo.max_identical_bars = max_identical_bars;
  if (const StyleStats* st = stats_of(spec, opts); st && max_identical_bars > 0) {
    bo.max_bar_repeats = static_cast<int>(st->max_bar_repeats);
    bo.max_cell_repeats = static_cast<int>(st->max_cell_repeats);
    bo.max_bar_share = st->max_bar_share;
    bo.max_repeat_share = st->max_repeat_share * kRepeatShareScale;
    bo.share_bars = static_cast<int>(st->bars_p50);
  }
  bo.tonic = opts.key.tonic;
  bo.tonic_shift = opts.key.accidental == '#' ? 1 : opts.key.accidental == 'b' ? -1 : 0;
  bo.key_signature = key_signature(opts.key);
  bo.corpus = spec.corpus_passages;
  return bo;
}

double aim_tonic_share(double tonic_share) {
  return std::clamp((tonic_share - kAimedOffLeak) / (1.0 - kAimedTonicLeak - kAimedOffLeak), 0.0, 1.0);
}

bool aims_off_tonic(double tonic_share, const std::string& style, uint64_t seed) {
  uint64_t h = 14695981039346656037ull;  // FNV-1a of the style: styles asked with the same seeds aim apart
  for (unsigned char ch : style) h = (h ^ ch) * 1099511628211ull;
  const uint64_t u = seed * 0x9E3779B97F4A7C15ull + h;  // 2^64 / golden ratio: a Weyl sequence mod 2^64
  return static_cast<double>(u) / 18446744073709551616.0 >= tonic_share;
}

TuneEndingOptions ending_options(const MusicModelSpec& spec, const CheckedMusicOptions& opts, int64_t budget_tokens,
                                 uint64_t seed) {
  TuneEndingOptions eo;
  eo.budget_tokens = budget_tokens;
  if (const StyleStats* st = stats_of(spec, opts)) {
    eo.long_after_bars = st->bars_p90;
    eo.start_bars = st->bars_p50;
    eo.min_bars = st->bars_p10;
  }
  eo.off_tonic_bias = kOffTonicBias;
  eo.early_bias = kEarlyBias;
  eo.cadence_bias = kCadenceBias;
  if (const StyleStats* st = stats_of(spec, opts)) {
    // the push reaches kPushByP90 logits by the style's p90 however near its median p90 is
    // (ryans-hornpipe 19/21: 3 a bar; oneills-jig 19/29: 1 a bar, as before)
    if (eo.long_after_bars > 0) {
      const int64_t start = eo.start_bars > 0 ? std::min(eo.start_bars, eo.long_after_bars) : eo.long_after_bars;
      eo.push_slope = std::max(1.0, kPushByP90 / static_cast<double>(std::max<int64_t>(1, eo.long_after_bars - start)));
    }
    // the tonic preferences scaled by how often the style's tunes end on the tonic (as strong as
    // before at 80 %: oneills-air, 100 %, 1.25 times; oneills-slipjig, 42 %, half)
    if (st->tonic_endings > 0) {
      eo.off_tonic_bias = kOffTonicBias * st->tonic_endings / kTonicShareAsBefore;
      eo.cadence_bias = kCadenceBias * st->tonic_endings / kTonicShareAsBefore;
    }
  }
  eo.min_section_bars = kMinSectionBars;
  eo.steer_open_repeats = false;
  if (const StyleStats* st = stats_of(spec, opts); st && st->tonic_endings > 0) {
    eo.aim_off_tonic = aims_off_tonic(aim_tonic_share(st->tonic_endings), opts.style, seed);
    eo.refuse_off_tonic = true;
    eo.off_tonic_grace_bars = kOffTonicGraceBars;
    eo.last_section_slack = kLastSectionSlack;
    eo.last_section_bias = kLastSectionBias;
    eo.last_section_cadence = kLastSectionCadence;
  }
  eo.off_tonic_room = kOffTonicRoomBars;
  eo.refuse_monotonous_end = true;
  return eo;
}

SteerStep steer_step(BarConstraint& c, const std::optional<TuneEndingOptions>& ending, int64_t new_tokens,
                     int64_t opening_bars, const std::vector<int32_t>& end_ids, size_t vocab) {
  SteerStep s;
  s.bias.assign(vocab, 0.0f);
  if (!ending) {
    s.allowed = c.allowed();
    s.allowed.resize(vocab, 0);
    return s;
  }
  const int64_t bars = c.bars_closed();
  const bool can_end = c.can_end();  // ends_section() only matters (and is only true) when it is
  const EndingPush push = ending_push(*ending, new_tokens, bars, bars - opening_bars, can_end,
                                      can_end && c.ends_section(), c.last_note_tonic(), c.section_bars(),
                                      can_end && c.monotonous(), c.open_section_bars());
  c.set_closing(push.close_repeats);  // before the mask: an open repeat's last bar is its complement
  s.allowed = c.allowed();
  s.allowed.resize(vocab, 0);
  if (push.ending) {  // steer towards an allowed end; inside a bar there is nothing to steer yet
    auto toward = c.toward_end(s.allowed);
    if (std::find(toward.begin(), toward.end(), 1) != toward.end()) {
      toward.resize(vocab, 0);
      s.allowed = toward;
      s.ended_by_budget = true;
    }
  }
  if (push.steer_bias > 0 && c.section_end_near()) {  // towards :| || |] (then the end's push)
    const auto steer = c.toward_end(s.allowed, /*section_end=*/true);
    for (size_t id = 0; id < steer.size() && id < vocab; ++id)
      if (steer[id]) s.bias[id] += static_cast<float>(push.steer_bias);
  }
  if (push.end_only) {
    std::fill(s.allowed.begin(), s.allowed.end(), 0);
    for (int32_t id : end_ids)
      if (id >= 0 && static_cast<size_t>(id) < vocab) s.allowed[id] = 1;
    s.ended_by_budget = true;
  }
  if (push.end_refused) {  // an end off the tonic or in a monotonous tune: go on (unless only an end is left)
    std::vector<uint8_t> without = s.allowed;
    for (int32_t id : end_ids)
      if (id >= 0 && static_cast<size_t>(id) < vocab) without[id] = 0;
    if (std::find(without.begin(), without.end(), 1) != without.end()) s.allowed = std::move(without);
  }
  if (push.end_bias != 0)
    for (int32_t id : end_ids)
      if (id >= 0 && static_cast<size_t>(id) < vocab) s.bias[id] += static_cast<float>(push.end_bias);
  if (push.cadence_bias > 0 && c.one_note_left()) {
    const auto& tonic = c.tonic_tokens();
    for (size_t id = 0; id < tonic.size() && id < vocab; ++id)
      if (tonic[id]) s.bias[id] += static_cast<float>(push.cadence_bias);
  }
  return s;
}

}  // namespace duet::music
