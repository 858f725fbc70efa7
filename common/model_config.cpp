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
    case Family::gemma: return "gemma";
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

// The RoPE object of a config: v5's flat `rope_parameters`, or 4.x's `rope_scaling` (with
// `rope_theta` beside it), with a top-level `partial_rotary_factor` folded in.
RopeSpec read_rope_object(const Reader& r, const ModelConfig& c, json obj, const std::string& where, double theta,
                          int64_t original_top) {
  if (obj.is_null()) obj = json::object();
  if (!obj.is_object()) throw r.error(where, "must be an object");
  if (r.has("partial_rotary_factor") && !obj.contains("partial_rotary_factor"))
    obj["partial_rotary_factor"] = r.j.at("partial_rotary_factor");
  // transformers' Phi-3 reads the old names "su" and "yarn" as longrope
  for (const char* k : {"rope_type", "type"})
    if (c.model_type == "phi3" && obj.contains(k) && obj[k].is_string() && (obj[k] == "su" || obj[k] == "yarn"))
      obj[k] = "longrope";
  RopeSpec s = parse_rope_spec(obj, theta, c.head_dim, c.max_positions, original_top, r.origin, where);
  if (s.partial_rotary_factor != 1.0 && c.model_type != "phi3")
    throw r.error(where + ".partial_rotary_factor",
                  "is " + std::to_string(s.partial_rotary_factor) + "; only the phi3 layout rotates part of a head");
  return s;
}

bool per_layer_type(const json& rp) {
  if (!rp.is_object() || rp.empty()) return false;
  for (auto it = rp.begin(); it != rp.end(); ++it)
    if (it.key() != "full_attention" && it.key() != "sliding_attention") return false;
  return true;
}

// c.rope and c.rope_local. `local_theta` > 0: sliding layers have their own default-type RoPE at
// that theta when the config does not give one per layer type (Gemma 3's rope_local_base_freq).
void read_rope(const Reader& r, ModelConfig& c, double default_theta, double local_theta = 0) {
  const double theta = r.number_or("rope_theta", default_theta);
  const int64_t original_top =
      c.model_type == "phi3" ? r.positive_or("original_max_position_embeddings", 4096) : 0;
  if (r.has("rope_parameters") && per_layer_type(r.j.at("rope_parameters"))) {
    const json& rp = r.j.at("rope_parameters");
    if (!rp.contains("full_attention")) throw r.error("rope_parameters.full_attention", "is missing");
    c.rope = read_rope_object(r, c, rp.at("full_attention"), "rope_parameters.full_attention", theta, original_top);
    c.rope_local = rp.contains("sliding_attention")
                       ? read_rope_object(r, c, rp.at("sliding_attention"), "rope_parameters.sliding_attention",
                                          theta, original_top)
                       : c.rope;
  } else {
    const bool v5 = r.has("rope_parameters");
    const json obj = v5 ? r.j.at("rope_parameters") : (r.has("rope_scaling") ? r.j.at("rope_scaling") : json());
    c.rope = read_rope_object(r, c, obj, v5 ? "rope_parameters" : "rope_scaling", theta, original_top);
    c.rope_local = c.rope;
    if (local_theta > 0) {
      c.rope_local = RopeSpec{};
      c.rope_local.theta = local_theta;
    }
  }
  c.rope_theta = c.rope.theta;
  c.max_positions = rope_context_limit(c.rope, c.max_positions);
}

// Which layers use the sliding window: v5's `layer_types`, else the family's rule (`sliding(i)`).
template <class Rule>
void read_layer_windows(const Reader& r, ModelConfig& c, Rule sliding) {
  c.layer_windows.assign(static_cast<size_t>(c.num_layers), 0);
  if (r.has("layer_types")) {
    const json& lt = r.j.at("layer_types");
    if (!lt.is_array() || static_cast<int64_t>(lt.size()) != c.num_layers)
      throw r.error("layer_types", "must list one type per layer (" + std::to_string(c.num_layers) + ")");
    for (size_t i = 0; i < lt.size(); ++i) {
      const std::string t = lt[i].is_string() ? lt[i].get<std::string>() : "";
      if (t == "sliding_attention") {
        if (c.sliding_window <= 0)
          throw r.error("layer_types", "names sliding_attention layers but sliding_window is not set");
        c.layer_windows[i] = c.sliding_window;
      } else if (t != "full_attention") {
        throw r.error("layer_types[" + std::to_string(i) + "]",
                      "is '" + t + "'; supported: full_attention, sliding_attention");
      }
    }
    return;
  }
  for (int64_t i = 0; i < c.num_layers; ++i)
    if (c.sliding_window > 0 && sliding(i)) c.layer_windows[size_t(i)] = c.sliding_window;
}

