#!/usr/bin/env python3
"""Sample tunes with duet-edge (monolithic, --local) for scripts/abc/evaluate.py (Python 3 stdlib).

    # the model card's 100 validation prompts (style, meter, unit, key of 100 validation tunes)
    python3 scripts/abc/sample_edge.py --prompts models/abc-folk/samples.jsonl --name constrained \
        --out out/abc-eval/constrained.jsonl
    python3 scripts/abc/sample_edge.py --prompts models/abc-folk/samples.jsonl --name unconstrained \
        --out out/abc-eval/unconstrained.jsonl -- --no-constraint
    # issue 24's sets: 100 seeds of the default style, 10 seeds of each of the 22 most trained styles
    python3 scripts/abc/sample_edge.py --default-style 100 --seed 24001 --name default \
        --out out/abc-eval/default.jsonl
    python3 scripts/abc/sample_edge.py --top-styles 22 --per-style 10 --seed 24001 --name styles \
        --out out/abc-eval/styles.jsonl

With --prompts, tune i is sampled with seed --seed + i and its prompt's meter, unit and key. With
--default-style N or --top-styles K --per-style N, each style is asked for by name only (so it gets
the style's own meter, unit and key from duet.json, as a user gets it), tune j of a style with seed
--seed + j. The model's own sampling settings (duet.json); arguments after "--" go to
`duet-edge generate`; --jobs runs that many duet-edge processes at once (one thread each).
Each output row has what evaluate.py reads: model (= --name), i, style, meter, unit, key, prompt,
body, n_new_tokens, ended_with_eos, ended_by_budget, seed, stop_reason, relaxed_steps, and
sample_ms_per_token (the edge's median time per token in the logits processor and sampler).
"""
import argparse
import concurrent.futures
import json
import os
import subprocess
import sys


def requests(args):
    """(style, meter, unit, key or None, seed) per tune, in output order."""
    if args.prompts:
        rows = sorted((json.loads(l) for l in open(args.prompts) if l.strip()), key=lambda r: r["i"])
        rows = [r for r in rows if r["model"] == "trained"]
        if args.limit:
            rows = rows[:args.limit]
        return [(r["style"], r["meter"], r["unit"], r["key"], args.seed + n) for n, r in enumerate(rows)]
    spec = json.load(open(os.path.join(args.model, "duet.json")))
    if args.default_style:
        return [(spec["defaults"]["style"], None, None, None, args.seed + j) for j in range(args.default_style)]
    by_size = sorted(spec["style_defaults"].items(), key=lambda kv: -kv[1]["tunes"])
    styles = [s for s, _ in by_size[:args.top_styles]]
    if args.styles:
        styles = [s for s in styles if s in args.styles.split(",")]
    return [(s, None, None, None, args.seed + j) for s in styles for j in range(args.per_style)]


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    return xs[len(xs) // 2] if xs else None


def sample(args, req):
    style, meter, unit, key, seed = req
    cmd = [args.edge, "generate", "--model", args.model, "--local", "--json", "--style", style,
           "--seed", str(seed), "-n", "768"]
    for flag, v in (("--meter", meter), ("--unit", unit), ("--key", key)):
        if v:
            cmd += [flag, v]
    cmd += args.extra
    env = dict(os.environ, OMP_NUM_THREADS="1") if args.jobs > 1 else None
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit("sample_edge: %s failed (%d): %s" % (" ".join(cmd), p.returncode, p.stderr.strip()))
    return json.loads(p.stdout.splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prompts", help="samples.jsonl: the rows with model == 'trained' give the prompts")
    ap.add_argument("--default-style", type=int, default=0, metavar="N", help="N tunes of the model's default style")
    ap.add_argument("--top-styles", type=int, default=0, metavar="K", help="the K styles with most training tunes")
    ap.add_argument("--per-style", type=int, default=10, metavar="N", help="with --top-styles: tunes per style")
    ap.add_argument("--styles", default="", help="with --top-styles: only these (comma-separated) of them")
    ap.add_argument("--name", required=True, help="the set's name in the output rows")
    ap.add_argument("--out", required=True)
    ap.add_argument("--edge", default="build/edge/client/duet-edge")
    ap.add_argument("--model", default="models/abc-folk")
    ap.add_argument("--seed", type=int, default=1905)
    ap.add_argument("--limit", type=int, default=0, help="only the first N prompts")
    ap.add_argument("--jobs", type=int, default=1, help="duet-edge processes at once")
    ap.add_argument("extra", nargs="*", help="after --: more duet-edge generate options")
    args = ap.parse_args()
    if sum(bool(x) for x in (args.prompts, args.default_style, args.top_styles)) != 1:
        sys.exit("sample_edge: give one of --prompts, --default-style N, --top-styles K")
    reqs = requests(args)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out + ".part", "w") as fh, concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        for n, (req, j) in enumerate(zip(reqs, pool.map(lambda r: sample(args, r), reqs))):
            t = j["tune"]
            out = {"model": args.name, "i": n + 1, "style": t["style"], "meter": t["meter"], "unit": t["unit"],
                   "key": t["key"], "prompt": t["prompt"], "body": j["text"], "n_new_tokens": len(j["tokens"]),
                   "ended_with_eos": j["stop_reason"] in ("eos", "ending_rule"),  # the push ends with EOS too
                   "stop_reason": j["stop_reason"],
                   "seed": j["seed"], "relaxed_steps": t["relaxed_steps"],
                   "ended_by_budget": t.get("ended_by_budget", False),
                   "sample_ms_per_token": median([st["sample_ms"] for st in j["steps"][1:]])}
            fh.write(json.dumps(out) + "\n")
            fh.flush()
            print("%s %3d/%d %-22s %s %s %-5s %4d tokens %s" % (args.name, n + 1, len(reqs), t["style"], t["meter"],
                  t["unit"], t["key"], len(j["tokens"]), j["stop_reason"]), flush=True)
    os.replace(args.out + ".part", args.out)


if __name__ == "__main__":
    main()
