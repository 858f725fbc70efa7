#pragma once
// What a tune asks for, whichever front end asked (duet-edge generate's flags, the music page's
// form): the ABC options, checked later against the model's duet.json (TuneMaker), and the
// bar-true sampling switches. Plain data, no LibTorch: a GenerationRequest carries it.
#include <cstdint>
#include <string>

#include "edge/music/music_options.hpp"

namespace duet::edge {

struct TuneRequest {
  music::MusicRequest options;  // style, meter, unit, key ("" = defaults)
  std::string title;            // T: ("" = made from the style and key)
  int64_t tempo_bpm = 0;        // Q: beats per minute (0 = the model's tempo for the rhythm)
  std::string opening;          // a body to continue (--continue); "" = start a new tune
  bool constrain = true;        // the bar constraint (bar-true sampling, repetition guard)
  int max_identical_bars = 3;   // the repetition guard (0 = off)
  bool ending_push = true;      // with the constraint: end in time (edge/music/tune_ending.hpp)
};

bool operator==(const TuneRequest& a, const TuneRequest& b);
inline bool operator!=(const TuneRequest& a, const TuneRequest& b) { return !(a == b); }

}  // namespace duet::edge
