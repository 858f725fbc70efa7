#include "edge/music/abc_file.hpp"

#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace duet::music {

AbcOpening read_abc_opening(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument("--continue: cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_abc_opening(ss.str(), path);
}

AbcOpening parse_abc_opening(const std::string& text, const std::string& origin) {
  AbcOpening o;
  std::istringstream in(text);
  bool in_body = false, seen_x = false;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("%", 0) == 0) continue;  // comments and %% directives
    const bool field = line.size() >= 2 && line[1] == ':' && std::isalpha(static_cast<unsigned char>(line[0]));
    if (!in_body) {
      if (!field) {
        if (line.find_first_not_of(" \t") == std::string::npos) continue;
        throw std::invalid_argument(origin + ": '" + line + "' comes before the K: line that ends a tune's header");
      }
      std::string v = line.substr(2);
      if (auto pct = v.find('%'); pct != std::string::npos) v = v.substr(0, pct);
      v.erase(0, v.find_first_not_of(" \t"));
      v.erase(v.find_last_not_of(" \t") + 1);
      switch (line[0]) {
        case 'X': if (seen_x) goto done; seen_x = true; break;
        case 'S': o.style = v; break;
        case 'M': o.meter = v; break;
        case 'L': o.unit = v; break;
        case 'T': if (o.title.empty()) o.title = v; break;
        case 'K': o.key = v; in_body = true; break;
        default: break;  // Q:, C:, R:, N: ...: not part of the model's prompt
      }
      continue;
    }
    if (line.find_first_not_of(" \t") == std::string::npos) break;  // a blank line ends the tune
    if (line.rfind("X:", 0) == 0) break;
    if (field) throw std::invalid_argument(origin + ": field line '" + line + "' inside the tune body: the model " +
                                           "continues only a plain body (meter, unit and key from the header)");
    if (auto pct = line.find('%'); pct != std::string::npos) line = line.substr(0, pct);
    o.body += line + "\n";
  }
done:
  if (!in_body) throw std::invalid_argument(origin + ": no tune in it (no K: line)");
  return o;
}

void write_abc_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".part";
  {
    std::ofstream f(tmp, std::ios::binary);
    if (!f) throw std::runtime_error("cannot write " + path + " (opening " + tmp + " failed)");
    f << text;
    if (!f.flush()) {
      std::remove(tmp.c_str());
      throw std::runtime_error("cannot write " + path + " (the disk refused " + tmp + ")");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error("cannot write " + path + " (renaming " + tmp + " onto it failed)");
  }
}

}  // namespace duet::music
