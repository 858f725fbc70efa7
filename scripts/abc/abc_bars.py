"""ABC tune bodies read bar by bar (Python 3 stdlib): each bar's length and its music.

Shared by evaluate.py (bar check, monotony, tonic endings, copying) and style_stats.py (the corpus
statistics the edge's constraint and ending push use), so both read tunes the same way.

  BarChecker(meter, unit, key).check(body) -> bars; .info -> one dict a bar:
    dur     the bar's length (whole note = 1)
    meter   the bar length the meter asks for (None: no meter)
    events  the bar's music: ((pitch, length), ...) with pitch a MIDI number (a tuple of them for a
            chord, "z" for a rest), after the key signature and the bar's accidentals, and notes tied
            inside the bar merged; so respellings (B/2 vs B/, A>B vs A3/2B/, B//-B// vs B/) are equal
    start, end   the bar lines around it ("" at the tune's start and end), ending: a numbered ending
"""
import re
from fractions import Fraction

DECORATION_LETTERS = set(".~HLMOPSTuvJRk")   # single-character decorations / ignorable marks


def frac(s):
    n, d = s.split("/")
    return Fraction(int(n), int(d))


LETTER_SEMITONE = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}
SHARP_ORDER, FLAT_ORDER = "FCGDAEB", "BEADGCF"
MODE_SHIFT = {"": 0, "maj": 0, "ion": 0, "m": -3, "min": -3, "aeo": -3, "dor": -2, "phr": -4, "lyd": 1, "mix": -1,
              "loc": -5}
MAJOR_FIFTHS = {"C": 0, "G": 1, "D": 2, "A": 3, "E": 4, "B": 5, "F": -1}


def parse_key(key):
    """K: text ("G", "Ador", "Bbm", "F#mix", ...) -> (tonic pitch class, {letter: semitone shift}); None when unread."""
    m = re.match(r"\s*([A-G])([#b]?)\s*([A-Za-z]*)", key or "")
    if not m or m.group(3).lower()[:3] not in MODE_SHIFT:
        return None
    tonic, acc, mode = m.group(1), m.group(2), m.group(3).lower()[:3]
    fifths = MAJOR_FIFTHS[tonic] + {"#": 7, "b": -7, "": 0}[acc] + MODE_SHIFT[mode]
    sig = {l: 0 for l in "CDEFGAB"}
    for l in (SHARP_ORDER[:fifths] if fifths > 0 else FLAT_ORDER[:-fifths]):
        sig[l] = 1 if fifths > 0 else -1
    return (LETTER_SEMITONE[tonic] + {"#": 1, "b": -1, "": 0}[acc]) % 12, sig


ACCIDENTAL_SHIFT = {"^": 1, "^^": 2, "_": -1, "__": -2, "=": 0}


