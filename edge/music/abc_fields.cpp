#include "edge/music/abc_fields.hpp"

#include <algorithm>
#include <cctype>
#include <map>

namespace duet::music {

namespace {

std::string shown(const std::string& s) {  // quoted, with control characters made visible
  std::string out = "'";
  for (unsigned char c : s) {
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7f) out += "\\x" + std::string(1, "0123456789abcdef"[c >> 4]) + "0123456789abcdef"[c & 15];
    else out += static_cast<char>(c);
  }
  return out + "'";
}

std::string trim(const std::string& s) {
  const auto a = s.find_first_not_of(" \t");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t") - a + 1);
}

// "123" -> 123; false for anything else (no sign, no spaces, at most 3 digits)
bool small_int(const std::string& s, int& out) {
  if (s.empty() || s.size() > 3 || !std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); }))
    return false;
  out = std::stoi(s);
  return true;
}

bool power_of_two(int v) { return v > 0 && (v & (v - 1)) == 0; }

}  // namespace

Meter parse_meter(const std::string& text) {
  const std::string t = trim(text);
  const std::string help = " (ABC meters: N/D with N from 1 to 32 and D one of 1, 2, 4, 8, 16, 32, 64, or C for 4/4 "
                           "and C| for 2/2; e.g. 6/8, 4/4, 3/4)";
  if (t.find_first_of("\n\r") != std::string::npos || t.empty())
    throw AbcFieldError("meter", "meter " + shown(text) + " is not an ABC meter" + help);
  if (t == "C") return {4, 4, "4/4"};
  if (t == "C|") return {2, 2, "2/2"};
  if (t == "none" || t == "free")
    throw AbcFieldError("meter", "meter " + shown(text) + ": free meter has no bars to keep; give a meter" + help);
  const auto slash = t.find('/');
  int n = 0, d = 0;
  if (slash == std::string::npos || !small_int(t.substr(0, slash), n) || !small_int(t.substr(slash + 1), d)) {
    if (t.find('+') != std::string::npos)
      throw AbcFieldError("meter", "meter " + shown(text) + ": additive meters are not supported" + help);
    throw AbcFieldError("meter", "meter " + shown(text) + " is not an ABC meter" + help);
  }
  if (n < 1 || n > 32) throw AbcFieldError("meter", "meter " + shown(text) + ": " + std::to_string(n) + " beats" + help);
  if (!power_of_two(d) || d > 64)
    throw AbcFieldError("meter", "meter " + shown(text) + ": the beat value " + std::to_string(d) + " is not a note value" + help);
  return {n, d, std::to_string(n) + "/" + std::to_string(d)};
}

Rational parse_unit(const std::string& text) {
  const std::string t = trim(text);
  const std::string help = " (ABC unit note lengths: 1/1, 1/2, 1/4, 1/8, 1/16, 1/32 or 1/64)";
  const auto slash = t.find('/');
  int n = 0, d = 0;
  if (t.find_first_of("\n\r") != std::string::npos || slash == std::string::npos ||
      !small_int(t.substr(0, slash), n) || !small_int(t.substr(slash + 1), d))
    throw AbcFieldError("unit", "unit " + shown(text) + " is not an ABC unit note length" + help);
  if (n != 1 || !power_of_two(d) || d > 64)
    throw AbcFieldError("unit", "unit " + shown(text) + " is not a note value" + help);
  return {1, d};
}

std::string unit_text(Rational unit) { return unit.str(); }

Rational default_unit(const Meter& m) { return m.bar() < Rational(3, 4) ? Rational(1, 16) : Rational(1, 8); }

Key parse_key(const std::string& text) {
  const std::string t = trim(text);
  const std::string help =
      " (ABC keys: a tonic A-G, optionally # or b, then a mode: major (nothing), m or minor, dor, phr, lyd, mix, "
      "loc, aeo, ion, spelt out or not, any case; e.g. G, Em, F#m, Bb, Ador, D mixolydian)";
  if (t.empty() || t.find_first_of("\n\r\t") != std::string::npos)
    throw AbcFieldError("key", "key " + shown(text) + " is not an ABC key" + help);
  Key k;
  if (t[0] < 'A' || t[0] > 'G') throw AbcFieldError("key", "key " + shown(text) + ": '" + t.substr(0, 1) + "' is not a tonic" + help);
  k.tonic = t[0];
  size_t i = 1;
  if (i < t.size() && (t[i] == '#' || t[i] == 'b')) k.accidental = t[i++];
  std::string mode = trim(t.substr(i));
  std::string low;
  for (char c : mode) low += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!std::all_of(low.begin(), low.end(), [](unsigned char c) { return std::isalpha(c); }))
    throw AbcFieldError("key", "key " + shown(text) + ": '" + mode + "' is not a mode (explicit accidentals and clefs are "
                        "not supported)" + help);
  static const std::map<std::string, std::pair<std::string, std::string>> modes = {
      {"maj", {"", "major"}}, {"ion", {"", "ionian"}},       {"min", {"m", "minor"}},    {"aeo", {"m", "aeolian"}},
      {"dor", {"dor", "dorian"}}, {"phr", {"phr", "phrygian"}}, {"lyd", {"lyd", "lydian"}},
      {"mix", {"mix", "mixolydian"}}, {"loc", {"loc", "locrian"}}};
  if (low.empty()) {
    k.mode = "";
  } else if (low == "m") {
    k.mode = "m";
  } else {
    auto it = low.size() >= 3 ? modes.find(low.substr(0, 3)) : modes.end();
    // the first three letters decide; a longer word must be that mode's name
    if (it == modes.end() || it->second.second.compare(0, low.size(), low) != 0)
      throw AbcFieldError("key", "key " + shown(text) + ": '" + mode + "' is not a mode" + help);
    k.mode = it->second.first;
  }
  k.text = std::string(1, k.tonic) + (k.accidental ? std::string(1, k.accidental) : "") + k.mode;
  return k;
}

std::array<int, 7> key_signature(const Key& k) {
  static const std::map<char, int> major_fifths = {{'C', 0}, {'G', 1}, {'D', 2}, {'A', 3}, {'E', 4}, {'B', 5}, {'F', -1}};
  static const std::map<std::string, int> mode_shift = {{"", 0},    {"m", -3},   {"dor", -2}, {"phr", -4},
                                                        {"lyd", 1}, {"mix", -1}, {"loc", -5}};
  const auto f = major_fifths.find(k.tonic);
  const auto m = mode_shift.find(k.mode);
  const int fifths = (f == major_fifths.end() ? 0 : f->second) + (k.accidental == '#' ? 7 : k.accidental == 'b' ? -7 : 0) +
               (m == mode_shift.end() ? 0 : m->second);
  std::array<int, 7> sig{};
  const char* order = fifths > 0 ? "FCGDAEB" : "BEADGCF";
  for (int i = 0; i < std::min(7, fifths > 0 ? fifths : -fifths); ++i) sig[order[i] - 'A'] = fifths > 0 ? 1 : -1;
  return sig;
}

}  // namespace duet::music
