// The ending push per style (issue 24, fifth pass): a steeper push where the style's p90 is near its
// median, no steer to a section's end off the tonic or before a section has 4 bars (before p90), and
// the tonic preferences scaled by the style's share of tonic endings.
#include <doctest/doctest.h>

#include <algorithm>

#include "edge/music/bar_constraint.hpp"
#include "edge/music/music_options.hpp"
#include "edge/music/tune_ending.hpp"
#include "ending_fixtures.hpp"
#include "edge/music/tune_steering.hpp"

using namespace duet::music;

namespace {

TuneEndingOptions narrow() {  // ryans-reel: p10/p50/p90 16/18/20
  TuneEndingOptions o = test::style_ending(16, 18, 20);
  return o;
}

}  // namespace

TEST_CASE("ending push per style: the push grows by push_slope a bar, so a narrow style's ends by its p90") {
  TuneEndingOptions o = narrow();
  // 19 bars after the tonic at a section's end (the last section 8: the next would end at 27)
  CHECK(ending_push(o, 190, 19, 19, true, true, true, 8).end_bias == doctest::Approx(1 + 7.0));
  o.push_slope = 3;
  CHECK(ending_push(o, 190, 19, 19, true, true, true, 8).end_bias == doctest::Approx(12.0));  // 1 + 3 x 7, capped
  CHECK(ending_push(o, 190, 19, 19, true, true, true, 4).end_bias == doctest::Approx(1 + 3 * 3.0));  // next at 23
  CHECK(ending_push(o, 190, 19, 19, false, false, true, 4).steer_bias == doctest::Approx(1 + 3 * 3.0));
  // off the tonic before p90 the end is still held back
  CHECK(ending_push(o, 190, 19, 19, true, true, false, 4).end_bias == doctest::Approx(-2.0));
}

TEST_CASE("ending push per style: no steer to a section's end off the tonic in an open repeat, nor before 4 bars") {
  TuneEndingOptions o = narrow();
  // the old rule: an open repeat is steered to its :| after any note
  CHECK(ending_push(o, 190, 19, 19, false, false, false, 8).steer_bias > 0);
  o.steer_open_repeats = false;
  o.min_section_bars = 4;
  CHECK(ending_push(o, 190, 19, 19, false, false, false, 8).steer_bias == 0);       // off the tonic: another bar
  CHECK(ending_push(o, 190, 19, 19, false, false, true, 8).steer_bias > 0);         // after the tonic
  CHECK(ending_push(o, 190, 19, 19, false, false, true, 8, false, 3).steer_bias == 0);  // a section of 3 bars
  CHECK(ending_push(o, 190, 19, 19, false, false, true, 8, false, 4).steer_bias > 0);
  CHECK(ending_push(o, 220, 22, 22, false, false, false, 8, false, 2).steer_bias > 0);  // past p90: anything that ends
}

TEST_CASE("bar constraint: the open section's bar lines, the one that closes the bar being written included") {
  BarConstraintOptions bo;
  bo.bar = Rational(3, 4);
  bo.unit = Rational(1, 8);
  BarConstraint c(bo, {"x", ""}, {1});
  CHECK(c.open_section_bars() == 1);
  c.observe("d2d dcB|A2B c2d|A2B c2d|");
  CHECK(c.open_section_bars() == 3);  // two bar lines, and the one being read
  c.observe("A2B c2d");
  CHECK(c.open_section_bars() == 4);  // three, and the one that will close this bar
  c.observe("|]\n");
  CHECK(c.open_section_bars() == 1);
  c.observe("A2B c2d|");
  CHECK(c.open_section_bars() == 1);  // the section's first bar line, still being read
  c.observe("A2B");
  CHECK(c.open_section_bars() == 2);
}

TEST_CASE("ending options per style: the slope from the style's median and p90, the repeat and section rules") {
  auto spec = MusicModelSpec::from_model_dir(std::string(DUET_SOURCE_DIR) + "/models/abc-folk");
  REQUIRE(spec.has_value());
  auto narrow_style = ending_options(*spec, check_music_options(*spec, {"ryans-hornpipe", "", "", ""}), 768, 1);
  CHECK(narrow_style.long_after_bars == 21);
  CHECK(narrow_style.start_bars == 19);
  CHECK(narrow_style.push_slope == doctest::Approx(3.0));  // 6 logits over its 2 bars from median to p90
  auto wide = ending_options(*spec, check_music_options(*spec, {"oneills-jig", "", "", ""}), 768, 1);
  CHECK(wide.push_slope == doctest::Approx(1.0));  // 19 to 29 bars: one logit a bar, as before
  CHECK(wide.min_section_bars == 4);
  CHECK_FALSE(wide.steer_open_repeats);
  // the tonic preferences scale with the style's share of tonic endings (as before at 80 %)
  CHECK(narrow_style.off_tonic_bias == doctest::Approx(-2.0 * 0.85 / 0.8));
  CHECK(narrow_style.cadence_bias == doctest::Approx(1.5 * 0.85 / 0.8));
  auto slip = ending_options(*spec, check_music_options(*spec, {"oneills-slipjig", "", "", ""}), 768, 1);
  CHECK(slip.off_tonic_bias == doctest::Approx(-2.0 * 0.421 / 0.8));
  CHECK(slip.push_slope == doctest::Approx(1.0));  // 12 to 19 bars
}
