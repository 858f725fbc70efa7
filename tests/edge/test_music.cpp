// edge/music without a model: ABC field parsing and its refusals, option checks against the
// bundled model's duet.json, and the bar constraint (never an overfull bar, repeats, the guard).
#include <doctest/doctest.h>

#include <algorithm>
#include <random>

#include "edge/music/abc_fields.hpp"
#include "edge/music/abc_file.hpp"
#include "edge/music/bar_constraint.hpp"
#include "edge/music/music_options.hpp"
#include "edge/music/tune_ending.hpp"
#include "ending_fixtures.hpp"
#include "walk_fixtures.hpp"
#include "edge/music/tune_steering.hpp"

using namespace duet::music;

TEST_CASE("ABC meter, unit and key: canonical texts and refusals with a sentence") {
  CHECK(parse_meter("6/8").text == "6/8");
  CHECK(parse_meter("C").text == "4/4");
  CHECK(parse_meter("C|").text == "2/2");
  CHECK(parse_meter(" 3/4 ").bar() == Rational(3, 4));
  CHECK(parse_meter("9/8").compound());
  for (const char* bad : {"7/x", "3/0", "3/6", "none", "2+3/8", "", "6/8\nK:G", "-3/4", "0/4", "33/8"})
    CHECK_THROWS_WITH_AS(parse_meter(bad), doctest::Contains("meter"), AbcFieldError);
  CHECK(parse_unit("1/8") == Rational(1, 8));
  CHECK(unit_text(parse_unit("1/16")) == "1/16");
  for (const char* bad : {"1/3", "2/8", "1/128", "1", "1/", "x", "1/8\n"})
    CHECK_THROWS_WITH_AS(parse_unit(bad), doctest::Contains("unit"), AbcFieldError);
  CHECK(parse_key("D").text == "D");
  CHECK(parse_key("Ador").text == "Ador");
  CHECK(parse_key("A dorian").text == "Ador");
  CHECK(parse_key("F# minor").text == "F#m");
  CHECK(parse_key("Bbmix").text == "Bbmix");
  CHECK(parse_key("Em").text == "Em");
  CHECK(parse_key("E aeolian").text == "Em");
  CHECK(parse_key("G Major").text == "G");
  for (const char* bad : {"H", "", "D\nX:2", "Dfoo", "D =c", "h", "Dmixm", "C##"})
    CHECK_THROWS_WITH_AS(parse_key(bad), doctest::Contains("key"), AbcFieldError);
  // each refusal names the option it came from (the HTTP API's error.param)
  auto field_of = [](auto&& parse, const char* text) {
    try {
      parse(text);
    } catch (const AbcFieldError& e) {
      return e.field();
    }
    return std::string("(accepted)");
  };
  CHECK(field_of(parse_meter, "7/x") == "meter");
  CHECK(field_of(parse_unit, "1/3") == "unit");
  CHECK(field_of(parse_key, "H") == "key");
  CHECK(default_unit(parse_meter("2/4")) == Rational(1, 16));
  CHECK(default_unit(parse_meter("6/8")) == Rational(1, 8));
}

TEST_CASE("music options: per-style defaults, warnings for combinations the style never saw") {
  auto spec = MusicModelSpec::from_model_dir(std::string(DUET_SOURCE_DIR) + "/models/abc-folk");
  REQUIRE(spec.has_value());
  auto bare = check_music_options(*spec, {});
  CHECK(bare.style == spec->defaults.at("style"));
  CHECK(bare.warnings.empty());  // the model's defaults are a combination it was trained on
  CHECK(spec->style_stats.at(bare.style).combos.count(bare.meter.text + " " + bare.unit_text()) == 1);
  auto jig = check_music_options(*spec, {"oneills-jig", "", "", ""});
  CHECK(jig.prompt.rfind("S:oneills-jig\nM:6/8\nL:1/8\nK:", 0) == 0);
  CHECK(jig.warnings.empty());
  auto reel = check_music_options(*spec, {"nottingham-reel", "4/4", "", "G"});
  CHECK(reel.unit_text() == "1/4");  // what nottingham reels use with 4/4
  CHECK(check_music_options(*spec, {"oneills-jig", "C", "1/8", "A dorian"}).prompt ==
        "S:oneills-jig\nM:4/4\nL:1/8\nK:Ador\n");
  auto odd = check_music_options(*spec, {"oneills-jig", "3/4", "1/8", "D"});
  REQUIRE(odd.warnings.size() == 1);
  CHECK(odd.warnings[0].find("never trained with M:3/4 L:1/8") != std::string::npos);
  auto unseen = check_music_options(*spec, {"oneills-jig", "7/4", "", "D"});
  REQUIRE_FALSE(unseen.warnings.empty());
  CHECK(unseen.warnings[0].find("never in this model's training data") != std::string::npos);
  CHECK_THROWS_WITH_AS(check_music_options(*spec, {"polka-from-mars", "", "", ""}), doctest::Contains("oneills-jig"),
                       AbcFieldError);
  CHECK_THROWS_AS(check_music_options(*spec, {"oneills-jig", "7/x", "", ""}), AbcFieldError);
  CHECK_THROWS_AS(check_music_options(*spec, {"oneills-jig", "", "1/3", ""}), AbcFieldError);
  CHECK_THROWS_AS(check_music_options(*spec, {"oneills-jig", "", "", "H"}), AbcFieldError);
  try {
    check_music_options(*spec, {"polka-from-mars", "", "", ""});
    FAIL("an unknown style was accepted");
  } catch (const AbcFieldError& e) {
    CHECK(e.field() == "style");
  }
  CHECK(tempo_field(*spec, jig) == "Q:3/8=" + std::to_string(spec->tempos.at("jig")));
  CHECK(tempo_field(*spec, reel, 120) == "Q:1/2=120");  // --tempo counts the same beat as the model's
}

TEST_CASE("music options: Q: counts the rhythm's beat, so every style plays at its dance speed") {
  auto spec = MusicModelSpec::from_model_dir(std::string(DUET_SOURCE_DIR) + "/models/abc-folk");
  REQUIRE(spec.has_value());
  auto q = [&](const std::string& style, const std::string& meter = "") {
    return tempo_field(*spec, check_music_options(*spec, {style, meter, "", ""}));
  };
  // reels, hornpipes and strathspeys: two beats a bar, whichever meter the corpus wrote them in
  CHECK(q("nottingham-reel") == "Q:1/2=100");  // 4/4 L:1/4; was Q:1/4=100, half speed
  CHECK(q("aird-reel") == "Q:1/2=100");        // 4/4 L:1/8
  CHECK(q("oneills-reel") == "Q:1/2=100");     // 2/2
  CHECK(q("ryans-reel") == "Q:1/4=100");       // 2/4 L:1/16: the same bars per minute as 2/2
  CHECK(q("nottingham-hornpipe") == "Q:1/2=90");
  CHECK(q("ryans-strathspey") == "Q:1/2=64");  // 32 bars a minute
  // compound meters: a dotted beat
  CHECK(q("oneills-jig") == "Q:3/8=110");
  CHECK(q("oneills-slipjig") == "Q:3/8=110");  // 9/8
  CHECK(q("oneills-slide") == "Q:3/8=120");    // 12/8
  CHECK(q("oneills-march") == "Q:3/8=100");    // 6/8
  // the meter's own beat
  CHECK(q("nottingham-waltz") == "Q:1/4=150");
  CHECK(q("aird-waltz") == "Q:1/8=150");       // 3/8
  CHECK(q("aird-minuet") == "Q:1/4=120");
  CHECK(q("nottingham-polka") == "Q:1/4=110");
  CHECK(q("aird-march") == "Q:1/4=100");       // 4/4: a march is four beats a bar
  CHECK(q("oneills", "6/4") == "Q:3/4=100");   // no rhythm: the model's default tempo
  // every style of the model, at its own meter: a whole number of beats a bar, between 20 and 60
  // bars a minute (a 4/4 reel on 1/4 was 25, its dance speed 50; a jig is 55)
  for (const auto& style : spec->styles) {
    auto o = check_music_options(*spec, {style, "", "", ""});
    const Rational beat = tempo_beat(o.rhythm(), o.meter);
    INFO(style, " ", o.meter.text, " ", tempo_field(*spec, o));
    CHECK(o.meter.bar().multiple_of(beat));
    auto it = spec->tempos.find(o.rhythm());
    const double bpm = double(it != spec->tempos.end() ? it->second : spec->tempo_default);
    const Rational beats_per_bar = o.meter.bar() / beat;
    const double bars_per_minute = bpm / double(beats_per_bar.num);
    CHECK(bars_per_minute >= 20);
    CHECK(bars_per_minute <= 60);
  }
}

