// The copy guard (issue 24: no passage of 3 bars shared with a training tune): the hashes are
// scripts/abc/corpus_index.py's (values below computed there), the index file it writes loads and
// refuses to load when damaged, and the bar constraint refuses the note or bar line that would copy.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "edge/music/abc_fields.hpp"
#include "edge/music/bar_constraint.hpp"
#include "edge/music/corpus_passages.hpp"
#include "edge/music/music_options.hpp"

using namespace duet::music;

namespace {

std::vector<std::string> vocab_of(const std::string& chars) {
  std::vector<std::string> v;
  for (char c : chars) v.emplace_back(1, c);
  v.emplace_back("");  // the last id: EOS
  return v;
}

BarConstraint constraint(const std::string& meter, const std::string& unit, const std::string& key,
                         std::shared_ptr<const CorpusPassages> corpus, const std::string& chars = "ABCDEFGabcdefgz/2|") {
  BarConstraintOptions o;
  o.bar = parse_meter(meter).bar();
  o.unit = parse_unit(unit);
  o.compound = parse_meter(meter).compound();
  o.max_identical_bars = 3;
  const Key k = parse_key(key);
  o.tonic = k.tonic;
  o.key_signature = key_signature(k);
  o.corpus = std::move(corpus);
  auto vocab = vocab_of(chars);
  return BarConstraint(o, vocab, {static_cast<int32_t>(vocab.size() - 1)});
}

Sound note(int pitch, Rational len) {
  Sound s;
  s.notes = 1;
  s.pitch[0] = static_cast<int16_t>(pitch);
  s.len = len;
  return s;
}

}  // namespace

TEST_CASE("corpus passages: bar and passage hashes are corpus_index.py's") {
  CHECK(bar_music_hash({}) == 0x14650fb0739d0383ull);  // FNV-1a's offset: no sound
  Sound rest;
  rest.len = Rational(1, 4);
  Sound chord;
  chord.notes = 3;
  chord.pitch = {69, 62, 66, 0};  // hashed sorted, as abc_bars.py's tuple
  chord.len = Rational(3, 8);
  CHECK(bar_music_hash({note(62, Rational(1, 8)), rest, chord}) == 0xa71ad6c106d4eec3ull);
  const uint64_t three[] = {1, 2, 3};
  CHECK(passage_fingerprint(three, 3) == 0x709f5d07u);
}

TEST_CASE("corpus passages: a tune read as abc_bars.py reads it (key, accidentals, ties, > , chords, tuplets)") {
  // corpus_index.py's fingerprints of this tune's two passages of 3 bars, in K:F
  const std::string tune = "A>Bc-c^cz|[FA]2 (3Bcd c2|=B/c/d e d2B,|F3 f3|\n";
  auto index = std::make_shared<const CorpusPassages>(3, std::vector<uint32_t>{0x7b646e5fu, 0x8103b27eu});
  auto c = constraint("6/8", "1/8", "F", index);
  c.observe(tune);
  CHECK(c.copied_passages() == 2);
  // B, is not B (=B holds for its own octave only): another bar 3, so neither passage
  auto d = constraint("6/8", "1/8", "F", index);
  d.observe("A>Bc-c^cz|[FA]2 (3Bcd c2|=B/c/d e d2=B,|F3 f3|\n");
  CHECK(d.copied_passages() == 0);
  // the key signature decides the pitch: the same text in C is other music
  auto e = constraint("6/8", "1/8", "C", index);
  e.observe(tune);
  CHECK(e.copied_passages() == 0);
}

TEST_CASE("copy guard: the note that would complete a training tune's passage is refused, others are not") {
  auto spec = MusicModelSpec::from_model_dir(std::string(DUET_SOURCE_DIR) + "/models/abc-folk");
  REQUIRE(spec.has_value());
  REQUIRE(spec->corpus_passages != nullptr);
  CHECK(spec->corpus_passages->bars() == 3);
  CHECK(spec->corpus_passages->size() > 50000);  // 79,088 for the 5,104 training tunes
  // a training nottingham-reel in D opens "A/2|:d/2c/2d/2e/2 fA|Be cA|": c is C sharp there
  const std::string opening = "A/2|:d/2c/2d/2e/2 fA|Be c";
  auto guarded = constraint("4/4", "1/4", "D", spec->corpus_passages);
  guarded.observe(opening);
  CHECK_FALSE(guarded.accepts("A|"));  // B e c A: the corpus's third bar
  CHECK_FALSE(guarded.accepts("A "));
  CHECK(guarded.accepts("A"));         // A/2 ... may still follow: the note's length decides
  CHECK(guarded.accepts("B|"));
  CHECK(guarded.accepts("A/"));        // not a full bar yet: no copy so far
  auto open = constraint("4/4", "1/4", "D", nullptr);
  open.observe(opening);
  CHECK(open.accepts("A|"));  // without the index the same bar is allowed
  // in G the c is natural: other music, allowed
  auto in_g = constraint("4/4", "1/4", "G", spec->corpus_passages);
  in_g.observe(opening);
  CHECK(in_g.accepts("A|"));
  // the opening itself may copy (it is the user's): counted, not refused
  auto copied = constraint("4/4", "1/4", "D", spec->corpus_passages);
  copied.observe(opening + "A|\n");
  CHECK(copied.copied_passages() == 1);
}

