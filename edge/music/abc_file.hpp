#pragma once
// Reading the opening of a tune from an .abc file (duet-edge generate --continue FILE.abc): the
// first tune's header fields and the body written so far.
#include <string>

namespace duet::music {

struct AbcOpening {
  std::string style, meter, unit, key, title;  // from S:, M:, L:, K:, T: ("" when absent)
  std::string body;                            // the lines after K:, comments dropped
};

// Throws std::invalid_argument naming the file when it cannot be read or holds no tune (no K: line).
AbcOpening read_abc_opening(const std::string& path);
AbcOpening parse_abc_opening(const std::string& text, const std::string& origin);

}  // namespace duet::music