TEST_CASE("abc opening: header fields and body; no K: is an error") {
  auto o = parse_abc_opening("X:1\nT:Tune\nM:6/8\nL:1/8\n% c\nK:D\nA|d2d dcB|\n\nX:2\nK:G\nGGG|\n", "t.abc");
  CHECK(o.meter == "6/8");
  CHECK(o.key == "D");
  CHECK(o.title == "Tune");
  CHECK(o.body == "A|d2d dcB|\n");
  CHECK_THROWS_WITH_AS(parse_abc_opening("X:1\nM:6/8\n", "t.abc"), doctest::Contains("no K:"), std::invalid_argument);
}

namespace {

std::vector<std::string> char_vocab(const std::string& chars) {
  std::vector<std::string> v;
  for (char c : chars) v.emplace_back(1, c);
  v.emplace_back("");  // id n: EOS
  return v;
}

BarConstraint make(Rational bar, Rational unit, const std::vector<std::string>& vocab, int max_identical = 3) {
  BarConstraintOptions o;
  o.bar = bar;
  o.unit = unit;
  o.max_identical_bars = max_identical;
  return BarConstraint(o, vocab, {static_cast<int32_t>(vocab.size() - 1)});
}

// An independent count of a text over the random walk's alphabet: notes A c, lengths of digits and
// slashes, broken rhythm > >>, bar lines | and ||. Returns (bar length, checked): like
// scripts/abc/evaluate.py, only bars between two plain | are checked (pickups and their complements
// sit next to || or at the start).
std::vector<std::pair<Rational, bool>> bar_lengths(const std::string& s, Rational unit) {
  std::vector<std::pair<Rational, bool>> bars;
  std::vector<Rational> cur;
  Rational pending_factor(1);
  bool start_plain = false;
  for (size_t i = 0; i < s.size();) {
    const char c = s[i];
    if (c == 'A' || c == 'c') {
      size_t j = i + 1;
      int64_t num = 0, den = 1;
      bool has = false;
      while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) num = num * 10 + (s[j++] - '0'), has = true;
      if (!has) num = 1;
      int slashes = 0;
      int64_t d = 0;
      while (j < s.size() && s[j] == '/') ++slashes, ++j;
      while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) d = d * 10 + (s[j++] - '0');
      if (slashes) den = d ? d << (slashes - 1) : int64_t{1} << slashes;
      cur.push_back(unit * Rational(num, den) * pending_factor);
      pending_factor = Rational(1);
      i = j;
    } else if (c == '>') {
      size_t k = 0;
      while (i < s.size() && s[i] == '>') ++k, ++i;
      const Rational small(1, int64_t{1} << k);
      cur.back() = cur.back() * (Rational(2) - small);
      pending_factor = small;
    } else if (c == '|') {
      size_t k = 0;
      while (i < s.size() && s[i] == '|') ++k, ++i;
      Rational sum(0);
      for (auto r : cur) sum = sum + r;
      if (!cur.empty()) bars.emplace_back(sum, start_plain && k == 1);
      if (!cur.empty() || k > 1) start_plain = k == 1;
      cur.clear();
    } else {
      ++i;
    }
  }
  return bars;
}

}  // namespace

TEST_CASE("bar constraint: a random walk over allowed tokens never writes a wrong bar") {
  const std::string chars = "Ac23468/|> \n";  // a line break: a line holds at most 8 bars
  const auto vocab = char_vocab(chars);
  std::mt19937 rng(11);
  for (auto [bar, unit] : {std::pair{Rational(3, 4), Rational(1, 8)}, std::pair{Rational(1), Rational(1, 8)},
                           std::pair{Rational(1, 2), Rational(1, 16)}, std::pair{Rational(3, 4), Rational(1, 4)},
                           std::pair{Rational(9, 8), Rational(1, 8)}}) {
    CAPTURE(bar.str());
    auto c = make(bar, unit, vocab);
    std::string text;
    for (int step = 0; step < 6000; ++step) {
      auto ok = c.allowed();
      int id = test::random_allowed(ok, rng);
      const int bar_id = static_cast<int>(chars.find('|'));
      if (ok[bar_id] && !text.empty() && text.back() != '|' && rng() % 2) id = bar_id;  // close bars often
      text += vocab[id];
      c.advance(id);
    }
    CHECK(c.relaxed_steps() == 0);
    const auto bars = bar_lengths(text, unit);
    size_t checked = 0, wrong = 0, overfull = 0;
    for (const auto& [len, check] : bars) {
      checked += check;
      wrong += check && len != bar;
      overfull += len > bar;
    }
    CHECK(checked > 5);
    CHECK(wrong == 0);
    CHECK(overfull == 0);
  }
}

TEST_CASE("bar constraint: a first ending is closed within 4 bars where :|2 can close it") {
  auto c = make(Rational(3, 4), Rational(1, 8), char_vocab("x"));
  c.observe("|:d2d dcB|A2G FED|1 A2B c2d|e2f g2a|\nb2a g2f|e2d c2B|");  // 4 bars into the first ending
  CHECK_FALSE(c.accepts("A2G FED|"));
  CHECK(c.accepts("A2G FED:|2"));
  auto tie = make(Rational(3, 4), Rational(1, 8), char_vocab("x"));
  tie.observe("|:d2d dcB|A2G FED|1 A2B c2d|e2f g2a|\nb2a g2f|e2d c2B|");
  CHECK(tie.accepts("A2G FEE-|E"));  // a tie cannot cross :|2: the plain bar line stays
  auto start = make(Rational(3, 4), Rational(1, 8), char_vocab("x"));
  start.observe("|:d2d dcB|A2G FED|1 A2B c2d|e2f g2a|\nb2a g2f|e2d c2B|A2G FED \\\n");
  CHECK(start.accepts("|"));  // ":" cannot start a line: the bar line there stays (not spaces only)
}

TEST_CASE("bar constraint: in a tune with a pickup, a first ending due to close ends on the pickup's complement") {
  // aird-jig seed 33004, oneills-jig seed 33003: "A|...|1" then full bars, where :|2 needs 5/8
  const std::string opening = "A|d2d dcB|A2G FED|1 A2B c2d|e2f g2a|\nb2a g2f|e2d c2B|";  // 4 bars in
  auto c = make(Rational(3, 4), Rational(1, 8), char_vocab("x"));
  c.observe(opening);
  CHECK_FALSE(c.accepts("A2G FED|"));  // a full bar can never be closed by :|2 here
  CHECK_FALSE(c.accepts("A2G FED"));   // nor be written
  CHECK(c.accepts("A2G FE:|2"));
  CHECK(c.accepts("A2G FE :|2 A2G FE||"));
  CHECK_FALSE(c.accepts("A2G FE\n"));   // ":|2" cannot start a line
  CHECK_FALSE(c.accepts("A2G FE \\"));
  CHECK_FALSE(c.accepts("A2G FE-"));    // nothing to tie to before :|2
  CHECK(c.accepts("(A2G FE):|2"));
  CHECK_FALSE(c.accepts("(A2G FE "));   // the slur closes right after the note, or never
  CHECK(c.accepts("A2G\nFE :|2"));       // a line break inside the bar is fine
  auto early = make(Rational(3, 4), Rational(1, 8), char_vocab("x"));
  early.observe("A|d2d dcB|A2G FED|1 A2B c2d|");
  CHECK(early.accepts("e2f g2a|"));     // before the ending's 4 bars, full bars as before
  CHECK(early.accepts("e2f g2:|2"));
  // a random walk through pickup tunes with first endings: never stuck, every first ending closes
  // (ties, slurs, line breaks: the checks above; a tie or a line start keeps "|" in a full-bar repeat)
  const std::string chars = "Ac2|:1 \n";  // line breaks after bar lines only, as the model writes them
  const auto vocab = char_vocab(chars);
  std::mt19937 rng(33004);
  for (int tune = 0; tune < 20; ++tune) {
    auto w = make(Rational(3, 4), Rational(1, 8), vocab, 0);
    w.observe("A|");
    std::string text = "A|";
    for (int step = 0; step < 1500; ++step) {
      auto ok = w.allowed();
      std::vector<int> ids;  // kept: a line break inside a bar is redrawn from them below
      for (size_t i = 0; i + 1 < ok.size(); ++i)
        if (ok[i]) ids.push_back(static_cast<int>(i));
      REQUIRE_FALSE(ids.empty());
      int id = ids[std::uniform_int_distribution<size_t>(0, ids.size() - 1)(rng)];
      for (char pref : {'1', '|'}) {  // open endings and close bars often
        const int pid = static_cast<int>(chars.find(pref));
        if (ok[pid] && rng() % 2) id = pid;
      }
      if (vocab[id] == "\n" && text.back() != '|') {  // no line break inside a bar: a space, or else another token
        std::vector<int> other;
        for (int i : ids)
          if (vocab[i] != "\n") other.push_back(i);
        if (ok[chars.find(' ')]) id = static_cast<int>(chars.find(' '));
        else if (!other.empty()) id = other[std::uniform_int_distribution<size_t>(0, other.size() - 1)(rng)];
      }
      text += vocab[id];
      w.advance(id);
    }
    CHECK(w.relaxed_steps() == 0);
    // an independent count: plain bar lines between "|1" and its ":|2" (or the walk's end)
    size_t endings = 0, longest = 0;
    for (size_t at = text.find("|1"); at != std::string::npos; at = text.find("|1", at + 2)) {
      const size_t close = text.find(":|2", at);
      const std::string inside = text.substr(at + 2, close == std::string::npos ? std::string::npos : close - at - 2);
      longest = std::max<size_t>(longest, std::count(inside.begin(), inside.end(), '|'));
      ++endings;
    }
    CAPTURE(text);
    CHECK(longest <= 4);
    if (tune == 0) CHECK(endings > 0);
  }
}