class BarChecker:
    """Sums note lengths per bar.  Durations are Fractions of a whole note."""

    NOTE_LEN = re.compile(r"(\d*)(/*)(\d*)")
    BARLINE = re.compile(r":*\[\|:*|:*\|\]|:*\|\|:*|:*\|:*|::+")
    ENDING = re.compile(r"\s*\[?\d+([,-]\d+)*")

    def __init__(self, meter, unit, key=None):
        self.compound = False
        self.meter = None if meter in ("none", "", None) else self._meter(meter)
        self.unit = frac(unit)
        parsed = parse_key(key)
        self.tonic = parsed[0] if parsed else None
        self.signature = parsed[1] if parsed else {l: 0 for l in "CDEFGAB"}
        self.bars = []            # (duration, checkable, reasons)
        self.info = []            # one dict a bar (see the module's doc)
        self.unparsed = 0
        self._bar_line = ""       # the bar line the bar being read started at

    def _pitch(self, acc, letter, octave, cur):
        """MIDI number of a note: explicit accidental, else the bar's earlier one, else the key's."""
        base = 60 + LETTER_SEMITONE[letter.upper()] + (12 if letter.islower() else 0)
        base += 12 * octave.count("'") - 12 * octave.count(",")
        where = (letter, octave)
        if acc:
            cur["acc"][where] = ACCIDENTAL_SHIFT.get(acc, 0)
        shift = cur["acc"].get(where, self.signature[letter.upper()])
        return base + shift

    def _event(self, cur, pitch, d):
        """A note, chord or rest of length d; a note tied from the one before (same pitch) joins it."""
        if cur.get("tie") and cur["events"] and cur["events"][-1][0] == pitch:
            p, d0 = cur["events"][-1]
            cur["events"][-1] = (p, d0 + d)
            cur["merged"] += 1
        else:
            cur["events"].append((pitch, d))
        cur["tie"] = False

    def _meter(self, m):
        m = m.strip()
        if m == "C":
            m = "4/4"
        if m == "C|":
            m = "2/2"
        try:
            f = frac(m)
            num = int(m.split("/")[0])
            self.compound = num % 3 == 0 and num > 3
            return f
        except Exception:
            return None

    def _len(self, s, i):
        m = self.NOTE_LEN.match(s, i)
        num = int(m.group(1)) if m.group(1) else 1
        if m.group(2):
            den = int(m.group(3)) * 2 ** (len(m.group(2)) - 1) if m.group(3) else 2 ** len(m.group(2))
            if den == 0:
                self.unparsed += 1
                self._bad_len = True
                den = 1
        else:
            den = 1
        return Fraction(num, den), m.end()

    def check(self, body):
        # state of the bar being read
        cur = {"dur": Fraction(0), "notes": 0, "bad": set(), "start_plain": False, "ending": False}
        self._start_bar(cur, plain=False, ending=False)
        last_note = None            # index into cur["elems"] for broken rhythm
        tuplet = None               # [remaining notes, factor]
        broken_next = None          # factor for the next note
        lines = body.split("\n")
        for line in lines:
            fm = re.match(r"^([A-Za-z]):(.*)$", line)
            if fm:
                f, v = fm.group(1), fm.group(2).strip()
                if f == "M":
                    self.meter = None if v in ("none", "") else self._meter(v)
                    cur["bad"].add("meter change")
                elif f == "L":
                    try:
                        self.unit = frac(v)
                    except Exception:
                        cur["bad"].add("unit")
                    cur["bad"].add("unit change")
                continue
            s = line
            i = 0
            n = len(s)
            while i < n:
                c = s[i]
                if c == "%":
                    break
                if c in " \t\\`y":
                    i += 1
                    continue
                if c == '"':
                    j = s.find('"', i + 1)
                    i = n if j < 0 else j + 1
                    continue
                if c == "!":
                    j = s.find("!", i + 1)
                    if j < 0:
                        cur["bad"].add("unparsed"); self.unparsed += 1
                        i += 1
                    else:
                        i = j + 1
                    continue
                if c == "{":
                    j = s.find("}", i + 1)
                    i = n if j < 0 else j + 1
                    continue
                if c == "+":
                    cur["bad"].add("+chord+")
                    j = s.find("+", i + 1)
                    i = n if j < 0 else j + 1
                    continue
                # bar lines
                if c in "|:" or (c == "[" and i + 1 < n and s[i + 1] == "|"):
                    m = self.BARLINE.match(s, i)
                    if m:
                        tok = m.group(0)
                        i = m.end()
                        e = self.ENDING.match(s, i) if "|" in tok or tok.startswith("::") else None
                        ending = bool(e)           # "|1", ":|2", "|[1", "| 2": a numbered ending
                        if e:
                            i = e.end()
                        self._end_bar(cur, plain_end=(tok == "|"), end_tok=tok + ("N" if ending else ""))
                        self._start_bar(cur, plain=(tok == "|" and not ending), ending=ending)
                        last_note = None
                        broken_next = None
                        continue
                    cur["bad"].add("unparsed"); self.unparsed += 1
                    i += 1
                    continue
                if c == "[":
                    if i + 1 < n and s[i + 1].isdigit():      # "[1" ending after a space
                        e = self.ENDING.match(s, i)
                        i = e.end()
                        cur["ending"] = True
                        cur["bad"].add("ending")
                        continue
                    fm = re.match(r"\[([A-Za-z]):([^\]]*)\]", s[i:])
                    if fm:
                        f, v = fm.group(1), fm.group(2).strip()
                        if f == "M":
                            self.meter = None if v in ("none", "") else self._meter(v)
                            cur["bad"].add("meter change")
                        elif f == "L":
                            try:
                                self.unit = frac(v)
                            except Exception:
                                pass
                            cur["bad"].add("unit change")
                        i += fm.end()
                        continue
                    # chord: duration of its first note times the length after "]"
                    j = s.find("]", i + 1)
                    if j < 0:
                        cur["bad"].add("unparsed"); self.unparsed += 1
                        i += 1
                        continue
                    inner = s[i + 1:j]
                    nm = re.search(r"[_^=]*[A-Ga-gzx][,']*", inner)
                    if not nm:
                        cur["bad"].add("unparsed"); self.unparsed += 1
                        i = j + 1
                        continue
                    d0, _ = self._len(inner, nm.end())
                    d1, i = self._len(s, j + 1)
                    d = d0 * d1
                    d, tuplet, broken_next = self._apply(d, tuplet, broken_next)
                    cur["elems"].append(d)
                    last_note = len(cur["elems"]) - 1
                    pitches = tuple(sorted(self._pitch(a, l, o, cur) for a, l, o in
                                           re.findall(r"(\^\^|__|\^|_|=)?([A-Ga-g])([,']*)", inner)))
                    self._event(cur, pitches or "z", d)
                    continue
                if c == "(":
                    m = re.match(r"\((\d)(?::(\d*))?(?::(\d*))?", s[i:])
                    if m and int(m.group(1)) < 2 or m and m.group(2) == "0":
                        cur["bad"].add("unparsed"); self.unparsed += 1
                        i += m.end()
                    elif m:
                        p = int(m.group(1))
                        q = int(m.group(2)) if m.group(2) else None
                        r = int(m.group(3)) if m.group(3) else p
                        if q is None:
                            q = {2: 3, 3: 2, 4: 3, 6: 2, 8: 3}.get(p, 3 if self.compound else 2)
                        tuplet = [r, Fraction(q, p)]
                        i += m.end()
                    else:
                        i += 1                      # slur
                    continue
                if c in ")-":                       # slur end, tie: no duration
                    if c == "-":
                        cur["tie"] = True
                    i += 1
                    continue
                if c == ">" or c == "<":
                    j = i
                    while j < n and s[j] == c:
                        j += 1
                    k = j - i
                    big = 2 - Fraction(1, 2 ** k)       # > : 3/2, >> : 7/4
                    small = Fraction(1, 2 ** k)
                    first, second = (big, small) if c == ">" else (small, big)
                    if last_note is not None:
                        cur["elems"][last_note] *= first
                        broken_next = second
                        if cur["events"]:
                            p, d0 = cur["events"][-1]
                            cur["events"][-1] = (p, d0 * first)
                    else:
                        cur["bad"].add("unparsed"); self.unparsed += 1
                    i = j
                    continue
                acc = ""
                if c in "^_=":
                    m = re.match(r"(\^\^|__|\^|_|=)([A-Ga-g])", s[i:])
                    if not m:
                        cur["bad"].add("unparsed"); self.unparsed += 1
                        i += 1
                        continue
                    acc = m.group(1)
                    i += len(m.group(1))
                    c = s[i]
                if c in "ABCDEFGabcdefgzx":
                    i += 1
                    o0 = i
                    while i < n and s[i] in ",'":
                        i += 1
                    octave = s[o0:i]
                    d, i = self._len(s, i)
                    d, tuplet, broken_next = self._apply(d, tuplet, broken_next)
                    cur["elems"].append(d)
                    last_note = len(cur["elems"]) - 1
                    self._event(cur, "z" if c in "zx" else self._pitch(acc, c, octave, cur), d)
                    continue
                if c == "Z":
                    cur["bad"].add("Z rest")
                    _, i = self._len(s, i + 1)
                    continue
                if c in DECORATION_LETTERS or c == ".":
                    i += 1
                    continue
                cur["bad"].add("unparsed"); self.unparsed += 1
                i += 1
        self._end_bar(cur, plain_end=False, end_tok="")
        return self.bars

    def _apply(self, d, tuplet, broken_next):
        d = d * self.unit
        if broken_next is not None:
            d *= broken_next
            broken_next = None
        if tuplet:
            d *= tuplet[1]
            tuplet[0] -= 1
            if tuplet[0] <= 0:
                tuplet = None
        return d, tuplet, broken_next

    def _start_bar(self, cur, plain, ending):
        cur["elems"] = []
        cur["events"] = []
        cur["acc"] = {}
        cur["merged"] = 0
        cur["bad"] = set()
        cur["start_plain"] = plain
        cur["ending"] = ending
        cur["meter"] = self.meter
        self._bad_len = False

    def _end_bar(self, cur, plain_end, end_tok):
        if not cur["elems"]:
            # an empty bar (e.g. "|\\\n|"): it is no bar; keep the start kind of the one before
            if end_tok and end_tok != "|":
                self._bar_line = end_tok if self._bar_line in ("", "|") else self._bar_line
            return
        dur = sum(cur["elems"], Fraction(0))
        reasons = set(cur["bad"])
        if not cur["start_plain"]:
            reasons.add("after non-plain bar line")
        if not plain_end:
            reasons.add("before non-plain bar line")
        if cur["ending"]:
            reasons.add("ending")
        if self._bad_len:
            reasons.add("unparsed")
        meter = cur["meter"]
        if meter is None:
            reasons.add("no meter")
        self.bars.append((dur, meter, not reasons, reasons))
        self.info.append({"dur": dur, "meter": meter, "events": tuple(cur["events"]), "start": self._bar_line,
                          "end": end_tok, "ending": bool(cur["ending"]), "reasons": reasons})
        self._bar_line = end_tok


