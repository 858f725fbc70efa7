#include "edge/client/music_prompt.hpp"

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace duet::edge {

std::optional<MusicPromptSpec> MusicPromptSpec::from_model_dir(const std::string& dir) {
  const std::string path = dir + "/duet.json";
  std::ifstream in(path);
  if (!in) return std::nullopt;
  MusicPromptSpec s;
  try {
    auto j = nlohmann::json::parse(in);
    s.prompt_template = j.at("prompt_template").get<std::string>();
    if (j.contains("styles")) s.styles = j["styles"].get<std::vector<std::string>>();
    if (j.contains("meters")) s.meters = j["meters"].get<std::vector<std::string>>();
    if (j.contains("keys")) s.keys = j["keys"].get<std::vector<std::string>>();
    if (j.contains("defaults"))
      for (auto& [k, v] : j["defaults"].items())
        if (v.is_string()) s.defaults[k] = v.get<std::string>();
    if (j.contains("sampling"))
      for (auto& [k, v] : j["sampling"].items())
        if (v.is_number()) s.sampling[k] = v.get<double>();
    if (j.contains("max_new_tokens")) s.max_new_tokens = j["max_new_tokens"].get<int64_t>();
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
  return s;
}

std::string MusicPromptSpec::build(const std::string& style, const std::string& meter, const std::string& unit,
                                   const std::string& key) const {
  auto pick = [&](const std::string& given, const char* name) {
    if (!given.empty()) return given;
    auto it = defaults.find(name);
    return it == defaults.end() ? std::string() : it->second;
  };
  const std::string st = pick(style, "style");
  if (!styles.empty() && std::find(styles.begin(), styles.end(), st) == styles.end()) {
    std::string known;
    for (const auto& x : styles) known += (known.empty() ? "" : ", ") + x;
    throw std::invalid_argument("unknown style '" + st + "'; this model knows: " + known);
  }
  std::string out = prompt_template;
  auto fill = [&](const std::string& field, const std::string& value) {
    const std::string ph = "{" + field + "}";
    for (size_t at = out.find(ph); at != std::string::npos; at = out.find(ph, at + value.size()))
      out.replace(at, ph.size(), value);
  };
  fill("style", st);
  fill("meter", pick(meter, "meter"));
  fill("unit", pick(unit, "unit"));
  fill("key", pick(key, "key"));
  return out;
}

}  // namespace duet::edge
