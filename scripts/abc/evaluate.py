#!/usr/bin/env python3
"""Measure the quality of tunes written by the abc-folk model (Python 3 stdlib + abc2midi).

    python3 scripts/abc/evaluate.py --samples out/abc-eval/samples.jsonl \
        --metrics models/abc-folk/metrics.json --data out/abc-data \
        --out models/abc-folk/eval.json

For each set of tunes (the model's, the random-init model's, and as a yardstick
the real validation tunes from the corpus, cleaned the same way) it reports:

  * abc2midi_clean: the share of tunes that abc2midi converts with exit code 0,
    a MIDI file written, and not one line of its output containing "Error" or
    "Warning" (abc2midi also warns about bars whose length does not match the
    meter, except the first one, so this is strict), and at least one note in the
    MIDI file (abc2midi silently skips some garbage, e.g. lines starting with a
    backslash, which would otherwise count as clean).  Each tune is written to its
    own .abc file as "X:1\\nT:<name>\\n" + prompt + body.
  * abc2midi_no_error: the share with exit code 0, a MIDI file and no "Error"
    line (warnings allowed).
  * bar_ok: the share of checked bars whose note lengths add up to the meter,
    with this script's own duration parser (see BarChecker).  Which bars are
    checked: only "interior" bars, i.e. bars that both start and end at a plain
    single bar line "|".  So the first and last bar of a tune (pickups), the bars
    next to repeats, double bars and section ends (":|", "|:", "::", "||", "|]",
    "[|"), and the bars of 1st/2nd endings ("|1", "[2", ":|2") are not checked,
    as their length legitimately differs (anacrusis and its complement).  A bar
    is also skipped when it holds a meter or unit change, a multi-bar rest Z, an
    old-style +chord+, or anything the parser does not understand (counted as
    "unparsed").  Empty bars (two bar lines around a line break) are dropped.
    Tunes with M:none have no checked bars.
  * tunes_all_bars_ok: share of tunes with at least one checked bar and every
    checked bar right.
  * ended_with_eos (model sets): share that stopped by themselves within the
    token limit (the rest ran to the token budget or the context limit).
  * identical_run4: share of tunes with 4 or more identical bars in a row (bars
    compared as written, spaces ignored; every bar, checked or not).
  * distinct_bar_share: distinct bars / bars over the set (per tune, then pooled).
  * ends_on_tonic: share of tunes whose last note (ignoring rests) has the pitch
    letter of the key's tonic (K:), octave and accidentals ignored.

    --set NAME=FILE.jsonl scores any file of rows with prompt, body, meter, unit
    (+ key, ended_with_eos), e.g. written by scripts/abc/sample_edge.py;
    --bars FILE.abc prints, per tune of an .abc file, the bars checked and right.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from fractions import Fraction

DECORATION_LETTERS = set(".~HLMOPSTuvJRk")   # single-character decorations / ignorable marks


def frac(s):
    n, d = s.split("/")
    return Fraction(int(n), int(d))


class BarChecker:
    """Sums note lengths per bar.  Durations are Fractions of a whole note."""

    NOTE_LEN = re.compile(r"(\d*)(/*)(\d*)")
    BARLINE = re.compile(r":*\[\|:*|:*\|\]|:*\|\|:*|:*\|:*|::+")
    ENDING = re.compile(r"\s*\[?\d+([,-]\d+)*")

    def __init__(self, meter, unit):
        self.meter = None if meter in ("none", "", None) else self._meter(meter)
        self.unit = frac(unit)
        self.compound = False
        self.bars = []            # (duration, checkable, reasons)
        self.unparsed = 0

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
                        self._end_bar(cur, plain_end=(tok == "|"))
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
                    else:
                        cur["bad"].add("unparsed"); self.unparsed += 1
                    i = j
                    continue
                if c in "^_=":
                    m = re.match(r"(\^\^|__|\^|_|=)([A-Ga-g])", s[i:])
                    if not m:
                        cur["bad"].add("unparsed"); self.unparsed += 1
                        i += 1
                        continue
                    i += len(m.group(1))
                    c = s[i]
                if c in "ABCDEFGabcdefgzx":
                    i += 1
                    while i < n and s[i] in ",'":
                        i += 1
                    d, i = self._len(s, i)
                    d, tuplet, broken_next = self._apply(d, tuplet, broken_next)
                    cur["elems"].append(d)
                    last_note = len(cur["elems"]) - 1
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
        self._end_bar(cur, plain_end=False)
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
        cur["bad"] = set()
        cur["start_plain"] = plain
        cur["ending"] = ending
        cur["meter"] = self.meter
        self._bad_len = False

    def _end_bar(self, cur, plain_end):
        if not cur["elems"]:
            # an empty bar (e.g. "|\\\n|"): it is no bar; keep the start kind of the one before
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


def check_bars(meter, unit, body):
    bc = BarChecker(meter, unit)
    try:
        bars = bc.check(body)
    except Exception:                 # garbage the parser cannot follow: no bar of it is checked
        return {"bars": 0, "checked": 0, "good": 0, "unparsed": bc.unparsed + 1}
    checked = [(d, m) for d, m, ok, _ in bars if ok]
    good = sum(1 for d, m in checked if d == m)
    return {"bars": len(bars), "checked": len(checked), "good": good, "unparsed": bc.unparsed}


BAR_SPLIT = re.compile(r":*\[\|:*|:*\|\]|:*\|\|:*|:*\|:*|::+")


def bar_texts(body):
    """The bars of a body as written (spaces, line breaks and continuations dropped), empty ones left out."""
    flat = re.sub(r"[ \t\\\n]", "", body)
    flat = re.sub(r"\[?\d+(?=[^/\d]|$)", "", flat) if False else flat
    return [b for b in BAR_SPLIT.split(flat) if b.strip()]


def repetition_stats(body):
    bars = bar_texts(body)
    run = best = 0
    prev = None
    for b in bars:
        run = run + 1 if b == prev else 1
        prev = b
        best = max(best, run)
    return {"n_bars": len(bars), "distinct": len(set(bars)), "longest_identical_run": best}


def last_note_letter(body):
    notes = re.findall(r"(?<![!\"a-zA-Z])[_^=]*([A-Ga-g])[,']*\d*/*\d*", re.sub(r"\{[^}]*\}|![^!]*!|\"[^\"]*\"", "", body))
    return notes[-1].upper() if notes else None


def midi_note_count(path):
    """Number of note-on events (velocity > 0) in a standard MIDI file."""
    data = open(path, "rb").read()

    def varlen(i):
        n = 0
        while True:
            n = (n << 7) | (data[i] & 0x7F)
            i += 1
            if not data[i - 1] & 0x80:
                return n, i
    pos, notes = 0, 0
    while pos + 8 <= len(data):
        kind, size = data[pos:pos + 4], int.from_bytes(data[pos + 4:pos + 8], "big")
        pos += 8
        if kind != b"MTrk":
            pos += size
            continue
        i, end, status = pos, pos + size, 0
        while i < end:
            _, i = varlen(i)                # delta time
            b = data[i]
            if b == 0xFF:                   # meta: type, length, data
                n, i = varlen(i + 2)
                i += n
                continue
            if b in (0xF0, 0xF7):           # sysex
                n, i = varlen(i + 1)
                i += n
                continue
            if b & 0x80:
                status = b
                i += 1
            ev = status & 0xF0
            if ev == 0x90 and data[i + 1] > 0:
                notes += 1
            i += 1 if ev in (0xC0, 0xD0) else 2
        pos = end
    return notes


def run_abc2midi(path, workdir):
    mid = os.path.join(workdir, "out.mid")
    if os.path.exists(mid):
        os.remove(mid)
    try:
        p = subprocess.run(["abc2midi", path, "-o", mid], capture_output=True, text=True, errors="replace", timeout=20)
    except subprocess.TimeoutExpired:
        return False, ["timeout"]
    out = (p.stdout + p.stderr).splitlines()
    problems = [l for l in out if re.search(r"error|warning", l, re.I)]
    ok = p.returncode == 0 and not problems and os.path.exists(mid) and any("writing MIDI" in l for l in out)
    if p.returncode != 0:
        problems.append("exit code %d" % p.returncode)
    if not os.path.exists(mid):
        problems.append("no MIDI written")
    elif ok:
        try:
            n = midi_note_count(mid)
        except Exception:
            n = -1
        if n <= 0:                  # text abc2midi skipped silently, or a tune with no notes
            ok = False
            problems.append("no notes in the MIDI file" if n == 0 else "unreadable MIDI file")
    return ok, problems


def evaluate_set(name, tunes, workdir, keep_dir=None):
    """tunes: list of dicts with prompt, body, meter, unit (+ ended_with_eos for model sets)."""
    res = {"n": len(tunes), "identical_run4": 0, "ends_on_tonic": 0, "bars_written": 0, "bars_distinct": 0,
           "abc2midi_clean": 0, "abc2midi_no_error": 0, "bars_checked": 0, "bars_good": 0, "bars_total": 0,
           "tunes_with_checked_bars": 0, "tunes_all_bars_ok": 0, "unparsed_tokens": 0,
           "problem_kinds": {}}
    per = []
    for i, t in enumerate(tunes):
        text = "X:1\nT:%s %d\n%s%s" % (name, i + 1, t["prompt"], t["body"])
        if not text.endswith("\n"):
            text += "\n"
        path = os.path.join(workdir, "%s_%03d.abc" % (name, i + 1))
        with open(path, "w") as fh:
            fh.write(text)
        ok, problems = run_abc2midi(path, workdir)
        res["abc2midi_clean"] += ok
        res["abc2midi_no_error"] += not any(re.search(r"error|exit code|no MIDI|no notes|unreadable|timeout", p, re.I)
                                            for p in problems)
        for p in problems:
            kind = re.sub(r"^(Error|Warning) in line(-char)? [\d-]+ : ", r"\1: ", p)
            kind = re.sub(r"\d+", "N", kind)[:70]
            res["problem_kinds"][kind] = res["problem_kinds"].get(kind, 0) + 1
        b = check_bars(t["meter"], t["unit"], t["body"])
        res["bars_total"] += b["bars"]
        res["bars_checked"] += b["checked"]
        res["bars_good"] += b["good"]
        res["unparsed_tokens"] += b["unparsed"]
        if b["checked"]:
            res["tunes_with_checked_bars"] += 1
            res["tunes_all_bars_ok"] += b["checked"] == b["good"]
        rep = repetition_stats(t["body"])
        res["identical_run4"] += rep["longest_identical_run"] >= 4
        res["bars_written"] += rep["n_bars"]
        res["bars_distinct"] += rep["distinct"]
        key = t.get("key") or re.search(r"^K:\s*(\S+)", t["prompt"], re.M).group(1)
        last = last_note_letter(t["body"])
        on_tonic = last is not None and last == key[0].upper()
        res["ends_on_tonic"] += on_tonic
        per.append({"i": i + 1, "abc2midi_clean": ok, "problems": problems[:5], "on_tonic": on_tonic, **rep, **b})
        if keep_dir:
            shutil.copy(path, keep_dir)
    n = max(1, len(tunes))
    res["abc2midi_clean_share"] = res["abc2midi_clean"] / n
    res["abc2midi_no_error_share"] = res["abc2midi_no_error"] / n
    res["bar_ok_share"] = res["bars_good"] / max(1, res["bars_checked"])
    res["tunes_all_bars_ok_share"] = res["tunes_all_bars_ok"] / n
    if tunes and "ended_with_eos" in tunes[0]:
        res["ended_with_eos_share"] = sum(bool(t["ended_with_eos"]) for t in tunes) / n
    if tunes and "ended_by_budget" in tunes[0]:  # duet-edge's ending push ended these at a bar line
        res["ended_by_budget_share"] = sum(bool(t["ended_by_budget"]) for t in tunes) / n
    res["mean_body_chars"] = sum(len(t["body"]) for t in tunes) / n
    res["identical_run4_share"] = res["identical_run4"] / n
    res["ends_on_tonic_share"] = res["ends_on_tonic"] / n
    res["distinct_bar_share"] = res["bars_distinct"] / max(1, res["bars_written"])
    res["styles"] = len(set(t.get("style") or re.search(r"^S:(.*)$", t["prompt"], re.M).group(1) for t in tunes))
    res["problem_kinds"] = dict(sorted(res["problem_kinds"].items(), key=lambda kv: -kv[1])[:12])
    return res, per


def bars_of_file(path):
    """Per tune of an .abc file: check_bars on its body with its M: and L: (ABC's default L: when absent)."""
    out = []
    for tune in re.split(r"\n(?=X:)", open(path).read()):
        head, body, in_body = {}, [], False
        for line in tune.split("\n"):
            if not in_body:
                m = re.match(r"^([A-Za-z]):\s*(.*?)\s*$", line)
                if m:
                    head[m.group(1)] = m.group(2)
                    in_body = m.group(1) == "K"
                continue
            body.append(line)
        if "K" not in head:
            continue
        meter = {"C": "4/4", "C|": "2/2"}.get(head.get("M", "none"), head.get("M", "none"))
        unit = head.get("L") or ("1/16" if meter != "none" and frac(meter) < Fraction(3, 4) else "1/8")
        b = check_bars(meter, unit, "\n".join(body))
        out.append({"X": head.get("X"), "T": head.get("T"), **b, **repetition_stats("\n".join(body))})
    return out


def read_jsonl(path):
    with open(path) as fh:
        return [json.loads(l) for l in fh if l.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", help="samples.jsonl written by train.py (models 'trained' and 'random')")
    ap.add_argument("--metrics", help="metrics.json written by train.py")
    ap.add_argument("--data", help="prepared data folder: its validation.jsonl is scored as the yardstick")
    ap.add_argument("--corpus-all", action="store_true", help="also score every prepared tune (train too)")
    ap.add_argument("--out", help="JSON report to write")
    ap.add_argument("--keep", help="folder to keep the per-tune .abc files in")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=FILE",
                    help="score the rows of FILE (jsonl: prompt, body, meter, unit, key, ended_with_eos) as NAME")
    ap.add_argument("--bars", metavar="FILE.abc", help="print, per tune of FILE.abc, the bars checked and right (JSON)")
    args = ap.parse_args()
    if args.bars:
        print(json.dumps(bars_of_file(args.bars)))
        return
    if not shutil.which("abc2midi"):
        sys.exit("abc2midi not found: apt-get install -y abcmidi")
    report = {"abc2midi": subprocess.run(["abc2midi", "-ver"], capture_output=True, text=True).stdout.strip()}
    if args.metrics:
        m = json.load(open(args.metrics))
        report["val_loss_per_char_nats"] = m["val_loss_per_char_nats"]
        report["val_loss_per_char_bits"] = m["val_loss_per_char_bits"]
        report["val_body_loss_per_char_nats"] = m.get("val_body_loss_per_char_nats")
        report["val_body_loss_per_char_bits"] = m.get("val_body_loss_per_char_bits")
    sets = []
    if args.samples:
        rows = read_jsonl(args.samples)
        for name in ("trained", "random"):
            tunes = sorted([r for r in rows if r["model"] == name], key=lambda r: r["i"])
            if tunes:
                sets.append((name, tunes))
    for spec in args.set:
        name, _, path = spec.partition("=")
        sets.append((name, read_jsonl(path)))
    if args.data:
        sets.append(("corpus_validation", read_jsonl(os.path.join(args.data, "validation.jsonl"))))
        if args.corpus_all:
            sets.append(("corpus_train", read_jsonl(os.path.join(args.data, "train.jsonl"))))
    details = {}
    with tempfile.TemporaryDirectory() as work:
        for name, tunes in sets:
            keep = None
            if args.keep:
                keep = os.path.join(args.keep, name)
                os.makedirs(keep, exist_ok=True)
            res, per = evaluate_set(name, tunes, work, keep)
            report[name] = res
            details[name] = per
            print("%-18s n=%4d abc2midi clean %5.1f%% (no error %5.1f%%)  bars ok %5.1f%% (%d of %d checked, %d total)  "
                  "tunes all bars ok %5.1f%%%s" % (
                      name, res["n"], 100 * res["abc2midi_clean_share"],
                      100 * res["abc2midi_no_error_share"], 100 * res["bar_ok_share"],
                      res["bars_good"], res["bars_checked"], res["bars_total"],
                      100 * res["tunes_all_bars_ok_share"],
                      ("  ended </s> %.0f%%" % (100 * res["ended_with_eos_share"])
                       if "ended_with_eos_share" in res else "") +
                      (" (%.0f%% as the budget ran out)" % (100 * res["ended_by_budget_share"])
                       if "ended_by_budget_share" in res else "")))
            print("%-18s %d styles  4+ identical bars in a row %5.1f%%  distinct bars %5.1f%%  ends on the tonic %5.1f%%" % (
                "", res["styles"], 100 * res["identical_run4_share"], 100 * res["distinct_bar_share"],
                100 * res["ends_on_tonic_share"]))
            for k, v in list(res["problem_kinds"].items())[:6]:
                print("    %4d  %s" % (v, k))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(report, fh, indent=1)
        if args.keep:
            with open(os.path.join(args.keep, "per_tune.json"), "w") as fh:
                json.dump(details, fh, indent=1)


if __name__ == "__main__":
    main()
