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
  CHECK(tempo_field(*spec, jig) == "Q:3/8=" + std::to_string(spec->tempos.at("jig")));
  CHECK(tempo_field(*spec, reel, 120) == "Q:1/4=120");
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
  const std::string chars = "Ac23468/|> ";
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
      std::vector<int> ids;
      for (size_t i = 0; i + 1 < ok.size(); ++i)  // not EOS: keep walking
        if (ok[i]) ids.push_back(static_cast<int>(i));
      REQUIRE_FALSE(ids.empty());
      int id = ids[std::uniform_int_distribution<size_t>(0, ids.size() - 1)(rng)];
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

TEST_CASE("bar constraint: pickups and their complements, repeats") {
  auto c = make(Rational(3, 4), Rational(1, 8), char_vocab("x"));
  CHECK(c.accepts("A|"));       // a pickup of 1/8
  CHECK_FALSE(c.accepts("d2d d|"));  // 4/8 is more than half a bar
  c.observe("A|:d2d dcB|");
  CHECK(c.accepts("A2G F2:|"));   // 5/8 + the pickup's 1/8 = one bar, at a repeat
  CHECK_FALSE(c.accepts("A2G F2|"));  // but not at a plain bar line
  CHECK_FALSE(c.accepts("A2G F:|"));  // 4/8 completes nothing
  CHECK_FALSE(c.accepts("A2G FED||"));  // the repeat is open: close it first
  c.observe("A2G FED:|");
  CHECK_FALSE(c.accepts("d2d d2d:|"));  // a second :| without its |:
  CHECK(c.accepts("d2d d2d|"));
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
  CHECK(ending_push(o, 200, 15, 15, false, false).steer_bias == 0);
  // ~10 tokens a bar: 30 left is within three bars: end here, or steer towards an end
  CHECK(ending_push(o, 370, 37, 37, true, false).end_only);
  CHECK_FALSE(ending_push(o, 360, 36, 36, true, false).end_only);
  CHECK(ending_push(o, 390, 39, 39, false, false).ending);
  CHECK_FALSE(ending_push(o, 390, 39, 39, false, false).end_only);
  // no style statistics: no push, but still the clean end
  TuneEndingOptions bare;
  bare.budget_tokens = 64;
  CHECK(ending_push(bare, 20, 90, 2, true, true).end_bias == 0);
  CHECK(ending_push(bare, 50, 90, 5, true, false).end_only);
}
