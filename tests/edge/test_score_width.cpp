// The score line's width (abcm2ps: "line too much shrunk" when a line's least width passes the
// staff's): the bar constraint estimates it from what the line holds and ends the line at a bar
// line before it passes 540 pt, or before the tune's widest bar would take it past 620 pt; past
// 620 pt no note starts and a line break comes first. Widths below in tenths of a point, as
// bar_constraint.cpp estimates them (a fit to abcm2ps 8.14's least widths).
#include <doctest/doctest.h>

#include <algorithm>
#include <cctype>
#include <random>

#include "edge/music/abc_fields.hpp"
#include "edge/music/bar_constraint.hpp"
#include "walk_fixtures.hpp"

using namespace duet::music;

namespace {

BarConstraint constraint(const std::string& meter, const std::string& unit, const std::string& key,
                         const std::vector<std::string>& vocab, int max_identical = 3) {
  BarConstraintOptions o;
  o.bar = parse_meter(meter).bar();
  o.unit = parse_unit(unit);
  o.compound = parse_meter(meter).compound();
  o.max_identical_bars = max_identical;
  const Key k = parse_key(key);
  o.tonic = k.tonic;
  o.key_signature = key_signature(k);
  return BarConstraint(o, vocab, {static_cast<int32_t>(vocab.size() - 1)});
}

std::vector<std::string> vocab_of(const std::vector<std::string>& tokens) {
  auto v = tokens;
  v.emplace_back("");  // the last id: EOS
  return v;
}

// The estimate, recounted over the random walk's alphabet: line base 345 (+160 on the tune's first
// score line, +55 a key accidental), a note 90, an accidental 85, a > 75, a tie 75, a grace group 75
// and 60 a grace note, a bar line 165 (other bar lines 200). Returns each score line's width.
std::vector<int> line_widths(const std::string& text, int key_accidentals) {
  std::vector<int> out;
  bool first = true, in_grace = false, continued = false;
  int w = 0;
  auto base = [&] { return 345 + (first ? 160 : 0) + 55 * key_accidentals; };
  w = base();
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      if (!continued) out.push_back(w), first = false, w = base();
      continued = false;
      continue;
    }
    if (c == '\\') {
      continued = true;
      continue;
    }
    if (in_grace) {
      if (c == '}') in_grace = false;
      else if (std::isalpha(static_cast<unsigned char>(c))) w += 60;
      continue;
    }
    if (c == '{') in_grace = true, w += 75;
    else if (c == 'A' || c == 'c') w += 90;
    else if (c == '^' && text[i - 1] != '^') w += 85;  // ("^^": one accidental)
    else if (c == '>') w += text[i - 1] == '>' ? 37 : 75;  // (">>": a second dot)
    else if (c == '-') w += 75;
    else if (c == '|') w += (i + 1 < text.size() && (text[i + 1] == '|' || text[i + 1] == ']')) ? (++i, 200) : 165;
  }
  out.push_back(w);
  return out;
}

}  // namespace

TEST_CASE("score width: ryans-hornpipe seed 42001's first score line ends before abcm2ps shrinks it too much") {
  // abcm2ps: "line too much shrunk (700/730pt of 682pt)" for 4 source lines joined by "\": 7 bars,
  // 44 notes, 22 of them dotted (>), under the limits on bars, characters and notes
  const std::string opening = "(uFG)|\\\nB>dF>B D>FB>d | F>Ac>f g>ec>A | (3FAc f>Ac>A ||\\\n(3BdB \\\n | ";
  auto c = constraint("2/4", "1/16", "Bb", vocab_of({"x"}), 0);
  c.observe(opening);  // estimated 474 pt at its last bar line, widest bar 118 pt: the line goes on
  CHECK(c.accepts("B>dF>B D>FB>d |"));
  CHECK(c.accepts("B>dF>B D>FB>d |"));
  CHECK_FALSE(c.accepts("B>dF>B D>FB>d \\"));  // 576 pt inside this bar: no continuation past 540
  auto d = constraint("2/4", "1/16", "Bb", vocab_of({"x"}), 0);
  d.observe(opening + "B>dF>B D>FB>d |");  // 593 pt, past 540: the line ends here
  CHECK(d.accepts("\n"));
  CHECK_FALSE(d.accepts("\\"));
  CHECK_FALSE(d.accepts(" "));
  CHECK_FALSE(d.accepts("c"));
  // the same notes in C: no key signature to draw, 11 pt narrower, still past 540
  auto e = constraint("2/4", "1/16", "C", vocab_of({"x"}), 0);
  e.observe(opening + "B>dF>B D>FB>d |");
  CHECK_FALSE(e.accepts("c"));
  // plain 16ths (no dots) make a narrower line: 5 bars of 8 notes after the pickup fit; then the
  // widest bar (88.5 pt) would take it past 620 pt: the line ends at 538.5 pt
  const std::string plain = "FG|BdFB DFBd|FAcf gecA|FAcf gecA|BdFB DFBd|";
  auto f = constraint("2/4", "1/16", "Bb", vocab_of({"x"}), 0);
  f.observe(plain);
  CHECK(f.accepts("cAcf gecA|"));
  auto g = constraint("2/4", "1/16", "Bb", vocab_of({"x"}), 0);
  g.observe(plain + "cAcf gecA|");
  CHECK_FALSE(g.accepts("f"));
  CHECK(g.accepts("\n"));
}

