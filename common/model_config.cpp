#include "common/model_config.hpp"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "common/text_file.hpp"

namespace duet {

const char* family_name(Family f) {
  switch (f) {
    case Family::llama: return "llama";
    case Family::gpt2: return "gpt2";
    case Family::notagen: return "notagen";
  }
  return "?";
}

namespace {

using nlohmann::json;

struct Reader {
  const json& j;
  const std::string& origin;

  std::runtime_error error(const std::string& key, const std::string& what) const {
    return std::runtime_error(origin + ": field '" + key + "' " + what);
  }
  int64_t positive(const std::string& key) const {
    if (!j.contains(key)) throw error(key, "is missing");
    const json& v = j.at(key);
    if (!v.is_number_integer() || v.get<int64_t>() <= 0) throw error(key, "must be a positive integer");
    return v.get<int64_t>();
  }
  int64_t positive_or(const std::string& key, int64_t fallback) const {
    return has(key) ? positive(key) : fallback;
  }
  double number_or(const std::string& key, double fallback) const {
    if (!has(key)) return fallback;
    if (!j.at(key).is_number()) throw error(key, "must be a number");
    return j.at(key).get<double>();
  }
  bool bool_or(const std::string& key, bool fallback) const {
    if (!has(key)) return fallback;
    if (!j.at(key).is_boolean()) throw error(key, "must be true or false");
    return j.at(key).get<bool>();
  }
  std::string string_or(const std::string& key, const std::string& fallback) const {
    if (!has(key)) return fallback;
    if (!j.at(key).is_string()) throw error(key, "must be a string");
    return j.at(key).get<std::string>();
  }
  bool has(const std::string& key) const { return j.contains(key) && !j.at(key).is_null(); }
};

std::vector<int32_t> token_ids(const json& v) {
  std::vector<int32_t> ids;
  if (v.is_number_integer()) ids.push_back(v.get<int32_t>());
  else if (v.is_array())
    for (auto& x : v)
      if (x.is_number_integer()) ids.push_back(x.get<int32_t>());
  return ids;
}

void read_llama(const Reader& r, ModelConfig& c) {
  c.hidden_size = r.positive("hidden_size");
  c.intermediate_size = r.positive("intermediate_size");
  c.num_layers = r.positive("num_hidden_layers");
  c.num_heads = r.positive("num_attention_heads");
  c.num_kv_heads = r.positive_or("num_key_value_heads", c.num_heads);
  c.head_dim = r.positive_or("head_dim", c.hidden_size / c.num_heads);
  c.max_positions = r.positive_or("max_position_embeddings", 2048);
  c.norm_eps = r.number_or("rms_norm_eps", 1e-6);
  c.tie_word_embeddings = r.bool_or("tie_word_embeddings", false);
  const std::string act = r.string_or("hidden_act", "silu");
  if (act != "silu") throw r.error("hidden_act", "is '" + act + "'; the llama family runs 'silu' only");
  c.activation = Activation::silu;
  if (c.num_heads % c.num_kv_heads != 0)
    throw r.error("num_key_value_heads", "(" + std::to_string(c.num_kv_heads) + ") must divide num_attention_heads (" +
                                             std::to_string(c.num_heads) + ")");
  // transformers 5 nests rope settings in rope_parameters; 4.x keeps rope_theta/rope_scaling at top level
  std::string rope_type = "default";
  c.rope_theta = r.number_or("rope_theta", 10000.0);
  if (r.has("rope_parameters")) {
    const json& rp = r.j.at("rope_parameters");
    if (!rp.is_object()) throw r.error("rope_parameters", "must be an object");
    Reader rr{rp, r.origin};
    c.rope_theta = rr.number_or("rope_theta", c.rope_theta);
    rope_type = rr.string_or("rope_type", "default");
  }
  if (r.has("rope_scaling")) {
    const json& rs = r.j.at("rope_scaling");
    Reader rr{rs, r.origin};
    if (rs.is_object()) rope_type = rr.string_or("rope_type", rr.string_or("type", "default"));
  }
  if (rope_type != "default")
    throw r.error("rope_type", "is '" + rope_type + "'; only unscaled RoPE ('default') is supported");
  // Qwen2 writes sliding_window but only uses it with use_sliding_window
  const bool sliding = c.model_type == "qwen2" ? r.bool_or("use_sliding_window", false) : r.has("sliding_window");
  if (sliding && r.has("sliding_window")) c.sliding_window = r.positive("sliding_window");
}

void read_gpt2(const Reader& r, ModelConfig& c) {
  c.hidden_size = r.positive("n_embd");
  c.num_layers = r.positive("n_layer");
  c.num_heads = r.positive("n_head");
  c.num_kv_heads = c.num_heads;
  c.head_dim = c.hidden_size / c.num_heads;
  c.intermediate_size = r.positive_or("n_inner", 4 * c.hidden_size);
  c.max_positions = r.positive("n_positions");
  c.norm_eps = r.number_or("layer_norm_epsilon", 1e-5);
  c.tie_word_embeddings = r.bool_or("tie_word_embeddings", true);
  const std::string act = r.string_or("activation_function", "gelu_new");
  if (act == "gelu_new" || act == "gelu_pytorch_tanh") c.activation = Activation::gelu_tanh;
  else if (act == "gelu") c.activation = Activation::gelu_exact;
  else throw r.error("activation_function", "is '" + act + "'; supported: gelu_new, gelu_pytorch_tanh, gelu");
  if (r.bool_or("scale_attn_by_inverse_layer_idx", false))
    throw r.error("scale_attn_by_inverse_layer_idx", "is true; not supported");
  if (!r.bool_or("scale_attn_weights", true)) throw r.error("scale_attn_weights", "is false; not supported");
  if (c.hidden_size % c.num_heads != 0) throw r.error("n_head", "must divide n_embd");
}

// NotaGen (written by scripts/notagen/convert_pth.py): GPT-2 blocks at the patch level.
void read_notagen(const Reader& r, ModelConfig& c) {
  c.hidden_size = r.positive("hidden_size");
  c.num_layers = r.positive("patch_num_layers");
  c.num_heads = r.positive("num_attention_heads");
  c.num_kv_heads = c.num_heads;
  c.intermediate_size = r.positive_or("intermediate_size", 4 * c.hidden_size);
  c.max_positions = r.positive("patch_length");
  c.norm_eps = r.number_or("layer_norm_epsilon", 1e-5);
  const std::string act = r.string_or("activation_function", "gelu_new");
  if (act == "gelu_new" || act == "gelu_pytorch_tanh") c.activation = Activation::gelu_tanh;
  else if (act == "gelu") c.activation = Activation::gelu_exact;
  else throw r.error("activation_function", "is '" + act + "'; supported: gelu_new, gelu_pytorch_tanh, gelu");
  if (c.hidden_size % c.num_heads != 0) throw r.error("num_attention_heads", "must divide hidden_size");
  c.head_dim = c.hidden_size / c.num_heads;
  c.tie_word_embeddings = true;  // the character decoder's head is its embedding (GPT2LMHeadModel)
}

}  // namespace

ModelConfig ModelConfig::from_json_text(const std::string& text, const std::string& origin) {
  json j;
  try {
    j = json::parse(text);
  } catch (const std::exception& e) {
    throw std::runtime_error(origin + ": not valid JSON: " + e.what());
  }
  if (!j.is_object()) throw std::runtime_error(origin + ": not a JSON object");
  Reader r{j, origin};
  ModelConfig c;
  c.model_type = r.string_or("model_type", "");
  if (c.model_type.empty()) throw r.error("model_type", "is missing");
  if (c.model_type == "llama" || c.model_type == "mistral" || c.model_type == "qwen2") {
    c.family = Family::llama;
    read_llama(r, c);
  } else if (c.model_type == "gpt2") {
    c.family = Family::gpt2;
    read_gpt2(r, c);
  } else if (c.model_type == "notagen") {
    c.family = Family::notagen;
    read_notagen(r, c);
  } else {
    throw r.error("model_type", "is '" + c.model_type + "'; supported: llama, mistral, qwen2, gpt2, notagen");
  }
  c.vocab_size = r.positive(c.family == Family::notagen ? "char_vocab_size" : "vocab_size");
  if (r.has("eos_token_id")) c.eos_token_ids = token_ids(j.at("eos_token_id"));
  if (r.has("bos_token_id") && j.at("bos_token_id").is_number_integer()) c.bos_token_id = j.at("bos_token_id");
  return c;
}

ModelConfig ModelConfig::from_dir(const std::string& dir) {
  const std::string path = dir + "/config.json";
  ModelConfig c = from_json_text(read_text_file(path), path);
  c.read_generation_config(dir);
  return c;
}

void ModelConfig::read_generation_config(const std::string& dir) {
  std::ifstream gen(dir + "/generation_config.json");
  if (!gen) return;
  try {
    json g = json::parse(gen);
    if (g.contains("eos_token_id") && !g["eos_token_id"].is_null()) {
      auto ids = token_ids(g["eos_token_id"]);
      if (!ids.empty()) eos_token_ids = ids;
    }
  } catch (const std::exception& e) {
    throw std::runtime_error(dir + "/generation_config.json: not valid JSON: " + e.what());
  }
}

}  // namespace duet
