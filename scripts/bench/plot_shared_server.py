#!/usr/bin/env python3
"""Plots run_shared_server.sh's results and prints the markdown table for docs/BENCHMARKS.md.

    /usr/bin/python3 scripts/bench/plot_shared_server.py RESULTS_DIR --out shared-server.png

Reads from RESULTS_DIR (or from files given one by one): load-*.json (duet-load), hf-*.json
(bench/hf_batched.py), llamacpp.txt (llama-batched-bench --output-format jsonl). Per model one
row of two panels: aggregate decode tok/s against N (duet, transformers eager/static,
llama.cpp), and per-token latency against N (duet p50/p99; the batched peers' step time, which
is each of their sequences' per-token latency). Needs Debian's python3-matplotlib (it is the
interpreter in /usr/bin that has it, not a pyenv one).
"""
import argparse
import glob
import json
import os
import sys


def load_inputs(paths):
    files = []
    for p in paths:
        files += sorted(glob.glob(os.path.join(p, "*"))) if os.path.isdir(p) else [p]
    duet, hf, llama = {}, {}, {}
    for f in files:
        base = os.path.basename(f)
        if base.endswith(".json") and base.startswith("load"):
            d = json.load(open(f))
            for r in d.get("runs", []):
                duet.setdefault(d["name"], {})[r["sessions"]] = r
        elif base.endswith(".json") and base.startswith("hf"):
            d = json.load(open(f))
            name = os.path.basename(os.path.normpath(d["model"]))
            for r in d.get("results", []):
                if r.get("decode_tok_s"):
                    hf.setdefault(name, {}).setdefault(r["variant"], {})[r["batch"]] = r
        elif base.startswith("llamacpp") and base.endswith(".txt"):
            for line in open(f):
                if line.startswith("{"):
                    r = json.loads(line)
                    llama[r["pl"]] = r  # llama-1b shape only (the anchor writes that one)
    return duet, hf, llama


COLORS = {"duet": "tab:blue", "eager": "tab:orange", "static": "tab:green", "llama": "tab:red"}


def fmt(v, spec):
    return "–" if v is None or (isinstance(v, (int, float)) and v < 0) else format(v, spec)


def table(name, duet, hf, llama):
    eager, static = hf.get("eager", {}), hf.get("static", {})
    ns = sorted(set(duet) | set(eager) | set(static) | (set(llama) if name == "llama-1b" else set()))
    lines = [f"**{name}**", "",
             "| N | duet tok/s | duet p50 ms | duet p99 ms | duet prefill p50 ms | sessions ok | daemon GPU MiB "
             "| HF eager tok/s | HF static tok/s | HF static peak MiB | llama.cpp tok/s |",
             "| " + " | ".join(["---"] * 11) + " |"]
    for n in ns:
        d, e, s = duet.get(n, {}), eager.get(n, {}), static.get(n, {})
        l = llama.get(n, {}) if name == "llama-1b" else {}
        ok = f"{d['sessions_ok']}/{d['sessions']}" if d else "–"
        lines.append(f"| {n} | {fmt(d.get('aggregate_tok_s'), '.1f')} | {fmt(d.get('token_ms_p50'), '.3f')} "
                     f"| {fmt(d.get('token_ms_p99'), '.3f')} | {fmt(d.get('prefill_ms_p50'), '.2f')} | {ok} "
                     f"| {fmt(d.get('daemon_gpu_mib'), '.0f')} | {fmt(e.get('decode_tok_s'), '.1f')} "
                     f"| {fmt(s.get('decode_tok_s'), '.1f')} | {fmt(s.get('gpu_peak_mib'), '.0f')} "
                     f"| {fmt(l.get('speed_tg'), '.1f')} |")
    return "\n".join(lines)


def plot(models, duet, hf, llama, out):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        sys.exit("matplotlib is missing: apt-get install python3-matplotlib, and run this with /usr/bin/python3")
    fig, axes = plt.subplots(len(models), 2, figsize=(11, 4.2 * len(models)), squeeze=False)
    for row, name in zip(axes, models):
        tput, lat = row
        d = duet.get(name, {})
        series = [("duet (CURVE, N edges)", {n: r["aggregate_tok_s"] for n, r in d.items()}, "o-", COLORS["duet"])]
        for v, style in (("eager", "s--"), ("static", "^--")):
            series.append((f"transformers {v}", {n: r["decode_tok_s"] for n, r in hf.get(name, {}).get(v, {}).items()},
                           style, COLORS[v]))
        if name == "llama-1b":
            series.append(("llama.cpp batched", {n: r["speed_tg"] for n, r in llama.items()}, "d:", COLORS["llama"]))
        for label, pts, style, color in series:
            if pts:
                ns = sorted(pts)
                tput.plot(ns, [pts[n] for n in ns], style, color=color, label=label)
        tput.set(xscale="log", yscale="log", xlabel="concurrent sessions / batch N", ylabel="aggregate decode tok/s",
                 title=f"{name}: throughput")
        if d:
            ns = sorted(d)
            lat.plot(ns, [d[n]["token_ms_p50"] for n in ns], "o-", color=COLORS["duet"], label="duet p50")
            lat.plot(ns, [d[n]["token_ms_p99"] for n in ns], "o--", color=COLORS["duet"], alpha=0.6, label="duet p99")
        for v, style in (("eager", "s:"), ("static", "^:")):
            pts = hf.get(name, {}).get(v, {})
            if pts:
                ns = sorted(pts)
                lat.plot(ns, [pts[n]["step_ms"] for n in ns], style, color=COLORS[v], alpha=0.6,
                         label=f"transformers {v} (step)")
        if name == "llama-1b" and llama:
            ns = sorted(llama)
            lat.plot(ns, [llama[n]["t_tg"] / llama[n]["tg"] * 1e3 for n in ns], "d:", color=COLORS["llama"], alpha=0.6,
                     label="llama.cpp (step)")
        lat.set(xscale="log", yscale="log", xlabel="concurrent sessions / batch N", ylabel="ms per token per session",
                title=f"{name}: per-token latency")
        all_ns = sorted(set(d) | {n for v in hf.get(name, {}).values() for n in v})
        for ax in row:
            if all_ns:  # plain N on the log axis: 1, 8, 32, ... not powers of ten
                ax.set_xticks(all_ns)
                ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
                ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    print(f"wrote {out}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("inputs", nargs="+", help="results folder(s) or files")
    ap.add_argument("--out", default="shared-server.png")
    a = ap.parse_args()
    duet, hf, llama = load_inputs(a.inputs)
    models = sorted(set(duet) | set(hf)) or (["llama-1b"] if llama else [])
    if not models:
        sys.exit(f"no load-*.json, hf-*.json or llamacpp.txt in {a.inputs}")
    for name in models:
        print(table(name, duet.get(name, {}), hf.get(name, {}), llama))
        print()
    plot(models, duet, hf, llama, a.out)


if __name__ == "__main__":
    main()
