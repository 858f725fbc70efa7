#!/usr/bin/env python3
"""The training tunes' passages of 3 bars, as fingerprints the edge refuses to copy (Python 3 stdlib).

    python3 scripts/abc/corpus_index.py --data out/abc-data --out models/abc-folk/corpus_passages.bin \
        --duet-json models/abc-folk/duet.json

Issue 24 wants no tune to share more than 2 bars in a row with a training tune (evaluate.py's
longest_shared_bars, bars compared as music). So the edge's bar constraint refuses the note (or bar
line) that would close a bar making the tune's last 3 bars a passage of the corpus
(edge/music/corpus_passages.hpp). This script writes the passages it checks against:

  bars       each training tune read by scripts/abc/abc_bars.py (as evaluate.py reads it): a bar's
             events are (MIDI pitch after key signature and the bar's accidentals, or a sorted tuple
             for a chord, or "z"; length as a fraction of a whole note), ties inside a bar merged;
  bar hash   FNV-1a (64 bits) over 64-bit values, each fed as 8 little-endian bytes: per event
             [0] for a rest, [1, pitch] for a note, [2, n, pitches...] for a chord, then the
             length's numerator and denominator (lowest terms);
  passage    FNV-1a over the hashes of 3 bars in a row (bars with notes); its fingerprint is the
             upper 32 bits;
  file       "DUETPSG1", uint32 bars per passage, uint32 count, then the count fingerprints,
             sorted, unique, uint32 little-endian (79,000 passages of the 5,104 training tunes:
             about 320 KB; a fingerprint collision refuses a bar that copies nothing once in
             ~50,000 lookups).

--duet-json records the file's name under "corpus_passages" (the edge loads it with the model;
without it the guard is off). --check FILE.jsonl prints, for rows with prompt/body/meter/unit/key,
the passages of 3 bars each tune shares with the file (0 for tunes the edge wrote with the guard on).
"""
import argparse
import json
import os
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tune_figures import tune_figures  # noqa: E402

MASK = (1 << 64) - 1
FNV_OFFSET = 1469598103934665603
FNV_PRIME = 1099511628211
MAGIC = b"DUETPSG1"
PASSAGE_BARS = 3


def mix(h, v):
    """FNV-1a over the 8 little-endian bytes of v (edge/music: the same mix)."""
    v &= MASK
    for i in range(8):
        h = ((h ^ ((v >> (8 * i)) & 0xFF)) * FNV_PRIME) & MASK
    return h


def event_values(pitch, length):
    if pitch == "z":
        vals = [0]
    elif isinstance(pitch, tuple):
        vals = [2, len(pitch)] + sorted(pitch)
    else:
        vals = [1, pitch]
    return vals + [length.numerator, length.denominator]


def bar_hash(events):
    h = FNV_OFFSET
    for pitch, length in events:
        for v in event_values(pitch, length):
            h = mix(h, v)
    return h


def passage_fingerprint(bar_hashes):
    h = FNV_OFFSET
    for b in bar_hashes:
        h = mix(h, b)
    return h >> 32


def tune_fingerprints(row, bars=PASSAGE_BARS):
    keys = tune_figures(row["meter"], row["unit"], row["key"], row["body"])["bar_keys"]
    hashes = [bar_hash(k) for k in keys]
    return [passage_fingerprint(hashes[i:i + bars]) for i in range(len(hashes) - bars + 1)]


def write_index(path, fingerprints, bars=PASSAGE_BARS):
    fps = sorted(set(fingerprints))
    with open(path, "wb") as fh:
        fh.write(MAGIC + struct.pack("<II", bars, len(fps)))
        fh.write(struct.pack("<%dI" % len(fps), *fps))
    return len(fps)


def read_index(path):
    data = open(path, "rb").read()
    assert data[:8] == MAGIC, "%s: not a passage index" % path
    bars, n = struct.unpack_from("<II", data, 8)
    return bars, set(struct.unpack_from("<%dI" % n, data, 16))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", help="folder with train.jsonl from prepare_dataset.py")
    ap.add_argument("--out", help="index file to write")
    ap.add_argument("--duet-json", help="duet.json to name the index in (\"corpus_passages\")")
    ap.add_argument("--check", metavar="FILE.jsonl", help="count each row's passages found in --out")
    args = ap.parse_args()
    if args.check:
        bars, index = read_index(args.out)
        total = 0
        for line in open(args.check):
            if not line.strip():
                continue
            r = json.loads(line)
            r.setdefault("key", r["prompt"].split("K:")[1].split("\n")[0])
            hits = sum(fp in index for fp in tune_fingerprints(r, bars))
            total += hits > 0
            print(r.get("style"), r.get("seed"), hits)
        print("tunes sharing a passage of %d bars with the index: %d" % (bars, total))
        return
    rows = [json.loads(l) for l in open(os.path.join(args.data, "train.jsonl")) if l.strip()]
    fps = []
    for r in rows:
        fps += tune_fingerprints(r)
    n = write_index(args.out, fps)
    print("corpus_index: %d tunes, %d passages of %d bars, %d distinct fingerprints, %d bytes" % (
        len(rows), len(fps), PASSAGE_BARS, n, os.path.getsize(args.out)))
    if args.duet_json:
        spec = json.load(open(args.duet_json))
        spec["corpus_passages"] = os.path.basename(args.out)
        with open(args.duet_json, "w") as fh:
            json.dump(spec, fh, indent=1)
            fh.write("\n")


if __name__ == "__main__":
    main()
