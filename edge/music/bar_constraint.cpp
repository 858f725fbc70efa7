#include "edge/music/bar_constraint.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <utility>

#include "edge/music/corpus_passages.hpp"

namespace duet::music {

namespace {

// Note lengths the constraint lets a note or chord take (multiples of the unit), as written.
const char* const kLengths[] = {"", "2", "3", "4", "6", "8", "12", "16", "/", "/2", "//", "/4", "/8", "3/2", "3/", "3/4"};
// Bar lines and numbered endings, as written. A first ending |1 must be closed by :|2, and the
// tune cannot end inside either ending, so a tune always has a way to an end. No "[|": abc2midi
// does not end a bar at one that starts a line (60 of 1.3 M characters in the corpus).
const char* const kBarTokens[] = {"|", "||", "|]", "|:", ":|", "::", "|1", ":|2"};

bool is_length(const std::string& s) {
  for (const char* l : kLengths)
    if (s == l) return true;
  return false;
}
bool is_bar_token(const std::string& s) {
  for (const char* t : kBarTokens)
    if (s == t) return true;
  return false;
}
bool bar_token_prefix(const std::string& s) {
  for (const char* t : kBarTokens)
    if (std::strncmp(t, s.c_str(), s.size()) == 0 && std::strlen(t) >= s.size()) return true;
  return false;
}

// ABC's reading of a length suffix: "3/2" = 3/2, "/" = 1/2, "//" = 1/4, "" = 1
Rational length_value(const std::string& s) {
  size_t i = 0;
  int64_t num = 0, den_digits = 0, slashes = 0;
  bool has_num = false, has_den = false;
  for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) num = num * 10 + (s[i] - '0'), has_num = true;
  for (; i < s.size() && s[i] == '/'; ++i) ++slashes;
  for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) den_digits = den_digits * 10 + (s[i] - '0'), has_den = true;
  if (!has_num) num = 1;
  int64_t den = 1;
  if (slashes > 0) den = has_den ? den_digits << (slashes - 1) : (int64_t{1} << std::min<int64_t>(slashes, 20));
  if (den == 0) den = 1;
  return {num, den};
}

const Rational kMinLength(1, 8);  // "/8"
constexpr int kMaxBarsPerLine = 8;
constexpr int kMaxLineChars = 80;
// notes a score line holds before its next bar line ends it: 8 bars of eight 8th notes and a pickup
// (66 notes, ryans-hornpipe seed 40005) gave abcm2ps "line too much shrunk"; the corpus's score
// lines hold 26 notes (median), 52 (99th percentile)
constexpr int kMaxLineNotes = 48;
// abcm2ps's least width of a score line, estimated in tenths of a point: "line too much shrunk" when
// it passes the staff's width (682 pt on US letter, 659 on A4) without passing abcm2ps's own
// (smaller) estimate, after which it would break the line itself. A fit to the least widths
// abcm2ps 8.14 reported for 1,162 score lines of the corpus and of generated tunes (residual sd
// 9 pt; every line estimated at 620 pt or less measured 618 or less; the errors, 650-712): a line
// holds its clef and key signature, the first line the meter too; dots (> and dotted lengths),
// accidentals, ties, chords and grace notes widen their notes. A dense line of triplets and broken
// rhythm (ryans-hornpipe seed 42001: 46 notes, 700 pt) passed the count of notes.
constexpr int kLineBase = 345, kFirstLine = 160, kKeyAccidental = 55;
constexpr int kNoteWidth = 90, kChordWidth = 95, kAccidentalWidth = 85, kDotWidth = 75, kTieWidth = 75;
constexpr int kGraceGroupWidth = 75, kGraceNoteWidth = 60, kBarWidth = 165, kThickBarWidth = 200;
// a score line ends at the first bar line past kSoftWidth, or where the widest bar of the tune so far
// would take it past kHardWidth; no note starts past kHardWidth (a line break comes first)
constexpr int kSoftWidth = 5400, kHardWidth = 6200;
constexpr int kMaxFirstEndingBars = 4;  // plain bar lines in a first ending (the corpus's are 1-4 bars)
// bar lines a slur may cross: 162 of the training tunes' 23,843 slurs cross one, 1 crosses two (an
// aird-march tune, seed 33009, left one open for 30 bars: no section's end, no end, the budget rule)
constexpr int kMaxSlurBarLines = 1;

bool note_letter(char c) { return (c >= 'A' && c <= 'G') || (c >= 'a' && c <= 'g') || c == 'z'; }
bool accidental(char c) { return c == '^' || c == '_' || c == '='; }
// a length abcm2ps draws with a dot or two (3/8, 3/16, 7/16: the numerator's odd part is 3 or 7)
bool dotted(Rational v) {
  int64_t n = v.num;
  while (n > 0 && n % 2 == 0) n /= 2;
  return n == 3 || n == 7;
}
bool length_char(char c) { return (c >= '0' && c <= '9') || c == '/'; }
// decorations abc2midi and abcm2ps both know and that leave a note's length alone (H, a fermata,
// lengthens it in abc2midi; k is no decoration: an abcm2ps error; after ".", a staccato, abc2midi
// refuses a tie or a broken rhythm)
bool decoration(char c) { return c == '~' || c == 'T' || c == 'u' || c == 'v'; }

// an undotted length (a power of two times the unit): the only ones a > or < may lengthen and
// shorten into lengths abcm2ps can draw ("A3>A": "note too much dotted")
bool undotted(Rational v) {
  return v.num > 0 && (v.num & (v.num - 1)) == 0 && (v.den & (v.den - 1)) == 0 && (v.num == 1 || v.den == 1);
}

int accidental_shift(const std::string& acc) {
  int shift = 0;
  for (char c : acc) shift += c == '^' ? 1 : c == '_' ? -1 : 0;
  return shift;
}

uint64_t mix(uint64_t h, uint64_t v) {  // FNV-1a step over 8 bytes
  for (int i = 0; i < 8; ++i) h = (h ^ ((v >> (8 * i)) & 0xff)) * 1099511628211ull;
  return h;
}

Rational tuplet_ratio(int p, bool compound) {  // q/p with ABC's default q
  int q = compound ? 3 : 2;
  if (p == 2 || p == 4 || p == 8) q = 3;
  if (p == 3 || p == 6) q = 2;
  return {q, p};
}

using Notes = std::vector<std::pair<std::string, Rational>>;

// a bar's music as one number: pitches (as the bar's accidentals leave them) and lengths
uint64_t bar_hash(const Notes& notes) {
  uint64_t h = 1469598103934665603ull;
  for (const auto& [pitch, len] : notes) {
    for (char c : pitch) h = mix(h, static_cast<uint64_t>(static_cast<unsigned char>(c)));
    h = mix(mix(h, static_cast<uint64_t>(len.num)), static_cast<uint64_t>(len.den) | (uint64_t{1} << 62));
  }
  return h;
}

int count_of(const std::vector<std::pair<uint64_t, int>>& counts, uint64_t h) {
  for (const auto& [k, n] : counts)
    if (k == h) return n;
  return 0;
}

