#pragma once
// Bar-true, valid ABC for tunes: which tokens keep the text ABC that abc2midi and abcm2ps read
// without an error, with every bar as long as the meter (issue 24). Random walks over the abc-folk
// vocabulary through this grammar give no abc2midi error and no abcm2ps error but layout.
//
// The tune body is followed character by character (one ABC state machine, no LibTorch). A token is
// allowed when every character of it keeps the tune inside the grammar below and no bar can end up
// longer than it may be:
//   - a note (accidentals ^ ^^ _ __ =, A-G a-g or the rest z, at most three octave marks , ') with
//     a length from a fixed set ("", 2 3 4 6 8 12 16 / /2 // /4 /8 3/2 3/ 3/4) that still fits the
//     bar; chords [..] of 1-4 notes with no length inside and no octave mark after ] ("[G2F2],,/"
//     is an abc2midi error); tuplets (2 (3 (4 (6 whose notes share one written length, with no
//     chord or grace notes inside ((5 (7 (9: abc2midi's default ratio is not the standard's);
//     broken rhythm > >> < << between two undotted notes of one length; grace notes {..} of 1-4
//     plain notes before a note; decorations ~ T u v (H lengthens a note in abc2midi, k is none,
//     after . abc2midi refuses a tie or >); spaces, line breaks, line continuations \ at a line's end;
//   - ties - from a note (not a rest or chord) to the next note, which sounds the same and comes
//     with no decoration or grace note before it; never into a repeat, section end, ending or the
//     tune's end ("G3-:|" then the end: "could not find note to be tied");
//   - slurs ( ... ) not nested (abc2midi: "slur within slur"), closed right after a note (abcm2ps:
//     ")" after "(3" or a bar line is a bad character), before a repeat, section end or the end,
//     and across one bar line at most (the corpus's slurs: one open for 30 bars blocked every end);
//   - lines: no blank line (it ends the tune), a note on every line, no "x:" at a line's start
//     (a field), at most 8 bars, 80 characters or 48 notes a score line, and no wider than abcm2ps
//     can set it (its least width, estimated from the notes, dots, accidentals, ties and bar lines:
//     the line ends at the first bar line past 540 pt or where the tune's widest bar would not fit
//     in 620; past 620 no note starts) (abcm2ps: "line too much shrunk");
//   - bar lines | || |] |: :| :: and numbered endings |1 ... :|2 ... (closed by || |] or |:); a
//     first ending is closed by :|2 after at most 4 plain bar lines (in a repeat that starts with a
//     pickup its last bar is then the pickup's complement); no |1 where a score line is full, and
//     the bar line after a :|2 that passed the line's room ends it. While the tune is closing
//     (set_closing), no repeat opens and an open repeat that began with a pickup ends at the next
//     complement with :|.
//     Bar lengths as abc2midi checks them: the tune's first bar may be a pickup of at most half a
//     bar; any other shorter bar sits at a bar line other than | and is the pickup's complement
//     (pickup + it = one bar), and then the next bar is the pickup again; a repeat's last bar and
//     its first bar add up to one bar (or are both full). So tunes with a pickup keep it through
//     every section, as abc2midi wants ("|:A|...|G3G2:|"). No bar is ever longer than the meter;
//   - note values stay on a grid of unit/8 outside tuplets, so a bar can always be completed;
//   - no field lines or inline fields (K:, M:, L:, [K:..]), no !..! decorations, "..", +..+, x, y,
//     Z or [|: the meter and unit stay the ones the constraint counts in;
//   - the end of the tune (an end token) only right after a bar line, with no repeat, ending, tie,
//     slur, decoration or line continuation open;
//   - repeats as abc2midi reads them: a second :| needs its |:, an open repeat closes before || |];
//     a :| without |: only in the tune's first section;
//   - the repetition guard, on bars compared as music (the same pitches and lengths however
//     written: B/2 = B/, A>B = A3/2B/, B//-B// = B/, an accidental holds to the bar's end), every bar
//     with notes, short ones (pickups, complements) too, as the corpus's figures count them: a bar
//     may not be the (max_identical_bars+1)-th equal bar in a row, nor complete a third run in a
//     row of the same 2 to 8 bars, nor come more often in the tune than max_bar_repeats, nor
//     complete a 2-bar cell (any two bars in a row: "G | GBdBA" is one) that came max_cell_repeats
//     times already, nor take more than max_bar_share of the tune's bars, counted over at least
//     share_bars (the style's corpus figures: a 16-bar tune with one bar 4 times is one a musician
//     calls monotonous), nor, a full bar, repeat an earlier bar (but one ending on the tonic) once
//     max_repeat_share of the bars (over at least share_bars) repeat one (a section's pickup and its
//     cadence's complement come back at every section);
//     notes that could only complete such a bar are refused at their start (a full bar, a pickup
//     after its complement, a due ending's complement), a shorter bar that may still go on at its
//     bar line (a complement). max_identical_bars 0 turns the guard off (and it is dropped for a
//     step where it would leave nothing allowed);
//   - the copy guard (with the corpus's passages, corpus_passages.hpp): a bar that would make the
//     tune's last 3 bars (as scripts/abc/evaluate.py reads them: MIDI pitches and lengths) a
//     passage of a training tune is refused, the note that must complete it at its start and a
//     shorter bar at its bar line; dropped with the repetition guard where nothing is left;
//   - no second space in a row where any other token (or the end) is allowed (allowed() only:
//     accepts() and the look-aheads still read spaces);
// If nothing is allowed (only reachable from an opening that already broke these rules), allowed()
// lifts the mask for that step and counts it in relaxed_steps().
#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "edge/music/rational.hpp"