TEST_CASE("bar constraint: a random walk with line continuations never runs into a line of spaces only") {
  const std::string chars = "Ac2/| \n\\";
  const auto vocab = char_vocab(chars);
  std::mt19937 rng(24);
  for (auto [bar, unit] : {std::pair{Rational(1), Rational(1, 16)}, std::pair{Rational(3, 4), Rational(1, 8)}}) {
    CAPTURE(bar.str());
    auto c = make(bar, unit, vocab);
    std::string text;
    size_t spaces = 0, longest = 0;
    for (int step = 0; step < 6000; ++step) {
      auto ok = c.allowed();
      int id = test::random_allowed(ok, rng);
      for (char pref : {'\\', '\n', '|'}) {  // bar lines after continuations, as the model writes them
        const int pid = static_cast<int>(chars.find(pref));
        if (ok[pid] && rng() % 3 == 0) id = pid;
      }
      spaces = vocab[id] == " " ? spaces + 1 : 0;
      longest = std::max(longest, spaces);
      text += vocab[id];
      c.advance(id);
    }
    CHECK(c.relaxed_steps() == 0);
    CHECK(longest < 40);
  }
}

TEST_CASE("bar constraint: no second space in a row while anything else is allowed (misc seed 83004)") {
  // misc seed 83004 wrote spaces from its 14th bar to the 768-token budget, each one allowed
  // (every length digit: with "2" alone, "(2 A/" could be finished by no token of the walk)
  const auto vocab = char_vocab("Ac23468/| \n\\()");
  const int space = 9;
  auto c = make(Rational(3, 4), Rational(1, 8), vocab);
  c.observe("|A2c A2c|A");
  CHECK(c.allowed()[space] == 1);
  c.observe(" ");
  const auto ok = c.allowed();
  CHECK(ok[space] == 0);  // a second space: refused
  CHECK(ok[0] == 1);      // the notes stay
  CHECK(c.accepts("  c"));  // accepts() and the look-aheads still read spaces
  c.observe("c");
  CHECK(c.allowed()[space] == 1);  // one space after a note, as before
  // a walker that writes a space whenever one is allowed (as the model did) still writes music, is
  // never left with nothing allowed, and writes no two spaces in a row
  std::mt19937 rng(83004);
  for (auto [bar, unit] : {std::pair{Rational(3, 4), Rational(1, 8)}, std::pair{Rational(1), Rational(1, 16)},
                           std::pair{Rational(6, 8), Rational(1, 8)}}) {
    CAPTURE(bar.str());
    auto w = make(bar, unit, vocab);
    std::string text;
    size_t run = 0, longest = 0;
    for (int step = 0; step < 4000; ++step) {
      auto allowed = w.allowed();
      std::vector<int> ids;
      for (size_t i = 0; i + 1 < allowed.size(); ++i)
        if (allowed[i]) ids.push_back(static_cast<int>(i));
      REQUIRE_FALSE(ids.empty());
      int id = allowed[space] ? space : ids[std::uniform_int_distribution<size_t>(0, ids.size() - 1)(rng)];
      run = id == space ? run + 1 : 0;
      longest = std::max(longest, run);
      text += vocab[id];
      w.advance(id);
    }
    CAPTURE(text.substr(0, 400));
    CHECK(w.relaxed_steps() == 0);
    CHECK(longest == 1);
    CHECK(w.bars_closed() > 40);
  }
}

TEST_CASE("bar constraint: overfull notes and early bar lines are masked; the end only after a bar line") {
  auto c = make(Rational(3, 4), Rational(1, 8), char_vocab("x"));
  c.observe("d2d dcB|d2d dc");  // no pickup; 5/8 of a 6/8 bar
  CHECK(c.accepts("B"));
  CHECK(c.accepts("B|"));
  CHECK_FALSE(c.accepts("B2"));
  CHECK_FALSE(c.accepts("B3/2"));
  CHECK_FALSE(c.accepts("|"));     // 5/8 is not a bar
  CHECK_FALSE(c.accepts("(3Bcd"));  // a triplet of eighths takes 2/8
  CHECK(c.accepts("(3B/c/d/|"));    // one of sixteenths 1/8
  CHECK_FALSE(c.accepts("[B2d2]|"));
  CHECK(c.accepts("B/c/"));
  CHECK(c.accepts("[Bd]|"));
  CHECK_FALSE(c.can_end());
  c.observe("B|\n");
  CHECK(c.can_end());
  CHECK_FALSE(c.accepts("| "));     // an empty bar
  CHECK(c.accepts("||"));
  CHECK_FALSE(c.accepts("d3 d3d"));  // 7/8
  CHECK(c.accepts("(3def d4|"));    // a triplet of eighths takes 2/8
  CHECK_FALSE(c.accepts("x"));      // not ABC the constraint writes
  CHECK_FALSE(c.accepts("K:G"));
  CHECK_FALSE(c.accepts("\"Am\""));
}

TEST_CASE("bar constraint: pickups and their complements, repeats, as abc2midi checks them") {
  auto c = make(Rational(3, 4), Rational(1, 8), char_vocab("x"));
  CHECK(c.accepts("A|"));       // a pickup of 1/8
  CHECK_FALSE(c.accepts("d2d d|"));  // 4/8 is more than half a bar
  CHECK(c.accepts("|:A|d2d dcB|A2G F2:|"));  // the repeat's first bar (1/8) and last (5/8) make a bar
  c.observe("A|:d2d dcB|");
  // abc2midi: "Bar 1 has 11 time units ... in repeat": the repeat starts with a full bar here, so
  // it must end with one (the old rule allowed the pickup's complement)
  CHECK_FALSE(c.accepts("A2G F2:|"));
  CHECK_FALSE(c.accepts("A2G F2|"));  // nor at a plain bar line
  CHECK_FALSE(c.accepts("A2G F:|"));  // 4/8 completes nothing
  CHECK_FALSE(c.accepts("A2G FED||"));  // the repeat is open: close it first
  c.observe("A2G FED:|");
  CHECK_FALSE(c.accepts("d2d d2d:|"));  // a second :| without its |:
  CHECK(c.accepts("d2d d2d|"));
  CHECK_FALSE(c.accepts("A|"));  // a short bar after a full one: abc2midi warns

  auto p = make(Rational(3, 4), Rational(1, 8), char_vocab("x"));
  p.observe("A|d2d dcB|A2G F2:|");  // no |: : the repeat starts at the tune's start, with the pickup
  CHECK_FALSE(p.accepts("d2d dcB|"));  // after the pickup's complement comes the pickup
  CHECK(p.accepts("A|"));
  CHECK(p.accepts("\n|:A|"));
  p.observe("|:A|d2d dcB|");
  CHECK_FALSE(p.accepts("A2G FED:|"));  // this repeat starts with the pickup: it ends with its complement
  CHECK(p.accepts("A2G F2:|"));
  auto none = make(Rational(3, 4), Rational(1, 8), char_vocab("x"));
  none.observe("d2d dcB|");  // no pickup: no shorter bar anywhere
  CHECK_FALSE(none.accepts("A2G F2||"));
  CHECK(none.accepts("A2G FED||"));
}

