// Ends off the tonic and monotonous ends (issue 24, sixth pass): refused before p90 and a grace of 2
// bars past it, held back in the budget's landing until its last 3 bars of room, and no end while
// one bar is a quarter of the tune's bars; steer_step takes the end token out of the mask, unless it
// is all that is left. Seventh pass: each tune aims at the tonic or off it (drawn from its seed, as
// often as the style's corpus, allowing for the leaks), and the rules refuse an end off the aimed note.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "edge/music/bar_constraint.hpp"
#include "edge/music/music_options.hpp"
#include "edge/music/tune_ending.hpp"
#include "ending_fixtures.hpp"
#include "edge/music/tune_steering.hpp"

using namespace duet::music;

namespace {

TuneEndingOptions hornpipe() {  // ryans-hornpipe: p10/p50/p90 18/19/21, 85 % of its tunes end on the tonic
  TuneEndingOptions o = test::style_ending(18, 19, 21);
  o.push_slope = 3;
  o.min_section_bars = 4;
  o.steer_open_repeats = false;
  return o;
}

TuneEndingOptions strathspey() {  // ryans-strathspey: p10/p50/p90 12/18/20, ~48 tokens a bar in 768
  TuneEndingOptions o = hornpipe();
  o.long_after_bars = 20;
  o.start_bars = 18;
  o.min_bars = 12;
  o.push_slope = 1;
  return o;
}

// A 3/4 tune in L:1/8 (tonic G) over single characters: the notes given, "|2\n ", and an empty
// text as the end token (the last id), for steer_step cases.
struct SmallTune {
  explicit SmallTune(const std::string& notes) {
    for (char ch : notes + "|2\n ") vocab.emplace_back(1, ch);
    vocab.emplace_back("");
    eos = static_cast<int32_t>(vocab.size() - 1);
    bar.bar = Rational(3, 4);
    bar.unit = Rational(1, 8);
    bar.max_identical_bars = 3;
    bar.tonic = 'G';
  }
  std::vector<std::string> vocab;
  int32_t eos = 0;
  BarConstraintOptions bar;
};

// hornpipe()'s rules over a tune of 4 to 8 bars, ends off the tonic refused until its last 3 bars
TuneEndingOptions short_hornpipe() {
  TuneEndingOptions o = hornpipe();
  o.long_after_bars = 8;
  o.start_bars = 6;
  o.min_bars = 4;
  o.refuse_off_tonic = true;
  o.off_tonic_room = 3;
  return o;
}

}  // namespace

TEST_CASE("ending off the tonic: refused before p90 and for the grace bars past it, then pushed") {
  TuneEndingOptions o = hornpipe();
  // the fifth pass's rule: a bias of -2 that the model's near-certain end after :| overrides
  CHECK(ending_push(o, 190, 19, 19, true, true, false, 8).end_bias == doctest::Approx(-2.0));
  CHECK_FALSE(ending_push(o, 190, 19, 19, true, true, false, 8).end_refused);
  CHECK(ending_push(o, 220, 22, 22, true, true, false, 8).end_bias == doctest::Approx(2.0));  // 1 + 1 past p90
  o.refuse_off_tonic = true;
  o.off_tonic_grace_bars = 2;
  const EndingPush at19 = ending_push(o, 190, 19, 19, true, true, false, 8);
  CHECK(at19.end_refused);
  CHECK(at19.end_bias == 0);
  CHECK(ending_push(o, 190, 19, 19, true, false, false, 8).end_refused);  // at a plain bar line too
  CHECK(ending_push(o, 220, 22, 22, true, true, false, 8).end_refused);   // 1 bar past p90
  CHECK(ending_push(o, 230, 23, 23, true, true, false, 8).end_refused);   // 2
  const EndingPush at24 = ending_push(o, 240, 24, 24, true, true, false, 8);  // 3: pushed as before
  CHECK_FALSE(at24.end_refused);
  CHECK(at24.end_bias == doctest::Approx(4.0));
  // after the tonic nothing changes, and no steer towards a section's end off the tonic in the grace
  CHECK(ending_push(o, 190, 19, 19, true, true, true, 8).end_bias > 0);
  CHECK_FALSE(ending_push(o, 190, 19, 19, true, true, true, 8).end_refused);
  CHECK(ending_push(o, 220, 22, 22, true, false, false, 8).steer_bias == 0);
  CHECK(ending_push(o, 240, 24, 24, true, false, false, 8).steer_bias > 0);
  CHECK(ending_push(o, 220, 22, 22, true, false, true, 8).steer_bias > 0);
  // the budget rule still ends the tune wherever it is
  CHECK(ending_push(o, 740, 19, 19, true, true, false, 8).end_only);
}

