#pragma once
// duet-edge generate for token-level models (NotaGen's patch loop is edge/client/notagen_generate),
// once its options are read and merged into the EdgeConfig: a tune of a music model (duet.json)
// or text from --prompt/--prompt-ids, checked before anything is loaded, then generated, printed
// (streamed, whole, or one --json record each: edge/client/generation_report) and written
// (--abc-out).
#include <cstdint>
#include <string>

#include "edge/client/edge_config.hpp"

namespace duet::edge::cli {

struct GenerateArgs {
  std::string prompt, prompt_ids;     // raw prompt (text or comma-separated ids); empty: a tune
  std::string style, meter, unit, key;  // as given on the command line ("" = not given), for --continue
  std::string title, continue_path, abc_out;
  bool music_flags = false;           // any option that builds a tune's prompt was given
  int64_t count = 1;                  // tunes (seeds seed, seed+1, ...)
  bool json = false, no_stream = false, ignore_eos = false;
  bool check_only = false;            // check the options and stop
};

// cfg: the config file, the model's defaults and the flags, merged. Returns the exit code;
// throws std::invalid_argument with a sentence for options that do not fit the model.
int run_generate(const EdgeConfig& cfg, bool local, const GenerateArgs& a);

}  // namespace duet::edge::cli
