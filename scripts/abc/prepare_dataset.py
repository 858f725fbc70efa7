#!/usr/bin/env python3
"""Prepare the ABC folk-tune corpus for the bundled `abc-folk` model.

Python 3 standard library only.

    python3 scripts/abc/prepare_dataset.py /work/shared/data/abc out/abc-data

Reads the five collections under CORPUS (see CORPUS/SOURCES.md), writes
    OUT/train.jsonl, OUT/validation.jsonl   one tune per line
    OUT/stats.json                          counts, chars, duplicates, drops
The corpus itself is never copied into the repository: OUT must be a
git-ignored folder (the repository ignores /out/).

Record format (every field a string unless said otherwise):
    id          "<collection>/<file>#X<n>" (+ ":<k>" when a file repeats an X number)
    collection  oneills | ryans | aird | misc | nottingham
    rhythm      normalised rhythm ("reel", "jig", ...) or "" when unknown
    rhythm_from "R:" | "file" | "title" | ""  (where the rhythm came from)
    style       "<collection>-<rhythm>", or "<collection>" when the rhythm is unknown
    meter, unit, key    normalised M:, L:, K:
    prompt      "S:<style>\nM:<meter>\nL:<unit>\nK:<key>\n"
    body        the tune body (after K:), cleaned, ending with "\n"
    text        prompt + body  (the model is trained on <s> text </s>)
    split       "train" | "validation"

Decisions (also in models/abc-folk/README.md):
  * Titles (T:) are dropped: they are names, not musical conditions, and a
    tiny character model would spend capacity on English words.  The prompt
    is built from the conditioning fields only.
  * Kept header fields: M:, L:, K: (the prompt), R: (only to derive the style).
    M:C -> 4/4, M:C| -> 2/2; a missing L: is made explicit with the ABC default
    (1/16 if the meter is < 3/4, else 1/8); a missing M: becomes "none".
    K: is normalised to tonic + short mode ("G", "Am", "Ador", "Dmix", "Elyd",
    "Bphr", "Bloc"); comments after K: are dropped; explicit accidentals after
    the mode are kept.
  * Dropped header / body fields: X: (re-numbered at use), T:, C:, S:, Z:, N:,
    B:, H:, O:, G:, D:, P:, Q:, I:, W:, w: and every other field line, plus the
    same fields written inline ([P:A], [Q:...]).  Inline and body-line M:, L:,
    K: (meter / unit / key changes) are kept, as they change how notes sound.
  * Lyrics (w:/W:): dropped (there are almost none in this corpus).
  * Comments: lines starting with % (including %% directives) and trailing
    "% ..." comments are removed.
  * Quoted strings ("Am" chord symbols, "^text" annotations, fingerings "4",
    dynamics "p"): all removed.  Only Nottingham carries chord symbols; the
    model writes melody only, the same for every collection.
  * Multi-voice tunes (V: fields, [V:...] inline, & voice overlay) are dropped.
  * Malformed tunes are dropped: no K:, empty body, unmatched quotes, unbalanced
    [ ] or { } brackets, non-ASCII characters left in the body, and in
    miscFolk/americanfifeopus.abc the tunes numbered X:>100 (the editor's
    appended, un-tidied originals, which he says are malformed and duplicate
    the tidied tunes).
  * Backticks (`, a pure beaming/spacing mark that abc2midi warns about) are removed.
  * Whitespace: runs of spaces/tabs become one space, lines are stripped,
    empty lines removed (an empty line would end the tune in ABC).
  * Exact duplicates: after all of the above, tunes with the same meter, unit,
    key and body (ignoring all whitespace) are duplicates; the first one in
    collection order (oneills, ryans, aird, misc, nottingham; files sorted;
    order in file) is kept.
  * Split: by tune, validation if sha256("<seed>:<dedup key>") mod 10000 <
    validation_share*10000 (default 5 %, seed 1850) - deterministic and
    independent of file order.
"""
import argparse
import collections
import hashlib
import json
import os
import re
import sys
from fractions import Fraction

COLLECTIONS = [  # (folder, short name) in dedup priority order
    ("oneills1850", "oneills"),
    ("ryansMammoth", "ryans"),
    ("airdsAirs", "aird"),
    ("miscFolk", "misc"),
    ("nottingham", "nottingham"),
]