TEST_CASE("ending off the tonic in the budget's landing: only in its last off_tonic_room bars") {
  TuneEndingOptions o = strathspey();
  // 6 bars in 336 tokens: room for 5 bars, the push as at bar 23 (see test_music.cpp)
  CHECK(ending_push(o, 336, 6, 6, true, true, false).end_bias == doctest::Approx(4.0));  // the fifth pass
  CHECK(ending_push(o, 336, 6, 6, true, false, false).steer_bias > 0);
  o.off_tonic_room = 3;
  CHECK(ending_push(o, 336, 6, 6, true, true, false).end_bias == doctest::Approx(-2.0));  // off the tonic: wait
  CHECK(ending_push(o, 336, 6, 6, true, false, false).steer_bias == 0);
  CHECK(ending_push(o, 336, 6, 6, true, true, true).end_bias == doctest::Approx(6.0));  // the tonic: as before
  CHECK(ending_push(o, 336, 6, 6, true, false, true).steer_bias > 0);
  // 8 bars in 432 tokens: room for 3 (the push as at bar 25): off the tonic is pushed again
  CHECK(ending_push(o, 432, 8, 8, true, true, false).end_bias == doctest::Approx(1.0 + 5.0));
  CHECK(ending_push(o, 432, 8, 8, true, false, false).steer_bias > 0);
  // refused outright where the style refuses ends off the tonic, until those last bars
  o.refuse_off_tonic = true;
  CHECK(ending_push(o, 336, 6, 6, true, true, false).end_refused);
  CHECK_FALSE(ending_push(o, 432, 8, 8, true, true, false).end_refused);
}

TEST_CASE("monotonous tunes: no end at all until the budget's last bars") {
  TuneEndingOptions o = strathspey();
  o.long_after_bars = 20;
  o.start_bars = 16;
  o.min_bars = 8;
  o.budget_tokens = 768;
  o.off_tonic_room = 3;
  // the fifth pass: early_bias before p90, the push past it
  CHECK(ending_push(o, 180, 18, 18, true, true, true, 8, true).end_bias == doctest::Approx(-3.0));
  CHECK(ending_push(o, 220, 22, 22, true, true, true, 8, true).end_bias > 0);
  o.refuse_monotonous_end = true;
  CHECK(ending_push(o, 180, 18, 18, true, true, true, 8, true).end_refused);
  CHECK(ending_push(o, 220, 22, 22, true, true, true, 8, true).end_refused);  // past p90 too
  CHECK_FALSE(ending_push(o, 220, 22, 22, true, true, true, 8, false).end_refused);
  // 12 bars in 600 tokens (~47 a bar): room for 1 bar: it may end (the push takes it)
  CHECK_FALSE(ending_push(o, 600, 12, 12, true, true, true, 8, true).end_refused);
  CHECK(ending_push(o, 600, 12, 12, true, true, true, 8, true).end_bias > 0);
  CHECK(ending_push(o, 740, 12, 12, true, true, true, 8, true).end_only);
}

TEST_CASE("steer_step: a refused end leaves the mask, unless nothing else is allowed") {
  const SmallTune t("ABcd");  // no G in the vocabulary: every note is off the tonic
  const auto& vocab = t.vocab;
  const int32_t eos = t.eos;
  TuneEndingOptions o = short_hornpipe();
  BarConstraint c(t.bar, vocab, {eos});
  c.observe("A2B c2d|B2A d2c|c2d B2A|c2B A2d|d2c B2A|A2B d2c|]");  // 6 bars, none twice
  REQUIRE(c.can_end());
  const SteerStep s = steer_step(c, o, 60, 0, {eos}, vocab.size());
  CHECK(s.allowed[static_cast<size_t>(eos)] == 0);  // 6 bars, off the tonic: go on
  CHECK(s.allowed[0] == 1);                          // a note may start the next bar
  o.refuse_off_tonic = false;
  const SteerStep soft = steer_step(c, o, 60, 0, {eos}, vocab.size());
  CHECK(soft.allowed[static_cast<size_t>(eos)] == 1);
  CHECK(soft.bias[static_cast<size_t>(eos)] == doctest::Approx(-2.0));
}

