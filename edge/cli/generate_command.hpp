#pragma once
// duet-edge generate, once its options are read and merged into the EdgeConfig: a tune of a music
// model (duet.json), text from --prompt/--prompt-ids, or a NotaGen model's piece (chosen by the
// model's family: a patch per round trip), checked before anything is loaded, then run as the
// server's routes run theirs, one GenerationJob (edge/generation/) each, printed by a GenerateSink
// (streamed, whole, or one --json record each) and written (--abc-out).
#include <cstdint>
#include <optional>
#include <string>

#include "edge/client/edge_config.hpp"
#include "edge/generation/generation_job.hpp"
#include "edge/generation/piece_request.hpp"
#include "edge/generation/tune_request.hpp"

namespace duet::music {
struct MusicModelSpec;
}

namespace duet::edge {
class PieceClient;
}

namespace duet::edge::cli {

struct GenerateArgs {
  std::string prompt, prompt_ids;     // raw prompt (text or comma-separated ids); empty: a tune
  std::string style, meter, unit, key;  // as given on the command line ("" = not given), for --continue
  std::string title, continue_path, abc_out;
  bool music_flags = false;           // any option that builds a tune's prompt was given
  int64_t count = 1;                  // tunes (seeds seed, seed+1, ...)
  bool json = false, no_stream = false, ignore_eos = false;
  bool check_only = false;            // check the options and stop
  // NotaGen models: the prompt's fields, the patch limits
  std::string period, composer, instrumentation;
  int64_t max_patches = 0, patch_context = 0;  // 0: no limit, the model's (or daemon's) context
  bool full_patches = false;
  // -n as given: a NotaGen piece's budget in characters (none: duet.json's max_chars; a config
  // file's [generate] budget counts tokens and is not used)
  std::optional<int64_t> max_new_tokens;
  bool notagen_flags() const {
    return !period.empty() || !composer.empty() || !instrumentation.empty() || max_patches || patch_context ||
           full_patches;
  }
};

// cfg: the config file, the model's defaults and the flags, merged. Returns the exit code;
// throws std::invalid_argument with a sentence for options that do not fit the model.
int run_generate(const EdgeConfig& cfg, bool local, const GenerateArgs& a);

// The tune the flags ask of a music model (spec: its duet.json; null: not one), none for a
// --prompt/--prompt-ids text; checked against duet.json before anything is loaded. Throws
// std::invalid_argument for flags that do not fit the mode.
std::optional<TuneRequest> generate_tune(const EdgeConfig& cfg, const music::MusicModelSpec* spec,
                                         const GenerateArgs& a);

// generate's job for its first run (seed: cfg's; GenerationJob::with_seed for --count's others):
// the client's defaults (cfg merged) as the base, --ignore-eos clearing its EOS ids, and the
// prompt: --prompt-ids as given (no tokenizer needed), --prompt encoded as the API encodes a
// prompt, or the tune's.
GenerationJob generate_job(EdgeClient& client, const EdgeConfig& cfg, const GenerateArgs& a,
                           const std::optional<TuneRequest>& tune, const music::MusicModelSpec* spec);

// The piece the flags ask of a NotaGen model, checked against its duet.json before anything is
// loaded (PieceMaker). Throws std::invalid_argument for flags a NotaGen model does not take.
PieceRequest generate_piece(const EdgeConfig& cfg, const GenerateArgs& a);

// generate's job for a NotaGen model's first piece: the client's defaults (the budget in
// characters, sampling in duet.json's order, the patch context), -n and cfg's seed on top.
GenerationJob piece_job(const PieceClient& client, const EdgeConfig& cfg, const GenerateArgs& a,
                        const PieceRequest& piece);

}  // namespace duet::edge::cli