# R: values and title words -> normalised rhythm
RHYTHM_MAP = {
    "reel": "reel",
    "jig": "jig", "double jig": "jig", "single jig": "jig",
    "slip jig": "slipjig", "slipjig": "slipjig", "slip-jig": "slipjig",
    "hornpipe": "hornpipe", "clog": "hornpipe",
    "polka": "polka",
    "waltz": "waltz",
    "air": "air", "slow air": "air",
    "march": "march", "quickstep": "march",
    "strathspey": "strathspey", "highland fling": "strathspey", "fling": "strathspey",
    "slide": "slide",
    "schottische": "schottische",
    "mazurka": "mazurka",
    "minuet": "minuet",
}
# Nottingham file names that name one dance type
NOTTINGHAM_FILES = {"hpps": "hornpipe", "jigs": "jig", "slip": "slipjig", "waltzes": "waltz",
                    "morris": "morris", "reelsa-c": "reel", "reelsd-g": "reel",
                    "reelsh-l": "reel", "reelsm-q": "reel", "reelsr-t": "reel",
                    "reelsu-z": "reel"}
TITLE_WORDS = ["slip jig", "jig", "reel", "hornpipe", "polka", "waltz", "march", "quickstep",
               "strathspey", "highland fling", "slide", "schottische", "mazurka", "minuet"]

MODES = {"": "", "maj": "", "ion": "", "m": "m", "min": "m", "aeo": "m",
         "mix": "mix", "dor": "dor", "phr": "phr", "lyd": "lyd", "loc": "loc"}

FIELD_RE = re.compile(r"^([A-Za-z]):(.*)$")
INLINE_FIELD_RE = re.compile(r"\[([A-Za-z]):([^\]]*)\]")
QUOTE_RE = re.compile(r'"[^"]*"')


class Malformed(Exception):
    pass


def strip_comment(s):
    """Remove a trailing % comment (an escaped \\% is kept)."""
    m = re.search(r"(?<!\\)%", s)
    return s[:m.start()] if m else s


def norm_meter(v):
    v = strip_comment(v).strip().replace(" ", "")
    if v == "C":
        return "4/4"
    if v == "C|":
        return "2/2"
    if v == "" or v.lower() == "none":
        return "none"
    if not re.fullmatch(r"\d+/\d+", v):
        raise Malformed("meter %r" % v)
    return v


def norm_unit(v):
    v = strip_comment(v).strip().replace(" ", "")
    if not re.fullmatch(r"1/\d+", v):
        raise Malformed("unit %r" % v)
    return v


def default_unit(meter):
    if meter == "none":
        return "1/8"
    n, d = meter.split("/")
    return "1/16" if Fraction(int(n), int(d)) < Fraction(3, 4) else "1/8"


def norm_key(v):
    v = strip_comment(v).strip()
    if v.lower() in ("none", "hp"):
        return "HP" if v.lower() == "hp" else "none"
    m = re.match(r"^([A-G])([#b]?)\s*([A-Za-z]*)\s*(.*)$", v)
    if not m:
        raise Malformed("key %r" % v)
    tonic, acc, mode, rest = m.groups()
    mode_l = mode.lower()
    if mode == "M":                      # "EM": E major
        mode_l = ""
    if mode_l in MODES:
        mode_n = MODES[mode_l]
    elif mode_l[:3] in MODES and len(mode_l) >= 3:
        mode_n = MODES[mode_l[:3]]       # "Mixolydian", "Dorian", "Minor", "Dmixm"
    elif mode_l[:1] == "m" and mode_l[:3] not in MODES:
        raise Malformed("key mode %r" % v)
    else:
        raise Malformed("key mode %r" % v)
    # keep explicit accidentals ("=c", "^f"), drop anything else (clef=..., words)
    extra = " ".join(re.findall(r"[_^=][a-gA-G]", rest))
    if re.match(r"^[_^=][a-gA-G]", mode):
        raise Malformed("key %r" % v)
    key = tonic + acc + mode_n
    return key + (" " + extra if extra else "")


def rhythm_of(r_field, coll, fname, titles):
    if r_field:
        r = re.sub(r"\s+", " ", strip_comment(r_field).strip().lower())
        r = r.rstrip(".")
        if r in RHYTHM_MAP:
            return RHYTHM_MAP[r], "R:"
        for w in TITLE_WORDS:            # "Reel (Scotch)" and the like
            if re.search(r"\b%s\b" % w, r):
                return RHYTHM_MAP[w], "R:"
    if coll == "nottingham":
        stem = os.path.splitext(fname)[0]
        if stem in NOTTINGHAM_FILES:
            return NOTTINGHAM_FILES[stem], "file"
    for t in titles:
        tl = t.lower()
        for w in TITLE_WORDS:
            if re.search(r"\b%ss?\b" % w, tl):
                return RHYTHM_MAP[w], "title"
    return "", ""


