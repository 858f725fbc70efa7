#include "edge/music/bar_constraint.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <utility>

namespace duet::music {

namespace {

// Note lengths the constraint lets a note or chord take (multiples of the unit), as written.
const char* const kLengths[] = {"", "2", "3", "4", "6", "8", "12", "16", "/", "/2", "//", "/4", "/8", "3/2", "3/", "3/4"};
// Bar lines and numbered endings, as written.
// Numbered endings (|1 :|2) are left out: a first ending that the model never closes with :|2 left
// tunes unable to end.
const char* const kBarTokens[] = {"|", "||", "|]", "|:", ":|", "::", "[|"};

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

// the smallest length any completion of the partly written suffix can take (nullopt-like: -1)
Rational min_completion(const std::string& prefix, bool& any) {
  any = false;
  Rational best(0);
  for (const char* l : kLengths) {
    if (std::strncmp(l, prefix.c_str(), prefix.size()) != 0 || std::strlen(l) < prefix.size()) continue;
    const Rational v = length_value(l);
    if (!any || v < best) best = v;
    any = true;
  }
  return best;
}

const Rational kMinLength(1, 8);  // "/8"

bool note_letter(char c) { return (c >= 'A' && c <= 'G') || (c >= 'a' && c <= 'g') || c == 'z'; }
bool accidental(char c) { return c == '^' || c == '_' || c == '='; }
bool length_char(char c) { return (c >= '0' && c <= '9') || c == '/'; }
bool decoration(char c) { return c == '.' || c == '~' || c == 'T' || c == 'H' || c == 'u' || c == 'v' || c == 'k'; }

Rational tuplet_ratio(int p, bool compound) {  // q/p with ABC's default q
  int q = compound ? 3 : 2;
  if (p == 2 || p == 4 || p == 8) q = 3;
  if (p == 3 || p == 6) q = 2;
  return {q, p};
}

using Notes = std::vector<std::pair<std::string, Rational>>;

}  // namespace

struct BarConstraint::State {
  enum class Mode { Body, BarLine, Bracket, Chord, Grace, Paren };
  BarConstraintOptions o;
  Rational grid;

  Mode mode = Mode::Body;
  bool line_start = true;
  // the bar being written
  Rational dur{0};
  Notes notes;
  bool short_ok = true;  // this bar may be shorter than the meter (pickup); true at the start
  Rational pickup{0};    // the length of this section's pickup (0: none)
  int64_t bars = 0;
  // a note whose length suffix is being read
  bool note = false;
  std::string pitch, suffix;
  Rational base;
  bool note_at_line_start = false;
  std::string acc;  // accidentals read, letter still to come
  // chord
  bool chord_first_done = false;
  Rational chord_first;
  std::string chord_pitch;
  // tuplet, broken rhythm
  int tup_left = 0;
  Rational tup_ratio{1};
  bool after_note = false;  // the last thing was a note (for > <)
  int broken_n = 0;
  char broken_c = 0;
  Rational broken_base, broken_next{0};
  Rational written{0};          // the last committed note's written length (base x suffix)
  Rational broken_written{0};   // abc2midi: both notes of a > pair have the same written length
  bool need_note = false;       // a decoration was written: a note must follow
  bool tok_line_start = false;  // the bar line being read began a line
  bool pair_second = false;     // the last note was the second of a > pair (abc2midi: no A>B>c)
  int grace_len = 0;
  std::string bar_tok;
  std::string last_bar;  // the last bar line closed ("|", ":|", "|]", ...)
  // the repetition guard: the bars so far (the last few), full or not
  std::vector<Notes> history;
  // a tie: the next note must have this pitch (letter and octave)
  std::string tie_pitch;
  bool repeat_open = false;  // |: or :: without its :| yet
  bool closed_once = false;  // a :| came: the next one needs a |: (abc2midi assumes none)
  int chord_notes = 0;
  bool guard = true;  // the repetition guard (off for a step where it left nothing allowed)

  explicit State(const BarConstraintOptions& opts) : o(opts), grid(opts.unit / Rational(8)) {}