void read_llama(const Reader& r, ModelConfig& c) {
  c.hidden_size = r.positive("hidden_size");
  c.intermediate_size = r.positive("intermediate_size");
  c.num_layers = r.positive("num_hidden_layers");
  c.num_heads = r.positive("num_attention_heads");
  c.num_kv_heads = r.positive_or("num_key_value_heads", c.num_heads);
  // transformers' Qwen3Config defaults head_dim to 128, the others to hidden / heads
  c.head_dim = r.positive_or("head_dim", c.model_type == "qwen3" ? 128 : c.hidden_size / c.num_heads);
  c.max_positions = r.positive_or("max_position_embeddings", 2048);
  c.norm_eps = r.number_or("rms_norm_eps", 1e-6);
  c.tie_word_embeddings = r.bool_or("tie_word_embeddings", false);
  const std::string act = r.string_or("hidden_act", "silu");
  if (act != "silu") throw r.error("hidden_act", "is '" + act + "'; the llama family runs 'silu' only");
  c.activation = Activation::silu;
  if (c.num_heads % c.num_kv_heads != 0)
    throw r.error("num_key_value_heads", "(" + std::to_string(c.num_kv_heads) + ") must divide num_attention_heads (" +
                                             std::to_string(c.num_heads) + ")");
  read_rope(r, c, 10000.0);
  // Qwen2/3 write sliding_window but use it only with use_sliding_window, from max_window_layers on
  const bool qwen = c.model_type == "qwen2" || c.model_type == "qwen3";
  const bool sliding = qwen ? r.bool_or("use_sliding_window", false) : r.has("sliding_window");
  if (sliding && r.has("sliding_window")) c.sliding_window = r.positive("sliding_window");
  const int64_t first_sliding = qwen ? static_cast<int64_t>(r.number_or("max_window_layers", 0)) : 0;
  read_layer_windows(r, c, [&](int64_t i) { return i >= first_sliding; });
}

// Gemma3TextConfig's defaults: the multimodal configs write only what differs from them
json gemma3_text_defaults() {
  return {{"model_type", "gemma3_text"}, {"vocab_size", 262208}, {"hidden_size", 2304}, {"intermediate_size", 9216},
          {"num_hidden_layers", 26}, {"num_attention_heads", 8}, {"num_key_value_heads", 4}, {"head_dim", 256},
          {"max_position_embeddings", 131072}, {"rms_norm_eps", 1e-6}, {"rope_theta", 1000000.0},
          {"rope_local_base_freq", 10000.0}, {"query_pre_attn_scalar", 256}, {"sliding_window", 4096},
          {"sliding_window_pattern", 6}, {"tie_word_embeddings", true}, {"hidden_activation", "gelu_pytorch_tanh"},
          {"final_logit_softcapping", nullptr}, {"attn_logit_softcapping", nullptr}};
}

