// UTF-8 and Unicode helpers for the tokenizer: code points, categories, NFC.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "unicode_tables.hpp"

namespace duet::tokenizer::unicode {

// Decodes the code point at `s[i]` and advances `i`. Input is assumed valid UTF-8 (it comes
// from std::string the caller checked, or from JSON); a bad byte decodes as itself, length 1.
char32_t next_code_point(std::string_view s, std::size_t& i);
// Byte length of the UTF-8 sequence that starts with `lead` (1 for a stray byte).
std::size_t utf8_length(unsigned char lead);
void append_utf8(std::string& out, char32_t cp);

// True when `s` is well-formed UTF-8.
bool is_valid_utf8(std::string_view s);
// Like Rust's String::from_utf8_lossy: each maximal invalid subpart becomes U+FFFD.
std::string utf8_lossy(std::string_view bytes);

std::uint8_t category(char32_t cp);  // one of Category
inline bool is_letter(char32_t cp) { return category(cp) == kLetter; }
bool is_number(char32_t cp);      // \p{N}
bool is_whitespace(char32_t cp);  // \s: the White_Space property
bool is_word_char(char32_t cp);   // \w: letters, marks, decimal digits, connector punctuation
std::uint8_t combining_class(char32_t cp);

// Unicode Normalization Form C.
std::string nfc(std::string_view s);

}  // namespace duet::tokenizer::unicode