TEST_CASE("ending options per style: every style refuses ends off the aimed note, the landing and monotony rules") {
  auto spec = MusicModelSpec::from_model_dir(std::string(DUET_SOURCE_DIR) + "/models/abc-folk");
  REQUIRE(spec.has_value());
  auto hp = ending_options(*spec, check_music_options(*spec, {"ryans-hornpipe", "", "", ""}), 768, 1);  // 85 %
  CHECK(hp.refuse_off_tonic);
  CHECK(hp.off_tonic_grace_bars == 2);
  auto waltz = ending_options(*spec, check_music_options(*spec, {"nottingham-waltz", "", "", ""}), 768, 1);  // 93 %
  CHECK(waltz.refuse_off_tonic);
  // the sixth pass only biased a 70 % style (-2 * 0.703 / 0.8) and so overshot its corpus
  auto reel = ending_options(*spec, check_music_options(*spec, {"ryans-reel", "", "", ""}), 768, 1);  // 70 %
  CHECK(reel.refuse_off_tonic);
  CHECK(reel.off_tonic_grace_bars == 2);
  for (const auto* eo : {&hp, &waltz, &reel}) {
    CHECK(eo->off_tonic_room == 3);
    CHECK(eo->refuse_monotonous_end);
  }
}

TEST_CASE("monotonous: issue 24's ryans-reel seed 44003 (one bar 4 of 16 bars) is monotonous where it ended") {
  // evaluate.py: 16 bars with notes, "G2GB ABcA" 4 times (25 %); the fifth pass ended it here anyway
  auto spec = MusicModelSpec::from_model_dir(std::string(DUET_SOURCE_DIR) + "/models/abc-folk");
  REQUIRE(spec.has_value());
  const auto opts = check_music_options(*spec, {"ryans-reel", "", "", ""});
  BarConstraintOptions bo = constraint_options(*spec, opts, 3);
  bo.corpus.reset();
  BarConstraint c(bo, {"x", ""}, {1});
  c.observe("((3vDEF) \\\n| vG2GB ABcA | GABG ABcA | G2GB ABcA | BGAF G2((3DEF) |\n"
            "|: G2GB ABcA | GABG ABcA | G2GB ABcA | BGAF G2 z2 :|\n"
            "|: bagf g2ga | bagf g2fg | a2gf e2fg | afge defg |\n"
            "edcB ABcA | GABG ABcA | G2GB ABcA/G/ :|\n");
  CHECK(c.can_end());
  CHECK(c.monotonous());
  TuneEndingOptions eo = ending_options(*spec, opts, 768, 1);
  CHECK(ending_push(eo, 212, c.bars_closed(), c.bars_closed(), true, true, true, c.section_bars(), true).end_refused);
}

TEST_CASE("closing: no repeat opens, and an open repeat that began with a pickup ends at its complement") {
  BarConstraintOptions bo;
  bo.bar = Rational(3, 4);
  bo.unit = Rational(1, 8);
  bo.max_identical_bars = 3;
  BarConstraint c(bo, {"x", ""}, {1});
  c.observe("c|A2B c2d|B2A d2c|\n|:c|A2B c2d|B2A d2c|c2d B2A|A2B c2");  // the repeat's first bar: c (1/8)
  CHECK(c.accepts("d|"));  // a full bar may go on
  CHECK(c.accepts(":|"));  // or close the repeat at the complement (5/8)
  c.set_closing(true);
  CHECK_FALSE(c.accepts("d"));   // closing: the complement is this bar's length
  CHECK_FALSE(c.accepts("\n"));  // and :| comes next (":" cannot start a line)
  CHECK_FALSE(c.accepts("-"));
  CHECK(c.accepts(":|"));
  // a bar already past the complement is finished first, and the next one is the complement
  BarConstraint d(bo, {"x", ""}, {1});
  d.observe("c|A2B c2d|B2A d2c|\n|:c|A2B c2d|B2A d2c|c2d B2A|A2B c2d");
  d.set_closing(true);
  CHECK_FALSE(d.accepts(":|"));
  CHECK(d.accepts("|"));
  CHECK(d.accepts("|B2A d2:|"));
  CHECK_FALSE(d.accepts("|B2A d2c|"));
  // no repeat opens while closing
  BarConstraint e(bo, {"x", ""}, {1});
  e.observe("A2B c2d|B2A d2c");
  CHECK(e.accepts("|:A"));
  e.set_closing(true);
  CHECK_FALSE(e.accepts("|:A"));
  CHECK(e.accepts("|A"));
  CHECK(e.accepts("|]"));
}