void add_count(std::vector<std::pair<uint64_t, int>>& counts, uint64_t h) {
  for (auto& [k, n] : counts)
    if (k == h) return void(++n);
  counts.emplace_back(h, 1);
}

}  // namespace

struct BarConstraint::State {
  enum class Mode { Body, BarLine, Bracket, Chord, Grace, Paren };
  BarConstraintOptions o;
  Rational grid;

  Mode mode = Mode::Body;
  bool line_start = true;
  // the bar being written
  Rational dur{0};
  Notes notes;                                          // its music (pitches as the bar's accidentals leave them)
  std::vector<Sound> sounds;  // the same as scripts/abc reads it (MIDI pitches), for the corpus's passages
  std::vector<std::pair<std::string, std::string>> bar_acc;  // accidentals written in this bar: note -> accidental
  int64_t bars = 0;       // bar lines closed (the empty bar of a "|:" starting a line included)
  int64_t note_bars = 0;  // bars with notes closed
  // bar lengths as abc2midi checks them (see the header)
  Rational need{0};            // the next bar must be this long (the pickup after its complement); 0: any
  bool pickup_known = false;   // the tune's first bar is closed: pickup is its length if short, else 0
  Rational pickup{0};
  bool region_known = false;   // the current repeat region's first bar is closed, with this length
  Rational region_first{0};
  bool implicit_ok = true;     // no bar line but | yet: a :| repeats from the tune's start
  int ending = 0;              // 1: inside a first ending (|1 ... :|2), 2: inside a second (:|2 ... || |] |:)
  int ending_bars = 0;         // plain bar lines inside the first ending
  // a note whose length suffix is being read
  bool note = false;
  std::string pitch, suffix;
  Rational base;
  bool note_at_line_start = false;
  std::string acc;  // accidentals read, letter still to come
  // chord
  bool chord_first_done = false;
  Rational chord_first;
  std::string chord_pitch, chord_suffix;
  // tuplet, broken rhythm
  int tup_left = 0;
  Rational tup_ratio{1};
  Rational tup_written{0};  // the tuplet's notes share its first note's written length (0: none yet)
  bool after_note = false;  // the last thing was a note (for > <)
  int broken_n = 0;
  char broken_c = 0;
  Rational broken_base, broken_next{0};
  Rational broken_factor{1};    // the factor the marks so far gave the pair's first note
  Rational written{0};          // the last committed note's written length (base x suffix)
  Rational broken_written{0};   // abc2midi: both notes of a > pair have the same written length
  bool need_note = false;       // a decoration or grace notes were written: a note must follow
  bool tok_line_start = false;  // the bar line being read began a line
  bool pair_second = false;     // the last note was the second of a > pair (abc2midi: no A>B>c)
  bool last_in_tuplet = false;  // the last note belonged to a tuplet (no > after it: off the grid)
  int grace_len = 0;
  std::string bar_tok;
  std::string last_bar;  // the last bar line closed ("|", ":|", "|]", ...)
  // slurs, line continuations, the last note
  bool slur_open = false;
  int slur_notes = 0;
  int slur_bars = 0;        // bar lines the open slur has crossed
  bool backslash = false;   // a \ was written: only a line break may follow
  bool line_blank = true;   // the line so far holds only spaces
  int line_len = 0;         // characters on this line, spaces not counted
  // the score line: source lines joined by "\" continuations are one line of the score for abcm2ps
  int score_len = 0;        // its characters, spaces not counted
  char line_first = 0;      // its first character but spaces
  int score_bars = 0;       // bar lines on the score line
  int score_notes = 0;      // notes (and rests) on the score line
  int score_width = 0;      // the score line's least width as abcm2ps sets it, estimated (tenths of a point)
  int bar_width = 0;        // the same for the bar being written
  int widest_bar = 0;       // the widest bar of the tune so far
  bool first_line = true;   // the tune's first score line (it holds the meter)
  int line_notes = 0;       // notes on this line
  bool line_full = false;   // a bar line ended the score line's room: a line break (or the end) comes next
  bool continued = false;   // a line continuation with no music after it yet
  bool last_tonic = false;  // the last note is the key's tonic
  // the repetition guard: the last bars as music, and how often each bar and 2-bar cell came; every
  // bar with notes, short ones (pickups, complements) too, as evaluate.py and the corpus's figures
  // (style_stats.py) count them: monotonous() reads the same counts (a 5/8 complement bar 4 times in
  // 13 bars passed as "not monotonous"), and a loop of short bars is one (misc seed 93005: "G |
  // GBdBA ||" to the budget, every bar short, none counted when the guard counted full bars only)
  std::vector<uint64_t> history;
  std::vector<std::pair<uint64_t, int>> bar_counts, cell_counts;
  std::vector<uint64_t> seen;  // every bar with notes closed so far (as music), for max_repeat_share
  int repeated = 0;            // bars equal to one before them in the tune
  // sections: bar lines at the last section's end (:| :: || |]) and the length of the last section
  int64_t section_start = 0, last_section = 0;
  // a tie: the next note must have this pitch (letter and octave), sounding the same (tie_sounding:
  // accidentals as the bar leaves them: abc2midi ties only equal pitches)
  std::string tie_pitch, tie_sounding;
  bool repeat_open = false;  // |: or :: without its :| yet
  bool closed_once = false;  // a :| came: the next one needs a |: (abc2midi assumes none)
  int chord_notes = 0;
  Sound chord_sound;        // the chord being read: its notes' MIDI pitches
  Rational broken_sound{0};  // the > pair's first sound's length before the marks (as abc_bars.py: a tied note's whole)
  // the copy guard: the corpus's passages, and the last bars with notes as music (sounds' hashes, oldest first)
  const CorpusPassages* corpus = nullptr;
  std::array<uint64_t, 7> recent{};
  int recent_n = 0;
  int64_t copied = 0;  // bars closed as a corpus passage's last (the opening's, or with the guard dropped)
  bool guard = true;  // the repetition guard (off for a step where it left nothing allowed)
  bool closing = false;  // the tune is ending (set_closing): no repeat opens, an open one closes (repeat_due)
  bool after_space = false;  // the last character was a space (allowed(): no second one while anything else may come)

  explicit State(const BarConstraintOptions& opts) : o(opts), grid(opts.unit / Rational(8)), corpus(opts.corpus.get()) {
    o.corpus.reset();  // states are copied for every look-ahead: no reference count to touch
    score_width = line_base();
  }

  int line_base() const {  // a score line's clef and key signature (and the meter on the first)
    int sf = 0;
    for (int a : o.key_signature) sf += a != 0;
    return kLineBase + (first_line ? kFirstLine : 0) + kKeyAccidental * sf;
  }
  void widen(int w) { score_width += w, bar_width += w; }
  // could one more note (and the notes already promised) still start on this score line?
  bool room_for_note(int notes = 1, int extra = 0) const {
    const int promised = tup_left + (broken_next != Rational(0) ? 1 : 0);
    return score_width + extra + kNoteWidth * (notes + promised) <= kHardWidth;
  }

