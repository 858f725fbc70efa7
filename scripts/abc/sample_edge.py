#!/usr/bin/env python3
"""Sample tunes with duet-edge (monolithic, --local) for scripts/abc/evaluate.py (Python 3 stdlib).

    python3 scripts/abc/sample_edge.py --prompts models/abc-folk/samples.jsonl --name constrained \
        --out out/abc-eval/constrained.jsonl
    python3 scripts/abc/sample_edge.py --prompts models/abc-folk/samples.jsonl --name unconstrained \
        --out out/abc-eval/unconstrained.jsonl -- --no-constraint

The prompts are the style/meter/unit/key of the 100 "trained" rows of samples.jsonl (the headers of
100 validation tunes, the same prompts the model card's figures use). Tune i is sampled with seed
--seed + i and the model's own sampling settings (duet.json); arguments after "--" go to
`duet-edge generate`. Each output row has what evaluate.py reads: model (= --name), i, style,
meter, unit, key, prompt, body, n_new_tokens, ended_with_eos, seed, stop_reason.
"""
import argparse
import json
import os
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", required=True, help="samples.jsonl: the rows with model == 'trained' give the prompts")
    ap.add_argument("--name", required=True, help="the set's name in the output rows")
    ap.add_argument("--out", required=True)
    ap.add_argument("--edge", default="build/edge/client/duet-edge")
    ap.add_argument("--model", default="models/abc-folk")
    ap.add_argument("--seed", type=int, default=1905)
    ap.add_argument("--limit", type=int, default=0, help="only the first N prompts")
    ap.add_argument("extra", nargs="*", help="after --: more duet-edge generate options")
    args = ap.parse_args()
    rows = sorted((json.loads(l) for l in open(args.prompts) if l.strip()), key=lambda r: r["i"])
    rows = [r for r in rows if r["model"] == "trained"]
    if args.limit:
        rows = rows[:args.limit]
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out + ".part", "w") as fh:
        for n, r in enumerate(rows):
            cmd = [args.edge, "generate", "--model", args.model, "--local", "--json", "--style", r["style"],
                   "--meter", r["meter"], "--unit", r["unit"], "--key", r["key"], "--seed", str(args.seed + n),
                   "-n", "768"] + args.extra
            p = subprocess.run(cmd, capture_output=True, text=True)
            if p.returncode != 0:
                sys.exit("sample_edge: %s failed (%d): %s" % (" ".join(cmd), p.returncode, p.stderr.strip()))
            j = json.loads(p.stdout.splitlines()[-1])
            t = j["tune"]
            body = j["text"]
            if body.endswith("\n") is False:
                body += "\n"
            out = {"model": args.name, "i": n + 1, "style": t["style"], "meter": t["meter"], "unit": t["unit"],
                   "key": t["key"], "prompt": t["prompt"], "body": j["text"], "n_new_tokens": len(j["tokens"]),
                   "ended_with_eos": j["stop_reason"] == "eos", "stop_reason": j["stop_reason"],
                   "seed": j["seed"], "relaxed_steps": t["relaxed_steps"],
                   "ended_by_budget": t.get("ended_by_budget", False)}
            fh.write(json.dumps(out) + "\n")
            fh.flush()
            print("%s %3d/%d %-22s %s %s %-5s %4d tokens %s" % (args.name, n + 1, len(rows), t["style"], t["meter"],
                  t["unit"], t["key"], len(j["tokens"]), j["stop_reason"]), flush=True)
    os.replace(args.out + ".part", args.out)


if __name__ == "__main__":
    main()