  Rational obligations() const {  // the least duration notes already promised must still add
    Rational r(0);
    if (broken_next != Rational(0)) r = r + broken_written * broken_next;  // the pair's second note
    if (tup_left > 0) r = r + Rational(tup_left) * o.unit * kMinLength * tup_ratio;
    return r;
  }
  // the factor the next committed note gets (broken rhythm, tuplet)
  Rational next_factor() const {
    Rational f(1);
    if (broken_next != Rational(0)) f = f * broken_next;
    if (tup_left > 0) f = f * tup_ratio;
    return f;
  }
  // can a note of base `b` whose suffix starts with `prefix` still fit the bar?
  bool note_fits(Rational b, const std::string& prefix) const {
    bool any = false;
    const Rational m = min_completion(prefix, any);
    if (!any) return false;
    Rational rest = obligations();
    if (broken_next != Rational(0)) rest = rest - broken_written * broken_next;  // this note is that one
    else if (tup_left > 0) rest = rest - o.unit * kMinLength * tup_ratio;
    if (dur + b * m * next_factor() + rest > o.bar) return false;
    // some length must also pass commit_note's checks (grid, repetition guard): no dead end later
    for (const char* l : kLengths) {
      if (std::strncmp(l, prefix.c_str(), prefix.size()) != 0 || std::strlen(l) < prefix.size()) continue;
      if (broken_next != Rational(0) && b * length_value(l) != broken_written) continue;
      const Rational d = b * length_value(l) * next_factor();
      const Rational after = dur + d;
      const bool tuplet_done = tup_left <= 1;
      if (after + rest > o.bar || (tuplet_done && !after.multiple_of(grid))) continue;
      if (after == o.bar && tuplet_done && broken_next == Rational(0) && o.max_identical_bars > 0 && guard) {
        State s = *this;
        s.notes.emplace_back(pitch, d);
        s.dur = after;
        if (s.loops()) continue;
      }
      return true;
    }
    return false;
  }

  // "C," and "c'": a comma lowers an upper-case note, an apostrophe raises a lower-case one
  bool octave_mark_fits(char c) const {
    if ((c != ',' && c != '\'') || !suffix.empty() || pitch.size() > 6) return false;
    char letter = 0;
    for (char x : pitch)
      if (std::isalpha(static_cast<unsigned char>(x))) letter = x;
    if (!tie_pitch.empty() && tie_pitch.compare(0, strip_accidentals(pitch).size() + 1, strip_accidentals(pitch) + c) != 0)
      return false;  // a tied note takes the first note's octave
    return c == ',' ? (letter >= 'A' && letter <= 'G') : (letter >= 'a' && letter <= 'g');
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
    if (tup_left > 0) --tup_left;
    dur = dur + d;
    notes.emplace_back(pitch, d);
    after_note = true;
    broken_base = d;
    const bool tie_ok = tie_pitch.empty() || strip_accidentals(pitch) == tie_pitch;  // a tie joins equal notes
    tie_pitch.clear();
    if (!strict) return true;
    if (!tie_ok || !broken_ok) return false;
    if (dur + obligations() > o.bar) return false;
    if (tup_left == 0 && !dur.multiple_of(grid)) return false;
    if (dur == o.bar && tup_left == 0 && loops()) return false;
    return true;
  }

  static std::string strip_accidentals(const std::string& p) {
    std::string r;
    for (char c : p)
      if (!accidental(c)) r += c;
    return r;
  }

