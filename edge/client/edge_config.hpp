#pragma once
// The edge's settings: a TOML file (configs/edge.toml) with command-line overrides.
#include <cstdint>
#include <string>
#include <vector>

#include "common/sampling_options.hpp"
#include "common/setting_table.hpp"

namespace duet::edge {

struct EdgeConfig {
  // [model]
  std::string model_path;
  std::string device = "cpu";
  std::string dtype = "fp32";
  // [cloud]
  std::string server = "tcp://127.0.0.1:7700";
  std::string server_key;  // the daemon's public NAME.key (pinned)
  std::string client_key;  // our NAME.key_secret
  bool insecure = false;
  std::string wire_dtype = "fp32";
  int64_t timeout_ms = 10000;
  int64_t spin_us = 0;  // poll for each reply without sleeping this long (0: off)
  int64_t edge_blocks = 0;  // blocks [0, edge_blocks) run here; the daemon must run from there (--first-block)
  // [generate]
  int64_t max_new_tokens = 256;
  bool max_new_tokens_set = false;  // the file chose it (else a music model's duet.json may)
  SamplingOptions sampling;
  bool sampling_set = false;  // the file or flags chose sampling (else the model's duet.json may)
  std::string draft = "none";   // several tokens per round trip: "none" or "ngram" (prompt lookup)
  int64_t draft_k = 16;         // most drafts per round trip
  bool draft_adaptive = true;   // the draft length follows acceptance and round trip (false: always draft_k)
  // [music] (models with a duet.json): checked by duet::music::check_music_options like the flags
  std::string style, meter, unit, key;  // "" = the model's defaults for the style
  bool bar_constraint = true;           // bar-true sampling and the repetition guard
  bool ending_push = true;              // with the constraint: end tunes in time (music/tune_ending.hpp)
  int64_t max_identical_bars = 3;       // the guard: most identical full bars in a row (0 = off)
  int64_t tempo_bpm = 0;                // Q: (0 = the model's tempo for the rhythm)
  // [serve] (duet-edge serve)
  std::string listen = "127.0.0.1:8080";  // HOST:PORT; loopback keeps it off the network
  std::string api_key;                    // empty: no key asked (fine on loopback)
  std::string web_dir;                    // the music page (web/); empty: the source tree's
  int64_t max_active = 4;                 // requests generating at once
  int64_t max_body_bytes = 1 << 20;       // larger request bodies are refused (413) before they are read
  std::vector<std::string> allowed_origins;  // browser origins besides the server's own ("*": any)

  // Relative paths in the file are taken from the file's folder. Unknown keys are errors.
  static EdgeConfig from_toml_file(const std::string& path);
};

// The edge's settings table (common/setting_table.hpp): each setting's TOML key, flag, help, rule
// and the duet-edge subcommands whose flags include it, declared once; from_toml_file and
// duet-edge's flags come from it. test_configs checks configs/edge.toml and --help name every row.
using EdgeSetting = settings::Setting<EdgeConfig>;
enum EdgeCommand : unsigned { kGenerate = 1, kServe = 2, kStyles = 4 };
const std::vector<EdgeSetting>& edge_settings();

inline constexpr int64_t kMaxDraftK = 32;
// draft in {none, ngram}, draft_k in [1, kMaxDraftK]; std::invalid_argument naming the value otherwise.
void check_draft_settings(const std::string& draft, int64_t draft_k);

}  // namespace duet::edge
