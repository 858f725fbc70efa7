#pragma once
// The ending options the music tests build a style from: its bars per tune (p10/p50/p90 of the
// corpus), a 768-token budget and the biases the fifth pass fixed (off the tonic -2, an end before
// p90 -3, a cadence 1.5). Each test then sets what it is about.
#include "edge/music/tune_ending.hpp"

namespace duet::music::test {

inline TuneEndingOptions style_ending(int64_t p10, int64_t p50, int64_t p90) {
  TuneEndingOptions o;
  o.min_bars = p10;
  o.start_bars = p50;
  o.long_after_bars = p90;
  o.budget_tokens = 768;
  o.off_tonic_bias = -2;
  o.early_bias = -3;
  o.cadence_bias = 1.5;
  return o;
}

}  // namespace duet::music::test
