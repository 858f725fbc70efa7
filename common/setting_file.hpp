#pragma once
// A config file read through a setting table (common/setting_table.hpp): every section and key
// must be a row's (or one the caller reads itself), every value passes its row's rule, and an
// error names the file, the key and what was expected.
#include <filesystem>
#include <set>
#include <stdexcept>
#include <string>
#include <toml++/toml.h>
#include <vector>

#include "common/setting_table.hpp"

namespace duet::settings {

// Stores the TOML value `n` in `slot` under `rule`; relative paths from `base`. Throws
// std::invalid_argument saying what is wrong (without the key's name).
inline void set_node(Slot slot, const Rule& rule, const toml::node& n, const std::filesystem::path& base) {
  Value v;  // a table or a date stays an empty string: refused below, or by set_value's type check
  if (auto s = n.value_exact<std::string>()) v = *s;
  else if (auto b = n.value_exact<bool>()) v = *b;
  else if (auto i = n.value_exact<int64_t>()) v = *i;
  else if (auto d = n.value_exact<double>()) v = *d;
  else if (const toml::array* a = n.as_array()) {
    std::vector<std::string> items;
    for (auto&& e : *a) {
      auto s = e.value_exact<std::string>();
      if (!s) throw std::invalid_argument("must be an array of strings");
      items.push_back(*s);
    }
    v = items;
  } else if (std::holds_alternative<std::string*>(slot)) {
    throw std::invalid_argument("must be a string");
  }
  set_value(slot, rule, v, base);
}

// The whole file: sections and keys checked against `table` and `extra` ("quotas.keys": read by
// the caller from `root`), then every row the file gives set in `c`.
template <class Config>
void read_table(const toml::table& root, const std::string& path, const std::vector<Setting<Config>>& table,
                const std::set<std::string>& extra, Config& c) {
  auto fail = [&](const std::string& key, const std::string& what) {
    throw std::invalid_argument(path + ": '" + key + "' " + what);
  };
  auto row = [&](const std::string& sec, const std::string& key) -> const Setting<Config>* {
    for (const auto& s : table)
      if (sec == s.section && (key.empty() || key == s.key)) return &s;
    return nullptr;
  };
  for (auto&& [k, v] : root) {
    const std::string sec(k.str());
    if (!row(sec, "")) fail(sec, "is not a known section");
    const toml::table* t = v.as_table();
    if (!t) fail(sec, "must be a table ([" + sec + "])");
    for (auto&& [key, node] : *t) {
      const std::string name(key.str());
      if (!row(sec, name) && !extra.count(sec + "." + name)) fail(sec + "." + name, "is not a known setting");
    }
  }
  const std::filesystem::path base = std::filesystem::path(path).parent_path();
  for (const auto& s : table) {
    const toml::node* n = root.at_path(std::string(s.section) + "." + s.key).node();
    if (!n) continue;
    try {
      set_node(s.slot(c), s.rule, *n, base);
    } catch (const std::invalid_argument& e) {
      fail(std::string(s.section) + "." + s.key, e.what());
    }
    if (s.mark) *s.mark(c) = true;
  }
}

}  // namespace duet::settings