  // The repetition guard: would closing the bar with `notes` make the last bars a loop? A loop is
  // max_identical_bars + 1 identical bars in a row, or 3 times in a row the same 2 to 8 bars.
  bool loops() const {
    if (o.max_identical_bars <= 0 || !guard) return false;
    std::vector<const Notes*> seq;
    for (const auto& h : history) seq.push_back(&h);
    seq.push_back(&notes);
    const size_t n = seq.size();
    for (size_t period = 1; period <= 8; ++period) {
      const size_t reps = period == 1 ? static_cast<size_t>(o.max_identical_bars) + 1 : 3;
      if (n < period * reps) continue;
      bool same = true;
      for (size_t i = n - period * reps; i + period < n && same; ++i) same = *seq[i] == *seq[i + period];
      if (same) return true;
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

  bool finish_bar_line(bool strict) {  // bar_tok is complete: close the bar
    const bool plain = bar_tok == "|";
    if (strict && !is_bar_token(bar_tok)) return false;
    // repeats as abc2midi reads them: |: ... :| (the first |: may be left out), :: closes and opens;
    // an open repeat is closed before a double or final bar line
    const bool closes = bar_tok == ":|" || bar_tok == "::";
    const bool opens = bar_tok == "|:" || bar_tok == "::";
    if (strict) {
      if (bar_tok == "|:" && repeat_open) return false;
      if (closes && !repeat_open && closed_once) return false;  // a second :| needs its |:
      if (repeat_open && (bar_tok == "||" || bar_tok == "|]" || bar_tok == "[|")) return false;
    }
    if (closes) repeat_open = false, closed_once = true;
    if (opens) repeat_open = true;
    if (dur > Rational(0)) {
      if (strict && dur > o.bar) return false;
      // shorter bars: a pickup (at most half a bar) where a section may start, or, at a section's
      // end, the bar that completes the section's pickup
      if (strict && dur < o.bar && !(short_ok && dur + dur <= o.bar) &&
          !(!plain && pickup > Rational(0) && dur + pickup == o.bar))
        return false;
      history.push_back(notes);
      if (history.size() > 24) history.erase(history.begin());
      if (short_ok && dur < o.bar) pickup = dur;  // a full first bar keeps the pickup before |:
    } else if (strict && (plain || !(bars == 0 || tok_line_start))) {
      return false;  // "| |", "|| ||": an empty bar (a line may start with |: after one that ended with |)
    }
    ++bars;
    last_bar = bar_tok;
    short_ok = !plain;
    dur = Rational(0);
    notes.clear();
    after_note = false;
    mode = Mode::Body;
    return true;
  }

  bool start_bar_line(const std::string& tok, bool strict) {
    if (strict && (tup_left > 0 || broken_next != Rational(0) || !bar_line_possible(tok))) return false;
    tup_left = 0;
    broken_next = Rational(0);
    bar_tok = tok;
    mode = Mode::BarLine;
    return true;
  }

  bool feed(char c, bool strict) {
    switch (mode) {
      case Mode::Grace:
        if (c == '}') {
          if (strict && grace_len == 0) return false;
          mode = Mode::Body;
          return true;
        }
        if (note_letter(c) || accidental(c) || length_char(c) || c == ',' || c == '\'') {
          ++grace_len;
          return true;
        }
        return !strict;
      case Mode::BarLine: {
        const std::string t = bar_tok + c;
        if (bar_token_prefix(t)) {
          if (strict && !bar_line_possible(t)) return false;
          bar_tok = t;
          return true;
        }
        if (!finish_bar_line(strict)) return false;
        break;  // c starts what follows the bar line
      }
      case Mode::Bracket:
        if (c == '|') return tok_line_start = false, start_bar_line("[|", strict);
        if ((note_letter(c) && c != 'z') || accidental(c)) {
          if (strict && (!tie_pitch.empty() || !note_fits(o.unit, ""))) return false;
          mode = Mode::Chord;
          chord_first_done = false;
          chord_notes = 0;
          break;
        }
        if (strict) return false;
        mode = Mode::Body;
        return true;
      case Mode::Paren:
        mode = Mode::Body;
        if (c >= '2' && c <= '9') {
          if (strict && (tup_left > 0 || broken_next != Rational(0))) return false;
          tup_left = c - '0';
          tup_ratio = tuplet_ratio(tup_left, o.compound);
          after_note = false;
          return !strict || dur + obligations() <= o.bar;
        }
        break;
      default:
        break;
    }

    if (mode == Mode::Chord) {
      if (note) {
        if (octave_mark_fits(c)) {
          pitch += c;
          return true;
        }
        if (length_char(c)) {
          suffix += c;
          bool any = false;
          min_completion(suffix, any);
          return any || !strict;
        }
        if (strict && !is_length(suffix)) return false;
        note = false;
        if (!chord_first_done) {
          chord_first_done = true;
          chord_first = length_value(suffix);
          chord_pitch = "[" + pitch;
          if (strict && !note_fits(o.unit * chord_first, "")) return false;
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

    // Mode::Body
    if (note) {
      if (octave_mark_fits(c)) {
        pitch += c;
        return true;
      }
      if (length_char(c)) {
        suffix += c;
        if (!strict) return true;
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
        return true;
      } else if (strict) {
        return false;
      } else {
        acc.clear();
      }
    }
    if (c == 0 || note_letter(c)) {  // a note starts
      const std::string p = c == 0 ? acc : std::string(1, c);
      acc.clear();
      need_note = false;
      if (strict && !tie_pitch.empty() && strip_accidentals(p) != tie_pitch.substr(0, 1)) return false;
      pitch = p;
      suffix.clear();
      base = o.unit;
      note = true;
      note_at_line_start = line_start;
      line_start = false;
      after_note = false;
      return !strict || note_fits(base, "");
    }
    if (strict && need_note && !accidental(c) && !((c == '>' || c == '<') && broken_n > 0))
      return false;  // "T(": abc2midi wants "(T"; one decoration a note; a > pair's notes adjoin
    const bool was_after_note = after_note;
    if (c != ')' && c != '-') after_note = false;
    if (c != '>' && c != '<') broken_n = 0;
    const bool at_line_start = line_start;
    line_start = c == '\n';
    // what comes before a note (accidentals, slurs, tuplets, grace notes, decorations) needs room for one
    if (strict && (accidental(c) || c == '(' || c == '{' || decoration(c)) && !note_fits(o.unit, "")) return false;
    switch (c) {
      case ' ':
      case '\t':
      case 'y':
      case '\\':
      case ')':
        return true;
      case '-':  // a tie: after a note, to a note of the same pitch
        if (strict && (!was_after_note || notes.empty() || notes.back().first[0] == '[')) return false;
        if (!notes.empty()) tie_pitch = strip_accidentals(notes.back().first);
        after_note = false;  // "A-<B" is no broken rhythm for abc2midi
        return true;
      case '\n':
        return !strict || (tup_left == 0 && broken_next == Rational(0));
      case '^':
      case '_':
      case '=':
        acc = std::string(1, c);
        return true;
      case '|':
        tok_line_start = at_line_start;
        return start_bar_line("|", strict);
      case ':':
        tok_line_start = at_line_start;
        return start_bar_line(":", strict);
      case '[':  // a chord (not after a tie) or [|
        mode = Mode::Bracket;
        return !strict || (tie_pitch.empty() && note_fits(o.unit, "")) || bar_line_possible("[|");
      case '(':
        mode = Mode::Paren;
        return true;
      case '{':
        mode = Mode::Grace;
        grace_len = 0;
        return true;
      case '>':
      case '<': {
        const bool again = broken_n > 0 && broken_c == c;
        if (strict && (tup_left > 0 || notes.empty() || (!was_after_note && !again) || broken_n >= 2 ||
                       (broken_n > 0 && broken_c != c) || (pair_second && !again)))
          return false;
        need_note = true;  // abc2midi: the pair's second note right after > (no decoration, no slur)
        if (notes.empty()) return true;
        if (!again) broken_written = written;
        broken_n = again ? broken_n + 1 : 1;
        broken_c = c;
        after_note = false;
        const Rational small(1, int64_t{1} << broken_n);
        const Rational big = Rational(2) - small;
        const Rational first = c == '>' ? big : small, second = c == '>' ? small : big;
        dur = dur - notes.back().second + broken_base * first;
        notes.back().second = broken_base * first;
        broken_next = second;
        return !strict || dur + obligations() <= o.bar;
      }
      default:
        if (decoration(c)) {
          need_note = true;
          return !strict || !at_line_start || c == '.' || c == '~';
        }
        return !strict;
    }
  }

  bool can_end() const {
    State s = *this;
    if (s.mode == Mode::BarLine && !s.finish_bar_line(true)) return false;
    return s.mode == Mode::Body && !s.note && s.acc.empty() && s.tup_left == 0 && s.broken_next == Rational(0) &&
           s.dur == Rational(0) && s.bars > 0 && !s.repeat_open;
  }
  bool bar_full() const {  // a pending note counts with the length written so far
    State s = *this;
    if (s.note && !s.commit_note(true)) return false;
    return s.mode == Mode::Body && s.acc.empty() && s.tup_left == 0 && s.broken_next == Rational(0) && s.dur == o.bar;
  }
  bool ends_section() const {  // an end allowed right after :| || or |]
    State s = *this;
    if (s.mode == Mode::BarLine && !s.finish_bar_line(true)) return false;
    return can_end() && (s.last_bar == ":|" || s.last_bar == "||" || s.last_bar == "|]");
  }
};

BarConstraint::BarConstraint(const BarConstraintOptions& opts, std::vector<std::string> token_texts,
                             std::vector<int32_t> end_ids)
    : state_(std::make_unique<State>(opts)), texts_(std::move(token_texts)), is_end_(texts_.size(), 0) {
  for (int32_t id : end_ids)
    if (id >= 0 && static_cast<size_t>(id) < is_end_.size()) is_end_[id] = 1;
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

int64_t BarConstraint::bars_closed() const { return state_->bars; }

std::vector<uint8_t> BarConstraint::toward_end(const std::vector<uint8_t>& allowed) const {
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
      bool ok = s1.can_end();
      for (size_t id2 = 0; depth == 2 && !ok && id2 < texts_.size(); ++id2)
        ok = !is_end_[id2] && !texts_[id2].empty() && after(s1, id2, s2) && s2.can_end();
      out[id] = ok;
      any = any || ok;
    }
    if (any) break;
  }
  return out;
}

std::vector<uint8_t> BarConstraint::allowed() {
  std::vector<uint8_t> ok(texts_.size(), 0);
  bool any = false;
  for (int attempt = 0; attempt < 2 && !any; ++attempt) {
    if (attempt == 1) state_->guard = false;  // the repetition guard left nothing: drop it for this step
    const bool end = can_end();
    for (size_t id = 0; id < texts_.size(); ++id) {
      ok[id] = is_end_[id] ? end : accepts(texts_[id]);
      any = any || ok[id];
    }
    state_->guard = true;
  }
  if (!any) {  // an opening broke the rules: lift the mask for this step rather than stop
    ++relaxed_;
    std::fill(ok.begin(), ok.end(), 1);
  }
  return ok;
}

void BarConstraint::advance(int32_t id) {
  if (id < 0 || static_cast<size_t>(id) >= texts_.size() || is_end_[id]) return;
  for (char c : texts_[id]) state_->feed(c, false);
}

}  // namespace duet::music
