#pragma once
// What a NotaGen piece asks for (config.json model_type "notagen": a patch per round trip), beside
// what every generation asks for (GenerationRequest: budget, sampling, seed). Checked later against
// the model's duet.json (PieceMaker). Plain data, no LibTorch: a GenerationRequest carries it.
#include <cstdint>
#include <string>

#include "edge/music/music_options.hpp"

namespace duet::edge {

struct PieceRequest {
  std::string prompt;                             // the whole prompt text; "" = built from the fields
  std::string period, composer, instrumentation;  // NotaGen-X's prompt form ("" = duet.json's defaults)
  music::MusicRequest folk;                       // models whose prompt is an ABC header (notagen-folk)
  std::string continue_path;                      // an .abc file to continue ("" = a new piece)
  std::string title;                              // T: ("" = made from the prompt)
  int64_t tempo_bpm = 0;                          // Q: for header-form models (0 = the model's)
  int64_t max_patches = 0;                        // patches to generate at most (0: no limit)
  int64_t context = 0;                            // patch context to cut at (0: the model's or daemon's)
  bool full_patches = false;                      // draw every character of a patch (NotaGen's loop)
  bool constrain = true;                          // header-form models: the bar constraint, per character
  int max_identical_bars = 3;                     // its repetition guard (0 = off)
};

bool operator==(const PieceRequest& a, const PieceRequest& b);
inline bool operator!=(const PieceRequest& a, const PieceRequest& b) { return !(a == b); }

}  // namespace duet::edge
