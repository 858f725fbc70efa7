// The last section (issue 24, eighth pass): a tune at a section's end off the note it aims at, from
// the style's p10 on, where the next section (as long as the last one) would end more than
// last_section_slack bars past p90, may end there instead of being refused and running long.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "edge/music/bar_constraint.hpp"
#include "edge/music/music_options.hpp"
#include "edge/music/tune_ending.hpp"
#include "ending_fixtures.hpp"
#include "edge/music/tune_steering.hpp"

using namespace duet::music;

namespace {

TuneEndingOptions strathspey() {  // ryans-strathspey: p10/p50/p90 12/18/20, ends off the tonic refused
  TuneEndingOptions o = test::style_ending(12, 18, 20);
  o.push_slope = 1;
  o.min_section_bars = 4;
  o.steer_open_repeats = false;
  o.refuse_off_tonic = true;
  o.off_tonic_grace_bars = 2;
  o.off_tonic_room = 3;
  return o;
}

}  // namespace

TEST_CASE("last section: an end off the aim is allowed where the next section would end past p90 + slack") {
  TuneEndingOptions o = strathspey();
  // the seventh pass's rule: refused at every section's end off the tonic up to p90 + 2
  CHECK(ending_push(o, 140, 14, 14, true, true, false, 8).end_refused);  // next section: 14 + 8 = 22
  CHECK(ending_push(o, 190, 19, 19, true, true, false, 8).end_refused);
  o.last_section_slack = 1;
  const EndingPush at14 = ending_push(o, 140, 14, 14, true, true, false, 8);  // 22 > 20 + 1
  CHECK_FALSE(at14.end_refused);
  CHECK(at14.end_bias == 0);  // last_section_bias 0: the model's own odds
  CHECK_FALSE(ending_push(o, 190, 19, 19, true, true, false, 4).end_refused);  // 23 > 21
  // not where the next section still fits: 13 + 8 = 21 (the slack), 14 + 4 = 18, 15 + 6 = 21
  CHECK(ending_push(o, 130, 13, 13, true, true, false, 8).end_refused);
  CHECK(ending_push(o, 140, 14, 14, true, true, false, 4).end_refused);
  CHECK(ending_push(o, 150, 15, 15, true, true, false, 6).end_refused);
  // the next section before the first section's end is guessed at 8 bars, a 2-bar one counts as 4
  CHECK_FALSE(ending_push(o, 140, 14, 14, true, true, false, 0).end_refused);
  CHECK_FALSE(ending_push(o, 180, 18, 18, true, true, false, 2).end_refused);  // 18 + 4 = 22
  // only at a section's end: at a plain bar line the end off the aim is still refused
  CHECK(ending_push(o, 140, 14, 14, true, false, false, 8).end_refused);
  // and not before p10 (the brake: an early end is held back by early_bias)
  CHECK(ending_push(o, 110, 11, 11, true, true, false, 8).end_bias == doctest::Approx(-3.0));
  // after the tonic nothing changes: pushed (13 + 8 - 20 = 1 past p90: 1 + 1 logits)
  CHECK(ending_push(o, 130, 13, 13, true, true, true, 8).end_bias == doctest::Approx(2.0));
  // past p90 the grace bars are as before (the tune is past p90 already)
  CHECK(ending_push(o, 210, 21, 21, true, true, false, 8).end_refused);
  // a tune aimed off the tonic: the same for an end on the tonic
  o.aim_off_tonic = true;
  CHECK_FALSE(ending_push(o, 140, 14, 14, true, true, true, 8).end_refused);
  CHECK(ending_push(o, 140, 14, 14, true, true, true, 4).end_refused);
}

