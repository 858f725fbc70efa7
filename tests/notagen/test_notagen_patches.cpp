// edge/notagen/patches: the C++ patch form gives what scripts/notagen/patchilizer.py gives
// (tests/fixtures/notagen/patches.json, made by make_patch_fixtures.py), and the long-piece rule
// always leaves a piece that fits.
#include <doctest/doctest.h>

#include <fstream>
#include <random>
#include <nlohmann/json.hpp>

#include "edge/notagen/patches.hpp"

using namespace duet::notagen;

namespace {

nlohmann::json fixture() {
  std::ifstream in(std::string(DUET_FIXTURES_DIR) + "/notagen/patches.json");
  REQUIRE(in.good());
  return nlohmann::json::parse(in);
}

std::vector<std::string> strings(const nlohmann::json& j) { return j.get<std::vector<std::string>>(); }

}  // namespace

TEST_CASE("bars of a body line as patchilizer.py cuts them") {
  const auto f = fixture();
  REQUIRE(f["bars"].size() >= 10);
  for (const auto& c : f["bars"]) {
    const std::string line = c["line"].get<std::string>();
    CAPTURE(line);
    CHECK(split_bars(line) == strings(c["bars"]));
    std::string joined;
    for (const auto& b : split_bars(line)) joined += b;
    CHECK(joined == line);
  }
}

TEST_CASE("prompts and whole folk tunes encode to patchilizer.py's patches and open prefix") {
  const auto f = fixture();
  const int64_t P = f["patch_size"].get<int64_t>();
  size_t n = 0, with_prefix = 0;
  for (const char* set : {"prompts", "tunes"}) {
    for (const auto& c : f[set]) {
      PieceLines pl{strings(c["meta"]), strings(c["body"])};
      const auto e = encode_prompt(pl, P);
      CAPTURE(set);
      CAPTURE(n);
      CHECK(e.patches == c["patches"].get<std::vector<Patch>>());
      CHECK(e.prefix == c["prefix"].get<std::vector<int32_t>>());
      with_prefix += !e.prefix.empty();
      ++n;
    }
  }
  CHECK(n >= 60);
  CHECK(with_prefix >= 10);  // the open last bar is exercised
}

TEST_CASE("the piece splits where NotaGen's metadata ends") {
  auto folk = split_piece("S:oneills-jig\nM:6/8\nL:1/8\nK:D\nA|d2d dcB|\n|:fed:|\n");
  CHECK(folk.meta.size() == 4);
  CHECK(folk.body.size() == 2);
  auto x = split_piece("%Classical\n%Beethoven, Ludwig van\n%Keyboard\n%%score { 1 | 2 }\nL:1/8\nV:1 treble\n[r:0/2][V:1]abc|\n");
  CHECK(x.meta.size() == 6);
  REQUIRE(x.body.size() == 1);
  CHECK(x.body[0].rfind("[r:0/2]", 0) == 0);
  CHECK(split_piece("%Classical\n%Keyboard\n").body.empty());
}

TEST_CASE("patch helpers: EOS patch, text up to EOS, cleaning, stream markers") {
  Patch eos(16, kEos);
  eos[0] = kBos;
  CHECK(is_eos_patch(eos));
  CHECK_FALSE(is_eos_patch(bos_patch(16)));
  Patch p = to_patch(std::string("|abc|\n") + char(kEos), 16);
  p[10] = 'x';  // drawn after the EOS: padding for the patch level
  CHECK(patch_text(p) == "|abc|\n");
  CHECK(patch_text(p, 1) == "abc|\n");
  const Patch c = clean_patch(p);
  CHECK(c[6] == kEos);
  CHECK(c[10] == kPad);
  CHECK(strip_stream_markers("[r:0/1][V:1]abc|\n\n[r:1/0]def|]\nK:D") == "[V:1]abc|\n\ndef|]\nK:D");
  CHECK_THROWS_AS(to_patch("\xc3\xa9", 16), std::invalid_argument);
}

TEST_CASE("the long-piece rule keeps the metadata and the last body lines, within the budget") {
  std::string text = "%Classical\n%Beethoven, Ludwig van\n%Keyboard\nL:1/8\nK:C\n";
  for (int i = 0; i < 200; ++i) text += "[r:" + std::to_string(i) + "/" + std::to_string(199 - i) + "]|:abcd efga|bagf edcB:|\n";
  text += "[r:200/0]|:c2";  // the piece stops mid-bar
  for (int64_t budget : {12, 40, 100, 600}) {
    const auto e = reencode_tail(text, 16, budget);
    CAPTURE(budget);
    CHECK(static_cast<int64_t>(e.patches.size()) <= budget);
    CHECK(e.patches[0] == bos_patch(16));
    CHECK(e.prefix == std::vector<int32_t>({'[', 'r', ':', '2', '0', '0', '/', '0', ']', '|', ':', 'c', '2'}));
  }
  // budget 600 holds half the lines (NotaGen keeps the last half) and every metadata line
  const auto e = reencode_tail(text, 16, 600);
  CHECK(e.patches[1] == to_patch(std::string("%Classical\n") + char(kEos), 16));
  const auto all = encode_prompt(split_piece(text), 16);
  CHECK(e.patches.size() < all.patches.size() * 6 / 10);
  // one line longer than the budget: its last patches, never an error
  const auto huge = reencode_tail("K:C\n" + std::string(5000, 'a'), 16, 20);
  CHECK(huge.patches.size() <= 20u);
  CHECK(huge.patches.size() >= 2u);
}

TEST_CASE("stream markers removed as a piece streams: any cut of the text gives the file's text") {
  const std::vector<std::string> texts = {
      "[r:0/2]|:abcd efga|\n[r:1/1]|bagf edcB:|\n[r:2/0]|]\n",
      "[r:0/1][V:1]abc|\n\n[r:1/0]def|]\nK:D",
      "[r:12/3",                     // a marker never closed: kept
      "[r:1\n]abc|\n[x:1]de|\n",   // closed past the line's end: kept; another field: kept
      "[r",                          // the text ends inside what could have been one
      "|ab[r:1/2]c|\n[r:3/4]",       // mid-line: kept; at a line's start: removed
      "",
  };
  std::mt19937 rng(7);
  for (const auto& text : texts) {
    CAPTURE(text);
    const std::string want = strip_stream_markers(text);
    for (int trial = 0; trial < 200; ++trial) {
      StreamMarkerFilter f;
      std::string got;
      for (size_t i = 0; i < text.size();) {
        const size_t n = trial == 0 ? 1 : 1 + rng() % 6;  // one character at a time, then random cuts
        got += f.push(text.substr(i, n));
        i += n;
      }
      got += f.finish();
      CHECK(got == want);
    }
  }
  // after a prompt that ends mid-line, the first line is not at its start
  StreamMarkerFilter mid(/*at_line_start=*/false);
  CHECK(mid.push("[r:1/2]ab\n[r:2/1]cd\n") == "[r:1/2]ab\ncd\n");
}