def clean_body_line(line):
    """Clean one body line; returns '' to drop it.  Raises Malformed."""
    s = line.rstrip("\r\n")
    if s.lstrip().startswith("%"):
        return ""
    m = FIELD_RE.match(s)
    if m:
        f, v = m.group(1), m.group(2)
        if f == "V":
            raise Malformed("multi-voice")
        if f == "M":
            return "M:" + norm_meter(v)
        if f == "L":
            return "L:" + norm_unit(v)
        if f == "K":
            return "K:" + norm_key(v)
        return ""                        # T:, P:, N:, w:, W:, Q:, I:, ...
    if s.count('"') % 2:
        raise Malformed("unmatched quote")
    s = QUOTE_RE.sub("", s)
    s = strip_comment(s)

    def inline(mm):
        f, v = mm.group(1), mm.group(2)
        if f == "V":
            raise Malformed("multi-voice")
        if f == "M":
            return "[M:%s]" % norm_meter(v)
        if f == "L":
            return "[L:%s]" % norm_unit(v)
        if f == "K":
            return "[K:%s]" % norm_key(v)
        return ""
    s = INLINE_FIELD_RE.sub(inline, s)
    if "&" in s:
        raise Malformed("voice overlay")
    s = s.replace("`", "")               # beaming spacer; abc2midi warns "Ignoring reserved character"
    s = re.sub(r"[ \t]+", " ", s).strip()
    return s


def split_tunes(text):
    """Yield (x_number, lines) for each X: tune in one file."""
    cur = None
    for line in text.splitlines():
        if re.match(r"^X:", line):
            if cur:
                yield cur
            cur = (line[2:].strip(), [line])
        elif cur is not None:
            if line.strip() == "" and any(FIELD_RE.match(l) and l.startswith("K:") for l in cur[1]):
                yield cur            # a blank line after K: ends the tune
                cur = None
            else:
                cur[1].append(line)
    if cur:
        yield cur


def parse_tune(lines):
    head = {}
    titles = []
    i = 0
    for i, line in enumerate(lines):
        if line.lstrip().startswith("%"):
            continue
        m = FIELD_RE.match(line)
        if not m:
            continue                 # stray text in the header (a comment continued with \\,
                                     # "N bars ..." missing its colon): ignored
        f, v = m.group(1), m.group(2).strip()
        if f == "T":
            titles.append(v)
        if f == "V":
            raise Malformed("multi-voice")
        if f in ("M", "L", "K", "R") and f not in head:
            head[f] = v
        if f == "K":
            break
    else:
        raise Malformed("no K:")
    meter = norm_meter(head["M"]) if "M" in head else "none"
    unit = norm_unit(head["L"]) if "L" in head else default_unit(meter)
    key = norm_key(head["K"])
    body = []
    for line in lines[i + 1:]:
        s = clean_body_line(line)
        if s:
            body.append(s)
    body_text = "\n".join(body)
    if not re.search(r"[A-Ga-g]", body_text):
        raise Malformed("empty body")
    # "[1", "[2" (endings) and "[|", "|]" (bar lines) are not chord/field brackets
    b = re.sub(r"\[(?=[\d|])|(?<=\|)\]", "", body_text)
    if b.count("[") != b.count("]") or b.count("{") != b.count("}"):
        raise Malformed("unbalanced brackets")
    if any(ord(c) > 126 or (ord(c) < 32 and c != "\n") for c in body_text):
        raise Malformed("non-ASCII in body")
    return dict(meter=meter, unit=unit, key=key, rhythm_field=head.get("R", ""),
                titles=titles, body=body_text + "\n")


def make_prompt(style, meter, unit, key):
    return "S:%s\nM:%s\nL:%s\nK:%s\n" % (style, meter, unit, key)