TEST_CASE("bar constraint: issue 24's invalid ABC is refused (chords, ties, symbols, continuations, slurs)") {
  auto c = make(Rational(1, 2), Rational(1, 16), char_vocab("x"));  // ryans-hornpipe: 2/4, L:1/16
  c.observe("A2|d2B2 A2G2|");
  CHECK(c.accepts("[GF]2"));
  CHECK_FALSE(c.accepts("[GF]2,"));   // "[G2F2],,/": abc2midi "Unrecognized character: ,"
  CHECK_FALSE(c.accepts("[GF],"));
  CHECK_FALSE(c.accepts("[G2F2]"));   // lengths inside a chord: abc2midi and abcm2ps read them apart
  CHECK_FALSE(c.accepts("kA"));       // "k": abcm2ps "Bad character", abc2midi ignores it
  CHECK_FALSE(c.accepts("HA"));       // a fermata lengthens the note in abc2midi
  CHECK(c.accepts("~A"));
  CHECK(c.accepts("TA"));
  auto w = make(Rational(3, 4), Rational(1, 8), char_vocab("x"));  // nottingham-waltz shape
  w.observe("G2|c2 B2 A2|");
  CHECK_FALSE(w.accepts("G6-:|"));  // a tie into a repeat ("G3-:|" then the end: "could not find note to be tied")
  CHECK(w.accepts("G6-|G6|"));
  w.observe("G6-|");
  CHECK_FALSE(w.can_end());         // the tie is open
  CHECK_FALSE(w.accepts("A6|"));    // ... to a note of the same pitch
  CHECK_FALSE(w.accepts("z6|"));
  w.observe("G6|");
  CHECK(w.can_end());
  CHECK_FALSE(w.accepts("z-"));     // no tie from a rest
  CHECK(w.accepts("\\\n"));        // a line continuation at a line's end
  CHECK_FALSE(w.accepts("\\ A"));   // ... and only there
  w.observe("\\\n");
  CHECK_FALSE(w.can_end());         // not on a continuation
  CHECK(w.accepts("(A2 B2 c2)|"));
  CHECK_FALSE(w.accepts("((A2 B2) c2)|"));  // abc2midi: "slur within slur"
  CHECK_FALSE(w.accepts("A2 B2 c2)|"));     // no slur to close
  CHECK(w.accepts("(3ABc (A2 B2)|"));       // a tuplet is no slur
  w.observe("(A2 B2 c2|");
  CHECK_FALSE(w.can_end());         // the slur is open
  CHECK_FALSE(w.accepts("d6||"));   // and closes before a section's end
  CHECK(w.accepts("d6)||"));
}

TEST_CASE("bar constraint: what random walks found abc2midi or abcm2ps refuse is refused") {
  auto c = make(Rational(3, 4), Rational(1, 8), char_vocab("x"));
  c.observe("d2d dcB|");
  CHECK_FALSE(c.accepts("\n\n"));       // a blank line ends the tune
  CHECK_FALSE(c.accepts("\n)"));         // abcm2ps: a line starting with ")"
  CHECK_FALSE(c.accepts("\nz:"));        // "z:" at a line's start is a field
  CHECK_FALSE(c.accepts("\n:|"));
  CHECK(c.accepts("\n|:d2d dcB|"));
  CHECK_FALSE(c.accepts("(5ABcde"));      // abc2midi's default ratio for (5 is not the standard's
  CHECK(c.accepts("(3ABc d2ed|"));
  CHECK_FALSE(c.accepts("(3A2Bc"));       // a tuplet's notes share one length
  CHECK_FALSE(c.accepts("(3A[Bd]"));      // no chord in a tuplet
  CHECK_FALSE(c.accepts("(3A)"));         // ... and no ")" right after "(3"
  CHECK_FALSE(c.accepts(".A"));           // after ".", abc2midi refuses a tie or >
  CHECK_FALSE(c.accepts("yA"));
  CHECK_FALSE(c.accepts("A3>A"));         // "note too much dotted"
  CHECK(c.accepts("A2>A2 B2|"));
  CHECK_FALSE(c.accepts("A-~A"));         // "could not find note to be tied"
  CHECK_FALSE(c.accepts("A-{g}A"));
  CHECK(c.accepts("^A-A"));               // the bar's ^ holds: the same sound
  CHECK_FALSE(c.accepts("^A-=A"));        // abc2midi ties only equal pitches
  CHECK(c.accepts("{ag}A"));
  CHECK_FALSE(c.accepts("{a2}A"));        // grace notes: plain notes
  CHECK_FALSE(c.accepts("[|"));
  auto l = make(Rational(3, 4), Rational(1, 8), char_vocab("x"));
  l.observe("d6|d6|d6|e6|d6|d6|f6|d6|");  // eight bars on a line
  CHECK_FALSE(l.accepts("d6|"));
  CHECK(l.accepts("\nd6|"));
}

TEST_CASE("bar constraint: numbered endings open inside a repeat, close with :|2 and a section's end") {
  auto c = make(Rational(3, 4), Rational(1, 8), char_vocab("x"));
  CHECK(c.accepts("|:d2d dcB|A2G FED|1 d2d dcB:|2 A2G FED|]"));
  c.observe("|:d2d dcB|A2G FED|1 d2d dcB");
  CHECK_FALSE(c.accepts("||"));   // a first ending closes with :|2
  CHECK_FALSE(c.accepts(":|d"));
  CHECK(c.accepts(":|2"));
  CHECK_FALSE(c.can_end());
  c.observe(":|2 A2G FED|");
  CHECK_FALSE(c.can_end());       // inside the second ending
  CHECK_FALSE(c.accepts(":|"));
  c.observe("d2d dcB||");
  CHECK(c.can_end());
  CHECK_FALSE(c.accepts("|1"));   // no repeat open
  auto p = make(Rational(3, 4), Rational(1, 8), char_vocab("x"));
  CHECK_FALSE(p.accepts("A|d2d dcB|1 A2G FED:|2"));  // the first ending's last bar completes the pickup
  auto q = make(Rational(3, 4), Rational(1, 8), char_vocab("x"));
  q.observe("A|d2d dcB|1 A2G ");
  CHECK_FALSE(q.accepts("FED:|2"));
  CHECK(q.accepts("F2:|2 A2G FED|]"));
}

TEST_CASE("bar constraint: the repetition guard compares bars as music (respellings are equal)") {
  auto c = make(Rational(1, 2), Rational(1, 8), char_vocab("x"));
  c.observe("dB A3/2B/2|dB A3/2B/|dB A3/2B//-B//|");  // issue 24, seed 25: one bar written three ways
  CHECK_FALSE(c.accepts("dB A>B|"));
  CHECK(c.accepts("dB A>c|"));
  auto a = make(Rational(1, 2), Rational(1, 8), char_vocab("x"));
  a.observe("^c2 c2|^c2 ^c2|^c2 c2|");  // an accidental holds to the bar's end
  CHECK_FALSE(a.accepts("^c2 ^c2|"));
  CHECK(a.accepts("^c2 =c2|"));
}

TEST_CASE("bar constraint: lines joined by \\ are one score line, at most 8 bars (abcm2ps: line too much shrunk)") {
  BarConstraintOptions o;
  o.bar = Rational(3, 4);
  o.unit = Rational(1, 8);
  o.max_identical_bars = 0;
  auto c = BarConstraint(o, char_vocab("x"), {1});
  c.observe("d2d dcB|A2G FED|\\\nd2d dcB|B2A GFE|\\\nA2B c2d|e2f g2a|\\\nb2a g2f|e2d c2B|");  // 8 bars, one score line
  CHECK_FALSE(c.accepts("\\"));   // no room for a ninth bar on this score line
  CHECK_FALSE(c.accepts(" \\"));
  CHECK_FALSE(c.accepts("A2G"));
  CHECK(c.accepts("\n"));
  CHECK_FALSE(c.accepts(" "));     // the line break at once (spaces were where the model went on for ever)
  c.observe("\n");
  CHECK(c.accepts("A2G F2E|\\"));  // a new score line
  auto d = BarConstraint(o, char_vocab("x"), {1});
  d.observe("d2d dcB|A2G FED|\nd2d dcB|B2A GFE|\nA2B c2d|e2f g2a|\nb2a g2f|e2d c2B|");  // 2+2+2+2 on four lines
  CHECK(d.accepts("\\"));
  // the eighth bar line at the start of a continued line, no note on it yet: the line goes on to the
  // next bar line (a line of bar lines only is refused; once only spaces were left, for ever)
  auto e = BarConstraint(o, char_vocab("x"), {1});
  e.observe("d2d dcB|A2G FED|d2d dcB|B2A GFE|\\\nA2B c2d|e2f g2a|b2a g2f|e2d c2B \\\n|");
  CHECK(e.accepts("A2G FED|\n"));
  CHECK_FALSE(e.accepts("A2G \\"));  // the score line is over its room: no more continuation
  CHECK(e.accepts("A2G \n"));
  CHECK_FALSE(e.accepts("A2G FED|A"));
  // no first ending where the score line is full: a plain bar line and a line break come first
  auto g = BarConstraint(o, char_vocab("x"), {1});
  g.observe("|:d2d dcB|A2G FED|d2d dcB|B2A GFE|\\\nA2B c2d|e2f g2a|b2a g2f");
  CHECK_FALSE(g.accepts("|1"));
  CHECK(g.accepts("|\n"));
  // an ending written past the room (an opening): the room is passed by one bar line at most
  // (seeds 33001-33010: "|1" 8th, ":|2" 9th, "||" 10th: abcm2ps "line too much shrunk")
  auto h = BarConstraint(o, char_vocab("x"), {1});
  h.observe("|:d2d dcB|A2G FED|d2d dcB|B2A GFE|\\\nA2B c2d|e2f g2a|b2a g2f|1 e2d c2B:|2");
  CHECK_FALSE(h.accepts(" e2d"));
  CHECK(h.accepts("\n"));
  // an eighth bar line that is a first ending (an opening): the line ends at the next bar line
  auto f = BarConstraint(o, char_vocab("x"), {1});
  f.observe("|:d2d dcB|A2G FED|d2d dcB|B2A GFE|\\\nA2B c2d|e2f g2a|b2a g2f|1 e2d c2B|");
  CHECK_FALSE(f.accepts("A"));
  CHECK(f.accepts("\n"));
}

