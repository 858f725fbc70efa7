#pragma once
// Writes small HF-style model folders (config.json + model.safetensors) for tests that need a
// model of a given shape or a deliberately broken file.
#include <torch/torch.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <unistd.h>
#include <vector>

namespace duet::test {

inline std::string make_temp_dir(const std::string& tag) {
  std::string tmpl = "/tmp/duet-" + tag + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed");
  return buf.data();
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// Tensors are written as F32 (or BF16/F16 when given so), in name order.
inline void write_safetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  std::string data;
  for (const auto& [name, t0] : tensors) {
    auto t = t0.contiguous();
    const char* dt = t.scalar_type() == torch::kFloat ? "F32" : t.scalar_type() == torch::kBFloat16 ? "BF16" : "F16";
    const size_t begin = data.size();
    data.append(static_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
    header[name] = {{"dtype", dt}, {"shape", t.sizes().vec()}, {"data_offsets", {begin, data.size()}}};
  }
  std::string h = header.dump();
  while ((8 + h.size()) % 8) h.push_back(' ');
  std::ofstream out(path, std::ios::binary);
  uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xff));
  out << h << data;
}

// A random Llama-family checkpoint of the given shape.
inline std::string write_random_llama(const std::string& dir, int64_t hidden, int64_t layers, int64_t vocab,
                                      int64_t inter, int64_t heads, int64_t kv_heads, bool tied = false) {
  torch::manual_seed(7);
  const int64_t d = hidden / heads;
  std::map<std::string, torch::Tensor> t;
  auto r = [](std::vector<int64_t> s) { return torch::randn(s) * 0.1; };
  t["model.embed_tokens.weight"] = r({vocab, hidden});
  t["model.norm.weight"] = torch::ones({hidden});
  if (!tied) t["lm_head.weight"] = r({vocab, hidden});
  for (int64_t i = 0; i < layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    t[p + "input_layernorm.weight"] = torch::ones({hidden});
    t[p + "post_attention_layernorm.weight"] = torch::ones({hidden});
    t[p + "self_attn.q_proj.weight"] = r({heads * d, hidden});
    t[p + "self_attn.k_proj.weight"] = r({kv_heads * d, hidden});
    t[p + "self_attn.v_proj.weight"] = r({kv_heads * d, hidden});
    t[p + "self_attn.o_proj.weight"] = r({hidden, heads * d});
    t[p + "mlp.gate_proj.weight"] = r({inter, hidden});
    t[p + "mlp.up_proj.weight"] = r({inter, hidden});
    t[p + "mlp.down_proj.weight"] = r({hidden, inter});
  }
  nlohmann::json cfg = {{"model_type", "llama"},        {"hidden_size", hidden},  {"intermediate_size", inter},
                        {"num_hidden_layers", layers},  {"num_attention_heads", heads},
                        {"num_key_value_heads", kv_heads}, {"vocab_size", vocab}, {"max_position_embeddings", 256},
                        {"rms_norm_eps", 1e-5},         {"tie_word_embeddings", tied}, {"eos_token_id", 2},
                        {"bos_token_id", 1}};
  write_text(dir + "/config.json", cfg.dump(2));
  write_safetensors(dir + "/model.safetensors", t);
  return dir;
}

}  // namespace duet::test
