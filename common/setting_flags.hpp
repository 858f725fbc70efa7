#pragma once
// A setting table's rows as CLI11 flags (common/setting_table.hpp). A flag's value is checked as
// it is parsed, with the file's rule, and the error names the flag; it is applied later, over
// the file's (and any other layer's) values, in the order given.
#include <CLI/CLI.hpp>

#include <string>
#include <utility>
#include <vector>

#include "common/setting_table.hpp"

namespace duet::settings {

template <class Config>
struct FlagsGiven {
  std::vector<std::pair<const Setting<Config>*, std::string>> items;

  // Every flag given, or (only) the one setting of that key.
  void apply(Config& c, const char* only = nullptr) const {
    for (const auto& [s, text] : items)
      if (!only || std::string(s->key) == only) s->set_from_text(text, c);
  }
  bool given(const char* key) const {
    for (const auto& [s, text] : items)
      if (std::string(s->key) == key) return true;
    return false;
  }
};

// Adds the rows whose scope has a bit of `scope` to `app`.
template <class Config>
void add_flags(CLI::App& app, const std::vector<Setting<Config>>& table, unsigned scope, FlagsGiven<Config>& given) {
  for (const auto& s : table) {
    if (!*s.flag || !(s.scope & scope)) continue;
    auto take = [&given, &s](const std::string& text) {
      Config scratch;
      try {
        s.set_from_text(text, scratch);
      } catch (const std::invalid_argument& e) {
        throw CLI::ValidationError(s.flag, e.what());
      }
      given.items.emplace_back(&s, text);
    };
    if (s.is_switch()) {
      const std::string value = s.switch_sets ? "true" : "false";
      app.add_flag_function(s.flag, [take, value](int64_t) { take(value); }, s.help);
      continue;
    }
    if (s.rule.append) {  // repeatable: each value adds one item
      app.add_option_function<std::vector<std::string>>(
          s.flag, [take](const std::vector<std::string>& items) { for (const auto& t : items) take(t); }, s.help);
      continue;
    }
    auto* opt = app.add_option_function<std::string>(s.flag, take, s.help);
    if (s.is_number()) opt->type_name("NUMBER");
  }
}

}  // namespace duet::settings