TEST_CASE("bar constraint: a score line ends at the bar line past 48 notes (abcm2ps: line too much shrunk)") {
  // ryans-hornpipe, seed 40005: a pickup and 7 bars of eight 8th notes on one score line (two source
  // lines joined by "\\"): 66 notes, 62 characters, 8 bar lines, within the other limits
  auto c = make(Rational(1), Rational(1, 8), char_vocab("x"), 0);
  c.observe("BFDF BFDF|Bdfd Bcde|fedc dBAB|fdcB ABcd|\\\nBFDF BFDF|Bdfd Bcde|");  // 48 notes
  CHECK(c.accepts("\n"));
  CHECK_FALSE(c.accepts("\\"));  // no continuation: the score line is full
  CHECK_FALSE(c.accepts(" "));
  CHECK_FALSE(c.accepts("B"));
  auto d = make(Rational(1), Rational(1, 8), char_vocab("x"), 0);
  d.observe("BFDF BFDF|Bdfd Bcde|fedc dBAB|fdcB ABcd|\\\nBFDF BFDF|Bdfd Bcd");  // 47 notes
  CHECK(d.accepts("e|"));
  CHECK_FALSE(d.accepts("e|B"));   // the bar line past 48 notes ends the score line
  CHECK(d.accepts("e|\n"));
  auto e = make(Rational(1), Rational(1, 8), char_vocab("x"), 0);
  e.observe("BFDF BFDF|Bdfd Bcde|fedc dBAB|fdcB ABcd|\nBFDF BFDF|Bdfd Bcde|");  // a new line: a new score line
  CHECK(e.accepts("fedc dBAB|"));
}

TEST_CASE("bar constraint: a bar or a 2-bar cell no more often than the style's tunes have them") {
  BarConstraintOptions o;
  o.bar = Rational(3, 4);
  o.unit = Rational(1, 8);
  o.max_bar_repeats = 2;
  auto c = BarConstraint(o, char_vocab("x"), {1});
  c.observe("d2d dcB|A2G FED|d2d dcB|B2A GFE|");
  CHECK_FALSE(c.accepts("d2d dcB|"));  // a third time
  CHECK(c.accepts("d2d dBG|"));
  o.max_bar_repeats = 0;
  o.max_cell_repeats = 2;
  auto cell = BarConstraint(o, char_vocab("x"), {1});
  cell.observe("d2d dcB|A2G FED|d2d dcB|A2G FED|B2A GFE|d2d dcB|");
  CHECK_FALSE(cell.accepts("A2G FED|"));  // the cell "d2d dcB|A2G FED" a third time
  CHECK(cell.accepts("A2G FEF|"));
  // one bar at most a fifth of the bars, counted over at least 12 bars: 2 times up to 14 bars
  o.max_cell_repeats = 0;
  o.max_bar_share = 0.2;
  o.share_bars = 12;
  auto share = BarConstraint(o, char_vocab("x"), {1});
  share.observe("d2d dcB|A2G FED|d2d dcB|B2A GFE|");
  CHECK_FALSE(share.accepts("d2d dcB|"));  // a third time in 5 of at least 12 bars
  share.observe("A2B c2d|e2f g2a|b2a g2f|\ne2d c2B|A2G F2E|D2E F2G|A2B c2d|");  // 11 bars
  CHECK_FALSE(share.accepts("d2d dcB|"));  // 3 of 12 bars > 0.2
  share.observe("D2E F2A|E2F G2B|D2F A2c|\n");
  CHECK(share.accepts("d2d dcB|"));        // 3 of 15 bars
}

TEST_CASE("bar constraint: the last note's tonic, and where one note finishes the bar") {
  BarConstraintOptions o;
  o.bar = Rational(3, 4);
  o.unit = Rational(1, 8);
  o.tonic = 'D';
  auto vocab = char_vocab("dD^Ac2|");
  auto c = BarConstraint(o, vocab, {static_cast<int32_t>(vocab.size() - 1)});
  CHECK(c.tonic_tokens()[0]);
  CHECK(c.tonic_tokens()[1]);
  CHECK_FALSE(c.tonic_tokens()[3]);
  c.observe("A|d2");
  CHECK_FALSE(c.one_note_left());  // 4/8 of a 6/8 bar left: more than half a bar
  c.observe("d ");
  CHECK(c.last_note_tonic());
  CHECK(c.one_note_left());        // 3/8 left: one dotted quarter
  c.observe("c2 ");
  CHECK_FALSE(c.last_note_tonic());
  CHECK(c.one_note_left());        // 1/8 left
  c.observe("^d|");
  CHECK_FALSE(c.last_note_tonic());  // D sharp is no tonic in D
  o.tonic = 'B';
  o.tonic_shift = -1;              // B flat
  auto b = BarConstraint(o, vocab, {static_cast<int32_t>(vocab.size() - 1)});
  b.observe("B ");
  CHECK(b.last_note_tonic());
  b.observe("=B ");
  CHECK_FALSE(b.last_note_tonic());
}

TEST_CASE("bar constraint: the repetition guard refuses a fourth identical bar, and a third run of two") {
  auto c = make(Rational(3, 4), Rational(1, 8), char_vocab("x"));
  c.observe("A2A A2A|A2A A2A|A2A A2A|");
  CHECK_FALSE(c.accepts("A2A A2A|"));
  CHECK_FALSE(c.accepts("A2A A2A "));  // refused at the note's end, before the bar line
  CHECK(c.accepts("A2A A2B|"));
  auto off = make(Rational(3, 4), Rational(1, 8), char_vocab("x"), 0);
  off.observe("A2A A2A|A2A A2A|A2A A2A|");
  CHECK(off.accepts("A2A A2A|"));
  auto two = make(Rational(3, 4), Rational(1, 8), char_vocab("x"));
  two.observe("d2d dcB|A2G FED|d2d dcB|A2G FED|d2d dcB|");
  CHECK_FALSE(two.accepts("A2G FED|"));
  CHECK(two.accepts("A2G F2E|"));
}

