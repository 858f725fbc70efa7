#pragma once
// What a HuggingFace config.json says about a decoder-only model, reduced to what duet runs.
// No LibTorch: the daemon's planner and the protocol handshake read this too.
#include <cstdint>
#include <string>
#include <vector>

#include "common/rope_config.hpp"

namespace duet {

// llama covers the Llama, Mistral, Qwen2/3 and Phi-3 layouts; gemma Gemma 2 and 3; notagen is
// NotaGen's hierarchical model: the fields below describe its patch level (num_layers = patch layers,
// max_positions = patches of context, vocab_size = the 128 characters); the character level's own
// sizes are read by common/models/notagen.
enum class Family { llama, gpt2, gemma, notagen };
const char* family_name(Family f);

enum class Activation { silu, gelu_tanh, gelu_exact };

struct ModelConfig {
  std::string model_type;  // as written in config.json ("llama", "qwen3", "gemma3_text", "gpt2", "notagen", ...)
  Family family = Family::llama;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t max_positions = 0;   // positions a sequence may reach (RoPE types that extend it: factor x original)
  double norm_eps = 1e-5;
  double rope_theta = 10000.0;  // = rope.theta
  int64_t sliding_window = 0;   // 0: full attention
  RopeSpec rope;                // RoPE of full-attention layers (type none: learned positions)
  RopeSpec rope_local;          // RoPE of sliding-window layers (Gemma 3: its own theta); else = rope
  std::vector<int64_t> layer_windows;  // per layer: sliding_window or 0 (full attention)
  double query_pre_attn_scalar = 0;    // attention scale 1/sqrt(this); 0: head_dim (Gemma sets it)
  double attn_softcap = 0;             // Gemma 2: scores = cap * tanh(scores / cap); 0: none
  double final_softcap = 0;            // Gemma 2: the same on the logits (an edge piece)
  Activation activation = Activation::silu;
  bool tie_word_embeddings = false;
  std::vector<int32_t> eos_token_ids;
  int32_t bos_token_id = -1;

  int64_t window_of(int64_t layer) const {
    return layer >= 0 && layer < static_cast<int64_t>(layer_windows.size()) ? layer_windows[size_t(layer)] : 0;
  }

  // Reads <dir>/config.json (and eos ids from generation_config.json when present).
  // Throws std::runtime_error naming the file and the field on anything unsupported or malformed.
  static ModelConfig from_dir(const std::string& dir);
  // Takes eos ids from <dir>/generation_config.json when the file exists and names any.
  void read_generation_config(const std::string& dir);
  static ModelConfig from_json_text(const std::string& text, const std::string& origin);
};

}  // namespace duet
