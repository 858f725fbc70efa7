#pragma once
// Reads a TOML config file; a syntax error names the file and the line. Header-only, included
// only by the config readers (cloud/, edge/), which link toml++ themselves.
#include <stdexcept>
#include <string>
#include <toml++/toml.h>

namespace duet {

inline toml::table parse_toml_file(const std::string& path) {
  try {
    return toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    throw std::invalid_argument(path + ": not valid TOML: " + std::string(e.description()) + " (line " +
                                std::to_string(e.source().begin.line) + ")");
  }
}

}  // namespace duet