TEST_CASE("closing: the budget rule and the landing's last bars close repeats; steer_step passes it on") {
  TuneEndingOptions o = strathspey();
  o.off_tonic_room = 3;
  CHECK_FALSE(ending_push(o, 336, 6, 6, false, false, false).close_repeats);  // room for 5 bars
  CHECK(ending_push(o, 432, 8, 8, false, false, false).close_repeats);        // room for 3
  CHECK(ending_push(o, 700, 13, 13, false, false, false).close_repeats);      // the budget rule
  CHECK(ending_push(o, 700, 13, 13, false, false, false).ending);
  // a tune in an open repeat that began with a pickup (c, 1/8), at a bar's start; the vocabulary
  // holds a full bar and the complement bar that closes the repeat
  const std::vector<std::string> vocab = {"A2B2c2|", "A2B2c:|", "\n", ""};
  BarConstraintOptions bo;
  bo.bar = Rational(3, 4);
  bo.unit = Rational(1, 8);
  bo.max_identical_bars = 3;
  BarConstraint c(bo, vocab, {3});
  c.observe("c|A2B c2d|B2A d2c|\n|:c|A2B c2d|B2A d2c|c2d B2A|");
  TuneEndingOptions t = strathspey();
  t.off_tonic_room = 3;
  // 7 bars closed in 360 tokens: room for 5 bars: the full bar may come
  CHECK(steer_step(c, t, 360, 0, {3}, vocab.size()).allowed[0] == 1);
  // in 440 tokens: room for 2, the landing's last bars: the repeat closes at the next complement
  const SteerStep s = steer_step(c, t, 440, 0, {3}, vocab.size());
  CHECK_FALSE(s.ended_by_budget);
  CHECK(s.allowed[0] == 0);
  CHECK(s.allowed[1] == 1);
}

TEST_CASE("monotonous: short bars count, as evaluate.py counts them") {
  // a pickup (d) and its complement (B2B B2) 3 times each in 9 bars: evaluate.py says 33 %; the full
  // bars alone (BAG FGA twice) made 22 % (misc seed 52002 ended with a 5/8 bar 4 times in 13)
  BarConstraintOptions bo;
  bo.bar = Rational(3, 4);
  bo.unit = Rational(1, 8);
  bo.max_identical_bars = 3;
  BarConstraint c(bo, {"x", ""}, {1});
  c.observe("d|BAG FGA|B2B B2||d|BAG FGA|B2B B2||d|GAB cBA|B2B B2||\n");
  CHECK(c.can_end());
  CHECK(c.monotonous());
  c.observe("d|GAB cBA|e2d c2B|A2G F2E|D2E F2G|A3 B3|c3 d3|e3 f3|");
  CHECK_FALSE(c.monotonous());  // d 4 times in 17 bars
}

// Seventh pass: each tune aims at the tonic or off it, as often as the style's corpus tunes end there.

TEST_CASE("aims_off_tonic: consecutive seeds aim off the tonic as often as the style's corpus ends off it") {
  for (const char* style : {"nottingham-reel", "ryans-reel", "oneills-slipjig", "oneills-air"}) {
    for (double share : {0.42, 0.703, 0.809, 0.93}) {
      for (uint64_t first : {1ull, 70001ull, 71001ull, 123456789ull}) {
        int off10 = 0, off30 = 0;
        for (uint64_t seed = first; seed < first + 30; ++seed) {
          const bool off = aims_off_tonic(share, style, seed);
          CHECK(off == aims_off_tonic(share, style, seed));  // the same seed, the same aim
          off10 += seed < first + 10 && off;
          off30 += off;
        }
        CAPTURE(style);
        CAPTURE(share);
        CAPTURE(first);
        CHECK(std::abs(off10 - 10 * (1 - share)) <= 1.5);  // random draws: sd 1.5 at 70 %
        CHECK(std::abs(off30 - 30 * (1 - share)) <= 2.0);  // random: sd 2.5
      }
    }
  }
  for (uint64_t seed = 1; seed < 200; ++seed) CHECK_FALSE(aims_off_tonic(1.0, "oneills-air", seed));
  // styles asked with the same seeds do not all aim the same way
  int differ = 0;
  for (uint64_t seed = 1; seed <= 20; ++seed)
    differ += aims_off_tonic(0.7, "ryans-reel", seed) != aims_off_tonic(0.7, "ryans-jig", seed);
  CHECK(differ > 0);
}

TEST_CASE("ending options: the seed draws the aim, as often off the tonic as the style's corpus ends off it") {
  auto spec = MusicModelSpec::from_model_dir(std::string(DUET_SOURCE_DIR) + "/models/abc-folk");
  REQUIRE(spec.has_value());
  for (const char* style : {"ryans-reel", "oneills-slipjig", "nottingham-reel", "oneills-air"}) {
    const auto opts = check_music_options(*spec, {style, "", "", ""});
    const double share = aim_tonic_share(spec->style_stats.at(style).tonic_endings);
    int off = 0;
    for (uint64_t seed = 72001; seed <= 72030; ++seed) off += ending_options(*spec, opts, 768, seed).aim_off_tonic;
    CAPTURE(style);
    CHECK(std::abs(off - 30 * (1 - share)) <= 2.0);
  }
}

