#pragma once
// Whole small text files (config.json, index files), with an error that names the file.
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace duet {

inline std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace duet
