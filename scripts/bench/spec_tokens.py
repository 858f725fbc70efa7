#!/usr/bin/env python3
"""Tokens per round trip of speculative decoding, measured with duet-edge --local --json (one
backbone call = one round trip; the count does not depend on the RTT for a fixed k, so no daemon
or link is needed). Prints a table and writes JSON; greedy runs are checked token for token
against --draft none.

  python3 scripts/bench/spec_tokens.py --build build --out /tmp/spec.json [--tunes 20]
"""
import argparse
import json
import subprocess
import sys

STYLES = ["oneills-jig", "nottingham-reel", "nottingham-waltz", "oneills-hornpipe", "nottingham-jig"]
# a repetitive-text prompt: ABC in plain prompt mode, a phrase that repeats
REPETITIVE = "X:1\nM:4/4\nL:1/8\nK:D\n|:A2FA DAFA|A2FA d2cB|A2FA DAFA|"


def run(edge, model, args):
    cmd = [edge, "generate", "--local", "--json", "--model", model] + args
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def summary(records):
    tokens = sum(len(r["tokens"]) for r in records)
    rounds = sum(len(r["steps"]) for r in records)
    decode_rounds = sum(len(r["steps"]) - 1 for r in records)
    drafted = sum(s.get("drafted", 0) for r in records for s in r["steps"])
    accepted = sum(s.get("accepted", 0) for r in records for s in r["steps"])
    compute = sum(s["edge_ms"] + s["round_trip_ms"] for r in records for s in r["steps"])
    return {
        # at an RTT of R ms a round costs its compute here plus R (an estimate: the lab measures it)
        "est_ms_per_token_at_80ms": (compute + 80.0 * rounds) / tokens,
        "runs": len(records),
        "tokens": tokens,
        "round_trips": rounds,
        "tokens_per_round_trip": tokens / rounds,
        "tokens_per_decode_round_trip": (tokens - len(records)) / max(decode_rounds, 1),
        "drafted": drafted,
        "accepted": accepted,
        "acceptance": accepted / drafted if drafted else 0.0,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--model", default="models/abc-folk")
    ap.add_argument("--tunes", type=int, default=20)
    ap.add_argument("--draft-k", default="4,8,16", help="fixed draft lengths to try (and the adaptive one at 8)")
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    edge = a.build + "/edge/client/duet-edge"
    rows = []
    cases = []
    per_style = max(1, a.tunes // len(STYLES))
    for mode in ["greedy", "sampled"]:
        samp = ["--temperature", "0"] if mode == "greedy" else []  # sampled: the model's duet.json defaults
        for style in STYLES:
            cases.append((f"tunes {mode}", ["--style", style, "--count", str(per_style), "--seed", "1"] + samp))
    cases.append(("repetitive prompt greedy", ["--prompt", REPETITIVE, "-n", "256", "--temperature", "0"]))
    results = {}
    for name, args in cases:
        plain = run(edge, a.model, args + ["--draft", "none"])
        variants = [(8, True)] + [(int(k), False) for k in a.draft_k.split(",")]
        for k, adaptive in variants:
            extra = ["--draft", "ngram", "--draft-k", str(k)] + ([] if adaptive else ["--draft-fixed"])
            spec = run(edge, a.model, args + extra)
            key = f"{name}, k {'adaptive <= ' if adaptive else ''}{k}"
            if "greedy" in name:
                same = all(p["tokens"] == s["tokens"] for p, s in zip(plain, spec))
                if not same:
                    print(f"MISMATCH: {key}: speculative greedy differs from plain greedy", file=sys.stderr)
                    sys.exit(1)
            results.setdefault(key, {"plain": [], "spec": []})
            results[key]["plain"] += plain
            results[key]["spec"] += spec
    out = {}
    print(f"{'case':<48} {'runs':>4} {'tokens':>7} {'rt plain':>8} {'rt spec':>8} {'tok/rt':>7} {'decode tok/rt':>13} "
          f"{'accept':>7} {'x at 80ms':>9}")
    for key, r in results.items():
        p, s = summary(r["plain"]), summary(r["spec"])
        out[key] = {"plain": p, "speculative": s}
        print(f"{key:<48} {s['runs']:>4} {s['tokens']:>7} {p['round_trips']:>8} {s['round_trips']:>8} "
              f"{s['tokens_per_round_trip']:>7.2f} {s['tokens_per_decode_round_trip']:>13.2f} {s['acceptance']:>7.2f} "
              f"{p['est_ms_per_token_at_80ms'] / s['est_ms_per_token_at_80ms']:>9.2f}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
