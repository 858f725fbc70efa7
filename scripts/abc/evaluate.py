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

  Issue 24's figures (scripts/abc/tune_figures.py), overall and per style ("per_style"; printed as
  markdown tables, --table writes them to a file):
  * bars_all_right_share: the pickup-aware bar check over every bar (a shorter bar is right next to
    a bar line other than "|" or at the tune's start or end; none may be longer);
  * abcm2ps_no_error_share: abcm2ps typesets the tune with no "error" line ("Line too much shrunk"
    is one of its errors); abcm2ps_no_warning_share: nor a "warning" line (layout: Line overfull);
  * monotonous_share: tunes where one bar (compared as music: same pitches and lengths however
    written) makes up >= 25 % of the bars; distinct_bar_share: distinct bars as music / bars
    (distinct_bar_share_as_written: the old figure, bars as written);
  * ends_on_tonic_share: the last note's pitch class is the key's tonic (the old letter-only
    figure is ends_on_tonic_letter_share);
  * ended_by_itself_share (the end token before any budget rule) and ended_by_budget_share;
  * median_bar_lines and length_in_range_share: bar lines per tune, and the share within the
    style's p10-p90 (duet.json, --duet-json); longer_than_p90_share: the share past its p90;
  * longest_shared_bars_max/median: the most bars in a row a tune shares with one training tune
    (with --data; counted up to 16), shared_within_2_bars_share;
  * sample_ms_per_token_median: duet-edge's time per token in its logits processor and sampler.

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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from abc_bars import BarChecker, frac  # noqa: E402
from tune_figures import CorpusIndex, tune_figures  # noqa: E402

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


def run_abcm2ps(path, workdir):
    """abcm2ps's error lines and warning lines for a tune (typesetting it to a throw-away file).

    Its layout warnings ("Line overfull/underfull") are warnings; "Line too much shrunk" is one of
    its errors (abcm2ps says "error:") and counted as one."""
    try:
        p = subprocess.run(["abcm2ps", "-q", path, "-O", os.path.join(workdir, "out.ps")], capture_output=True,
                           text=True, errors="replace", timeout=20)
    except subprocess.TimeoutExpired:
        return ["timeout"], []
    lines = (p.stdout + p.stderr).splitlines()
    errors = [l for l in lines if re.search(r"error", l, re.I)]
    warnings = [l for l in lines if re.search(r"warning", l, re.I)]
    if p.returncode != 0 and not errors:
        errors.append("abcm2ps exit code %d" % p.returncode)
    return errors, warnings


def style_of(t):
    return t.get("style") or re.search(r"^S:(.*)$", t["prompt"], re.M).group(1)


def tune_record(name, i, t, workdir, corpus, style_stats):
    """Every figure of one tune (see the module's doc)."""
    text = "X:1\nT:%s %d\n%s%s" % (name, i + 1, t["prompt"], t["body"])
    if not text.endswith("\n"):
        text += "\n"
    path = os.path.join(workdir, "%s_%03d.abc" % (name, i + 1))
    with open(path, "w") as fh:
        fh.write(text)
    ok, problems = run_abc2midi(path, workdir)
    ps_errors, ps_warnings = run_abcm2ps(path, workdir) if shutil.which("abcm2ps") else (None, None)
    key = t.get("key") or re.search(r"^K:\s*(\S+)", t["prompt"], re.M).group(1)
    b = check_bars(t["meter"], t["unit"], t["body"])
    rep = repetition_stats(t["body"])
    fig = tune_figures(t["meter"], t["unit"], key, t["body"])
    keys = fig.pop("bar_keys")
    last = last_note_letter(t["body"])
    style = style_of(t)
    r = {"i": i + 1, "style": style, "path": path, "abc2midi_clean": ok, "problems": problems[:5],
         "abc2midi_no_error": not any(re.search(r"error|exit code|no MIDI|no notes|unreadable|timeout", p, re.I)
                                      for p in problems),
         "abcm2ps_errors": ps_errors[:3] if ps_errors is not None else None,
         "abcm2ps_warnings": ps_warnings[:3] if ps_warnings is not None else None,
         "ms_per_token": t.get("sample_ms_per_token"),
         "on_tonic_letter": last is not None and last == key[0].upper(), **rep, **b, **fig}
    if "ended_with_eos" in t:
        r["ended_by_budget"] = bool(t.get("ended_by_budget"))
        r["ended_by_itself"] = bool(t["ended_with_eos"]) and not r["ended_by_budget"]
        r["cut"] = not t["ended_with_eos"]
    st = style_stats.get(style, {})
    if "bars_p10" in st and "bars_p90" in st:
        r["length_in_range"] = st["bars_p10"] <= fig["bar_lines"] <= st["bars_p90"]
        r["longer_than_p90"] = fig["bar_lines"] > st["bars_p90"]
    if corpus is not None:
        r["longest_shared_bars"] = corpus.longest_shared(keys)
    return r


def aggregate(per):
    """The set's figures from its tunes' records."""
    n = max(1, len(per))

    def share(k):
        return sum(bool(r[k]) for r in per) / n

    res = {"n": len(per),
           "abc2midi_clean": sum(r["abc2midi_clean"] for r in per), "abc2midi_clean_share": share("abc2midi_clean"),
           "abc2midi_no_error": sum(r["abc2midi_no_error"] for r in per),
           "abc2midi_no_error_share": share("abc2midi_no_error"),
           "bars_checked": sum(r["checked"] for r in per), "bars_good": sum(r["good"] for r in per),
           "bars_total": sum(r["bars"] for r in per),
           "tunes_with_checked_bars": sum(bool(r["checked"]) for r in per),
           "tunes_all_bars_ok": sum(bool(r["checked"]) and r["checked"] == r["good"] for r in per),
           "unparsed_tokens": sum(r["unparsed"] for r in per),
           "bars_all": sum(r["bars_all"] for r in per), "bars_all_right": sum(r["bars_all_right"] for r in per),
           "identical_run4_share": sum(r["longest_identical_run"] >= 4 for r in per) / n,
           "distinct_bar_share_as_written": sum(r["distinct"] for r in per) / max(1, sum(r["n_bars"] for r in per)),
           "distinct_bar_share": sum(r["distinct_bars"] for r in per) / max(1, sum(r["n_bars"] for r in per)),
           "monotonous_share": sum(r["top_bar_share"] >= 0.25 for r in per) / n,
           "ends_on_tonic_share": share("ends_on_tonic"), "ends_on_tonic_letter_share": share("on_tonic_letter"),
           "median_bar_lines": sorted(r["bar_lines"] for r in per)[len(per) // 2] if per else 0}
    res["bar_ok_share"] = res["bars_good"] / max(1, res["bars_checked"])
    res["bars_all_right_share"] = res["bars_all_right"] / max(1, res["bars_all"])
    res["tunes_all_bars_ok_share"] = res["tunes_all_bars_ok"] / n
    if per and per[0]["abcm2ps_errors"] is not None:
        res["abcm2ps_no_error_share"] = sum(not r["abcm2ps_errors"] for r in per) / n
        res["abcm2ps_no_warning_share"] = sum(not r["abcm2ps_warnings"] for r in per) / n
    cost = sorted(r["ms_per_token"] for r in per if r.get("ms_per_token") is not None)
    if cost:  # duet-edge's median time per token in the logits processor and the sampler, per tune
        res["sample_ms_per_token_median"] = cost[len(cost) // 2]
    if per and "ended_by_itself" in per[0]:
        res["ended_with_eos_share"] = 1 - share("cut")
        res["ended_by_itself_share"] = share("ended_by_itself")
        res["ended_by_budget_share"] = share("ended_by_budget")
    if per and "length_in_range" in per[0]:
        res["length_in_range_share"] = share("length_in_range")
        res["longer_than_p90_share"] = share("longer_than_p90")
    if per and "longest_shared_bars" in per[0]:
        shared = sorted(r["longest_shared_bars"] for r in per)
        res["longest_shared_bars_max"] = shared[-1]
        res["longest_shared_bars_median"] = shared[len(shared) // 2]
        res["shared_within_2_bars_share"] = sum(x <= 2 for x in shared) / n
    return res


def evaluate_set(name, tunes, workdir, keep_dir=None, corpus=None, style_stats=None):
    """tunes: list of dicts with prompt, body, meter, unit (+ ended_with_eos for model sets)."""
    per = []
    kinds = {}
    for i, t in enumerate(tunes):
        r = tune_record(name, i, t, workdir, corpus, style_stats or {})
        for p in r["problems"]:
            kind = re.sub(r"^(Error|Warning) in line(-char)? [\d-]+ : ", r"\1: ", p)
            kind = re.sub(r"\d+", "N", kind)[:70]
            kinds[kind] = kinds.get(kind, 0) + 1
        for p in r["abcm2ps_errors"] or []:
            kind = "abcm2ps: " + re.sub(r"\d+", "N", re.sub(r"^.*?error: ", "", p))[:60]
            kinds[kind] = kinds.get(kind, 0) + 1
        if keep_dir:
            shutil.copy(r["path"], keep_dir)
        per.append(r)
    res = aggregate(per)
    res["mean_body_chars"] = sum(len(t["body"]) for t in tunes) / max(1, len(tunes))
    res["styles"] = len(set(r["style"] for r in per))
    res["problem_kinds"] = dict(sorted(kinds.items(), key=lambda kv: -kv[1])[:12])
    by_style = {}
    for r in per:
        by_style.setdefault(r["style"], []).append(r)
    if len(by_style) > 1:
        res["per_style"] = {s: aggregate(rs) for s, rs in sorted(by_style.items(), key=lambda kv: -len(kv[1]))}
    return res, per


def pct(x):
    return "%.0f %%" % (100 * x) if x is not None else "-"


def style_table(name, res):
    """The set's figures per style as a markdown table (issue 24's targets)."""
    rows = [("all", res)] + list(res.get("per_style", {}).items())
    out = ["| %s | n | bars right (all / interior) | abc2midi no error / no warning | abcm2ps no error / no warning "
           "| ended by itself (budget rule) | median bars (in p10-p90, over p90) | one bar >= 25 %% | distinct bars "
           "| ends on tonic | longest shared (max / median bars) | edge ms/token |" % name,
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for style, r in rows:
        ms = r.get("sample_ms_per_token_median")
        out.append("| %s | %d | %s / %s | %s / %s | %s / %s | %s (%s) | %d (%s, %s) | %s | %s | %s | %s | %s |" % (
            style, r["n"], pct(r["bars_all_right_share"]), pct(r["bar_ok_share"]), pct(r["abc2midi_no_error_share"]),
            pct(r["abc2midi_clean_share"]), pct(r.get("abcm2ps_no_error_share")),
            pct(r.get("abcm2ps_no_warning_share")), pct(r.get("ended_by_itself_share")),
            pct(r.get("ended_by_budget_share")), r["median_bar_lines"], pct(r.get("length_in_range_share")),
            pct(r.get("longer_than_p90_share")),
            pct(r["monotonous_share"]), pct(r["distinct_bar_share"]), pct(r["ends_on_tonic_share"]),
            "%s / %s" % (r.get("longest_shared_bars_max", "-"), r.get("longest_shared_bars_median", "-")),
            "%.3f" % ms if ms is not None else "-"))
    return "\n".join(out)


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
    ap.add_argument("--duet-json", default="models/abc-folk/duet.json",
                    help="the model's duet.json: each style's bars_p10/bars_p90 (style_stats.py) for the length check")
    ap.add_argument("--no-corpus-sets", action="store_true",
                    help="with --data: use the corpus only to find shared passages, do not score it as a set")
    ap.add_argument("--table", help="markdown file to write the per-style tables to")
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
    corpus = None
    if args.data:
        train = read_jsonl(os.path.join(args.data, "train.jsonl"))
        # the training tunes as bars of music: a tune's longest passage shared with any of them
        corpus = CorpusIndex([tune_figures(t["meter"], t["unit"], t["key"], t["body"])["bar_keys"] for t in train])
        if not args.no_corpus_sets:
            sets.append(("corpus_validation", read_jsonl(os.path.join(args.data, "validation.jsonl"))))
            if args.corpus_all:
                sets.append(("corpus_train", train))
    style_stats = {}
    if args.duet_json and os.path.exists(args.duet_json):
        style_stats = json.load(open(args.duet_json)).get("style_defaults", {})
    details = {}
    tables = []
    with tempfile.TemporaryDirectory() as work:
        for name, tunes in sets:
            keep = None
            if args.keep:
                keep = os.path.join(args.keep, name)
                os.makedirs(keep, exist_ok=True)
            res, per = evaluate_set(name, tunes, work, keep, None if name == "corpus_train" else corpus, style_stats)
            for r in per:
                r.pop("path")
            tables.append(style_table(name, res))
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
            print("%-18s %d styles  4+ identical bars in a row %5.1f%%  distinct bars %5.1f%% (as written %5.1f%%)  "
                  "ends on the tonic %5.1f%%  one bar >= 25%% of bars %5.1f%%" % (
                      "", res["styles"], 100 * res["identical_run4_share"], 100 * res["distinct_bar_share"],
                      100 * res["distinct_bar_share_as_written"], 100 * res["ends_on_tonic_share"],
                      100 * res["monotonous_share"]))
            for k, v in list(res["problem_kinds"].items())[:6]:
                print("    %4d  %s" % (v, k))
    print("\n\n".join(tables))
    if args.table:
        with open(args.table, "w") as fh:
            fh.write("\n\n".join(tables) + "\n")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(report, fh, indent=1)
        if args.keep:
            with open(os.path.join(args.keep, "per_tune.json"), "w") as fh:
                json.dump(details, fh, indent=1)


if __name__ == "__main__":
    main()
