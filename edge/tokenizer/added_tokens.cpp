// Splitting text on added tokens, the way tokenizers' AddedVocabulary does.
#include <algorithm>
#include <cstdint>

#include "components.hpp"
#include "unicode.hpp"

namespace duet::tokenizer::detail {
namespace {

// The code point that ends just before byte `end` of `s`.
char32_t code_point_before(std::string_view s, std::size_t end, std::size_t* start = nullptr) {
  std::size_t b = end - 1;
  while (b > 0 && (static_cast<unsigned char>(s[b]) & 0xC0) == 0x80) --b;
  if (start) *start = b;
  std::size_t i = b;
  return unicode::next_code_point(s, i);
}

}  // namespace

void AddedTokenMatcher::build(std::vector<const AddedToken*> tokens, std::vector<std::string> patterns) {
  tokens_ = std::move(tokens);
  patterns_ = std::move(patterns);
  by_first_byte_.assign(256, {});
  for (std::size_t i = 0; i < patterns_.size(); ++i)
    if (!patterns_[i].empty())
      by_first_byte_[static_cast<unsigned char>(patterns_[i][0])].push_back(i);
  for (auto& v : by_first_byte_)  // longest first; equal lengths keep their order
    std::stable_sort(v.begin(), v.end(), [&](std::size_t a, std::size_t b) {
      return patterns_[a].size() > patterns_[b].size();
    });
}

std::vector<AddedTokenMatcher::Segment> AddedTokenMatcher::split(std::string_view text) const {
  std::vector<Segment> out;
  std::size_t done = 0;  // end of what is already in `out`
  std::size_t i = 0;     // where the search goes on
  while (i < text.size()) {
    // Leftmost-longest match at or after i.
    std::size_t pat = SIZE_MAX;
    std::size_t at = i;
    for (; at < text.size() && pat == SIZE_MAX; ++at) {
      for (std::size_t k : by_first_byte_[static_cast<unsigned char>(text[at])]) {
        const std::string& p = patterns_[k];
        if (text.compare(at, p.size(), p) == 0) {
          pat = k;
          break;
        }
      }
    }
    if (pat == SIZE_MAX) break;
    --at;
    const AddedToken& tok = *tokens_[pat];
    std::size_t start = at, stop = at + patterns_[pat].size();
    i = stop;
    if (tok.single_word) {
      const bool word_before = start > 0 && unicode::is_word_char(code_point_before(text, start));
      std::size_t k = stop;
      const bool word_after =
          stop < text.size() && unicode::is_word_char(unicode::next_code_point(text, k));
      if (word_before || word_after) continue;  // not a word on its own
    }
    if (tok.lstrip) {  // take the whitespace before it, but not what an earlier match took
      std::size_t b = start;
      while (b > done) {
        std::size_t cs;
        if (!unicode::is_whitespace(code_point_before(text, b, &cs))) break;
        b = cs;
      }
      start = std::max(b, done);
    }
    if (tok.rstrip) {
      while (stop < text.size()) {
        std::size_t k = stop;
        if (!unicode::is_whitespace(unicode::next_code_point(text, k))) break;
        stop = k;
      }
      i = stop;
    }
    if (done < start) out.push_back({done, start, nullptr});
    out.push_back({start, stop, &tok});
    done = stop;
  }
  if (done < text.size()) out.push_back({done, text.size(), nullptr});
  return out;
}

}  // namespace duet::tokenizer::detail
