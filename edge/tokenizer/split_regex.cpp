// Hand-written matchers for the pre-tokenizer regexes of GPT-2, Qwen2 and Llama-3, and GPT-2's
// byte-to-character table. Matching follows the regex engines' leftmost-first alternation with
// backtracking, spelled out per alternative below.
#include <array>

#include "components.hpp"
#include "unicode.hpp"

namespace duet::tokenizer::detail {
namespace {

const char* const kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const char* const kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
const char* const kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// The text as code points, with cls[i] the class each alternative asks about.
enum Cls : std::uint8_t { kLetter, kNumber, kSpace, kOther };
struct Text {
  std::vector<char32_t> cp;
  std::vector<std::uint8_t> cls;
  std::vector<std::size_t> off;  // byte offset of each code point, plus the end
};

Text analyse(std::string_view s) {
  Text t;
  for (std::size_t i = 0; i < s.size();) {
    t.off.push_back(i);
    const char32_t c = unicode::next_code_point(s, i);
    t.cp.push_back(c);
    t.cls.push_back(unicode::is_letter(c) ? kLetter
                    : unicode::is_number(c) ? kNumber
                    : unicode::is_whitespace(c) ? kSpace
                                                : kOther);
  }
  t.off.push_back(s.size());
  return t;
}

// 's 't 're 've 'm 'll 'd at i (optionally case-insensitive); returns the end or 0.
std::size_t contraction(const Text& t, std::size_t i, bool fold) {
  const std::size_t n = t.cp.size();
  if (t.cp[i] != U'\'' || i + 1 >= n) return 0;
  const auto low = [&](std::size_t k) -> char32_t {
    char32_t c = t.cp[k];
    if (!fold) return c;
    if (c >= U'A' && c <= U'Z') return c + 32;
    if (c == 0x17F) return U's';  // LATIN SMALL LETTER LONG S case-folds to 's'
    return c;
  };
  const char32_t a = low(i + 1);
  if (a == U's' || a == U't' || a == U'm' || a == U'd') return i + 2;
  if (i + 2 >= n) return 0;
  const char32_t b = low(i + 2);
  if ((a == U'r' && b == U'e') || (a == U'v' && b == U'e') || (a == U'l' && b == U'l')) return i + 3;
  return 0;
}

std::size_t run(const Text& t, std::size_t i, Cls c) {
  while (i < t.cls.size() && t.cls[i] == c) ++i;
  return i;
}

// \s+(?!\S) then \s+, at a whitespace code point i.
std::size_t trailing_space(const Text& t, std::size_t i) {
  const std::size_t e = run(t, i, kSpace);
  if (e == t.cp.size()) return e;  // whitespace up to the end
  if (e - i >= 2) return e - 1;    // leave the last one to the next word
  return e;                         // \s+
}

std::size_t match_gpt2(const Text& t, std::size_t i) {
  const std::size_t n = t.cp.size();
  if (std::size_t e = contraction(t, i, false)) return e;
  const bool space_then = t.cp[i] == U' ' && i + 1 < n;
  for (Cls c : {kLetter, kNumber, kOther}) {  // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+'
    if (space_then && t.cls[i + 1] == c) return run(t, i + 1, c);
    if (t.cls[i] == c) return run(t, i, c);
  }
  return trailing_space(t, i);
}

bool is_cr_lf(char32_t c) { return c == U'\r' || c == U'\n'; }

std::size_t match_qwen2(const Text& t, std::size_t i, std::size_t max_digits) {
  const std::size_t n = t.cp.size();
  if (std::size_t e = contraction(t, i, true)) return e;
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (t.cls[i] != kLetter && t.cls[i] != kNumber && !is_cr_lf(t.cp[i]) && i + 1 < n &&
      t.cls[i + 1] == kLetter)
    return run(t, i + 1, kLetter);
  if (t.cls[i] == kLetter) return run(t, i, kLetter);
  // \p{N} or \p{N}{1,3}
  if (t.cls[i] == kNumber) {
    std::size_t e = i;
    while (e < n && e - i < max_digits && t.cls[e] == kNumber) ++e;
    return e;
  }
  // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
  std::size_t j = i;
  if (t.cp[i] == U' ' && i + 1 < n && t.cls[i + 1] == kOther) j = i + 1;
  if (t.cls[j] == kOther) {
    std::size_t e = run(t, j, kOther);
    while (e < n && is_cr_lf(t.cp[e])) ++e;
    return e;
  }
  // \s*[\r\n]+ : through the last line break of this whitespace run
  const std::size_t e = run(t, i, kSpace);
  for (std::size_t k = e; k > i; --k)
    if (is_cr_lf(t.cp[k - 1])) return k;
  return trailing_space(t, i);
}

}  // namespace

std::optional<SplitRegex> known_split_regex(std::string_view pattern) {
  if (pattern == kGpt2Pattern) return SplitRegex::kGpt2;
  if (pattern == kQwen2Pattern) return SplitRegex::kQwen2;
  if (pattern == kLlama3Pattern) return SplitRegex::kLlama3;
  return std::nullopt;
}

std::vector<std::pair<std::size_t, std::size_t>> find_regex_matches(SplitRegex re,
                                                                    std::string_view text) {
  const Text t = analyse(text);
  std::vector<std::pair<std::size_t, std::size_t>> out;
  for (std::size_t i = 0; i < t.cp.size();) {
    const std::size_t e = re == SplitRegex::kGpt2    ? match_gpt2(t, i)
                          : re == SplitRegex::kQwen2 ? match_qwen2(t, i, 1)
                                                     : match_qwen2(t, i, 3);
    out.emplace_back(t.off[i], t.off[e]);
    i = e;
  }
  return out;
}

namespace {

struct ByteTables {
  std::array<std::string, 256> to_unicode;
  std::array<int, 324> from_unicode;  // code points 0..323 → byte, -1 otherwise
  ByteTables() {
    from_unicode.fill(-1);
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      const char32_t cp = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + extra++);
      unicode::append_utf8(to_unicode[b], cp);
      from_unicode[cp] = b;
    }
  }
};

const ByteTables& byte_tables() {
  static const ByteTables t;
  return t;
}

}  // namespace

const std::string& byte_to_unicode(unsigned char b) { return byte_tables().to_unicode[b]; }

std::optional<unsigned char> unicode_to_byte(char32_t cp) {
  if (cp >= 324) return std::nullopt;
  const int b = byte_tables().from_unicode[cp];
  if (b < 0) return std::nullopt;
  return static_cast<unsigned char>(b);
}

}  // namespace duet::tokenizer::detail
