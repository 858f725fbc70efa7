#!/usr/bin/env python3
"""Per-style defaults and trained meter/unit combinations for models/abc-folk/duet.json.

    python3 scripts/abc/prepare_dataset.py /work/shared/data/abc out/abc-data
    python3 scripts/abc/style_stats.py --data out/abc-data --duet-json models/abc-folk/duet.json

From the training split (the tunes the model learnt from) it writes, per style:
  meter, unit, key: the most frequent of each (unit: the most frequent with that meter);
  tunes: how many training tunes have the style;
  combos: "meter unit" -> number of tunes, every combination the style was trained on;
  bars_p90: the 90th percentile of bar lines per tune (| || |] |: :| :: [| each count once), the
    length past which duet-edge's ending push starts (edge/music/tune_ending.hpp).
The global "defaults" become the default style's own (so a bare `duet-edge generate` asks for a
combination the model knows) and "units" lists every unit seen. Other keys of duet.json are kept.
"""
import argparse
import collections
import json
import re

BAR_LINE = re.compile(r"::|:\||\|:|\|\]|\|\||\[\||\|")


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
    bars = collections.defaultdict(list)
    for r in rows:
        if r["meter"] == "none":
            continue
        combos[r["style"]][(r["meter"], r["unit"])] += 1
        meters[r["style"]][r["meter"]] += 1
        keys[r["style"]][r["key"]] += 1
        units[r["unit"]] += 1
        bars[r["style"]].append(len(BAR_LINE.findall(r["body"])))
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
            "bars_p90": sorted(bars[style])[int(0.9 * len(bars[style]))],
        }
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
