#pragma once
// Reading the opening of a tune from an .abc file (duet-edge generate --continue FILE.abc): the
// first tune's header fields and the body written so far; writing tunes to one (--abc-out).
#include <string>

namespace duet::music {

struct AbcOpening {
  std::string style, meter, unit, key, title;  // from S:, M:, L:, K:, T: ("" when absent)
  std::string body;                            // the lines after K:, comments dropped
};

// Throws std::invalid_argument naming the file when it cannot be read or holds no tune (no K: line).
AbcOpening read_abc_opening(const std::string& path);
AbcOpening parse_abc_opening(const std::string& text, const std::string& origin);

// Writes text to path whole or not at all: through path + ".part", renamed when complete, so a
// failed run leaves no half-written file. Throws std::runtime_error naming path.
void write_abc_file(const std::string& path, const std::string& text);

}  // namespace duet::music
