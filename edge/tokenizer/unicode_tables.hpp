// Unicode property tables (generated into unicode_tables.cpp by gen_unicode_tables.py).
#pragma once

#include <cstddef>
#include <cstdint>

namespace duet::tokenizer::unicode {

// General category classes the tokenizer distinguishes; everything else is kOther.
enum Category : std::uint8_t { kOther = 0, kLetter = 1, kMark = 2, kDigit = 3, kLetterNumber = 4,
                               kOtherNumber = 5, kConnectorPunct = 6 };

struct CategoryRange { std::uint32_t lo, hi; std::uint8_t cat; };
struct CombiningRange { std::uint32_t lo, hi; std::uint8_t ccc; };
// Canonical decomposition of `cp` into `first` (+ `second`, 0 for a singleton); `composes` when
// NFC recomposes the pair into `cp` (not a composition exclusion).
struct Decomposition { std::uint32_t cp, first, second; std::uint8_t composes; };

extern const CategoryRange kCategoryRanges[];  // sorted, disjoint
extern const std::size_t kCategoryRangeCount;
extern const CombiningRange kCombiningRanges[];  // sorted, disjoint, ccc != 0 only
extern const std::size_t kCombiningRangeCount;
extern const Decomposition kDecompositions[];  // sorted by cp
extern const std::size_t kDecompositionCount;
extern const char kUnicodeVersion[];

}  // namespace duet::tokenizer::unicode