TEST_CASE("bar constraint: the repetition guard sees short bars too (misc seed 93005's pickup loop)") {
  // misc seed 93005 (ninth pass): one-bar sections of a pickup and its complement, "G | GBdBA ||" over
  // and over (77 bar lines, one bar a third of them) until the budget rule: the guard counted full
  // bars only, so a loop of short bars passed every limit, and the monotonous tune could not end
  auto spec = MusicModelSpec::from_model_dir(std::string(DUET_SOURCE_DIR) + "/models/abc-folk");
  REQUIRE(spec.has_value());
  BarConstraintOptions bo = constraint_options(*spec, check_music_options(*spec, {"misc", "", "", ""}), 3);
  bo.corpus.reset();  // 6/8, L:1/8, K:G; misc: a bar at most 4 times, a quarter of at least 15 bars
  const std::string loop = "(G/A/) | B G d B A|| G \\\n | G B d B A|| G \\\n | G B d B A|| G \\\n | G B d B A||\nG \\\n |";
  BarConstraint c(bo, char_vocab("x"), {1});
  c.observe(loop);
  CHECK_FALSE(c.accepts("G B d B A||"));  // the complement a fourth time, a third run of "G | GBdBA"
  CHECK_FALSE(c.accepts("G B d B/-B/ A||"));  // respelled: the same music
  CHECK(c.accepts("G B d B A G|"));        // a full bar: the section goes on
  CHECK(c.accepts("G B d e g||"));         // another complement
  BarConstraint p(bo, char_vocab("x"), {1});
  p.observe(loop + " G B d e g|| ");
  CHECK_FALSE(p.accepts("G |"));  // the pickup "G" a fifth time (refused at its note: it must close the bar)
  CHECK_FALSE(p.accepts("G "));
  CHECK(p.accepts("d |"));        // another pickup
  CHECK(p.accepts("B/c/ |"));
  // a tune's pickup and its cadence come back at each section, as in the corpus
  BarConstraint t(bo, char_vocab("x"), {1});
  t.observe("D|G2B d2B|c2A F2A|G2B d2g|f2d e2f|\nG2B d2B|c2A F2A|G2B A2F|G3 G2:|\n");
  CHECK(t.accepts("D|g2g f2d|e2c A2c|B2d g2B|c2e d2c|\nB2d g2B|c2e A2F|G2B A2F|G3 G2|]"));
  // ... also where the tune already repeats as many full bars as max_repeat_share lets it (a full bar
  // is refused there): oneills-hornpipe seed 94006, its second repeat's complement
  auto hp = constraint_options(*spec, check_music_options(*spec, {"oneills-hornpipe", "", "", ""}), 3);
  hp.corpus.reset();
  BarConstraint h(hp, char_vocab("x"), {1});
  h.observe("(3DEF | G2 BG dGBG | FGAB cdef | gfed cBAG | FGAB A2 (3DEF |\n"
            "G2 BG dGBG | FGAB cdef | gfed cABG | FGAB A2 :|\n"
            "|: (3def | gfed cBAG | FGAB cdef | gfed cBAG | FGAB A2 (3def |\n"
            "gfed cBAG/A/ | Bcde f2 (3def | gfed cABG | ");
  CHECK_FALSE(h.accepts("FGAB cdef |"));  // a full bar: the repeats' share is spent
  CHECK(h.accepts("FGAB A2 :|"));
}

TEST_CASE("bar constraint: a section's end is :| || or |] with nothing open after it") {
  auto c = make(Rational(3, 4), Rational(1, 8), char_vocab("x"));
  c.observe("d2d dcB|");
  CHECK(c.can_end());
  CHECK_FALSE(c.ends_section());  // a plain bar line
  c.observe("A2G FED|]");
  CHECK(c.ends_section());
  c.observe("\n|:d2d dcB|");
  CHECK_FALSE(c.can_end());  // the repeat is open
  CHECK_FALSE(c.ends_section());
  c.observe("A2G FED:|");
  CHECK(c.ends_section());
  c.observe("d2");
  CHECK_FALSE(c.ends_section());
}

TEST_CASE("bar constraint: a slur crosses one bar line at most, then closes before the next") {
  // aird-march, seed 33009: a slur opened at bar 17 stayed open for 30 bars; with it open no :| || |]
  // nor the end is allowed, so the tune ran into the budget rule
  auto c = make(Rational(3, 4), Rational(1, 8), char_vocab("x"));
  c.observe("d2d (dcB|");  // one bar line crossed: allowed (162 of the corpus's 23,843 slurs do)
  CHECK(c.accepts("A2G FED)|"));
  CHECK_FALSE(c.accepts("A2G FED|"));  // a second bar line with the slur open
  c.observe("A2G FED");
  // the bar is full: only ")" may follow the last note (after a space, a line break, "\" or a tie
  // the bar line could never come)
  CHECK(c.accepts(")"));
  CHECK(c.accepts(")|"));
  CHECK_FALSE(c.accepts(" "));
  CHECK_FALSE(c.accepts("\n"));
  CHECK_FALSE(c.accepts("\\"));
  CHECK_FALSE(c.accepts("-"));
  CHECK_FALSE(c.accepts("|"));
  c.observe(")|");
  CHECK(c.can_end());
  // a slur within one bar, or across one bar line, is as before
  auto d = make(Rational(3, 4), Rational(1, 8), char_vocab("x"));
  d.observe("(d2d dcB|A2G) FED|");
  CHECK(d.accepts("(d2d) dcB|"));
  CHECK(d.accepts("d2d (dcB|A2) G FED|"));
}

TEST_CASE("bar constraint: at most max_repeat_share of the bars repeat an earlier bar") {
  BarConstraintOptions o;
  o.bar = Rational(3, 4);
  o.unit = Rational(1, 8);
  o.max_repeat_share = 0.25;
  o.share_bars = 8;
  auto c = BarConstraint(o, char_vocab("x"), {1});
  // 2 of at least 8 bars may repeat one before them
  c.observe("d2d dcB|A2G FED|d2d dcB|B2A GFE|A2G FED|");
  CHECK_FALSE(c.accepts("d2d dcB|"));  // a third repeat in 6 of at least 8 bars
  CHECK_FALSE(c.accepts("B2A GFE|"));
  CHECK(c.accepts("d2d dBG|"));        // a bar not in the tune yet
  c.observe("D2E F2A|E2F G2B|\nD2F A2c|e2d c2B|A2B c2d|e2f g2a|");  // 11 bars, 2 repeated
  CHECK(c.accepts("d2d dcB|"));        // 3 of 12 bars: 0.25
  c.observe("d2d dcB|");
  CHECK_FALSE(c.accepts("A2G FED|"));  // 4 of 13
  // a bar ending on the tonic may come again (a tune's last bar is often its first section's)
  o.tonic = 'D';
  auto t = BarConstraint(o, char_vocab("x"), {1});
  t.observe("d2d dcd|A2G FED|d2d dcd|B2A GFE|A2G FED|");
  CHECK(t.accepts("d2d dcd|"));
  CHECK_FALSE(t.accepts("B2A GFE|"));
  o.tonic = 0;
  // the bundled model's styles have the figure (style_stats.py: the 75th percentile of their tunes')
  auto spec = MusicModelSpec::from_model_dir(std::string(DUET_SOURCE_DIR) + "/models/abc-folk");
  REQUIRE(spec.has_value());
  CHECK(spec->style_stats.at("nottingham-reel").max_repeat_share == doctest::Approx(0.385).epsilon(0.05));
  // off (0): only the other limits
  o.max_repeat_share = 0;
  auto off = BarConstraint(o, char_vocab("x"), {1});
  off.observe("d2d dcB|A2G FED|d2d dcB|B2A GFE|A2G FED|");
  CHECK(off.accepts("d2d dcB|"));
}

TEST_CASE("constraint options: a tune may repeat 0.85 of the corpus's 75th-percentile share of its bars") {
  // seventh pass: the default style wrote up to the corpus's figure (67.5 % distinct bars, target 68 %)
  auto spec = MusicModelSpec::from_model_dir(std::string(DUET_SOURCE_DIR) + "/models/abc-folk");
  REQUIRE(spec.has_value());
  const auto opts = check_music_options(*spec, {"nottingham-reel", "", "", ""});  // 4/4, L:1/4, D
  BarConstraintOptions bo = constraint_options(*spec, opts, 3);
  bo.corpus.reset();
  CHECK(bo.max_repeat_share == doctest::Approx(0.85 * spec->style_stats.at("nottingham-reel").max_repeat_share));
  // 15 bars, none ending on the tonic, then 7 of them again: 22 bars, 7 repeated
  const std::vector<std::string> bars = {"EFGA", "FGAB", "GABc", "ABce", "Bcef", "cefg", "efga", "fgab",
                                         "gfec", "fecB", "ecBA", "cBAG", "BAGF", "AGFE", "EGBe"};
  std::string tune;
  for (size_t i = 0; i < 22; ++i) tune += bars[i < 15 ? i : i - 15] + (i % 4 == 3 ? "|\n" : "|");
  BarConstraint c(bo, char_vocab("x"), {1});
  c.observe(tune);
  REQUIRE(c.bars_closed() == 21);  // the last "|" may still become "||" or "|]": not counted yet
  // an 8th repeat in 23 bars: int(0.389 * 23) = 8 allowed it, int(0.85 * 0.389 * 23) = 7 does not
  CHECK_FALSE(c.accepts(bars[7] + "|"));
  CHECK(c.accepts("GEGB|"));  // a new bar may come
}