  bool tuplet_fits() const {  // could a tuplet start here ("(" with a slur open can be nothing else)?
    if (tup_left > 0 || broken_next != Rational(0)) return false;
    for (int p = 2; p <= 9; ++p)
      if (dur + obligations() + Rational(p) * o.unit * kMinLength * tuplet_ratio(p, o.compound) <= limit()) return true;
    return false;
  }

  // the most this bar may hold: the pickup after its complement; in a first ending that is due to
  // close (past its kMaxFirstEndingBars bars) where the repeat's first bar is a pickup, the pickup's
  // complement, the only bar :|2 closes on (full bars there never close the ending: oneills-jig,
  // oneills-reel, ryans-jig, aird-jig seeds 33003/33004 ran to the budget writing them)
  Rational limit() const {
    if (need > Rational(0)) return need;
    return ending_due() || repeat_due() ? o.bar - region_first : o.bar;
  }
  // the tune is closing (set_closing: the budget is near) inside a repeat that began with a pickup:
  // this bar is its last, the pickup's complement, the only bar :| closes on (a ryans-strathspey tune
  // of full bars in such a repeat ran to the token limit, cut inside a bar); a bar already past the
  // complement is finished first
  bool repeat_due() const {
    return closing && repeat_open && ending == 0 && region_known && region_first > Rational(0) &&
           region_first < o.bar && dur <= o.bar - region_first;
  }
  bool ending_due() const {
    return ending == 1 && ending_bars >= kMaxFirstEndingBars && region_known && region_first > Rational(0) &&
           region_first < o.bar;
  }
  // the due first ending's (or closing repeat's) last bar is complete: only :|2 (:|) may follow (spaces too, unless a slur must
  // still close right after the last note), no line break (":" cannot start a line), no tie
  bool due_bar_done() const { return (ending_due() || repeat_due()) && dur > Rational(0) && dur == limit(); }
  // a slur that crossed its bar lines, in a full bar: only ")" may follow the last note (no space,
  // line break, "\" or tie before it: the bar line cannot come before the ")")
  bool slur_due() const {
    return slur_open && slur_bars >= kMaxSlurBarLines && dur > Rational(0) && dur == limit() && tup_left == 0 &&
           broken_next == Rational(0);
  }

  Rational obligations() const {  // the least duration notes already promised must still add
    Rational r(0);
    if (broken_next != Rational(0)) r = r + broken_written * broken_next;  // the pair's second note
    if (tup_left > 0) r = r + Rational(tup_left) * tuplet_note() * tup_ratio;
    return r;
  }
  Rational tuplet_note() const {  // the least written length the tuplet's next notes take
    return tup_written > Rational(0) ? tup_written : o.unit * kMinLength;
  }
  // the factor the next committed note gets (broken rhythm, tuplet)
  Rational next_factor() const {
    Rational f(1);
    if (broken_next != Rational(0)) f = f * broken_next;
    if (tup_left > 0) f = f * tup_ratio;
    return f;
  }
  // can a note of base `b` whose suffix starts with `prefix` still fit the bar? (some length must
  // also pass commit_note's checks, with room for the tuplet's other notes: no dead end later)
  bool note_fits(Rational b, const std::string& prefix) const {
    for (const char* l : kLengths) {
      if (std::strncmp(l, prefix.c_str(), prefix.size()) != 0 || std::strlen(l) < prefix.size()) continue;
      const Rational w = b * length_value(l);
      if (broken_next != Rational(0) && w != broken_written) continue;
      if (tup_left > 0 && tup_written > Rational(0) && w != tup_written) continue;
      const Rational d = w * next_factor();
      const Rational after = dur + d;
      const bool tuplet_done = tup_left <= 1;
      const Rational rest = tuplet_done ? Rational(0) : Rational(tup_left - 1) * w * tup_ratio;
      if (after + rest > limit() || (tuplet_done && !after.multiple_of(grid))) continue;
      // a note that must complete the bar (a full one, or a pickup after its complement, or a due
      // ending's complement): not into a loop, nor a copy of the corpus
      const bool closing = after == limit();
      if (closing && (o.max_identical_bars > 0 || corpus != nullptr) && tuplet_done && broken_next == Rational(0) &&
          guard) {
        State s = *this;
        s.suffix = l;
        s.base = b;
        s.commit_note(false);
        if (s.loops() || s.copies()) continue;
      }
      return true;
    }
    return false;
  }

  // "C," and "c'": a comma lowers an upper-case note, an apostrophe raises a lower-case one; never
  // after a chord ("[GB],": abc2midi and abcm2ps stop there)
  bool octave_mark_fits(char c) const {
    if ((c != ',' && c != '\'') || !suffix.empty() || (!pitch.empty() && pitch[0] == '[') ||
        std::count(pitch.begin(), pitch.end(), c) >= 3)
      return false;  // at most three octave marks (a tied note can always take the first's)
    char letter = 0;
    for (char x : pitch)
      if (std::isalpha(static_cast<unsigned char>(x))) letter = x;
    if (!tie_pitch.empty() && tie_pitch.compare(0, strip_accidentals(pitch).size() + 1, strip_accidentals(pitch) + c) != 0)
      return false;  // a tied note takes the first note's octave
    return c == ',' ? (letter >= 'A' && letter <= 'G') : (letter >= 'a' && letter <= 'g');
  }

  // the note as it sounds in this bar: an accidental holds for the same note to the bar's end
  std::string sounding_pitch(const std::string& p) {
    if (p.empty() || p[0] == '[' || p == "z") return p;
    const std::string plain = strip_accidentals(p);
    const std::string written_acc = p.substr(0, p.size() - plain.size());
    for (auto& [n, a] : bar_acc)
      if (n == plain) {
        if (!written_acc.empty()) a = written_acc;
        return a + plain;
      }
    if (!written_acc.empty()) bar_acc.emplace_back(plain, written_acc);
    return p;
  }

  bool commit_note(bool strict) {  // the pending note's length is known: add it to the bar
    note = false;
    if (strict && !is_length(suffix)) return false;
    const Rational w = base * length_value(suffix);
    const bool broken_ok = broken_next == Rational(0) || w == broken_written;
    pair_second = broken_next != Rational(0);
    written = w;
    Rational d = w * next_factor();
    broken_next = Rational(0);
    broken_n = 0;
    broken_c = 0;
    last_in_tuplet = tup_left > 0;
    const bool tuplet_ok = tup_left == 0 || tup_written == Rational(0) || w == tup_written;
    if (tup_left > 0 && tup_written == Rational(0)) tup_written = w;
    if (tup_left > 0) --tup_left;
    dur = dur + d;
    const std::string sounding = sounding_pitch(pitch);
    const bool tie_ok = tie_pitch.empty() || (strip_accidentals(pitch) == tie_pitch && sounding == tie_sounding);
    if (!tie_pitch.empty() && tie_ok && !notes.empty() && notes.back().first == sounding) {
      notes.back().second = notes.back().second + d;  // B//-B// is B/
      if (!sounds.empty()) sounds.back().len = sounds.back().len + d;
    } else {
      notes.emplace_back(sounding, d);
      sounds.push_back(sound_of(sounding, d));
    }
    after_note = true;
    ++line_notes;
    ++score_notes;
    const bool chord = !pitch.empty() && pitch[0] == '[';  // (a chord's accidentals were counted inside it)
    widen(kNoteWidth + (chord ? kChordWidth : 0) + (!chord && !pitch.empty() && accidental(pitch[0]) ? kAccidentalWidth : 0) +
          (dotted(w) ? kDotWidth : 0));
    broken_base = d;
    tie_pitch.clear();
    ++slur_notes;
    if (pitch != "z") {
      const std::string plain = strip_accidentals(sounding);
      const std::string a = sounding.substr(0, sounding.size() - plain.size());
      last_tonic = o.tonic != 0 && !plain.empty() && plain[0] != '[' &&
                   std::toupper(static_cast<unsigned char>(plain[0])) == o.tonic &&
                   (a.empty() || accidental_shift(a) == o.tonic_shift);
    }
    if (!strict) return true;
    if (!tie_ok || !broken_ok || !tuplet_ok) return false;
    if (dur + obligations() > limit()) return false;
    if (tup_left == 0 && !dur.multiple_of(grid)) return false;
    if (dur == limit() && tup_left == 0 && loops()) return false;
    if (dur == limit() && tup_left == 0 && copies()) return false;
    return true;
  }

