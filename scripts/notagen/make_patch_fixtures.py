#!/usr/bin/env python3
"""tests/fixtures/notagen/patches.json: what scripts/notagen/patchilizer.py makes of tricky lines
and of folk tunes, for edge/notagen/patches.cpp to reproduce (Python 3 standard library only).

    python3 scripts/notagen/make_patch_fixtures.py --data out/abc-data --out tests/fixtures/notagen/patches.json
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import patchilizer as pz  # noqa: E402

LINES = [
    "|:A2B c2d|e2f g2a:|\n", "A2B c2d|e2f g2a|\n", "|:A2B c2d|e2f g2a\n", ":||:abc|def|\n", "abc\n",
    "[r:0/3]|:A2B|c\n", "[V:1]abc|[V:2]def|\n", "|]\n", "||\n", "[|ABC|]\n", "|1 abc :|2 def||\n",
    "a|b|c|d|e|f|g|a|b|c|d|e|f|g|a|b|c\n", "(3ABc d>e f2|{g}f e/d/c/B/ A4|]\n", "::\n", "x", "|:c2",
]
PROMPTS = [
    (["%Classical\n", "%Beethoven, Ludwig van\n", "%Keyboard\n"], []),
    (["%Romantic\n", "%Chopin, Frederic\n", "%Keyboard\n", "L:1/8\n", "M:3/4\n", "K:Ab\n"],
     ["[r:0/1]|:ABcd efga|bagf edcB:|\n", "[r:1/0]|:c2"]),
    (["S:oneills-jig\n", "M:6/8\n", "L:1/8\n", "K:D\n"], ["A|d2d dcB|A2G FED|G2A B2c|d3 d2e|\n"]),
    (["X:1\n", "L:1/16\n", "K:C\n"], ["abcdefghijklmnopqrstuvwxyzabcdef|g\n"]),
]


def enc(meta, body):
    ps = pz.encode_prompt(meta, body)
    full = [pz.patch_ids(p) for p in ps if len(p) == pz.PATCH_SIZE or p.endswith(chr(pz.EOS))]
    prefix = [ord(c) for c in ps[-1]] if len(full) < len(ps) else []
    return {"meta": meta, "body": body, "patches": full, "prefix": prefix}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="out/abc-data")
    ap.add_argument("--out", required=True)
    ap.add_argument("--tunes", type=int, default=60)
    args = ap.parse_args()
    cases = {"patch_size": pz.PATCH_SIZE, "bars": [{"line": l, "bars": pz.split_bars(l)} for l in LINES],
             "prompts": [enc(m, b) for m, b in PROMPTS], "tunes": []}
    recs = [json.loads(l) for l in open(os.path.join(args.data, "validation.jsonl"))][:args.tunes]
    for r in recs:
        # the tune as a prompt: header lines as metadata, the whole body (its last bar left open)
        cases["tunes"].append(enc(pz.split_lines(r["prompt"]), pz.split_lines(r["body"])))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as fh:
        json.dump(cases, fh, separators=(",", ":"))
    print("wrote", args.out, len(cases["bars"]), "lines", len(cases["prompts"]), "prompts", len(cases["tunes"]), "tunes")


if __name__ == "__main__":
    main()
