#!/usr/bin/python3
"""Tables and plots of a link-lab sweep (scripts/lab/sweep.sh writes DIR/cells.jsonl and DIR/runs/).

  /usr/bin/python3 scripts/lab/plot_sweep.py DIR [--no-plot]

Writes DIR/results.csv and DIR/results.json (one row per run: the cell, the measured link round
trip, tok/s, tokens per round trip, and the per-token decomposition in ms), and with Debian's
matplotlib (python3-matplotlib) DIR/tok_s.png, DIR/tokens_per_round.png, DIR/decomposition.png
and DIR/wire_dtypes.png. Plots average the repeats of a cell.
"""
import argparse
import csv
import json
import os
import sys
from collections import defaultdict

PARTS = ["embed", "edge_codec", "uplink_downlink", "queue", "stages", "daemon_other", "head", "sample"]
COLUMNS = (["rtt_ms", "bw_mbit", "wire", "draft", "repeat", "link", "ping_rtt_ms", "tokens", "decode_rounds",
            "tokens_per_round", "decode_tok_s", "decode_ms", "prefill_positions", "prefill_ms"]
           + [p + "_ms" for p in PARTS] + ["total_ms", "stage_ms", "file"])


def rows_of(d):
    rows = []
    with open(os.path.join(d, "cells.jsonl")) as f:
        for line in f:
            cell = json.loads(line)
            run = json.load(open(os.path.join(d, cell["file"])))
            s = run["summary"]
            per = s.get("per_token_ms") or {}
            row = {"rtt_ms": cell["rtt_ms"], "bw_mbit": cell["bw_mbit"], "wire": cell["wire"], "draft": cell["draft"],
                   "repeat": cell["repeat"], "link": cell["link"], "ping_rtt_ms": cell["ping"]["rtt_ms"]["median"],
                   "tokens": len(run["tokens"]), "decode_rounds": s["decode_rounds"],
                   "tokens_per_round": s["tokens_per_round"], "decode_tok_s": s["decode_tok_s"],
                   "decode_ms": s["decode_ms"], "prefill_positions": s["prefill"]["positions"],
                   "prefill_ms": s["prefill"]["ms"], "total_ms": per.get("total"),
                   "stage_ms": " ".join(f"{x:.4f}" for x in per.get("stage", [])), "file": cell["file"]}
            for p in PARTS:
                row[p + "_ms"] = per.get(p)
            rows.append(row)
    return rows


def bw_label(bw):
    return "unlimited" if bw == 0 else (f"{bw / 1000:g} Gbit/s" if bw >= 1000 else f"{bw:g} Mbit/s")


def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else float("nan")


