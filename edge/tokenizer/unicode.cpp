#include "unicode.hpp"

#include <algorithm>
#include <unordered_map>
#include <vector>

namespace duet::tokenizer::unicode {

std::size_t utf8_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 1;
}

char32_t next_code_point(std::string_view s, std::size_t& i) {
  const auto lead = static_cast<unsigned char>(s[i]);
  const std::size_t n = utf8_length(lead);
  if (n == 1 || i + n > s.size()) {
    ++i;
    return lead;
  }
  char32_t cp = lead & (0x7F >> n);
  for (std::size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += n;
  return cp;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

namespace {

// Length of the well-formed sequence at s[i], or 0 with `bad` = bytes of its maximal invalid
// subpart (at least 1), following the Unicode "maximal subpart" rule Rust's lossy decoding uses.
std::size_t well_formed_at(std::string_view s, std::size_t i, std::size_t& bad) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char lead = b(0);
  bad = 1;
  if (lead < 0x80) return 1;
  std::size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    n = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    n = 3;
    if (lead == 0xE0) lo = 0xA0;
    if (lead == 0xED) hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    n = 4;
    if (lead == 0xF0) lo = 0x90;
    if (lead == 0xF4) hi = 0x8F;
  } else {
    return 0;
  }
  for (std::size_t k = 1; k < n; ++k) {
    if (i + k >= s.size()) return 0;
    const unsigned char c = b(k);
    const bool ok = k == 1 ? (c >= lo && c <= hi) : (c >= 0x80 && c <= 0xBF);
    if (!ok) return 0;
    bad = k + 1;
  }
  return n;
}

}  // namespace

bool is_valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    std::size_t bad;
    const std::size_t n = well_formed_at(s, i, bad);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (std::size_t i = 0; i < bytes.size();) {
    std::size_t bad;
    const std::size_t n = well_formed_at(bytes, i, bad);
    if (n) {
      out.append(bytes.substr(i, n));
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      i += bad;
    }
  }
  return out;
}

std::uint8_t category(char32_t cp) {
  if (cp < 0x80) {  // fast path
    if ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z') return kLetter;
    if (cp >= '0' && cp <= '9') return kDigit;
    return cp == '_' ? kConnectorPunct : kOther;
  }
  const CategoryRange* end = kCategoryRanges + kCategoryRangeCount;
  const CategoryRange* it = std::upper_bound(
      kCategoryRanges, end, cp, [](char32_t c, const CategoryRange& r) { return c < r.lo; });
  if (it == kCategoryRanges) return kOther;
  --it;
  return cp <= it->hi ? it->cat : static_cast<std::uint8_t>(kOther);
}

bool is_number(char32_t cp) {
  const auto c = category(cp);
  return c == kDigit || c == kLetterNumber || c == kOtherNumber;
}

bool is_whitespace(char32_t cp) {
  switch (cp) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0x85: case 0xA0:
    case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

bool is_word_char(char32_t cp) {
  const auto c = category(cp);
  return c == kLetter || c == kMark || c == kDigit || c == kLetterNumber ||
         c == kConnectorPunct || cp == 0x200C || cp == 0x200D;
}

std::uint8_t combining_class(char32_t cp) {
  if (cp < 0x300) return 0;
  const CombiningRange* end = kCombiningRanges + kCombiningRangeCount;
  const CombiningRange* it = std::upper_bound(
      kCombiningRanges, end, cp, [](char32_t c, const CombiningRange& r) { return c < r.lo; });
  if (it == kCombiningRanges) return 0;
  --it;
  return cp <= it->hi ? it->ccc : 0;
}

// ---------------------------------------------------------------------------------------------
// NFC: canonical decomposition, canonical ordering, canonical composition (UAX #15).
namespace {

constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount,
                   kSCount = kLCount * kNCount;

const Decomposition* find_decomposition(char32_t cp) {
  const Decomposition* end = kDecompositions + kDecompositionCount;
  const Decomposition* it = std::lower_bound(
      kDecompositions, end, cp, [](const Decomposition& d, char32_t c) { return d.cp < c; });
  return (it != end && it->cp == cp) ? it : nullptr;
}

void decompose(char32_t cp, std::vector<char32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const char32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount) out.push_back(kTBase + s % kTCount);
    return;
  }
  const Decomposition* d = cp < 0xC0 ? nullptr : find_decomposition(cp);
  if (!d) {
    out.push_back(cp);
    return;
  }
  decompose(d->first, out);
  if (d->second) decompose(d->second, out);
}

const std::unordered_map<std::uint64_t, char32_t>& composition_map() {
  static const std::unordered_map<std::uint64_t, char32_t> map = [] {
    std::unordered_map<std::uint64_t, char32_t> m;
    for (std::size_t i = 0; i < kDecompositionCount; ++i) {
      const Decomposition& d = kDecompositions[i];
      if (d.composes) m.emplace((std::uint64_t{d.first} << 32) | d.second, d.cp);
    }
    return m;
  }();
  return map;
}

char32_t compose(char32_t a, char32_t b) {  // 0 when the pair does not compose
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase &&
      b < kTBase + kTCount)
    return a + (b - kTBase);
  const auto& m = composition_map();
  const auto it = m.find((std::uint64_t{a} << 32) | b);
  return it == m.end() ? 0 : it->second;
}

}  // namespace

std::string nfc(std::string_view s) {
  // Quick check: text below U+0300 (ASCII, Latin-1) is already NFC.
  bool trivial = true;
  for (std::size_t i = 0; i < s.size() && trivial;) trivial = next_code_point(s, i) < 0x300;
  if (trivial) return std::string(s);

  std::vector<char32_t> cps;
  for (std::size_t i = 0; i < s.size();) decompose(next_code_point(s, i), cps);
  // Canonical ordering: stable sort of every run of non-starters by combining class.
  for (std::size_t i = 0; i < cps.size();) {
    if (combining_class(cps[i]) == 0) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < cps.size() && combining_class(cps[j]) != 0) ++j;
    std::stable_sort(cps.begin() + i, cps.begin() + j, [](char32_t a, char32_t b) {
      return combining_class(a) < combining_class(b);
    });
    i = j;
  }
  // Composition.
  if (!cps.empty()) {
    std::size_t starter = 0;
    int last_class = combining_class(cps[0]) ? 256 : 0;
    std::size_t kept = 1;
    for (std::size_t i = 1; i < cps.size(); ++i) {
      const char32_t c = cps[i];
      const int cls = combining_class(c);
      const char32_t composite = last_class == 256 ? 0 : compose(cps[starter], c);
      if (composite && (last_class < cls || last_class == 0)) {
        cps[starter] = composite;
        continue;
      }
      if (cls == 0) starter = kept;
      last_class = cls;
      cps[kept++] = c;
    }
    cps.resize(kept);
  }
  std::string out;
  out.reserve(s.size());
  for (char32_t c : cps) append_utf8(out, c);
  return out;
}

}  // namespace duet::tokenizer::unicode