TEST_CASE("bar constraint: the guards are dropped for a step where they leave only spaces") {
  // oneills-jig seed 46020: a chain of tied a's; the only note that fits the bar completes it as a
  // bar already written three times: the guard refused it, " " stayed allowed, and the model wrote
  // spaces to the token budget
  BarConstraintOptions o;
  o.bar = Rational(3, 4);
  o.unit = Rational(1, 8);
  o.max_identical_bars = 3;
  o.max_bar_repeats = 3;
  auto vocab = char_vocab("a/8-| \n");
  auto c = BarConstraint(o, vocab, {static_cast<int32_t>(vocab.size() - 1)});
  c.observe("a6-|a6-|a6-|a2-a/-a/-a/-a/-a/-a/-a/-a/4-a/8-\n");  // an 8th of an 8th left, tied
  CHECK_FALSE(c.accepts("a/8|"));  // the guard: a fourth bar of one long a
  CHECK_FALSE(c.accepts("a"));
  const auto ok = c.allowed();
  CHECK(ok[vocab.size() - 3] == 1);  // " " as before
  CHECK(ok[0] == 1);                 // and "a": the guard is dropped for this step
  CHECK(c.relaxed_steps() == 0);
}

TEST_CASE("bar constraint: section_bars is the last section's length in bar lines") {
  auto c = make(Rational(3, 4), Rational(1, 8), char_vocab("x"));
  CHECK(c.section_bars() == 0);
  c.observe("d2d dcB|A2G FED|d2d dcB|B2A GFE:|");
  CHECK(c.section_bars() == 4);
  c.observe("\n|:A2B c2d|e2f g2a|");
  CHECK(c.section_bars() == 4);  // the section being written is not counted yet
  c.observe("b2a g2f|e2d c2B:|");
  CHECK(c.section_bars() == 5);  // the "|:" starting the line counts, as style_stats counts bar lines
}

TEST_CASE("bar constraint: toward_end finds the tokens that let an open repeat end") {
  const auto vocab = char_vocab("ABcd23|:]\n ");
  auto c = make(Rational(3, 4), Rational(1, 8), vocab);
  auto id = [&](char ch) { return static_cast<size_t>(std::find(vocab.begin(), vocab.end(), std::string(1, ch)) - vocab.begin()); };
  c.observe("d2d dcB|:A2B c2d|A2B c2");
  CHECK_FALSE(c.bar_full());
  c.observe("d");  // a full bar inside an open repeat: "|" cannot end it
  CHECK(c.bar_full());
  CHECK_FALSE(c.can_end());
  auto t = c.toward_end(c.allowed());
  CHECK(t[id(':')]);  // ":|" closes the repeat, then the end is allowed
  CHECK_FALSE(t[id('|')]);
  CHECK_FALSE(t[id('A')]);
  c.observe(":|");
  CHECK(c.can_end());
  // a full bar outside a repeat: "|" begins both a plain bar line and "||" / "|]"; once written,
  // the steer towards a section's end still applies to its second character
  auto plain = make(Rational(3, 4), Rational(1, 8), vocab);
  plain.observe("d2d dcB|A2B c2d");
  CHECK(plain.section_end_near());
  plain.observe("|");
  CHECK(plain.section_end_near());
  const auto second = plain.toward_end(plain.allowed(), /*section_end=*/true);
  CHECK(second[id('|')]);
  CHECK(second[id(']')]);
  CHECK_FALSE(second[id(' ')]);
  CHECK_FALSE(second[id('A')]);
  plain.observe(" ");
  CHECK_FALSE(plain.section_end_near());
  auto mid = make(Rational(3, 4), Rational(1, 8), vocab);
  mid.observe("d2d dcB|A2");  // 2/8 of a bar: no end within two tokens
  const auto none = mid.toward_end(mid.allowed());
  CHECK(std::count(none.begin(), none.end(), 1) == 0);
}

TEST_CASE("ending push: nothing before the style's length, a growing push at a section's end, a clean end "
          "before the budget") {
  TuneEndingOptions o;
  o.long_after_bars = 20;
  o.budget_tokens = 400;
  // short tune, or no end allowed here: the model's own distribution
  CHECK(ending_push(o, 100, 10, 10, true, true).end_bias == 0);
  CHECK_FALSE(ending_push(o, 100, 10, 10, true, true).end_only);
  CHECK(ending_push(o, 300, 30, 30, false, false).end_bias == 0);
  CHECK_FALSE(ending_push(o, 300, 30, 30, false, false).end_only);
  CHECK_FALSE(ending_push(o, 300, 30, 30, false, false).ending);
  // past the style's length: at a section's end first, later also at a plain bar line
  CHECK(ending_push(o, 200, 21, 21, true, true).end_bias == doctest::Approx(2.0));
  CHECK(ending_push(o, 200, 25, 25, true, true).end_bias == doctest::Approx(6.0));
  CHECK(ending_push(o, 200, 25, 25, true, false).end_bias == 0);
  CHECK(ending_push(o, 250, 30, 30, true, false).end_bias == doctest::Approx(1.0));
  CHECK(ending_push(o, 300, 60, 60, true, true).end_bias == doctest::Approx(12.0));  // capped
  CHECK(ending_push(o, 200, 25, 25, false, false).steer_bias == doctest::Approx(6.0));  // e.g. an open repeat
  CHECK(ending_push(o, 200, 25, 25, false, false).end_bias == 0);
  CHECK(ending_push(o, 200, 15, 15, false, false, true, 4).steer_bias == 0);  // a 4-bar section ends at 19
  CHECK(ending_push(o, 200, 25, 25, true, false).steer_bias == doctest::Approx(6.0));  // "|" written: "||" "|]"
  TuneEndingOptions m = o;
  m.start_bars = 16;
  m.long_after_bars = 30;  // the next section ends inside p90: the push as from the median
  CHECK(ending_push(m, 200, 18, 18, true, false, true).steer_bias == doctest::Approx(3.0));  // after the tonic
  CHECK(ending_push(m, 200, 18, 18, true, false, false).steer_bias == 0);  // not: no push after "||" either
  CHECK(ending_push(m, 200, 18, 18, false, false, false).steer_bias == doctest::Approx(3.0));  // an open repeat
  CHECK(ending_push(o, 200, 25, 25, true, true).steer_bias == 0);  // right after a section's end
  // ~10 tokens a bar: 30 left is within three bars: end here, or steer towards an end
  CHECK(ending_push(o, 370, 37, 37, true, false).end_only);
  CHECK_FALSE(ending_push(o, 360, 36, 36, true, false).end_only);
  CHECK(ending_push(o, 390, 39, 39, false, false).ending);
  CHECK_FALSE(ending_push(o, 390, 39, 39, false, false).end_only);
  // with the style's median and p10 and the tonic preferences (issue 24)
  TuneEndingOptions t = o;
  t.start_bars = 16;
  t.min_bars = 12;
  t.off_tonic_bias = -2;
  t.early_bias = -3;
  t.cadence_bias = 1.5;
  CHECK(ending_push(t, 100, 10, 10, true, true, true).end_bias == doctest::Approx(-3.0));  // shorter than p10
  CHECK(ending_push(t, 100, 14, 14, true, true, true, 4).end_bias == 0);  // the model's own choice
  CHECK(ending_push(t, 100, 14, 14, false, false, true, 4).cadence_bias == 0);
  CHECK(ending_push(t, 100, 15, 15, false, false, true, 4).cadence_bias == doctest::Approx(1.5));  // the bar before start
  CHECK(ending_push(t, 100, 15, 15, false, false).cadence_bias == doctest::Approx(2.5));  // the next section past p90
  TuneEndingOptions w = t;
  w.long_after_bars = 30;  // the next section ends inside p90
  CHECK(ending_push(w, 200, 18, 18, true, true, true).end_bias == doctest::Approx(3.0));  // past the median, tonic
  CHECK(ending_push(w, 200, 18, 18, true, true, false).end_bias == doctest::Approx(-2.0));  // off the tonic
  CHECK(ending_push(w, 200, 18, 18, true, false, false).end_bias == doctest::Approx(-2.0));
  CHECK(ending_push(w, 200, 18, 18, false, false).steer_bias == doctest::Approx(3.0));
  CHECK(ending_push(t, 200, 23, 23, true, true, false).end_bias == doctest::Approx(4.0));  // past p90: end anyway
  // no style statistics: no push, but still the clean end
  TuneEndingOptions bare;
  bare.budget_tokens = 64;
  CHECK(ending_push(bare, 20, 90, 2, true, true).end_bias == 0);
  CHECK(ending_push(bare, 50, 90, 5, true, false).end_only);
}