def plots(rows, d):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = defaultdict(list)
    for r in rows:
        cells[(r["rtt_ms"], r["bw_mbit"], r["wire"], r["draft"])].append(r)
    rtts = sorted({k[0] for k in cells})
    bws = sorted({k[1] for k in cells}, key=lambda b: (b == 0, b))
    order = {"fp32": 0, "bf16": 1, "fp16": 2, "int8": 3}  # the reference first
    wires = sorted({k[2] for k in cells}, key=lambda w: (order.get(w, 9), w))
    drafts = sorted({k[3] for k in cells}, key=lambda m: (m != "none", m))
    link = rows[0]["link"]
    styles = ["-", "--", ":", "-."]
    written = []

    def cell_mean(rtt, bw, wire, draft, key):
        return mean([r[key] for r in cells.get((rtt, bw, wire, draft), [])])

    # tok/s against RTT: a panel per wire dtype, a colour per rate, a line style per drafting mode
    fig, axes = plt.subplots(1, len(wires), figsize=(5.5 * len(wires), 4.2), squeeze=False, sharey=True)
    for ax, wire in zip(axes[0], wires):
        for i, bw in enumerate(bws):
            for j, draft in enumerate(drafts):
                ys = [cell_mean(t, bw, wire, draft, "decode_tok_s") for t in rtts]
                ax.plot(rtts, ys, styles[j % 4], marker="o", color=f"C{i}",
                        label=f"{bw_label(bw)}" + (f", {draft}" if len(drafts) > 1 else ""))
        if max(rtts) > 0:  # the ceiling of one token per round trip, compute free
            lo = min([t for t in rtts if t > 0])
            ts = [lo * (max(rtts) / lo) ** (i / 40) for i in range(41)]
            ax.plot(ts, [1000.0 / t for t in ts], color="grey", lw=0.8, ls=":", label="1 token per RTT")
        ax.set_xscale("symlog", linthresh=1)
        ax.set_yscale("log")
        ax.set_xlabel("emulated round trip (ms)")
        ax.set_title(f"wire {wire}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("decode tokens/s")
    axes[0][-1].legend(fontsize=8)
    fig.suptitle(f"duet decode speed across an emulated link ({link})")
    fig.tight_layout()
    fig.savefig(os.path.join(d, "tok_s.png"), dpi=110)
    written.append("tok_s.png")
    plt.close(fig)

    # tokens per round trip against RTT, per drafting mode (unlimited rate, first wire dtype)
    fig, ax = plt.subplots(figsize=(6, 4))
    bw0 = bws[-1]
    for j, draft in enumerate(drafts):
        ax.plot(rtts, [cell_mean(t, bw0, wires[0], draft, "tokens_per_round") for t in rtts], styles[j % 4],
                marker="o", label=draft)
    ax.set_xscale("symlog", linthresh=1)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("emulated round trip (ms)")
    ax.set_ylabel("tokens per round trip")
    ax.set_title(f"tokens per round trip ({bw_label(bw0)}, wire {wires[0]})")
    ax.grid(True, alpha=0.3)
    ax.legend(title="drafting")
    fig.tight_layout()
    fig.savefig(os.path.join(d, "tokens_per_round.png"), dpi=110)
    written.append("tokens_per_round.png")
    plt.close(fig)

    # where a token's time goes: stacked per RTT, a panel per rate (first wire dtype, first mode)
    fig, axes = plt.subplots(1, len(bws), figsize=(4.5 * len(bws), 4.2), squeeze=False, sharey=True)
    for ax, bw in zip(axes[0], bws):
        bottom = [0.0] * len(rtts)
        xs = list(range(len(rtts)))
        for k, part in enumerate(PARTS):
            ys = [cell_mean(t, bw, wires[0], drafts[0], part + "_ms") for t in rtts]
            ys = [0.0 if y != y else y for y in ys]  # nan (unknown) draws as nothing
            ax.bar(xs, ys, bottom=bottom, color=f"C{k}", label=part.replace("_", " "))
            bottom = [b + y for b, y in zip(bottom, ys)]
        ax.set_xticks(xs, [f"{t:g}" for t in rtts])
        ax.set_yscale("symlog", linthresh=1)
        ax.set_xlabel("emulated round trip (ms)")
        ax.set_title(bw_label(bw))
        ax.grid(True, axis="y", alpha=0.3)
    axes[0][0].set_ylabel("ms per decoded token")
    axes[0][-1].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"per-token decomposition (wire {wires[0]}, drafting {drafts[0]})")
    fig.tight_layout()
    fig.savefig(os.path.join(d, "decomposition.png"), dpi=110)
    written.append("decomposition.png")
    plt.close(fig)

    # wire dtypes against rate at the lowest RTT: where the bytes on the wire matter
    fig, ax = plt.subplots(figsize=(6, 4))
    t0 = rtts[0]
    xs = list(range(len(bws)))
    for i, wire in enumerate(wires):
        ax.plot(xs, [cell_mean(t0, bw, wire, drafts[0], "decode_tok_s") for bw in bws], marker="o", label=wire)
    ax.set_xticks(xs, [bw_label(b) for b in bws])
    ax.set_ylabel("decode tokens/s")
    ax.set_title(f"wire dtypes by rate (RTT {t0:g} ms, drafting {drafts[0]})")
    ax.grid(True, alpha=0.3)
    ax.legend(title="wire")
    fig.tight_layout()
    fig.savefig(os.path.join(d, "wire_dtypes.png"), dpi=110)
    written.append("wire_dtypes.png")
    plt.close(fig)
    return written


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir")
    ap.add_argument("--no-plot", action="store_true")
    a = ap.parse_args()
    rows = rows_of(a.dir)
    if not rows:
        sys.exit(f"plot_sweep.py: {a.dir}/cells.jsonl has no runs")
    with open(os.path.join(a.dir, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    meta = {}
    if os.path.exists(os.path.join(a.dir, "sweep.json")):
        meta = json.load(open(os.path.join(a.dir, "sweep.json")))
    json.dump({"sweep": meta, "runs": rows}, open(os.path.join(a.dir, "results.json"), "w"), indent=1)
    print(f"plot_sweep: {len(rows)} runs -> {a.dir}/results.csv, results.json")
    if a.no_plot:
        return 0
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("plot_sweep: no matplotlib (apt-get install python3-matplotlib; run with /usr/bin/python3): no plots")
        return 0
    print("plot_sweep: " + ", ".join(plots(rows, a.dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
