#pragma once
// Prompts for models that ship a duet.json (the bundled ABC folk model): a template filled from
// --style, --meter, --unit, --key, with the model's own defaults and the list of styles it knows.
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace duet::edge {

struct MusicPromptSpec {
  std::string prompt_template;  // e.g. "S:{style}\nM:{meter}\nL:{unit}\nK:{key}\n"
  std::vector<std::string> styles, meters, keys;
  std::map<std::string, std::string> defaults;  // style, meter, unit, key
  std::map<std::string, double> sampling;       // temperature, top_k, top_p
  int64_t max_new_tokens = 0;

  // <model>/duet.json, or nullopt when the model has none. Throws naming the file when malformed.
  static std::optional<MusicPromptSpec> from_model_dir(const std::string& dir);
  // Fills the template; empty arguments take the defaults; an unknown style is an error that
  // lists the known ones.
  std::string build(const std::string& style, const std::string& meter, const std::string& unit,
                    const std::string& key) const;
};

}  // namespace duet::edge