  // the MIDI pitch of a note as sounding_pitch() gives it ("^f'", "B,", "=c"): its accidentals, else
  // the key's; as scripts/abc/abc_bars.py computes it
  int midi_of(const std::string& p) const {
    size_t i = 0;
    int shift = 0;
    bool written = false;
    for (; i < p.size() && accidental(p[i]); ++i) written = true, shift += p[i] == '^' ? 1 : p[i] == '_' ? -1 : 0;
    if (i >= p.size()) return 0;
    static const int semitone[7] = {9, 11, 0, 2, 4, 5, 7};  // A B C D E F G
    const char letter = static_cast<char>(std::toupper(static_cast<unsigned char>(p[i])));
    if (letter < 'A' || letter > 'G') return 0;
    int m = 60 + semitone[letter - 'A'] + (p[i] >= 'a' ? 12 : 0);
    for (++i; i < p.size(); ++i) m += p[i] == '\'' ? 12 : p[i] == ',' ? -12 : 0;
    return m + (written ? shift : o.key_signature[letter - 'A']);
  }
  Sound sound_of(const std::string& sounding, Rational d) const {
    Sound snd;
    if (!sounding.empty() && sounding[0] == '[') snd = chord_sound;
    else if (sounding != "z") snd.notes = 1, snd.pitch[0] = static_cast<int16_t>(midi_of(sounding));
    snd.len = d;
    return snd;
  }

  // The copy guard: would closing the bar now make the tune's last bars a passage of the corpus?
  bool copies() const { return guard && copies_unguarded(); }
  bool copies_unguarded() const {
    if (corpus == nullptr) return false;
    const int k = corpus->bars();
    if (recent_n < k - 1) return false;
    uint64_t h[8];
    for (int i = 0; i < k - 1; ++i) h[i] = recent[static_cast<size_t>(recent_n - (k - 1) + i)];
    h[k - 1] = bar_music_hash(sounds);
    return corpus->contains(h);
  }

  static std::string strip_accidentals(const std::string& p) {
    std::string r;
    for (char c : p)
      if (!accidental(c)) r += c;
    return r;
  }

  // The repetition guard: would closing the bar with `notes` make the last bars a loop, or repeat a
  // bar or a 2-bar cell more often than the style's tunes do?
  bool loops() const {
    if (o.max_identical_bars <= 0 || !guard) return false;
    const uint64_t h = bar_hash(notes);
    const size_t n = history.size() + 1;
    auto at = [&](size_t i) { return i + 1 == n ? h : history[i]; };
    for (size_t period = 1; period <= 8; ++period) {
      const size_t reps = period == 1 ? static_cast<size_t>(o.max_identical_bars) + 1 : 3;
      if (n < period * reps) continue;
      bool same = true;
      for (size_t i = n - period * reps; i + period < n && same; ++i) same = at(i) == at(i + period);
      if (same) return true;
    }
    if (o.max_bar_repeats > 0 && count_of(bar_counts, h) >= o.max_bar_repeats) return true;
    if (o.max_bar_share > 0) {  // the tune's length is not known yet: at least the style's median
      const double bars = static_cast<double>(std::max<int64_t>(note_bars + 1, o.share_bars));
      const int cap = std::max(2, static_cast<int>(o.max_bar_share * bars + 1e-9));
      if (count_of(bar_counts, h) >= cap) return true;
    }
    if (o.max_cell_repeats > 0 && !history.empty() &&
        count_of(cell_counts, mix(history.back(), h)) >= o.max_cell_repeats)
      return true;
    // (a bar ending on the tonic may come again: a tune's last bar is often its first section's; so
    // may a short bar, a section's pickup or its cadence's complement: with every short bar under
    // this cap, oneills-hornpipe seed 94006 was refused "FGAB A2 :|" at its second repeat and wrote
    // "FGAB A2 z G |" and a section more; the counts above still cap a loop of short bars)
    if (o.max_repeat_share > 0 && !last_tonic && dur == o.bar && std::find(seen.begin(), seen.end(), h) != seen.end()) {
      // as max_bar_share: over at least the style's median bars, at least one repeat allowed
      const double bars = static_cast<double>(std::max<int64_t>(note_bars + 1, o.share_bars));
      const int cap = std::max(1, static_cast<int>(o.max_repeat_share * bars + 1e-9));
      if (repeated >= cap) return true;
    }
    return false;
  }

  // can the bar line being read (bar_tok so far) still be completed into one that may close the bar?
  bool bar_line_possible(const std::string& prefix) const {
    for (const char* t : kBarTokens) {
      if (std::strncmp(t, prefix.c_str(), prefix.size()) != 0 || std::strlen(t) < prefix.size()) continue;
      State s = *this;
      s.bar_tok = t;
      if (s.finish_bar_line(true)) return true;
    }
    return false;
  }

  // may bar line t come here (repeats, endings, ties and slurs that must be closed first)?
  bool structure_ok(const std::string& t) const {
    const bool closes = t == ":|" || t == "::";
    if (t != "|" && (!tie_pitch.empty() || slur_open)) return false;
    if (slur_open && slur_bars >= kMaxSlurBarLines) return false;  // ")" first
    if (closing && (t == "|:" || t == "::")) return false;  // no repeat opens where the tune must end
    if (t == "|:") return !repeat_open && ending != 1;
    if (t == ":|2") return ending == 1;
    if (ending == 1) {  // a first ending is closed by :|2, after at most kMaxFirstEndingBars bars where
      // it can be (the model, once 30 bars into a first ending, never closed it: cut by the budget)
      if (t != "|") return false;
      // (":|2" cannot start a line: a bar line that begins one stays allowed, or only spaces would be)
      return ending_bars < kMaxFirstEndingBars || !tie_pitch.empty() || slur_open || line_len <= 1 ||
             !length_ok(":|2");
    }
    if (t == "|1") return ending == 0 && region_known && (repeat_open || implicit_ok);
    if (closes) return ending == 0 && (repeat_open || (implicit_ok && !closed_once));
    if (t == "||" || t == "|]" || t == "[|") return !repeat_open;
    return true;
  }

