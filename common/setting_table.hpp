#pragma once
// One declaration per setting (llama.cpp's common/arg.cpp): a program's table of rows {TOML
// section and key, flag, help, where the value lives, what it must be}. The config file reader
// (common/setting_file.hpp) and the command line (common/setting_flags.hpp) both come from it,
// with the same checks, so a file cannot set what the flag would refuse.
#include <cstdint>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace duet::settings {

// Where a setting's value lives in its program's config struct.
using Slot = std::variant<std::string*, bool*, int64_t*, uint32_t*, uint64_t*, double*, std::vector<std::string>*,
                          std::optional<uint32_t>*, std::optional<double>*>;

// What a value must be beyond its type: numbers within [min, max] (min itself refused when
// min_open), a file's relative path taken from the file's folder, a list flag that adds one item
// each time it is given (else a comma-separated list replaces the file's).
struct Rule {
  double min = 0;
  double max = std::numeric_limits<double>::infinity();
  bool min_open = false;
  bool path = false;
  bool append = false;
  const char* unit = "";  // said after the range in an error ("beats per minute")
};

inline Rule a_path() {
  Rule r;
  r.path = true;
  return r;
}
inline Rule within(double lo, double hi, const char* unit = "") {
  Rule r;
  r.min = lo;
  r.max = hi;
  r.unit = unit;
  return r;
}
inline Rule above(double lo, double hi = std::numeric_limits<double>::infinity()) {
  Rule r = within(lo, hi);
  r.min_open = true;
  return r;
}
inline Rule appended() {
  Rule r;
  r.append = true;
  return r;
}

// A value as read from a file or a flag, before its slot's type and its rule are checked.
using Value = std::variant<std::string, bool, int64_t, double, std::vector<std::string>>;

// Stores `v` in `slot` under `rule` (relative paths from `base`; empty: as given). Throws
// std::invalid_argument saying what is wrong with the value; the caller names the setting.
void set_value(Slot slot, const Rule& rule, const Value& v, const std::filesystem::path& base);
// The same from a flag's text (a list: comma-separated; a switch: "true" or "false").
void set_text(Slot slot, const Rule& rule, const std::string& text);

template <class Config>
struct Setting {
  const char* section;
  const char* key;
  const char* flag;  // "" : the file only
  const char* help;
  Slot (*slot)(Config&);
  Rule rule = {};
  unsigned scope = ~0u;              // the program's subcommands that take the flag (bits)
  bool switch_sets = true;           // a switch's flag sets it to this (--no-constraint: false)
  bool* (*mark)(Config&) = nullptr;  // set true when the file or a flag gives the setting

  bool is_switch() const { return std::holds_alternative<bool*>(slot(probe())); }
  bool is_number() const {
    const Slot s = slot(probe());
    return !std::holds_alternative<std::string*>(s) && !std::holds_alternative<bool*>(s) &&
           !std::holds_alternative<std::vector<std::string>*>(s);
  }
  void set_from_text(const std::string& text, Config& c) const {
    set_text(slot(c), rule, text);
    if (mark) *mark(c) = true;
  }

 private:
  static Config& probe() {  // a slot's type does not depend on which Config it points into
    static Config c;
    return c;
  }
};

}  // namespace duet::settings

// A row's slot: DUET_SLOT(CloudConfig, listen) or DUET_SLOT(EdgeConfig, sampling.top_p).
#define DUET_SLOT(Config, field) (+[](Config& c) -> ::duet::settings::Slot { return &c.field; })