TEST_CASE("aim off the tonic: an end on the tonic is refused, one after another note is pushed, no cadence") {
  TuneEndingOptions o = hornpipe();
  o.refuse_off_tonic = true;
  o.off_tonic_grace_bars = 2;
  o.aim_off_tonic = true;
  // at a section's end past the median (19 of 19/21): after the tonic refused, after another note pushed
  CHECK(ending_push(o, 200, 20, 20, true, true, true, 8).end_refused);
  const EndingPush off = ending_push(o, 200, 20, 20, true, true, false, 8);
  CHECK_FALSE(off.end_refused);
  CHECK(off.end_bias > 0);
  CHECK(off.cadence_bias == 0);
  // the steer towards a section's end follows the aimed note too
  CHECK(ending_push(o, 200, 20, 20, true, false, false, 8).steer_bias > 0);
  CHECK(ending_push(o, 200, 20, 20, true, false, true, 8).steer_bias == 0);
  // past the grace bars an end on the tonic is pushed (a long tune must end)
  CHECK_FALSE(ending_push(o, 240, 24, 24, true, true, true, 8).end_refused);
  // aiming at the tonic: the sixth pass's rule, the cadence on
  o.aim_off_tonic = false;
  CHECK(ending_push(o, 200, 20, 20, true, true, false, 8).end_refused);
  CHECK(ending_push(o, 200, 20, 20, true, true, true, 8).end_bias == doctest::Approx(off.end_bias));
  CHECK(ending_push(o, 200, 20, 20, true, true, true, 8).cadence_bias > 0);
}

TEST_CASE("steer_step: a tune that aims off the tonic cannot end on it, and may end after another note") {
  const SmallTune t("GBcd");
  const auto& vocab = t.vocab;
  const int32_t eos = t.eos;
  TuneEndingOptions o = short_hornpipe();
  o.aim_off_tonic = true;
  BarConstraint on(t.bar, vocab, {eos});
  on.observe("G2B c2d|B2G d2c|c2d B2G|c2B G2d|d2c B2c|B2d c2G|]");  // 6 bars, ends on G
  REQUIRE(on.can_end());
  REQUIRE(on.last_note_tonic());
  CHECK(steer_step(on, o, 60, 0, {eos}, vocab.size()).allowed[static_cast<size_t>(eos)] == 0);
  BarConstraint off(t.bar, vocab, {eos});
  off.observe("G2B c2d|B2G d2c|c2d B2G|c2B G2d|d2c B2c|G2d c2B|]");  // ends on B
  REQUIRE(off.can_end());
  const SteerStep s = steer_step(off, o, 60, 0, {eos}, vocab.size());
  CHECK(s.allowed[static_cast<size_t>(eos)] == 1);
  CHECK(s.bias[static_cast<size_t>(eos)] > 0);
}

TEST_CASE("aim_tonic_share: tunes aim at the tonic so that the share after the leaks is the corpus's") {
  // with the last-section rule, 10.1 % of the tunes aimed at the tonic and 25 % of those aimed off
  // it end on the other note (83001, 91001, 93001 x 22: 60 of 594, 14 of 66; the seventh pass's
  // rule: 8.7 % and 6 %)
  CHECK(aim_tonic_share(0.7) == doctest::Approx((0.7 - 0.25) / (1 - 0.10 - 0.25)));
  for (double s : {0.42, 0.703, 0.75, 0.81, 0.88}) {
    const double q = aim_tonic_share(s);
    CHECK(q * (1 - 0.10) + (1 - q) * 0.25 == doctest::Approx(s));  // the share after the leaks
  }
  CHECK(aim_tonic_share(0.85) > 0.85);    // an 85 % style aims at the tonic more often than that
  CHECK(aim_tonic_share(0.42) < 0.42);    // a 42 % style less often: more of its off-aimed tunes leak
  CHECK(aim_tonic_share(0.81) < 1.0);     // the default style: some of its tunes aim off the tonic
  CHECK(aim_tonic_share(0.92) == 1.0);    // at most every tune: 90 % after the leaks
  CHECK(aim_tonic_share(1.0) == 1.0);
  CHECK(aim_tonic_share(0.2) == 0.0);
}