void read_gemma(const Reader& r, ModelConfig& c) {
  const bool gemma3 = c.model_type == "gemma3_text" || c.model_type == "gemma3";
  c.hidden_size = r.positive("hidden_size");
  c.intermediate_size = r.positive("intermediate_size");
  c.num_layers = r.positive("num_hidden_layers");
  c.num_heads = r.positive("num_attention_heads");
  c.num_kv_heads = r.positive_or("num_key_value_heads", c.num_heads);
  c.head_dim = r.positive_or("head_dim", 256);  // transformers' Gemma2/3 default
  c.max_positions = r.positive_or("max_position_embeddings", gemma3 ? 131072 : 8192);
  c.norm_eps = r.number_or("rms_norm_eps", 1e-6);
  c.tie_word_embeddings = r.bool_or("tie_word_embeddings", true);
  const std::string act = r.string_or("hidden_activation", r.string_or("hidden_act", "gelu_pytorch_tanh"));
  if (act != "gelu_pytorch_tanh")
    throw r.error("hidden_activation", "is '" + act + "'; Gemma runs 'gelu_pytorch_tanh' only");
  c.activation = Activation::gelu_tanh;
  if (c.num_heads % c.num_kv_heads != 0) throw r.error("num_key_value_heads", "must divide num_attention_heads");
  if (r.bool_or("use_bidirectional_attention", false))
    throw r.error("use_bidirectional_attention", "is true (an embedding model); duet runs causal decoders only");
  c.query_pre_attn_scalar = r.number_or("query_pre_attn_scalar", 256);
  if (!(c.query_pre_attn_scalar > 0)) throw r.error("query_pre_attn_scalar", "must be positive");
  // transformers' defaults when the field is absent: Gemma 2 caps at 50 / 30, Gemma 3 does not
  const bool has_attn_cap = r.j.contains("attn_logit_softcapping");
  const bool has_final_cap = r.j.contains("final_logit_softcapping");
  c.attn_softcap = has_attn_cap ? r.number_or("attn_logit_softcapping", 0) : (gemma3 ? 0 : 50.0);
  c.final_softcap = has_final_cap ? r.number_or("final_logit_softcapping", 0) : (gemma3 ? 0 : 30.0);
  if (c.attn_softcap < 0 || c.final_softcap < 0) throw r.error("attn_logit_softcapping", "must not be negative");
  c.sliding_window = r.j.contains("sliding_window") ? (r.has("sliding_window") ? r.positive("sliding_window") : 0)
                                                   : 4096;
  if (gemma3)
    read_rope(r, c, 1000000.0, r.number_or("rope_local_base_freq", 10000.0));
  else
    read_rope(r, c, 10000.0);
  const int64_t pattern = gemma3 ? r.positive_or("sliding_window_pattern", 6) : 2;
  read_layer_windows(r, c, [&](int64_t i) { return (i + 1) % pattern != 0; });
}

void read_gpt2(const Reader& r, ModelConfig& c) {
  c.hidden_size = r.positive("n_embd");
  c.num_layers = r.positive("n_layer");
  c.num_heads = r.positive("n_head");
  c.num_kv_heads = c.num_heads;
  c.head_dim = c.hidden_size / c.num_heads;
  c.intermediate_size = r.positive_or("n_inner", 4 * c.hidden_size);
  c.max_positions = r.positive("n_positions");
  c.rope.type = c.rope_local.type = RopeType::none;  // learned positions
  c.layer_windows.assign(static_cast<size_t>(c.num_layers), 0);
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
  if (c.model_type == "llama" || c.model_type == "mistral" || c.model_type == "qwen2" || c.model_type == "qwen3" ||
      c.model_type == "phi3") {
    c.family = Family::llama;
    read_llama(r, c);
  } else if (c.model_type == "gemma2" || c.model_type == "gemma3_text") {
    c.family = Family::gemma;
    read_gemma(r, c);
  } else if (c.model_type == "gpt2") {
    c.family = Family::gpt2;
    read_gpt2(r, c);
  } else if (c.model_type == "gemma3") {
    // the multimodal Gemma 3 (4B and up): its language model, as Gemma3TextConfig fills it
    if (!r.has("text_config") || !j.at("text_config").is_object())
      throw r.error("text_config", "is missing (model_type 'gemma3' keeps its language model there)");
    json text = gemma3_text_defaults();
    for (auto it = j.at("text_config").begin(); it != j.at("text_config").end(); ++it) text[it.key()] = it.value();
    for (const char* k : {"eos_token_id", "bos_token_id"})
      if (!text.contains(k) && j.contains(k)) text[k] = j.at(k);
    j = text;
    c.family = Family::gemma;
    read_gemma(Reader{j, origin + " (text_config)"}, c);
  } else if (c.model_type == "notagen") {
    c.family = Family::notagen;
    read_notagen(r, c);
  } else {
    throw r.error("model_type", "is '" + c.model_type +
                                    "'; supported: llama, mistral, qwen2, qwen3, phi3, gemma2, gemma3_text, gpt2, notagen");
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
