#pragma once
// What a HuggingFace config.json says about a decoder-only model, reduced to what duet runs.
// No LibTorch: the daemon's planner and the protocol handshake read this too.
#include <cstdint>
#include <string>
#include <vector>

namespace duet {

enum class Family { llama, gpt2, notagen };  // llama covers Llama, Mistral and Qwen2 layouts
// notagen: NotaGen's hierarchical model; the fields below describe its patch level (num_layers =
// patch layers, max_positions = patches of context, vocab_size = the 128 characters); the
// character level's own sizes are read by common/models/notagen.
const char* family_name(Family f);

enum class Activation { silu, gelu_tanh, gelu_exact };

struct ModelConfig {
  std::string model_type;  // as written in config.json ("llama", "qwen2", "mistral", "gpt2", "notagen")
  Family family = Family::llama;
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t max_positions = 0;
  double norm_eps = 1e-5;
  double rope_theta = 10000.0;  // llama family only
  int64_t sliding_window = 0;   // 0: full attention
  Activation activation = Activation::silu;
  bool tie_word_embeddings = false;
  std::vector<int32_t> eos_token_ids;
  int32_t bos_token_id = -1;

  // Reads <dir>/config.json (and eos ids from generation_config.json when present).
  // Throws std::runtime_error naming the file and the field on anything unsupported or malformed.
  static ModelConfig from_dir(const std::string& dir);
  // Takes eos ids from <dir>/generation_config.json when the file exists and names any.
  void read_generation_config(const std::string& dir);
  static ModelConfig from_json_text(const std::string& text, const std::string& origin);
};

}  // namespace duet
