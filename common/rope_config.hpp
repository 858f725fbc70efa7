#pragma once
// Rotary position embeddings as a config.json describes them, in transformers 5's terms
// (`rope_parameters`) and 4.x's (`rope_theta` + `rope_scaling` at the top level). No LibTorch: the
// tables are built from this by common/rope.hpp.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace duet {

enum class RopeType { none, default_, linear, dynamic, yarn, longrope, llama3 };
const char* rope_type_name(RopeType t);

struct RopeSpec {
  RopeType type = RopeType::default_;
  double theta = 10000.0;
  double partial_rotary_factor = 1.0;  // rotated share of each head (Phi-4-mini: 0.75)
  double factor = 1.0;                 // linear, dynamic, yarn, llama3; longrope: max / original
  int64_t original_max_positions = 0;  // yarn, longrope, llama3 (dynamic: max_position_embeddings)
  double attention_factor = 1.0;       // cos and sin are multiplied by it (yarn, longrope)
  double beta_fast = 32.0, beta_slow = 1.0;  // yarn
  bool truncate = true;                      // yarn: round the correction range outwards
  double low_freq_factor = 1.0, high_freq_factor = 4.0;  // llama3
  std::vector<double> short_factor, long_factor;         // longrope: one per rotated frequency

  // Dimensions rotated per head: int(head_dim * partial_rotary_factor), as transformers rounds.
  int64_t rotary_dim(int64_t head_dim) const;
  bool operator==(const RopeSpec& o) const;
  bool operator!=(const RopeSpec& o) const { return !(*this == o); }
};

// Reads one RoPE parameter object (v5 `rope_parameters` or one of its per-layer-type entries, or a
// 4.x `rope_scaling` object with `theta` from the top level). `where` names the object in errors
// ("config.json: field 'rope_parameters.factor' ..."); `origin` is the file. `max_positions` and
// `original_max_positions` (a top-level field, 0 if none) fill the defaults transformers fills.
// Throws std::runtime_error naming the field on an unknown type, an unknown key or a bad value.
RopeSpec parse_rope_spec(const nlohmann::json& obj, double theta, int64_t head_dim, int64_t max_positions,
                         int64_t original_max_positions, const std::string& origin, const std::string& where);

// Positions a model runs to: max_position_embeddings, or for the types meant to extend it
// (dynamic, yarn) factor x the original context when that is larger.
int64_t rope_context_limit(const RopeSpec& s, int64_t max_positions);

}  // namespace duet