  // may the bar being written (dur > 0) end at bar line t? (the bar lengths abc2midi accepts)
  bool length_ok(const std::string& t) const {
    const Rational m = o.bar;
    const bool plain = t == "|" || t == "|1";
    if (dur > limit()) return false;
    if (need > Rational(0)) {
      if (dur != need) return false;
    } else if (note_bars == 0) {
      if (dur != m && dur + dur > m) return false;  // a pickup: at most half a bar
    } else if (dur < m && (plain || !pickup_known || pickup == Rational(0) || dur + pickup != m)) {
      return false;
    }
    if (t == ":|" || t == "::" || t == ":|2")  // a repeat's last and first bar make one bar, or both are full
      return region_known && ((region_first == m && dur == m) || region_first + dur == m);
    return true;
  }

  void close_bar(const std::string& t) {  // the bar (dur > 0) ends at bar line t
    const Rational m = o.bar;
    const bool first = note_bars == 0;
    if (first) pickup_known = true, pickup = dur < m ? dur : Rational(0);
    if (need > Rational(0)) need = Rational(0);
    else if (!first && dur < m && t != ":|2") need = m - dur;  // a second ending starts afresh
    if (!region_known) region_known = true, region_first = dur;
    const uint64_t h = bar_hash(notes);
    add_count(bar_counts, h);
    if (!history.empty()) add_count(cell_counts, mix(history.back(), h));
    if (corpus != nullptr) {
      if (copies_unguarded()) ++copied;
      if (recent_n == static_cast<int>(recent.size())) std::rotate(recent.begin(), recent.begin() + 1, recent.end()), --recent_n;
      recent[static_cast<size_t>(recent_n++)] = bar_music_hash(sounds);
    }
    if (std::find(seen.begin(), seen.end(), h) != seen.end()) ++repeated;
    else seen.push_back(h);
    history.push_back(h);
    if (history.size() > 24) history.erase(history.begin());
    ++note_bars;
  }

  bool finish_bar_line(bool strict) {  // bar_tok is complete: close the bar
    const std::string t = bar_tok;
    if (strict && (!is_bar_token(t) || !structure_ok(t))) return false;
    if (dur > Rational(0)) {
      // a bar shorter than it may be (a complement) is complete only here: the guard looks now
      if (strict && (!length_ok(t) || copies() || (dur < limit() && loops()))) return false;
      close_bar(t);
    } else if (strict && (t == "|" || t == "|1" || t == ":|" || t == "::" || t == ":|2" ||
                          !(bars == 0 || tok_line_start))) {
      return false;  // an empty bar: only "|:", "||", "|]" or "[|" starting a line after a bar line
    }
    const bool closes = t == ":|" || t == "::" || t == ":|2";
    if (closes) repeat_open = false, closed_once = true, region_known = false;
    if (t == "|:" || t == "::") repeat_open = true, region_known = false;
    if (t == "|1") ending = 1, ending_bars = 0;
    else if (ending == 1 && t == "|") ++ending_bars;
    else if (t == ":|2") ending = 2;
    else if (ending == 2 && t != "|") ending = 0;  // || |] |: [| close a second ending
    if (t != "|" && t != "|1") implicit_ok = false;
    ++bars;
    if (slur_open) ++slur_bars;
    if (t == ":|" || t == "::" || t == "||" || t == "|]") last_section = bars - section_start, section_start = bars;
    ++score_bars;
    widen(t == "|" ? kBarWidth : kThickBarWidth);
    widest_bar = std::max(widest_bar, bar_width);
    bar_width = 0;
    // a line with no note yet (a bar line after "\" and a line break) cannot end here: a line of bar
    // lines only is refused, so the room runs out at the next bar line (and no "\" comes before it);
    // nor at ":|2": an ending's number stays with its notes (after "|1" and a line break forced
    // there, the model never closed the ending: 6 of 220 tunes ran to the budget). "|1" does not
    // come where the line is full ("|" does: the line breaks before the ending), and the room is
    // passed by one bar at most: "|1" as the 8th bar line, ":|2" as the 9th and "||" as the 10th
    // gave abcm2ps "line too much shrunk" (2 of 220 tunes, seeds 33001-33010)
    if (strict && t == "|1" && score_full_at_bar_line() && line_notes > 0) return false;
    line_full = score_full_at_bar_line() && line_notes > 0 &&
                ((t != "|1" && t != ":|2") || score_bars > kMaxBarsPerLine);
    last_bar = t;
    dur = Rational(0);
    notes.clear();
    sounds.clear();
    bar_acc.clear();
    after_note = false;
    mode = Mode::Body;
    return true;
  }

  bool start_bar_line(const std::string& tok, bool strict) {
    if (strict && (tup_left > 0 || broken_next != Rational(0) || (slur_open && slur_notes == 0) ||
                   !bar_line_possible(tok)))
      return false;
    tup_left = 0;
    broken_next = Rational(0);
    bar_tok = tok;
    mode = Mode::BarLine;
    return true;
  }

  // what a line allows, whatever it holds: a blank line ends the tune in ABC; "x:" at a line's
  // start is a field; abcm2ps refuses a line that starts with ")"; a score line (source lines
  // joined by "\") holds at most kMaxBarsPerLine bars and ends at the first bar line past
  // kMaxLineChars characters (abcm2ps: "line too much shrunk", seen on ryans-strathspey lines
  // continued three times), so a full one ends with a line break, not a "\"; a line holds a note
  // (abc2midi miscounts a line of only "|")
  bool score_over() const {
    return score_bars >= kMaxBarsPerLine || score_len >= kMaxLineChars || score_notes >= kMaxLineNotes ||
           score_width > kSoftWidth;
  }
  bool score_full_at_bar_line() const {  // ... or the tune's widest bar would not fit after this bar line
    return score_over() || score_width + widest_bar > kHardWidth;
  }
  bool line_ok(char c) const {
    // past the room for a note only a line break, a bar line or what closes a note may follow: the
    // model, refused its notes, would otherwise write spaces
    if ((c == ' ' || c == '\t' || c == '\\') && !room_for_note() && tup_left == 0 && broken_next == Rational(0))
      return false;
    if (c == '\\') return line_notes > 0 && !line_full && !score_over();
    if (c == '\n') return line_notes > 0;  // no blank line, no line of bar lines only
    if (c == ')') return !line_blank;
    if (c == ':' && (line_len == 0 || (line_len == 1 && line_first != '|'))) return false;
    if (line_full) return false;  // not even a space: the model, refused its "\\", wrote spaces for ever
    return true;
  }
  void follow_line(char c) {
    if (c == '\n') {
      line_blank = true, line_len = 0, line_notes = 0, line_first = 0;
      if (!backslash) {  // ("\" then a line break: one score line)
        score_len = 0, score_bars = 0, score_notes = 0, line_full = false;
        first_line = false;
        score_width = line_base();
      }
      return;
    }
    if (c == ' ' || c == '\t') return;  // line_len, line_first: the line's characters but spaces
    ++score_len;
    if (line_len++ == 0) line_first = c;
    line_blank = false;
  }