TEST_CASE("last section: steer_step lets a long last section's tune end off the tonic") {
  std::vector<std::string> vocab;  // a 3/4 tune in L:1/8 (tonic G) over single characters
  for (char ch : std::string("ABcd|2\n ")) vocab.emplace_back(1, ch);
  vocab.emplace_back("");
  const auto eos = static_cast<int32_t>(vocab.size() - 1);
  BarConstraintOptions bar;
  bar.bar = Rational(3, 4);
  bar.unit = Rational(1, 8);
  bar.max_identical_bars = 3;
  bar.tonic = 'G';
  TuneEndingOptions o = strathspey();  // a tune of 4 to 8 bars
  o.long_after_bars = 8;
  o.start_bars = 6;
  o.min_bars = 4;
  o.last_section_slack = 1;
  // one 6-bar section: the next would end at 12, past 8 + 1
  BarConstraint one(bar, vocab, {eos});
  one.observe("A2B c2d|B2A d2c|c2d B2A|c2B A2d|d2c B2A|A2B d2c|]\n");  // the line ends: the bar line is counted
  REQUIRE(one.can_end());
  REQUIRE_FALSE(one.last_note_tonic());
  REQUIRE(one.bars_closed() == 6);
  CHECK(steer_step(one, o, 60, 0, {eos}, vocab.size()).allowed[static_cast<size_t>(eos)] == 1);
  o.last_section_slack = -1;  // the seventh pass: go on
  CHECK(steer_step(one, o, 60, 0, {eos}, vocab.size()).allowed[static_cast<size_t>(eos)] == 0);
  // 5 bars, the last section 2 (a 4-bar one next): it ends at 9, within the slack: go on
  o.last_section_slack = 1;
  BarConstraint two(bar, vocab, {eos});
  two.observe("A2B c2d|B2A d2c|c2d B2A||c2B A2d|d2c B2A|]\n");
  REQUIRE(two.can_end());
  REQUIRE(two.bars_closed() == 5);
  REQUIRE(two.section_bars() == 2);
  CHECK(steer_step(two, o, 50, 0, {eos}, vocab.size()).allowed[static_cast<size_t>(eos)] == 0);
  o.last_section_slack = 0;
  CHECK(steer_step(two, o, 50, 0, {eos}, vocab.size()).allowed[static_cast<size_t>(eos)] == 1);
}

TEST_CASE("ending options: every style with statistics allows the last section's end off the aim, +1, cadence +1") {
  auto spec = MusicModelSpec::from_model_dir(std::string(DUET_SOURCE_DIR) + "/models/abc-folk");
  REQUIRE(spec.has_value());
  for (const char* style : {"ryans-hornpipe", "nottingham-waltz", "ryans-reel", "nottingham-reel"}) {
    CAPTURE(style);
    const auto eo = ending_options(*spec, check_music_options(*spec, {style, "", "", ""}), 768, 1);
    CHECK(eo.refuse_off_tonic);
    CHECK(eo.last_section_slack == 1);
    CHECK(eo.last_section_bias == doctest::Approx(1.0));
    CHECK(eo.last_section_cadence == doctest::Approx(1.0));
  }
}

TEST_CASE("last section: the end off the aim gets last_section_bias, the cadence last_section_cadence more") {
  TuneEndingOptions o = strathspey();
  o.last_section_slack = 1;
  o.last_section_bias = 1;
  o.last_section_cadence = 1;
  CHECK(ending_push(o, 140, 14, 14, true, true, false, 8).end_bias == doctest::Approx(1.0));
  // the cadence in the last section: its own 1.5, 1 more where the next section ends past p90, 1 more
  // where it ends past p90 + the slack (inside a bar: no end allowed)
  CHECK(ending_push(o, 145, 14, 14, false, false, false, 8).cadence_bias == doctest::Approx(3.5));
  CHECK(ending_push(o, 135, 13, 13, false, false, false, 8).cadence_bias == doctest::Approx(2.5));  // 21: the slack
  CHECK(ending_push(o, 125, 12, 12, false, false, false, 4).cadence_bias == 0);  // 16: not yet (start - 1 is 17)
  // not where the rule is off, nor in a tune aimed off the tonic (no cadence there)
  o.last_section_slack = -1;
  CHECK(ending_push(o, 145, 14, 14, false, false, false, 8).cadence_bias == doctest::Approx(2.5));
  o.last_section_slack = 1;
  o.aim_off_tonic = true;
  CHECK(ending_push(o, 145, 14, 14, false, false, false, 8).cadence_bias == 0);
}
