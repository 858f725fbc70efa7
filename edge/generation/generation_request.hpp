#pragma once
// A generation as every front end asks for it, and the plan it resolves to. The one place where
// defaults meet a request: resolve() applies them once, lowest first
//   duet-edge's built-ins < the model's duet.json < the config file < flags  (GenerationDefaults,
//   already merged by apply_model_defaults and EdgeClient::default_options)
//   < the request's own fields                                              (GenerationOverrides)
// Plain data, no LibTorch: the OpenAI and music-page readers (fuzzed without it) fill requests.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/sampling_options.hpp"
#include "edge/generation/piece_request.hpp"
#include "edge/generation/tune_request.hpp"

namespace duet::edge {

// What a request may set; unset fields keep the defaults'.
struct GenerationOverrides {
  std::optional<int64_t> max_new_tokens;
  std::optional<double> temperature, top_p, repetition_penalty;
  std::optional<int64_t> top_k;
  std::optional<uint64_t> seed;  // unset: a random seed, drawn once by resolve()
};

struct GenerationRequest {
  std::vector<int32_t> prompt;             // token ids; empty for a tune or a piece: their options write the prompt
  GenerationOverrides overrides;
  std::vector<std::string> stop_strings;   // OpenAI's stop: the text ends just before one
  std::vector<int32_t> extra_stop_ids;     // beside the model's EOS ids (a chat template's end of turn)
  std::optional<TuneRequest> tune;         // a music model's tune: its prompt and the bar constraint
  std::optional<PieceRequest> piece;       // a NotaGen model's piece (its budget: characters)
};

// The front end's starting point: budget, sampling, stop ids and position limit.
struct GenerationDefaults {
  int64_t max_new_tokens = 256;
  SamplingOptions sampling;
  std::vector<int32_t> stop_ids;  // the model's EOS ids
  int64_t max_positions = 0;      // 0: the model's limit
};

// Everything a run needs, nothing left to choose: two front ends that resolve equivalent
// requests get equal plans, and equal plans give the same tokens.
struct GenerationPlan {
  std::vector<int32_t> prompt;
  int64_t max_new_tokens = 0;
  SamplingOptions sampling;  // seed chosen
  std::vector<int32_t> stop_ids;
  int64_t max_positions = 0;
  std::vector<std::string> stop_strings;
  std::optional<TuneRequest> tune;
  std::optional<PieceRequest> piece;
};

// Defaults under the request's fields; a random seed when the request has none.
GenerationPlan resolve(const GenerationDefaults& defaults, const GenerationRequest& request);

bool operator==(const GenerationPlan& a, const GenerationPlan& b);
inline bool operator!=(const GenerationPlan& a, const GenerationPlan& b) { return !(a == b); }

}  // namespace duet::edge