  bool feed(char c, bool strict) {
    after_space = c == ' ' || c == '\t';
    if (backslash && c != '\n') {  // "\" continues a line: only a line break may follow it
      if (strict) return false;
      backslash = false;
    }
    if (strict && !line_ok(c)) return false;
    follow_line(c);
    if (c != ' ' && c != '\t' && c != '\n' && c != '\\') continued = false;
    switch (mode) {
      case Mode::Grace:
        return feed_grace(c, strict);
      case Mode::BarLine: {
        const std::string t = bar_tok + c;
        if (bar_token_prefix(t)) {
          if (strict && !bar_line_possible(t)) return false;
          bar_tok = t;
          return true;
        }
        if (!finish_bar_line(strict)) return false;
        if (strict && line_full && c != '\n') return false;
        break;  // c starts what follows the bar line
      }
      case Mode::Bracket:
        if (c == '|') return tok_line_start = false, start_bar_line("[|", strict);
        if ((note_letter(c) && c != 'z') || accidental(c)) {
          if (strict && (!tie_pitch.empty() || tup_left > 0 || !note_fits(o.unit, "") || !room_for_note(1, kChordWidth)))
            return false;
          mode = Mode::Chord;
          chord_first_done = false;
          chord_notes = 0;
          chord_sound = Sound{};
          break;
        }
        if (strict) return false;
        mode = Mode::Body;
        return true;
      case Mode::Paren:
        mode = Mode::Body;
        if (c == '2' || c == '3' || c == '4' || c == '6') {  // (5 (7 (9: abc2midi and the standard differ on q
          if (strict && (tup_left > 0 || broken_next != Rational(0) || !room_for_note(c - '0'))) return false;
          tup_left = c - '0';
          tup_ratio = tuplet_ratio(tup_left, o.compound);
          tup_written = Rational(0);
          after_note = false;
          return !strict || dur + obligations() <= limit();
        }
        if (strict && slur_open) return false;  // abc2midi: "slur within slur"
        slur_open = true;
        slur_notes = 0;
        slur_bars = 0;
        break;
      default:
        break;
    }
    if (mode == Mode::Chord) return feed_chord(c, strict);
    return feed_body(c, strict);
  }

  // grace notes: one to four plain notes, each with at most one accidental ({g}, {ag}, {^fg}); lengths
  // and octave marks inside braces are where abc2midi and abcm2ps read them differently
  bool feed_grace(char c, bool strict) {
    const bool after_acc = !acc.empty();
    if (c == '}') {
      if (strict && (grace_len == 0 || after_acc)) return false;
      mode = Mode::Body;
      need_note = true;  // grace notes lead into a note
      return true;
    }
    if (accidental(c) && !after_acc && (!strict || grace_len < 4)) return acc = std::string(1, c), true;
    if (note_letter(c) && c != 'z' && (!strict || grace_len < 4)) {
      acc.clear();
      ++grace_len;
      widen(kGraceNoteWidth);
      return true;
    }
    return !strict;
  }

  bool feed_chord(char c, bool strict) {
    if (note) {
      if (octave_mark_fits(c)) {
        pitch += c;
        return true;
      }
      if (length_char(c)) {  // lengths inside a chord: abc2midi and abcm2ps read them differently
        if (strict) return false;
        suffix += c;
        return true;
      }
      if (strict && !is_length(suffix)) return false;
      note = false;
      if (!pitch.empty() && accidental(pitch[0])) widen(kAccidentalWidth);
      if (chord_sound.notes < 4)  // (an accidental in a chord holds to the bar's end, as for a note)
        chord_sound.pitch[static_cast<size_t>(chord_sound.notes++)] = static_cast<int16_t>(midi_of(sounding_pitch(pitch)));
      if (!chord_first_done) {
        chord_first_done = true;
        chord_first = length_value(suffix);
        chord_suffix = suffix;
        chord_pitch = "[" + pitch;
        if (strict && !note_fits(o.unit * chord_first, "")) return false;
      } else if (strict && suffix != chord_suffix) {
        return false;  // the chord's notes share one length (its length is its first note's)
      }
    }
    if (!acc.empty()) {
      if (note_letter(c) && c != 'z') {
        pitch = acc + c, acc.clear(), suffix.clear(), note = true, ++chord_notes;
        return true;
      }
      if (c == acc[0] && acc.size() < 2 && c != '=') return acc += c, true;
      if (strict) return false;
      acc.clear();
    }
    if (c == ']') {
      if (strict && !chord_first_done) return false;
      mode = Mode::Body;
      note = true;
      pitch = chord_pitch + "]";
      base = o.unit * (chord_first_done ? chord_first : Rational(1));
      suffix.clear();
      note_at_line_start = false;
      return !strict || note_fits(base, "");
    }
    if (strict && chord_notes >= 4 && (accidental(c) || note_letter(c))) return false;  // at most 4 notes
    if (accidental(c)) return acc = std::string(1, c), true;
    if (note_letter(c) && c != 'z') return pitch = std::string(1, c), suffix.clear(), note = true, ++chord_notes, true;
    return !strict;
  }

  bool feed_body(char c, bool strict) {
    if (note) {
      if (octave_mark_fits(c)) {
        pitch += c;
        return true;
      }
      if (length_char(c)) {
        suffix += c;
        if (!strict) return true;
        if (!tie_pitch.empty() && strip_accidentals(pitch) != tie_pitch) return false;  // the tied octave first
        return note_fits(base, suffix);
      }
      if (strict && note_at_line_start && c == ':') return false;  // "A:" at a line start is a field
      if (!commit_note(strict)) return false;
    }
    if (!acc.empty()) {
      if (note_letter(c) && c != 'z') {
        acc += c;
        c = 0;  // handled below as a note with these accidentals
      } else if (c == acc[0] && acc.size() < 2 && c != '=') {
        acc += c;
        return !strict || tie_acc_possible();
      } else if (strict) {
        return false;
      } else {
        acc.clear();
      }
    }
    if (c == 0 || note_letter(c)) return start_note(c, strict);
    if (strict && need_note && !accidental(c) && !((c == '>' || c == '<') && broken_n > 0))
      return false;  // "T(": abc2midi wants "(T"; one decoration a note; a > pair's notes adjoin
    const bool was_after_note = after_note;
    if (c != ')' && c != '-') after_note = false;
    if (c != '>' && c != '<') broken_n = 0;
    const bool at_line_start = line_start;
    line_start = c == '\n';
    // what comes before a note (accidentals, slurs, tuplets, grace notes, decorations) needs room for one
    if (strict && (accidental(c) || c == '(' || c == '{' || decoration(c)) &&
        (!note_fits(o.unit, "") || !room_for_note(1, c == '{' ? kGraceGroupWidth + 4 * kGraceNoteWidth : 0)))
      return false;
    // abc2midi: "could not find note to be tied" past grace notes or a decoration
    if (strict && !tie_pitch.empty() && (c == '{' || decoration(c))) return false;
    return feed_symbol(c, strict, was_after_note, at_line_start);
  }