namespace duet::music {

class CorpusPassages;

struct BarConstraintOptions {
  Rational bar{1, 1};       // the meter's bar length (6/8 -> 3/4 of a whole note)
  Rational unit{1, 8};      // L:
  bool compound = false;    // 6/8, 9/8, 12/8: ABC's default ratio for (5 (7 (9 is 3 instead of 2
  int max_identical_bars = 3;
  int max_bar_repeats = 0;   // the most times one bar may come in a tune (0: no limit)
  int max_cell_repeats = 0;  // the most times one 2-bar cell may come in a tune (0: no limit)
  // the largest share of a tune's bars one bar may take (0: no limit), over at least share_bars bars:
  // a bar may come max(2, max_bar_share * max(bars so far + 1, share_bars)) times
  double max_bar_share = 0;
  int share_bars = 0;
  // the largest share of a tune's bars that may repeat an earlier bar of it (0: no limit), over at
  // least share_bars bars: a full bar equal to an earlier one (and not ending on the tonic) is refused
  // once max(1, max_repeat_share * max(bars so far + 1, share_bars)) bars repeated one
  double max_repeat_share = 0;
  char tonic = 0;            // the key's tonic letter (upper case; 0: unknown), for last_note_tonic()
  int tonic_shift = 0;       // its accidental in the key (+1 sharp, -1 flat)
  std::array<int, 7> key_signature{};  // per letter A-G: +1 sharp, -1 flat in the key (the sounds' MIDI pitches)
  // the corpus's passages (null: no copy guard): a bar that would make the tune's last corpus->bars()
  // bars a passage of a training tune is refused (shared by every tune; see corpus_passages.hpp)
  std::shared_ptr<const CorpusPassages> corpus;
};

class BarConstraint {
 public:
  // token_texts[id] = the text token id adds ("" for special tokens, which are never allowed);
  // end_ids = the tokens that end the tune (EOS).
  BarConstraint(const BarConstraintOptions& opts, std::vector<std::string> token_texts, std::vector<int32_t> end_ids);
  ~BarConstraint();
  BarConstraint(BarConstraint&&) noexcept;
  BarConstraint& operator=(BarConstraint&&) noexcept;

  // An opening already written (the tune body of the prompt): followed, never refused.
  void observe(const std::string& text);
  // One flag per token id: 1 where the token keeps the tune bar-true.
  std::vector<uint8_t> allowed();
  // The token picked (allowed or not: a relaxed step's token is followed as well as possible).
  void advance(int32_t id);
  // The tune is closing (its budget is nearly spent): no repeat opens (|: ::), and in an open repeat
  // that began with a pickup the next bar that can be is the pickup's complement, closed by :|.
  void set_closing(bool closing);

  bool accepts(const std::string& text) const;  // would this text be allowed now
  bool can_end() const;                         // would an end token be allowed now
  bool ends_section() const;                    // ... and right after a section's end (:| || |])
  bool bar_full() const;                        // the bar being written is as long as the meter
  // Of the allowed tokens (allowed()'s answer), those after which an end token is allowed, or else
  // those after which one more token makes it so (a full bar inside an open repeat: ":" then "|").
  // With section_end, only ends right after :| || or |]. All 0 when no token gets there within two
  // (the bar is not full yet).
  std::vector<uint8_t> toward_end(const std::vector<uint8_t>& allowed, bool section_end = false) const;
  // Is the bar as long as a section's last bar may be (full, or the pickup's complement), with
  // nothing pending, or is a bar line that may still become :| || |] begun after such a bar?
  // (where toward_end(.., true) can find something; cheap)
  bool section_end_near() const;
  int64_t relaxed_steps() const { return relaxed_; }
  // bars closed that made the tune's last bars a passage of the corpus (an opening's, or where the
  // guard was dropped; 0 without corpus passages)
  int64_t copied_passages() const;
  int64_t bars_closed() const;                  // bar lines written so far (opening included)
  // does one bar (as music, short bars too, as evaluate.py counts) make up a quarter of the bars
  // with notes or more (issue 24's "monotonous" tune)? A bar line being read counts as ended.
  bool monotonous() const;
  int64_t section_bars() const;                 // bar lines of the last section closed (:| :: || |]; 0: none yet)
  // bar lines the open section would have, the one the bar being written closes included
  int64_t open_section_bars() const;
  // Was the last note written the key's tonic (letter as the tonic, no accidental against the key)?
  bool last_note_tonic() const;
  // Can one more note finish the bar being written, with a length a musician writes at a cadence
  // (the rest of the bar is at most half a bar)? The cadence preference looks at the note there.
  bool one_note_left() const;
  // The tokens that start a note with the tonic's letter (both octaves); all 0 without a tonic.
  const std::vector<uint8_t>& tonic_tokens() const { return tonic_tokens_; }

 private:
  struct State;
  void refuse_space_run(std::vector<uint8_t>& ok) const;  // allowed(): no second space in a row while anything else is allowed
  std::unique_ptr<State> state_;
  std::vector<std::string> texts_;
  std::vector<uint8_t> is_end_;
  std::vector<uint8_t> tonic_tokens_;
  std::shared_ptr<const CorpusPassages> corpus_;  // kept alive here; the state reads it through a plain pointer
  int64_t relaxed_ = 0;
};

}  // namespace duet::music