def pct(vals, p):
    vals = sorted(vals)
    return vals[min(len(vals) - 1, int(p / 100.0 * len(vals)))] if vals else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus", help="folder holding oneills1850/, ryansMammoth/, ... (e.g. /work/shared/data/abc)")
    ap.add_argument("out", help="output folder (git-ignored, e.g. out/abc-data)")
    ap.add_argument("--seed", type=int, default=1850)
    ap.add_argument("--validation-share", type=float, default=0.05)
    args = ap.parse_args()

    os.makedirs(args.out, exist_ok=True)
    seen = {}
    records = []
    drops = collections.Counter()
    drop_examples = collections.defaultdict(list)
    dups = collections.Counter()
    dups_cross = 0
    raw_tunes = collections.Counter()
    for folder, coll in COLLECTIONS:
        d = os.path.join(args.corpus, folder)
        if not os.path.isdir(d):
            sys.exit("missing collection folder %s" % d)
        for fname in sorted(os.listdir(d)):
            if not fname.endswith(".abc"):
                continue
            with open(os.path.join(d, fname), encoding="utf-8") as fh:
                text = fh.read()
            xcount = collections.Counter()
            for x, lines in split_tunes(text):
                raw_tunes[coll] += 1
                xcount[x] += 1
                tid = "%s/%s#X%s" % (folder, fname, x) + (":%d" % xcount[x] if xcount[x] > 1 else "")
                try:
                    if fname == "americanfifeopus.abc" and x.isdigit() and int(x) > 100:
                        raise Malformed("fife original (X>100)")
                    t = parse_tune(lines)
                except Malformed as e:
                    reason = re.sub(r""" ['"].*$""", "", str(e))  # "key 'Bn'" -> "key"
                    drops[reason] += 1
                    if len(drop_examples[reason]) < 5:
                        drop_examples[reason].append(tid + ": " + str(e))
                    continue
                rhythm, rfrom = rhythm_of(t["rhythm_field"], coll, fname, t["titles"])
                style = "%s-%s" % (coll, rhythm) if rhythm else coll
                dkey = "%s|%s|%s|%s" % (t["meter"], t["unit"], t["key"], re.sub(r"\s+", "", t["body"]))
                if dkey in seen:
                    dups[coll] += 1
                    if seen[dkey] != coll:
                        dups_cross += 1
                    continue
                seen[dkey] = coll
                h = int(hashlib.sha256(("%d:%s" % (args.seed, dkey)).encode()).hexdigest(), 16)
                split = "validation" if h % 10000 < int(round(args.validation_share * 10000)) else "train"
                prompt = make_prompt(style, t["meter"], t["unit"], t["key"])
                records.append(collections.OrderedDict(
                    id=tid, collection=coll, rhythm=rhythm, rhythm_from=rfrom, style=style,
                    meter=t["meter"], unit=t["unit"], key=t["key"], prompt=prompt, body=t["body"],
                    text=prompt + t["body"], split=split))

    for split in ("train", "validation"):
        with open(os.path.join(args.out, split + ".jsonl"), "w", encoding="utf-8") as fh:
            for r in records:
                if r["split"] == split:
                    fh.write(json.dumps(r, ensure_ascii=True) + "\n")

    def count(field, split=None):
        return dict(collections.Counter(r[field] for r in records if split in (None, r["split"])).most_common())

    lens = [len(r["text"]) + 2 for r in records]  # + <s> and </s>
    chars = collections.Counter()
    for r in records:
        if r["split"] == "train":
            chars.update(r["text"])
    stats = collections.OrderedDict(
        corpus=os.path.abspath(args.corpus), seed=args.seed, validation_share=args.validation_share,
        raw_tunes=dict(raw_tunes), raw_tunes_total=sum(raw_tunes.values()),
        dropped=dict(drops), dropped_total=sum(drops.values()), dropped_examples=dict(drop_examples),
        duplicates_removed=dict(dups), duplicates_removed_total=sum(dups.values()),
        duplicates_across_collections=dups_cross,
        kept_total=len(records),
        split=count("split"),
        per_collection=count("collection"),
        per_collection_validation=count("collection", "validation"),
        per_rhythm=count("rhythm"), rhythm_from=count("rhythm_from"),
        per_style=count("style"),
        per_meter=count("meter"), per_unit=count("unit"), per_key=count("key"),
        chars_total=sum(len(r["text"]) for r in records),
        chars_train=sum(len(r["text"]) for r in records if r["split"] == "train"),
        chars_validation=sum(len(r["text"]) for r in records if r["split"] == "validation"),
        body_chars_total=sum(len(r["body"]) for r in records),
        tokens_per_record={"min": min(lens), "p50": pct(lens, 50), "p90": pct(lens, 90),
                           "p99": pct(lens, 99), "max": max(lens),
                           "over_1024": sum(1 for n in lens if n > 1024)},
        train_charset="".join(sorted(chars)), train_charset_size=len(chars),
    )
    with open(os.path.join(args.out, "stats.json"), "w") as fh:
        json.dump(stats, fh, indent=1)
    brief = {k: stats[k] for k in ("raw_tunes_total", "dropped", "duplicates_removed_total",
                                   "duplicates_across_collections", "kept_total", "split",
                                   "per_collection", "chars_total", "tokens_per_record",
                                   "train_charset_size")}
    print(json.dumps(brief, indent=1))
    print("styles:", json.dumps(stats["per_style"]))


if __name__ == "__main__":
    main()
