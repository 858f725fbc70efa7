#!/usr/bin/env python3
"""Per-style defaults and trained meter/unit combinations for models/abc-folk/duet.json.

    python3 scripts/abc/prepare_dataset.py /work/shared/data/abc out/abc-data
    python3 scripts/abc/style_stats.py --data out/abc-data --duet-json models/abc-folk/duet.json

From the training split (the tunes the model learnt from) it writes, per style:
  meter, unit, key: the most frequent of each (unit: the most frequent with that meter);
  tunes: how many training tunes have the style;
  combos: "meter unit" -> number of tunes, every combination the style was trained on;
  bars_p10, bars_p50, bars_p90: the 10th, 50th and 90th percentile of bar lines per tune (| || |]
    |: :| :: [| each count once): duet-edge's ending push discourages an end before p10, starts at
    the median and pushes hard past p90 (edge/music/tune_ending.hpp);
  tonic_endings: the share of tunes whose last note is the key's tonic (pitch class);
  max_bar_repeats: the 90th percentile of how often a tune's most frequent bar comes (bars compared
    as music: scripts/abc/tune_figures.py), max_cell_repeats: the 95th percentile of the same for
    2-bar cells, max_bar_share: the 90th percentile of the share of a tune's bars its most frequent
    bar takes, max_repeat_share: the 75th percentile of the share of a tune's bars that repeat an
    earlier bar of it (1 - distinct bars / bars): the repetition guard's limits
    (edge/music/bar_constraint.hpp).
The global "defaults" become the default style's own (so a bare `duet-edge generate` asks for a
combination the model knows) and "units" lists every unit seen. Other keys of duet.json are kept.
"""
import argparse
import collections
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tune_figures import tune_figures  # noqa: E402


def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True, help="folder with train.jsonl from prepare_dataset.py")
    ap.add_argument("--duet-json", required=True, help="duet.json to update in place")
    args = ap.parse_args()
    rows = [json.loads(l) for l in open(args.data + "/train.jsonl") if l.strip()]
    combos = collections.defaultdict(collections.Counter)
    keys = collections.defaultdict(collections.Counter)
    meters = collections.defaultdict(collections.Counter)
    units = collections.Counter()
    figures = collections.defaultdict(list)
    for r in rows:
        if r["meter"] == "none":
            continue
        combos[r["style"]][(r["meter"], r["unit"])] += 1
        meters[r["style"]][r["meter"]] += 1
        keys[r["style"]][r["key"]] += 1
        units[r["unit"]] += 1
        figures[r["style"]].append(tune_figures(r["meter"], r["unit"], r["key"], r["body"]))
    spec = json.load(open(args.duet_json))
    out = {}
    for style in spec["styles"]:
        if style not in combos:
            continue
        meter = meters[style].most_common(1)[0][0]
        unit = max(((u, n) for (m, u), n in combos[style].items() if m == meter), key=lambda x: x[1])[0]
        out[style] = {
            "meter": meter, "unit": unit, "key": keys[style].most_common(1)[0][0],
            "tunes": sum(combos[style].values()),
            "combos": {"%s %s" % mu: n for mu, n in combos[style].most_common()},
        }
        f = figures[style]
        bars = [x["bar_lines"] for x in f]
        out[style].update({
            "bars_p10": percentile(bars, 0.1), "bars_p50": percentile(bars, 0.5), "bars_p90": percentile(bars, 0.9),
            "tonic_endings": round(sum(x["ends_on_tonic"] for x in f) / len(f), 3),
            "max_bar_repeats": percentile([x["top_bar_count"] for x in f], 0.9),
            "max_cell_repeats": percentile([x["top_cell_count"] for x in f], 0.95),
            "max_bar_share": round(percentile([x["top_bar_share"] for x in f], 0.9), 3),
            "max_repeat_share": round(percentile([1 - x["distinct_bars"] / x["n_bars"] for x in f if x["n_bars"]], 0.75),
                                      3),
        })
    spec["style_defaults"] = out
    spec["units"] = [u for u, _ in units.most_common()]
    d = spec["defaults"]["style"]
    spec["defaults"].update({k: out[d][k] for k in ("meter", "unit", "key")})
    with open(args.duet_json, "w") as fh:
        json.dump(spec, fh, indent=1)
        fh.write("\n")
    print("style_stats: %d styles, defaults %s" % (len(out), spec["defaults"]))


if __name__ == "__main__":
    main()
