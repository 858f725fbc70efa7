#!/usr/bin/env python3
"""How much of generated tunes is copied from the training tunes (Python 3 stdlib only).

    python3 scripts/notagen/copying.py --data out/abc-data --set abc-folk=models/abc-folk/samples.jsonl:trained \
        --set notagen-folk=models/notagen-folk/samples.jsonl:trained [--out copying.json]

For each tune body (spaces and line breaks removed, so layout does not count), every window of N
characters (default 24, about two bars of a reel) is looked up among all windows of the training
bodies. Reported per set: the share of windows found in training ("copied windows"), the share of
tunes with at least half their windows found ("mostly copied tunes"), the median longest run of
consecutive found windows in characters, and the share of tunes with an exact copy of 4 bars or
more (a run of >= 48 characters). The validation tunes are scored as the yardstick: human tunes
of the same collections share idioms with the training tunes too.
"""
import argparse
import json
import os
import statistics


def norm(body):
    return "".join(body.split())


def windows(s, n):
    return [s[i:i + n] for i in range(len(s) - n + 1)]


def score(bodies, train, n):
    found = total = mostly = long_copies = 0
    runs = []
    for b in bodies:
        w = windows(norm(b), n)
        hits = [x in train for x in w]
        found += sum(hits)
        total += len(w)
        if w and sum(hits) >= len(w) / 2:
            mostly += 1
        best = cur = 0
        for h in hits:
            cur = cur + 1 if h else 0
            best = max(best, cur)
        run = best + n - 1 if best else 0
        runs.append(run)
        long_copies += run >= 48
    k = max(1, len(bodies))
    return {"n": len(bodies), "copied_window_share": found / max(1, total), "mostly_copied_share": mostly / k,
            "median_longest_copied_run": statistics.median(runs) if runs else 0,
            "copy_48_chars_share": long_copies / k, "window": n}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="out/abc-data")
    ap.add_argument("--set", action="append", default=[], metavar="NAME=FILE[:MODEL]")
    ap.add_argument("--window", type=int, default=24)
    ap.add_argument("--out")
    args = ap.parse_args()
    read = lambda p: [json.loads(l) for l in open(p) if l.strip()]
    train_recs = read(os.path.join(args.data, "train.jsonl"))
    train = set()
    for r in train_recs:
        train.update(windows(norm(r["body"]), args.window))
    report = {"train_windows": len(train)}
    sets = [("corpus_validation", [r["body"] for r in read(os.path.join(args.data, "validation.jsonl"))])]
    for spec in args.set:
        name, _, rest = spec.partition("=")
        path, _, model = rest.partition(":")
        rows = read(path)
        sets.append((name, [r["body"] for r in rows if not model or r.get("model") == model]))
    for name, bodies in sets:
        report[name] = score(bodies, train, args.window)
        r = report[name]
        print("%-24s n=%3d copied windows %5.1f%%  mostly copied tunes %5.1f%%  median longest copy %3d chars  "
              ">=48-char copies %5.1f%%" % (name, r["n"], 100 * r["copied_window_share"], 100 * r["mostly_copied_share"],
                                             r["median_longest_copied_run"], 100 * r["copy_48_chars_share"]))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(report, fh, indent=1)


if __name__ == "__main__":
    main()
