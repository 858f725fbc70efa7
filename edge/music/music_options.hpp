#pragma once
// A music model's duet.json and the check every request for a tune goes through, wherever its
// options come from (command line, config file, the HTTP API): style, meter, unit and key are
// parsed as ABC defines them and refused with a sentence when invalid; missing ones take the
// style's defaults from the training corpus; a meter/unit combination the style was never trained
// on gives a warning (not an error: the bar constraint still keeps its bars right).
//
//   auto spec = duet::music::MusicModelSpec::from_model_dir("models/abc-folk");
//   auto tune = duet::music::check_music_options(*spec, {"oneills-jig", "", "", "D"});
//   // tune.prompt == "S:oneills-jig\nM:6/8\nL:1/8\nK:D\n", tune.warnings empty
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "edge/music/abc_fields.hpp"

namespace duet::music {

class CorpusPassages;

struct StyleStats {
  std::string meter, unit, key;       // the style's most frequent (unit: most frequent with that meter)
  int64_t tunes = 0;                  // training tunes of this style
  int64_t bars_p10 = 0, bars_p50 = 0;  // 10th percentile and median of bar lines per training tune (0: unknown)
  int64_t bars_p90 = 0;               // 90th percentile of bar lines per training tune (0: unknown)
  int64_t max_bar_repeats = 0;        // 90th percentile of how often a tune's most frequent bar comes (0: unknown)
  int64_t max_cell_repeats = 0;       // 95th percentile of the same for 2-bar cells (0: unknown)
  double max_bar_share = 0;           // 90th percentile of the share of a tune's bars its most frequent bar takes
  double max_repeat_share = 0;        // 75th percentile of the share of a tune's bars that repeat an earlier one
  double tonic_endings = 0;           // share of training tunes whose last note is the tonic
  std::map<std::string, int64_t> combos;  // "6/8 1/8" -> training tunes
};

struct MusicModelSpec {
  std::string prompt_template;  // e.g. "S:{style}\nM:{meter}\nL:{unit}\nK:{key}\n"
  std::vector<std::string> styles, meters, units, keys;
  std::map<std::string, std::string> defaults;  // style, meter, unit, key
  std::map<std::string, StyleStats> style_stats;
  std::map<std::string, double> sampling;       // temperature, top_k, top_p
  std::map<std::string, int64_t> tempos;        // rhythm -> beats per minute
  int64_t tempo_default = 0;
  int64_t max_new_tokens = 0;
  // the training tunes' passages the copy guard refuses (duet.json "corpus_passages": a file beside
  // it, scripts/abc/corpus_index.py); null when the model names none
  std::shared_ptr<const CorpusPassages> corpus_passages;

  // <model>/duet.json, or nullopt when the model has none. Throws naming the file when malformed (or
  // the corpus passages it names).
  static std::optional<MusicModelSpec> from_model_dir(const std::string& dir);
  // Fills the template (check_music_options first); an unknown style lists the known ones.
  std::string build(const std::string& style, const std::string& meter, const std::string& unit,
                    const std::string& key) const;
};

// What a caller asks for; empty fields take the defaults.
struct MusicRequest {
  std::string style, meter, unit, key;
};

struct CheckedMusicOptions {
  std::string style;  // known to the model
  Meter meter;
  Rational unit;
  Key key;
  std::string prompt;                 // the template filled with the canonical texts
  std::vector<std::string> warnings;  // sentences for the user; empty when the model knows the combination
  std::string unit_text() const { return music::unit_text(unit); }
  std::string rhythm() const;         // "jig" for "oneills-jig", "" for "oneills"
};

// Throws AbcFieldError (std::invalid_argument) with a sentence for an unknown style or a meter,
// unit or key ABC does not define.
CheckedMusicOptions check_music_options(const MusicModelSpec& spec, const MusicRequest& req);

// The note a rhythm's tempo counts: 3/8 in 6/8, 9/8 and 12/8 (3/4 in 6/4); half a bar for reels,
// hornpipes and strathspeys in 4/4, 2/2 and 2/4 (1/2, 1/2, 1/4); else the meter's own beat (1/4 in
// 3/4). `rhythm` as CheckedMusicOptions::rhythm() gives it ("reel", "" when the style has none).
Rational tempo_beat(const std::string& rhythm, const Meter& m);
// "Q:3/8=110", "Q:1/2=100": the model's tempo for the style's rhythm (or bpm when > 0), on
// tempo_beat's note.
std::string tempo_field(const MusicModelSpec& spec, const CheckedMusicOptions& o, int64_t bpm = 0);

}  // namespace duet::music
