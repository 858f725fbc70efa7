#pragma once
// Bar-true sampling for ABC tunes: which tokens keep every bar's duration equal to the meter.
//
// The tune body is followed character by character (one ABC state machine, no LibTorch). A token is
// allowed when every character of it keeps the tune inside the grammar below and no bar can end up
// longer than the meter:
//   - a note (accidentals ^ ^^ _ __ =, A-G a-g or the rest z, octave marks , ') with a length from
//     a fixed set ("", 2 3 4 6 8 12 16 / /2 // /4 /8 3/2 3/ 3/4) that still fits the bar; chords
//     [..] (length of their first note times the length after ]), tuplets (2 .. (9 with ABC's
//     default ratios, broken rhythm > >> < <<, slurs ( ), ties -, grace notes {..}, decorations
//     . ~ T H u v k, spaces, line breaks and line continuations;
//   - bar lines | || |] |: :| :: [| (no numbered endings). A plain | is
//     allowed only where the bar is full. Shorter bars only where ABC tunes have them: a pickup (the
//     tune's first bar, the first bar after a repeat, double bar or ending), and, at a repeat, double
//     bar or ending, the bar that completes the section's pickup (pickup + it = one bar). No bar is
//     ever longer than the meter;
//   - note values stay on a grid of unit/8 outside tuplets, so a bar can always be completed;
//   - no field lines or inline fields (K:, M:, L:, [K:..]), no !..! decorations, "..", +..+, x or Z:
//     the meter and unit stay the ones the constraint counts in;
//   - the end of the tune (an end token) only right after a bar line;
//   - repeats as abc2midi reads them: a second :| needs its |:, an open repeat closes before || |];
//   - the repetition guard: a full bar may not be the (max_identical_bars+1)-th identical bar in a
//     row (same notes, same lengths), nor complete a third run in a row of the same 2 to 8 bars;
//     notes that could only complete such a bar are refused at their start. 0 turns the guard off
//     (and it is dropped for a step where it would leave nothing allowed).
// If nothing is allowed (only reachable from an opening that already broke these rules), allowed()
// lifts the mask for that step and counts it in relaxed_steps().
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "edge/music/rational.hpp"

namespace duet::music {

struct BarConstraintOptions {
  Rational bar{1, 1};       // the meter's bar length (6/8 -> 3/4 of a whole note)
  Rational unit{1, 8};      // L:
  bool compound = false;    // 6/8, 9/8, 12/8: ABC's default ratio for (5 (7 (9 is 3 instead of 2
  int max_identical_bars = 3;
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

  bool accepts(const std::string& text) const;  // would this text be allowed now
  bool can_end() const;                         // would an end token be allowed now
  bool ends_section() const;                    // ... and right after a section's end (:| || |])
  bool bar_full() const;                        // the bar being written is as long as the meter
  // Of the allowed tokens (allowed()'s answer), those after which an end token is allowed, or else
  // those after which one more token makes it so (a full bar inside an open repeat: ":" then "|").
  // All 0 when no token gets there within two (the bar is not full yet).
  std::vector<uint8_t> toward_end(const std::vector<uint8_t>& allowed) const;
  int64_t relaxed_steps() const { return relaxed_; }
  int64_t bars_closed() const;                  // bar lines written so far (opening included)

 private:
  struct State;
  std::unique_ptr<State> state_;
  std::vector<std::string> texts_;
  std::vector<uint8_t> is_end_;
  int64_t relaxed_ = 0;
};

}  // namespace duet::music