TEST_CASE("ending push: a budget nearer than the style's length moves the push ahead (issue 24)") {
  // ryans-strathspey: 4/4 in L:1/16, p10/p50/p90 12/18/20 bars, ~48 tokens a bar, 768 tokens: the
  // budget rule (3 bars left) comes at ~13 bars, before the median; the push must come before it
  TuneEndingOptions o = test::style_ending(12, 18, 20);
  // 6 bars in 336 tokens (48 a bar, counting the bar begun as one): 768 - 336 - 3 * 56 leaves room
  // for 5 bars before the budget rule, 3 into the 8-bar landing: the push acts as at bar 20 + 3
  const EndingPush six = ending_push(o, 336, 6, 6, true, true, true);
  CHECK_FALSE(six.end_only);
  CHECK(six.end_bias == doctest::Approx(6.0));  // 1 + (23 - 18): no "shorter than p10" brake
  CHECK(six.cadence_bias == doctest::Approx(2.5));  // past p90 (as pushed): one more
  CHECK(ending_push(o, 336, 6, 6, false, false).steer_bias == doctest::Approx(6.0));  // towards :| || |]
  CHECK(ending_push(o, 336, 6, 6, true, true, false).end_bias == doctest::Approx(4.0));  // past p90: off the tonic too
  CHECK(ending_push(o, 336, 6, 6, true, false, true).end_bias == doctest::Approx(1.5));  // a plain bar line: half
  // two bars on (room for 3), the push is two bars stronger
  CHECK(ending_push(o, 432, 8, 8, true, true, true).end_bias == doctest::Approx(8.0));
  // 4 bars in 240 tokens: room for 7 bars, one into the landing: as at p90 + 1
  CHECK(ending_push(o, 240, 4, 4, true, true, true).end_bias == doctest::Approx(4.0));
  // the same tune in 8th notes (12 tokens a bar) has room for its p90: the push waits for it
  CHECK(ending_push(o, 72, 6, 6, true, true, true).end_bias == doctest::Approx(-3.0));  // shorter than p10
  CHECK(ending_push(o, 72, 6, 6, false, false).steer_bias == 0);
  CHECK(ending_push(o, 72, 6, 6, true, false, true).end_bias == doctest::Approx(-3.0));
  // the budget rule itself is unchanged: 3 bars left, end here
  CHECK(ending_push(o, 640, 13, 13, true, false, false).end_only);
  // nottingham-reel (p10/p50/p90 16/18/33) at 25 tokens a bar: the budget rule comes at ~27 bars;
  // until 8 bars before it the push counts the tune's own bars (no end before p10)
  TuneEndingOptions r = o;
  r.long_after_bars = 33;
  r.start_bars = 18;
  r.min_bars = 16;
  CHECK(ending_push(r, 250, 10, 10, true, true, true).end_bias == doctest::Approx(-3.0));
  CHECK(ending_push(r, 250, 10, 10, false, false).steer_bias == 0);  // no steer towards an end braked
  CHECK(ending_push(r, 400, 16, 16, true, true, true).end_bias == 0);  // 11 bars of room: its own bars
  // 22 bars in 560 tokens: 5 bars of room, as at 33 + 3 bars
  CHECK(ending_push(r, 560, 22, 22, false, false).steer_bias == doctest::Approx(12.0));
  CHECK(ending_push(r, 560, 22, 22, true, true, false).end_bias == doctest::Approx(4.0));  // 1 + 3, off the tonic
  // a greedy reel asked for 400 tokens: a 21-token pickup and bar leave 15 bars of room, no push yet
  // (the push once ran 25 bars ahead here and ended the tune at its second bar)
  r.budget_tokens = 400;
  CHECK(ending_push(r, 21, 2, 1, true, true, true).end_bias == doctest::Approx(-3.0));
  CHECK(ending_push(r, 21, 1, 1, true, false, true).steer_bias == 0);
}

TEST_CASE("ending push: where the next section would end past p90, a section's end is the tune's (issue 24)") {
  // ryans-reel: p10/p50/p90 16/18/20 bars. Its tunes ran past p90: a section ended at 16 or 17 bars,
  // before the median (no push), and the next one at 24 (19 % of 110 tunes past p90 on seeds 34001-34005)
  TuneEndingOptions o = test::style_ending(16, 18, 20);
  // 16 bars, the last section 8: the next would end at 24, 4 past p90: as if 4 bars past it
  CHECK(ending_push(o, 160, 16, 16, true, true, true, 8).end_bias == doctest::Approx(5.0));
  CHECK(ending_push(o, 160, 16, 16, true, true, false, 8).end_bias == doctest::Approx(-2.0));  // not off the tonic
  CHECK(ending_push(o, 160, 16, 16, false, false, true, 8).cadence_bias == doctest::Approx(2.5));  // a tonic cadence
  CHECK(ending_push(o, 160, 16, 16, false, false, true, 4).cadence_bias == 0);  // before the median's bar
  CHECK(ending_push(o, 160, 16, 16, false, false, false, 8).steer_bias == doctest::Approx(5.0));  // an open repeat
  CHECK(ending_push(o, 160, 16, 16, true, false, true, 8).steer_bias == doctest::Approx(5.0));  // "|": "||" "|]"
  CHECK(ending_push(o, 160, 16, 16, true, false, false, 8).steer_bias == 0);  // no "||" for an end braked
  // 16 bars, the last section 4: the next ends at 20, inside p90: the model's own choice before the median
  CHECK(ending_push(o, 160, 16, 16, true, true, true, 4).end_bias == 0);
  CHECK(ending_push(o, 160, 16, 16, true, true, false, 4).end_bias == doctest::Approx(-2.0));
  CHECK(ending_push(o, 160, 16, 16, false, false, false, 4).steer_bias == 0);
  // before the first section's end, 8 bars are assumed; before p10 the brake stays
  CHECK(ending_push(o, 150, 15, 15, true, true, true).end_bias == doctest::Approx(-3.0));
  CHECK(ending_push(o, 150, 15, 15, false, false).steer_bias == 0);
  CHECK(ending_push(o, 160, 16, 16, false, false).steer_bias == doctest::Approx(5.0));
  // section lengths are taken as 4 to 16 bars
  CHECK(ending_push(o, 160, 16, 16, true, true, true, 1).end_bias == 0);
  CHECK(ending_push(o, 160, 16, 16, true, true, true, 40).end_bias == doctest::Approx(12.0));
  // past p90 the old push: 1 + bars past p90
  CHECK(ending_push(o, 220, 22, 22, true, true, false, 8).end_bias == doctest::Approx(3.0));
}

TEST_CASE("monotonous tunes: one bar a quarter of the bars or more, and no end pushed there") {
  auto c = make(Rational(3, 4), Rational(1, 8), char_vocab("x"));
  c.observe("d2d dcB|A2G FED|d2d dcB|B2A GFE|");
  CHECK(c.monotonous());  // 2 of 4 bars
  c.observe("e2f g2a|b2a g2f|e2d c2B|\nA2B c2d|e2f gfe|d2d dcB|f2e d2c|");
  CHECK(c.monotonous());  // 3 of 11
  c.observe("B2A G2F|");
  CHECK(c.monotonous());  // 3 of 12: a quarter is monotonous already (evaluate.py: >= 25 %)
  c.observe("E2F G2A|");
  CHECK_FALSE(c.monotonous());  // 3 of 13
  auto p = make(Rational(3, 4), Rational(1, 8), char_vocab("x"));
  p.observe("d2d dcB|d2d dcB|d2d dcB|");
  CHECK(p.monotonous());  // the last bar line is still being read ("|" may become "||")
  // the end gets early_bias at an end (before p90, budget far) whatever else would push it
  TuneEndingOptions o = test::style_ending(8, 16, 20);
  CHECK(ending_push(o, 120, 12, 12, true, true, true, 10).end_bias == doctest::Approx(3.0));  // 12 + 10 = 22
  CHECK(ending_push(o, 120, 12, 12, true, true, true, 10, true).end_bias == doctest::Approx(-3.0));
  CHECK(ending_push(o, 180, 18, 18, true, true, true, 8, true).end_bias == doctest::Approx(-3.0));
  CHECK(ending_push(o, 220, 22, 22, true, true, true, 8, true).end_bias == doctest::Approx(7.0));  // past p90
  CHECK(ending_push(o, 600, 12, 12, true, true, true, 8, true).end_bias > 0);  // the budget is near
  CHECK_FALSE(ending_push(o, 740, 12, 12, true, true, true, 8, true).end_bias < 0);
}