  // with a tie pending, can the accidentals read so far still give the tied note's sound?
  bool tie_acc_possible() const {
    if (tie_pitch.empty()) return true;
    const std::string want = tie_sounding.substr(0, tie_sounding.size() - tie_pitch.size());
    return want.compare(0, acc.size(), acc) == 0 && !(acc == "=" && want.empty());
  }

  bool start_note(char c, bool strict) {
    const std::string p = c == 0 ? acc : std::string(1, c);
    acc.clear();
    const bool need_before = need_note;  // a decoration or grace notes before it kept its room
    need_note = false;
    if (strict && !tie_pitch.empty() && strip_accidentals(p) != tie_pitch.substr(0, 1)) return false;
    if (strict && !tie_pitch.empty()) {  // the accidental (written or held in the bar) must sound as the tied note's
      State s = *this;
      if (s.sounding_pitch(p + tie_pitch.substr(1)) != tie_sounding) return false;
    }
    // past the line's room a line break comes first (a promised note, of a tuplet or a > pair, had its room kept)
    if (strict && tup_left == 0 && broken_next == Rational(0) && !need_before && !room_for_note()) return false;
    pitch = p;
    suffix.clear();
    base = o.unit;
    note = true;
    note_at_line_start = line_start;
    line_start = false;
    after_note = false;
    return !strict || note_fits(base, "");
  }

  bool feed_symbol(char c, bool strict, bool was_after_note, bool at_line_start) {
    switch (c) {
      case ' ':
      case '\t':
        return !strict || !((slur_open && due_bar_done()) || slur_due());  // ")" comes right after the note
      case 'y':  // a spacer: no music, and abc2midi misreads some lines that hold one
        return !strict;
      case '\\':  // a line continuation: at a line's end (where a line may end), after something on the line
        backslash = continued = true;
        return !strict || (!at_line_start && tup_left == 0 && broken_next == Rational(0) && !due_bar_done() &&
                           !slur_due());
      case ')':  // right after the slur's last note (abcm2ps: "bad character" after "(3" or a bar line)
        if (strict && !(slur_open && slur_notes > 0 && was_after_note)) return false;
        slur_open = false;
        return true;
      case '-':  // a tie: after a note (not a rest or chord), to a note of the same pitch
        if (strict && (!was_after_note || notes.empty() || notes.back().first[0] == '[' ||
                       notes.back().first == "z" || !tie_pitch.empty() || due_bar_done() || slur_due()))
          return false;
        if (!notes.empty()) tie_pitch = strip_accidentals(notes.back().first), tie_sounding = notes.back().first;
        widen(kTieWidth);
        after_note = false;  // "A-<B" is no broken rhythm for abc2midi
        return true;
      case '\n':
        backslash = false;
        return !strict || (tup_left == 0 && broken_next == Rational(0) && !due_bar_done() && !slur_due());
      case '^':
      case '_':
      case '=':
        acc = std::string(1, c);
        return !strict || tie_acc_possible();
      case '|':
        tok_line_start = at_line_start;
        return start_bar_line("|", strict);
      case ':':
        tok_line_start = at_line_start;
        return start_bar_line(":", strict);
      case '[':  // a chord (not after a tie, not in a tuplet: abc2midi "different length notes in tuple") or [|
        mode = Mode::Bracket;
        return !strict || (tie_pitch.empty() && tup_left == 0 && note_fits(o.unit, "") && room_for_note(1, kChordWidth)) ||
               (tup_left == 0 && broken_next == Rational(0) && bar_line_possible("[|"));
      case '(':  // a slur (none open) or a tuplet
        mode = Mode::Paren;
        return !strict || !slur_open || tuplet_fits();
      case '{':  // grace notes (not inside a tuplet)
        mode = Mode::Grace;
        grace_len = 0;
        widen(kGraceGroupWidth);
        return !strict || tup_left == 0;
      case '>':
      case '<':
        return feed_broken(c, strict, was_after_note);
      default:
        if (decoration(c)) {
          need_note = true;
          return !strict || !at_line_start || c == '.' || c == '~';
        }
        return !strict;
    }
  }

  bool feed_broken(char c, bool strict, bool was_after_note) {
    const bool again = broken_n > 0 && broken_c == c;
    if (strict && (tup_left > 0 || notes.empty() || (!was_after_note && !again) || broken_n >= 2 || last_in_tuplet ||
                   !undotted(written / o.unit) || written * Rational(1, int64_t{2} << broken_n) < Rational(1, 64) ||
                   (broken_n > 0 && broken_c != c) || (pair_second && !again)))
      return false;
    if (strict && !again && !room_for_note()) return false;  // the pair's second note on this line
    need_note = true;  // abc2midi: the pair's second note right after > (no decoration, no slur)
    widen(again ? kDotWidth / 2 : kDotWidth);
    if (notes.empty()) return true;
    if (!again) broken_written = written;
    broken_n = again ? broken_n + 1 : 1;
    broken_c = c;
    after_note = false;
    const Rational small(1, int64_t{1} << broken_n);
    const Rational big = Rational(2) - small;
    const Rational first = c == '>' ? big : small, second = c == '>' ? small : big;
    // the first note's length: broken_base (its length before any >) times this mark's factor
    const Rational delta = broken_base * first - broken_base * (again ? broken_factor : Rational(1));
    broken_factor = first;
    dur = dur + delta;
    notes.back().second = notes.back().second + delta;  // (a tied note: only its last part changes)
    if (!sounds.empty()) {  // abc_bars.py scales the whole sound, a tied note's too (for the corpus's passages)
      if (!again) broken_sound = sounds.back().len;
      sounds.back().len = broken_sound * first;
    }
    broken_next = second;
    return !strict || dur + obligations() <= limit();
  }

  bool can_end() const {
    State s = *this;
    if (s.mode == Mode::BarLine && !s.finish_bar_line(true)) return false;
    return s.mode == Mode::Body && !s.note && s.acc.empty() && s.tup_left == 0 && s.broken_next == Rational(0) &&
           s.dur == Rational(0) && s.note_bars > 0 && !s.repeat_open && s.ending == 0 && s.tie_pitch.empty() &&
           !s.slur_open && !s.continued && !s.backslash && !s.need_note;
  }
  bool bar_full() const {  // a pending note counts with the length written so far
    State s = *this;
    if (s.note && !s.commit_note(true)) return false;
    return s.mode == Mode::Body && s.acc.empty() && s.tup_left == 0 && s.broken_next == Rational(0) &&
           s.dur == s.limit();
  }
  bool section_end_near() const {
    State s = *this;
    if (s.note && !s.commit_note(true)) return false;
    // a bar line begun ("|" of "||" or "|]", ":" of ":|"): its second character is where a
    // character vocabulary decides between a plain bar line and a section's end
    const bool section_line_begun = s.mode == Mode::BarLine && (s.bar_tok == "|" || s.bar_tok == ":");
    if ((s.mode != Mode::Body && !section_line_begun) || !s.acc.empty() || s.tup_left > 0 ||
        s.broken_next != Rational(0) || s.need_note)
      return false;
    return s.dur == o.bar || (s.pickup > Rational(0) && s.dur + s.pickup == o.bar && s.need == Rational(0));
  }
  bool one_note_left() const {
    State s = *this;
    if (s.note && !s.commit_note(true)) return false;
    if (s.mode != Mode::Body || !s.acc.empty() || s.tup_left > 0 || s.broken_next != Rational(0)) return false;
    const Rational rest = s.limit() - s.dur;
    if (rest <= Rational(0) || rest + rest > o.bar) return false;
    return is_length_value(rest / o.unit);
  }
  static bool is_length_value(Rational v) {
    for (const char* l : kLengths)
      if (length_value(l) == v) return true;
    return false;
  }
  bool ends_section() const {  // an end allowed right after :| || or |]
    State s = *this;
    if (s.mode == Mode::BarLine && !s.finish_bar_line(true)) return false;
    return can_end() && (s.last_bar == ":|" || s.last_bar == "||" || s.last_bar == "|]");
  }
};

