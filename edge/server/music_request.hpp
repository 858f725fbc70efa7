#pragma once
// The music page's request (POST /api/music) read and checked: the tune's options as strings
// (checked as ABC later, by TuneMaker), the constraint switch, and the budget and sampling fields
// (read_sampling: the OpenAI routes' reader, same checks, same messages). No LibTorch, no HTTP:
// fuzzed with the OpenAI reader (tests/edge/fuzz_serve_request.cpp).
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "edge/server/openai_json.hpp"

namespace duet::edge::server {

struct MusicApiRequest {
  std::string style, meter, unit, key;  // "" = the model's defaults for the style
  std::optional<bool> constraint;       // the bar constraint (default: on)
  duet::edge::GenerationOverrides sampling;  // max_tokens, temperature, top_p, top_k, seed, ...
};

// Throws ApiError 400 naming the field.
MusicApiRequest parse_music_request(const std::string& body);

}  // namespace duet::edge::server
