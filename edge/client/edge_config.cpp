#include "edge/client/edge_config.hpp"

#include <filesystem>
#include <set>
#include <stdexcept>
#include <toml++/toml.h>

#include "common/toml_file.hpp"

namespace duet::edge {

namespace fs = std::filesystem;

void check_draft_settings(const std::string& draft, int64_t draft_k) {
  if (draft != "none" && draft != "ngram")
    throw std::invalid_argument("draft '" + draft + "' is not a drafting mode; expected none or ngram");
  if (draft_k < 1 || draft_k > kMaxDraftK)
    throw std::invalid_argument("draft_k " + std::to_string(draft_k) + " is out of range; expected 1 to " +
                                std::to_string(kMaxDraftK));
}

EdgeConfig EdgeConfig::from_toml_file(const std::string& path) {
  const toml::table root = parse_toml_file(path);
  const fs::path base = fs::path(path).parent_path();
  auto fail = [&](const std::string& key, const std::string& what) {
    throw std::invalid_argument(path + ": '" + key + "' " + what);
  };
  const std::map<std::string, std::set<std::string>> known = {
      {"model", {"path", "device", "dtype"}},
      {"cloud", {"server", "server_key", "client_key", "insecure", "wire_dtype", "timeout_ms", "edge_blocks", "spin_us"}},
      {"generate",
       {"max_new_tokens", "temperature", "top_k", "top_p", "repetition_penalty", "seed", "draft", "draft_k",
        "draft_adaptive"}},
      {"music", {"style", "meter", "unit", "key", "bar_constraint", "ending_push", "max_identical_bars", "tempo"}},

      {"serve", {"listen", "api_key", "web_dir", "max_active", "max_body_bytes", "allowed_origins"}}};
  for (auto&& [k, v] : root) {
    const std::string sec(k.str());
    if (!known.count(sec)) fail(sec, "is not a known section");
    if (!v.is_table()) fail(sec, "must be a table");
    for (auto&& [k2, v2] : *v.as_table())
      if (!known.at(sec).count(std::string(k2.str()))) fail(sec + "." + std::string(k2.str()), "is not a known setting");
  }
  EdgeConfig c;
  auto str = [&](const char* sec, const char* key, std::string& out, bool is_path) {
    auto n = root[sec][key];
    if (!n) return;
    auto v = n.value<std::string>();
    if (!v) fail(std::string(sec) + "." + key, "must be a string");
    out = is_path && !v->empty() && fs::path(*v).is_relative() ? (base / *v).lexically_normal().string() : *v;
  };
  auto integer = [&](const char* sec, const char* key, int64_t& out) {
    auto n = root[sec][key];
    if (!n) return;
    auto v = n.value_exact<int64_t>();
    if (!v || *v < 0) fail(std::string(sec) + "." + key, "must be a non-negative integer");
    out = *v;
  };
  auto real = [&](const char* sec, const char* key, double& out) {
    auto n = root[sec][key];
    if (!n) return false;
    auto v = n.value<double>();
    if (!v) fail(std::string(sec) + "." + key, "must be a number");
    out = *v;
    return true;
  };
  str("model", "path", c.model_path, true);
  str("model", "device", c.device, false);
  str("model", "dtype", c.dtype, false);
  str("cloud", "server", c.server, false);
  str("cloud", "server_key", c.server_key, true);
  str("cloud", "client_key", c.client_key, true);
  if (auto n = root["cloud"]["insecure"]) {
    auto v = n.value_exact<bool>();
    if (!v) fail("cloud.insecure", "must be true or false");
    c.insecure = *v;
  }
  str("cloud", "wire_dtype", c.wire_dtype, false);
  integer("cloud", "timeout_ms", c.timeout_ms);
  integer("cloud", "spin_us", c.spin_us);
  if (c.spin_us > 100000) fail("cloud.spin_us", "must be at most 100000 (0.1 s; it is a short busy wait, not a timeout)");
  integer("cloud", "edge_blocks", c.edge_blocks);
  integer("generate", "max_new_tokens", c.max_new_tokens);
  c.max_new_tokens_set = static_cast<bool>(root["generate"]["max_new_tokens"]);
  bool s = real("generate", "temperature", c.sampling.temperature);
  int64_t k = 0, seed = 0;
  if (root["generate"]["top_k"]) {
    integer("generate", "top_k", k);
    c.sampling.top_k = k;
    s = true;
  }
  s = real("generate", "top_p", c.sampling.top_p) || s;
  s = real("generate", "repetition_penalty", c.sampling.repetition_penalty) || s;
  if (root["generate"]["seed"]) {
    integer("generate", "seed", seed);
    c.sampling.seed = static_cast<uint64_t>(seed);
  }
  c.sampling_set = s;
  str("generate", "draft", c.draft, false);
  integer("generate", "draft_k", c.draft_k);
  if (auto n = root["generate"]["draft_adaptive"]) {
    auto v = n.value_exact<bool>();
    if (!v) fail("generate.draft_adaptive", "must be true or false");
    c.draft_adaptive = *v;
  }
  try {
    check_draft_settings(c.draft, c.draft_k);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(path + ": " + e.what());
  }
  str("music", "style", c.style, false);
  str("music", "meter", c.meter, false);
  str("music", "unit", c.unit, false);
  str("music", "key", c.key, false);
  if (auto n = root["music"]["bar_constraint"]) {
    auto v = n.value_exact<bool>();
    if (!v) fail("music.bar_constraint", "must be true or false");
    c.bar_constraint = *v;
  }
  if (auto n = root["music"]["ending_push"]) {
    auto v = n.value_exact<bool>();
    if (!v) fail("music.ending_push", "must be true or false");
    c.ending_push = *v;
  }
  integer("music", "max_identical_bars", c.max_identical_bars);
  integer("music", "tempo", c.tempo_bpm);
  str("serve", "listen", c.listen, false);
  str("serve", "api_key", c.api_key, false);
  str("serve", "web_dir", c.web_dir, true);
  integer("serve", "max_active", c.max_active);
  if (root["serve"]["max_active"] && c.max_active < 1) fail("serve.max_active", "must be at least 1");
  integer("serve", "max_body_bytes", c.max_body_bytes);
  if (root["serve"]["max_body_bytes"] && c.max_body_bytes < 1024) fail("serve.max_body_bytes", "must be at least 1024");
  if (auto n = root["serve"]["allowed_origins"]) {
    const auto* a = n.as_array();
    if (!a) fail("serve.allowed_origins", "must be an array of strings, e.g. [\"http://localhost:3000\"]");
    for (auto&& e : *a) {
      auto v = e.value<std::string>();
      if (!v) fail("serve.allowed_origins", "must be an array of strings, e.g. [\"http://localhost:3000\"]");
      c.allowed_origins.push_back(*v);
    }
  }
  return c;
}

}  // namespace duet::edge