TEST_CASE("score width: the widest bar so far ends a line before it, and past 620 pt a line break comes first") {
  // 4/4 in L:1/8, no key signature: 7 bars of a tied note (420 each) after the first line's 505
  std::string text;
  for (const char* n : {"A", "B", "c", "d", "e", "f", "g"}) text += std::string(n) + "4- " + n + "4|";
  auto c = constraint("4/4", "1/8", "C", vocab_of({"x"}), 0);
  c.observe(text);  // 3,445: under 5,400, and 3,445 + 420 under 6,200
  CHECK(c.accepts("\\"));
  // a bar of sharpened broken pairs (425 a pair) grows the line past 6,200 inside the bar
  auto d = constraint("4/4", "1/8", "C", vocab_of({"x"}), 0);
  d.observe(text + "^A/>^A/^A/>^A/^A/>^A/^A/>^A/^A/>^A/^A/>^A/^A/");  // 5,995 + 175 = 6,170
  CHECK_FALSE(d.accepts("^"));   // no room for another note: a line break first
  CHECK_FALSE(d.accepts("A"));
  CHECK_FALSE(d.accepts(">"));   // nor for a broken pair's second note
  CHECK_FALSE(d.accepts("  "));  // (spaces for ever otherwise: the first commits the note)
  CHECK(d.accepts("\nA/z|"));  // the bar goes on on the next line
}

TEST_CASE("score width: no chord starts without room for it (ryans-strathspey seed 46018: '[' then nothing)") {
  // a score line of triplets and dotted notes, 4 source lines joined by "\\", near 620 pt mid-bar
  const std::string text =
      "{g}f3e {e}d3cB3A {A}G2F2 \\\n| (3Bcd(3edc d3fe3g (3fed (3cdc \\\n| (3Bcd(3edc d3AF3A {A}G2F2 \\\n"
      "| (3Bcd(3edc d3 ";
  auto c = constraint("4/4", "1/16", "D", vocab_of({"[", "f", "d", "]", "\n", " ", "|"}), 0);
  c.observe(text);
  CHECK_FALSE(c.accepts("["));  // a chord's notes would not fit: "[" was allowed, then nothing
  CHECK_FALSE(c.accepts("f"));
  CHECK(c.accepts("\n"));
  c.allowed();
  CHECK(c.relaxed_steps() == 0);
}

TEST_CASE("score width: a random walk of dense notation stays under the width, never stuck") {
  const std::vector<std::string> tokens = {"A", "c", "^", ">", "-", "(3", "{A}", "2", "/", "|", "||", " ", "\\\n", "\n"};
  const auto vocab = vocab_of(tokens);
  std::mt19937 rng(42);
  for (auto [meter, unit] : {std::pair{"2/4", "1/16"}, std::pair{"4/4", "1/8"}, std::pair{"6/8", "1/8"}}) {
    CAPTURE(meter);
    auto c = constraint(meter, unit, "Bb", vocab, 0);
    std::string text;
    for (int step = 0; step < 5000; ++step) {
      auto ok = c.allowed();
      int id = test::random_allowed(ok, rng);
      // prefer continuations over line breaks, so that score lines grow to their limits
      for (const char* pref : {"\\\n", ">", "^"}) {
        const auto pid = static_cast<size_t>(std::find(tokens.begin(), tokens.end(), pref) - tokens.begin());
        if (ok[pid] && rng() % 2) id = static_cast<int>(pid);
      }
      text += vocab[static_cast<size_t>(id)];
      c.advance(id);
    }
    CHECK(c.relaxed_steps() == 0);
    const auto widths = line_widths(text, 2);
    CHECK(widths.size() > 20);
    // at most 620 pt where a note starts; the notes a tuplet promised and a note's own accidental
    // and dot may pass it (3 x 8.5 + 7.5 pt)
    CHECK(*std::max_element(widths.begin(), widths.end()) <= 6200 + 3 * 85 + 75);
  }
}