BarConstraint::BarConstraint(const BarConstraintOptions& opts, std::vector<std::string> token_texts,
                             std::vector<int32_t> end_ids)
    : state_(std::make_unique<State>(opts)),
      texts_(std::move(token_texts)),
      is_end_(texts_.size(), 0),
      tonic_tokens_(texts_.size(), 0),
      corpus_(opts.corpus) {
  for (int32_t id : end_ids)
    if (id >= 0 && static_cast<size_t>(id) < is_end_.size()) is_end_[id] = 1;
  for (size_t id = 0; id < texts_.size() && opts.tonic != 0; ++id) {
    const auto& t = texts_[id];
    const size_t at = t.find_first_not_of("^_=");
    tonic_tokens_[id] = at != std::string::npos && std::toupper(static_cast<unsigned char>(t[at])) == opts.tonic &&
                        note_letter(t[at]) && t[at] != 'z';
  }
}
BarConstraint::~BarConstraint() = default;
BarConstraint::BarConstraint(BarConstraint&&) noexcept = default;
BarConstraint& BarConstraint::operator=(BarConstraint&&) noexcept = default;

void BarConstraint::observe(const std::string& text) {
  for (char c : text) state_->feed(c, false);
}

bool BarConstraint::accepts(const std::string& text) const {
  if (text.empty()) return false;
  State s = *state_;
  for (char c : text)
    if (!s.feed(c, true)) return false;
  return true;
}

bool BarConstraint::can_end() const { return state_->can_end(); }

bool BarConstraint::ends_section() const { return state_->ends_section(); }

bool BarConstraint::bar_full() const { return state_->bar_full(); }

bool BarConstraint::last_note_tonic() const { return state_->last_tonic; }

bool BarConstraint::one_note_left() const { return state_->one_note_left(); }

int64_t BarConstraint::bars_closed() const { return state_->bars; }

int64_t BarConstraint::copied_passages() const { return state_->copied; }

bool BarConstraint::monotonous() const {
  const State* st = state_.get();
  State s(st->o);
  if (st->mode == State::Mode::BarLine) {  // a bar line being read: as if it ended here
    s = *st;
    s.finish_bar_line(false);
    st = &s;
  }
  int top = 0;
  for (const auto& [h, n] : st->bar_counts) top = std::max(top, n);
  return st->note_bars > 0 && 4 * static_cast<int64_t>(top) >= st->note_bars;
}

int64_t BarConstraint::section_bars() const {
  if (state_->mode != State::Mode::BarLine) return state_->last_section;
  State s = *state_;  // a bar line being read ("|" may become "||"): as if it ended here
  s.finish_bar_line(false);
  return s.last_section;
}

int64_t BarConstraint::open_section_bars() const { return state_->bars - state_->section_start + 1; }

bool BarConstraint::section_end_near() const { return state_->section_end_near(); }

std::vector<uint8_t> BarConstraint::toward_end(const std::vector<uint8_t>& allowed, bool section_end) const {
  std::vector<uint8_t> out(texts_.size(), 0);
  auto after = [&](const State& from, size_t id, State& to) {
    to = from;
    for (char c : texts_[id])
      if (!to.feed(c, true)) return false;
    return true;
  };
  for (int depth = 1; depth <= 2; ++depth) {
    bool any = false;
    State s1(state_->o), s2(state_->o);
    for (size_t id = 0; id < texts_.size() && id < allowed.size(); ++id) {
      if (!allowed[id] || is_end_[id] || texts_[id].empty() || !after(*state_, id, s1)) continue;
      auto done = [&](const State& s) { return section_end ? s.ends_section() : s.can_end(); };
      bool ok = done(s1);
      for (size_t id2 = 0; depth == 2 && !ok && id2 < texts_.size(); ++id2)
        ok = !is_end_[id2] && !texts_[id2].empty() && after(s1, id2, s2) && done(s2);
      out[id] = ok;
      any = any || ok;
    }
    if (any) break;
  }
  return out;
}

std::vector<uint8_t> BarConstraint::allowed() {
  std::vector<uint8_t> ok(texts_.size(), 0);
  bool any = false, moves = false;
  // the guards (repetition, copy) dropped for a step where they leave nothing, or only spaces: a tied
  // note whose only completions repeat a bar left " " alone, and the model wrote spaces to the
  // budget (oneills-jig seed 46020)
  for (int attempt = 0; attempt < 2 && !moves; ++attempt) {
    if (attempt == 1) state_->guard = false;
    const bool end = can_end();
    any = false;
    for (size_t id = 0; id < texts_.size(); ++id) {
      ok[id] = is_end_[id] ? end : accepts(texts_[id]);
      any = any || ok[id];
      moves = moves || (ok[id] && (is_end_[id] || texts_[id].find_first_not_of(" \t") != std::string::npos));
    }
    state_->guard = true;  // (without the guards the allowed tokens are a superset)
  }
  if (state_->after_space && moves) refuse_space_run(ok);
  if (!any) {  // an opening broke the rules: lift the mask for this step rather than stop
    ++relaxed_;
    std::fill(ok.begin(), ok.end(), 1);
  }
  return ok;
}

// A second space in a row, only where something else is allowed too (never a step with nothing
// allowed). The corpus has no two spaces in a row; misc seed 83004 wrote spaces from bar 14 to the
// 768-token budget, every one of them allowed. A space-only token is refused; "moves" (an end token or
// a token with more than spaces) is what remains.
void BarConstraint::refuse_space_run(std::vector<uint8_t>& ok) const {
  for (size_t id = 0; id < texts_.size(); ++id)
    if (ok[id] && !is_end_[id] && !texts_[id].empty() && texts_[id].find_first_not_of(" \t") == std::string::npos)
      ok[id] = 0;
}

void BarConstraint::set_closing(bool closing) { state_->closing = closing; }

void BarConstraint::advance(int32_t id) {
  if (id < 0 || static_cast<size_t>(id) >= texts_.size() || is_end_[id]) return;
  for (char c : texts_[id]) state_->feed(c, false);
}

}  // namespace duet::music