TEST_CASE("copy guard: a shorter bar that would copy is refused at its bar line, and allowed() never runs dry") {
  // 3/4 with a pickup of a quarter: the section's last bar D4 is the pickup's complement, closed by :|
  const std::string text = "A2|B2c dcB|A2G F2E|D4";
  const std::string chars = "ABCDEFGabcdefgz234:|";
  // the passage B2c dcB / A2G F2E / D4 in D (c and f sharp), lengths in whole notes
  const uint64_t bars[] = {
      bar_music_hash({note(71, Rational(1, 4)), note(73, Rational(1, 8)), note(74, Rational(1, 8)),
                      note(73, Rational(1, 8)), note(71, Rational(1, 8))}),
      bar_music_hash({note(69, Rational(1, 4)), note(67, Rational(1, 8)), note(66, Rational(1, 4)), note(64, Rational(1, 8))}),
      bar_music_hash({note(62, Rational(1, 2))})};
  auto index = std::make_shared<const CorpusPassages>(3, std::vector<uint32_t>{passage_fingerprint(bars, 3)});
  auto read = constraint("3/4", "1/8", "D", index, chars);
  read.observe(text + ":|\n");
  REQUIRE(read.copied_passages() == 1);  // the constraint reads the passage as these sounds
  auto c = constraint("3/4", "1/8", "D", index, chars);
  c.observe(text);
  CHECK_FALSE(c.accepts(":"));  // neither :| nor :: may close the copied bar
  CHECK(c.accepts("z2"));       // D4 z2: a full bar of other music
  const auto allowed = c.allowed();
  CHECK(std::count(allowed.begin(), allowed.end(), 1) > 0);
  CHECK(c.relaxed_steps() == 0);
  auto unguarded = constraint("3/4", "1/8", "D", nullptr, chars);
  unguarded.observe(text);
  CHECK(unguarded.accepts(":"));
}

TEST_CASE("corpus passages: the file loads; a damaged one is refused with a sentence naming it") {
  const std::string path = std::string(DUET_BINARY_DIR) + "/test_corpus_passages.bin";
  auto write = [&](const std::string& bytes) {
    std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  };
  auto u32 = [](uint32_t v) { return std::string{char(v & 0xff), char(v >> 8 & 0xff), char(v >> 16 & 0xff), char(v >> 24)}; };
  write("DUETPSG1" + u32(3) + u32(2) + u32(0x8103b27eu) + u32(0x7b646e5fu));
  auto idx = CorpusPassages::load(path);
  CHECK(idx->bars() == 3);
  CHECK(idx->size() == 2);
  CHECK(idx->contains(0x7b646e5fu));  // sorted on load
  CHECK_FALSE(idx->contains(0x7b646e60u));
  write("DUETPSG1" + u32(3) + u32(3) + u32(1) + u32(2));  // one fingerprint short
  CHECK_THROWS_WITH_AS(CorpusPassages::load(path), doctest::Contains("corpus_index.py"), std::runtime_error);
  write("NOTPSG11" + u32(3) + u32(0));
  CHECK_THROWS_WITH_AS(CorpusPassages::load(path), doctest::Contains(path.c_str()), std::runtime_error);
  write("DUETPSG1" + u32(40) + u32(0));
  CHECK_THROWS_WITH_AS(CorpusPassages::load(path), doctest::Contains("bars per passage"), std::runtime_error);
  std::remove(path.c_str());
  CHECK_THROWS_WITH_AS(CorpusPassages::load(path), doctest::Contains("cannot read"), std::runtime_error);
}
