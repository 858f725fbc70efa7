#pragma once
// The training corpus's passages of a few bars (3 for abc-folk), as fingerprints, so that the bar
// constraint can refuse to close a bar that would make a tune copy one (issue 24: no passage longer
// than 2 bars shared with a training tune). scripts/abc/corpus_index.py writes the file from the
// training split, reading bars as scripts/abc/evaluate.py does; the hashes here are the same
// (see that script's doc): a bar is its sounds (MIDI pitches after the key signature and the bar's
// accidentals, a chord's pitches sorted, or a rest; length as a fraction of a whole note), a
// passage the FNV-1a of its bars' hashes, its fingerprint the upper 32 bits.
//
// The index is immutable and shared by every tune the model writes (shared_ptr<const>): abc-folk's
// 79,088 fingerprints take 316 KB, read once with the model's duet.json; a lookup is a binary search.
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "edge/music/rational.hpp"

namespace duet::music {

// One note, chord or rest of a bar as scripts/abc/abc_bars.py reads it.
struct Sound {
  std::array<int16_t, 4> pitch{};  // MIDI numbers (a chord's in the order written; hashed sorted)
  int8_t notes = 0;                // 0: a rest; 1: a note; 2-4: a chord
  Rational len;                    // whole note = 1
};

uint64_t bar_music_hash(const std::vector<Sound>& bar);
uint32_t passage_fingerprint(const uint64_t* bar_hashes, int bars);  // oldest bar first

class CorpusPassages {
 public:
  CorpusPassages(int bars, std::vector<uint32_t> fingerprints);  // sorts them
  // The file corpus_index.py writes. Throws std::runtime_error naming the file and what was wrong.
  static std::shared_ptr<const CorpusPassages> load(const std::string& path);

  int bars() const { return bars_; }
  size_t size() const { return fps_.size(); }
  bool contains(uint32_t fingerprint) const;
  // do these bars (bars() of them, oldest first) make a passage of the corpus?
  bool contains(const uint64_t* bar_hashes) const { return contains(passage_fingerprint(bar_hashes, bars_)); }

 private:
  int bars_;
  std::vector<uint32_t> fps_;
};

}  // namespace duet::music
