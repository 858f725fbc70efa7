#pragma once
// duet-edge generate for NotaGen models (config.json model_type "notagen"): builds the prompt the
// way the model was trained (NotaGen-X: "%period / %composer / %instrumentation" lines; a folk
// model: its duet.json's S:/M:/L:/K: header), generates with edge/notagen's PieceGenerator over a
// local or remote backbone, and writes the pieces as ABC (stream markers removed).
#include <cstdint>
#include <string>

#include "edge/client/edge_config.hpp"
#include "edge/music/music_options.hpp"

namespace duet::edge {

struct NotagenRequest {
  std::string prompt;                             // raw prompt text; empty: built from the fields
  std::string period, composer, instrumentation;  // NotaGen-X's prompt form
  music::MusicRequest folk;                       // models whose prompt is an ABC header
  std::string continue_path;                      // an .abc file to continue
  std::string title;                              // T: ("" = made from the prompt)
  int64_t tempo_bpm = 0;                          // Q: for header-form models (0 = the model's)
  int64_t count = 1;
  std::string abc_out;
  bool json = false, stream = true;
  int64_t max_chars = 0;                          // 0: duet.json's max_chars (NotaGen: 102400)
  int64_t max_patches = 0;                        // 0: no limit
  int64_t context = 0;                            // patch context to cut at (0: the model's)
  bool full_patches = false;                      // draw every character of a patch (NotaGen's loop)
  bool constrain = true;                          // header-form models: the bar constraint, per character
  int max_identical_bars = 3;                     // its repetition guard (0 = off)
};

// True when the model's family (common/model_config: config.json's model_type) is NotaGen's, whose
// generation runs a patch per round trip. Throws naming the file when config.json cannot be read
// or names a family duet does not run.
bool is_notagen_model(const std::string& dir);
// cfg.sampling holds the sampling already resolved (duet.json, config file, flags). Returns the
// process exit code; throws std::invalid_argument with a sentence for bad options.
int run_notagen_generate(const EdgeConfig& cfg, bool local, const NotagenRequest& req);

}  // namespace duet::edge
