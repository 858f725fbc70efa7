#pragma once
// ABC header fields as the ABC 2.1 standard defines them, parsed strictly: M: (meter), L: (unit
// note length) and K: (key). Each parser returns the canonical text the abc-folk model was trained
// on (M:C -> 4/4, K:A dorian -> Ador) or throws AbcFieldError with a sentence saying what was
// wrong and what is accepted. No LibTorch: the HTTP API and the CLI share these.
#include <array>
#include <stdexcept>
#include <string>
#include <utility>

#include "edge/music/rational.hpp"

namespace duet::music {

// What was wrong, and which option it came from ("style", "meter", "unit", "key", "title",
// "tempo"), so that the HTTP API's error can name its parameter.
struct AbcFieldError : std::invalid_argument {
  AbcFieldError(std::string field, const std::string& message)
      : std::invalid_argument(message), field_(std::move(field)) {}
  const std::string& field() const { return field_; }

 private:
  std::string field_;
};

struct Meter {
  int beats = 0, beat_unit = 0;  // 6/8: 6 and 8
  std::string text;              // canonical: "6/8" ("C" -> "4/4", "C|" -> "2/2")
  Rational bar() const { return {beats, beat_unit}; }
  bool compound() const { return beats % 3 == 0 && beats > 3; }  // 6/8, 9/8, 12/8: beats of three
};

struct Key {
  char tonic = 'C';        // A-G
  char accidental = 0;     // '#', 'b' or 0
  std::string mode;        // "" (major), "m", "dor", "phr", "lyd", "mix", "loc"
  std::string text;        // canonical: tonic + accidental + mode ("F#m", "Ador")
};

Meter parse_meter(const std::string& text);     // "6/8", "C", "C|"; refuses "none", "7/x", "2+3/8"
Rational parse_unit(const std::string& text);   // "1/8": 1 over a power of two from 1 to 64
std::string unit_text(Rational unit);           // "1/8"
Key parse_key(const std::string& text);         // "D", "Ador", "A dorian", "F# minor", "Bbmix"
// The key signature: for each letter A-G (index letter - 'A'), +1 where the key sharpens it, -1
// where it flattens it (G: F sharp; Ador: none; a key past 7 sharps or flats keeps 7, as
// scripts/abc/abc_bars.py reads it).
std::array<int, 7> key_signature(const Key& k);
// The default unit note length ABC gives a meter: 1/16 below 3/4, else 1/8.
Rational default_unit(const Meter& m);

}  // namespace duet::music
