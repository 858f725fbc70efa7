#!/usr/bin/env python3
"""Multi-GPU backbone runs (issue: one daemon over several GPUs): for each model and stage plan,
greedy tokens vs the monolithic reference, per-GPU memory after load and after 256 tokens,
decode latency for one session, aggregate tokens/s for 8 concurrent sessions, and the measured
cost of moving one position's hidden state between GPUs.

    python3 scripts/bench/multi_gpu.py --build /tmp/b --models /tmp/bench-models --out $OUT/multi.json

Every edge and daemon is a separate process (duet-edge / duet-cloud over CurveZMQ on loopback).
Works on CPU too (--gpus 0: stages on "cpu"), which is how it is dry-run without a GPU.
"""
import argparse, json, os, random, signal, subprocess, sys, tempfile, time

def sh(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError as e:  # no nvidia-smi on a CPU machine
        return subprocess.CompletedProcess(cmd, 127, "", str(e))

def gpu_mem():
    r = sh(["nvidia-smi", "--query-gpu=index,memory.used", "--format=csv,noheader,nounits"])
    if r.returncode != 0:
        return {}
    return {int(a): int(b) for a, b in (l.split(",") for l in r.stdout.strip().splitlines())}

class Daemon:
    def __init__(self, b, model, dtype, keys, devices=None, plan=None):
        args = [f"{b}/cloud/duet-cloud", "--model", model, "--dtype", dtype, "--listen", "tcp://127.0.0.1:*",
                "--secret-key", f"{keys}/server.key_secret", "--authorized-keys", f"{keys}/clients",
                "--max-sessions", "16", "--kv-memory-mb", "16384"]
        if devices: args += ["--devices", devices]
        if plan: args += ["--plan", plan]
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.head = []
        for line in self.p.stdout:
            self.head.append(line.rstrip())
            if line.startswith("listening on"):
                self.endpoint = line.split()[-1]
                return
        raise RuntimeError("duet-cloud did not start:\n" + "\n".join(self.head))
    def stop(self):
        self.p.send_signal(signal.SIGTERM)
        rest = self.p.communicate(timeout=60)[0]
        return self.p.returncode, rest

def edge(b, model, dtype, device, ids, n, keys=None, endpoint=None, local=False):
    args = [f"{b}/edge/client/duet-edge", "generate", "--model", model, "--dtype", dtype, "--device", device,
            "--prompt-ids", ",".join(map(str, ids)), "-n", str(n), "--temperature", "0", "--ignore-eos", "--json"]
    if local:
        args.append("--local")
    else:
        args += ["--server", endpoint, "--server-key", f"{keys}/server.key", "--client-key", f"{keys}/edge.key_secret"]
    return args

def run_json(args):
    r = sh(args)
    if r.returncode != 0:
        raise RuntimeError(" ".join(args[:3]) + " failed: " + r.stderr.strip()[-800:])
    return json.loads(r.stdout)

def decode_stats(d):
    steps = d["steps"][1:]
    tok_ms = sorted(s["edge_ms"] + s["round_trip_ms"] for s in steps)
    q = lambda p: tok_ms[int(p * (len(tok_ms) - 1))]
    total = sum(tok_ms)
    cloud = sorted(s["cloud_ms"] for s in steps)
    return {"token_ms_p50": q(.5), "token_ms_p99": q(.99), "decode_tok_s": len(steps) / total * 1000,
            "cloud_ms_p50": cloud[len(cloud) // 2] if cloud and cloud[0] >= 0 else None,
            "ttft_ms": d["steps"][0]["edge_ms"] + d["steps"][0]["round_trip_ms"]}

def transfer_cost(hidden, dtype, gpus):
    if gpus < 2:
        return None
    import torch
    dt = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[dtype]
    x = torch.randn(1, hidden, device="cuda:0", dtype=dt)
    for _ in range(50): x.to("cuda:1")
    torch.cuda.synchronize(0); torch.cuda.synchronize(1)
    times = []
    for _ in range(500):
        t0 = time.perf_counter(); y = x.to("cuda:1"); torch.cuda.synchronize(1); times.append((time.perf_counter() - t0) * 1e6)
    times.sort()
    return {"peer_access": bool(torch.cuda.can_device_access_peer(0, 1)), "bytes": x.numel() * x.element_size(),
            "copy_us_p50": times[len(times) // 2], "copy_us_p99": times[int(.99 * (len(times) - 1))]}

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--models", required=True, help="folder holding the model folders")
    ap.add_argument("--names", default="llama-1b:bf16,gpt2-large:fp16")
    ap.add_argument("--gpus", type=int, default=2)
    ap.add_argument("--new-tokens", type=int, default=256)
    ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--sessions", type=int, default=8)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    b = a.build
    keys = tempfile.mkdtemp(prefix="duet-keys-")
    sh([f"{b}/protocol/duet-keygen", "--out", keys, "--name", "server"])
    sh([f"{b}/protocol/duet-keygen", "--out", f"{keys}/clients", "--name", "edge"])
    os.rename(f"{keys}/clients/edge.key_secret", f"{keys}/edge.key_secret")
    dev = lambda i: f"cuda:{i}" if a.gpus > 0 else "cpu"
    results = {"gpus": a.gpus, "gpu": sh(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"]).stdout.strip(),
               "date": time.strftime("%Y-%m-%d"), "models": []}
    for item in a.names.split(","):
        name, dtype = item.split(":")
        model = os.path.join(a.models, name)
        cfg = json.load(open(os.path.join(model, "config.json")))
        layers = cfg.get("num_hidden_layers", cfg.get("n_layer"))
        hidden = cfg.get("hidden_size", cfg.get("n_embd"))
        random.seed(0)
        ids = [random.randrange(3, cfg["vocab_size"]) for _ in range(a.prompt_len)]
        mono = run_json(edge(b, model, dtype, dev(0), ids, a.new_tokens, local=True))
        entry = {"model": name, "dtype": dtype, "layers": layers, "mono": decode_stats(mono), "plans": [],
                 "transfer": transfer_cost(hidden, dtype, a.gpus)}
        half = layers // 2
        plans = [("1 GPU (edge + all blocks on GPU 0)", dev(0), None, dev(0))]
        if a.gpus >= 2 or a.gpus == 0:
            plans += [("2 GPUs, automatic plan", f"{dev(0)},{dev(1)}", None, dev(0)),
                      (f"2 GPUs, explicit halves 0-{half-1} | {half}-{layers-1}", None,
                       f"{dev(0)}={0}-{half-1},{dev(1)}={half}-{layers-1}", dev(0)),
                      ("write-up layout on 2 GPUs: edge on GPU 0, all blocks on GPU 1", None,
                       f"{dev(1)}=0-{layers-1}", dev(0))]
        for label, devices, plan, edev in plans:
            before = gpu_mem()
            d = Daemon(b, model, dtype, keys, devices, plan)
            time.sleep(1.0)
            after_load = gpu_mem()
            runs = [run_json(edge(b, model, dtype, edev, ids, a.new_tokens, keys, d.endpoint)) for _ in range(3)]
            # memory while a 256-token session is open: start one, sample nvidia-smi mid-run
            p = subprocess.Popen(edge(b, model, dtype, edev, ids, a.new_tokens, keys, d.endpoint), stdout=subprocess.PIPE, text=True)
            time.sleep(1.0)
            during = gpu_mem()
            p.communicate()
            # aggregate throughput: `sessions` edges at once against the one daemon
            t0 = time.perf_counter()
            procs = [subprocess.Popen(edge(b, model, dtype, edev, ids, a.new_tokens, keys, d.endpoint),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(a.sessions)]
            outs = [json.loads(pr.communicate()[0]) for pr in procs]
            wall = time.perf_counter() - t0
            load = max(o["load_ms"] for o in outs) / 1000
            rc, log = d.stop()
            stats = [decode_stats(r) for r in runs[1:]]
            entry["plans"].append({
                "plan": label, "stage_table": [l for l in d.head if l[:1].isdigit() or l.startswith("stage")],
                "same_tokens_as_mono": all(r["tokens"] == mono["tokens"] for r in runs + outs),
                "token_ms_p50": min(s["token_ms_p50"] for s in stats), "token_ms_p99": max(s["token_ms_p99"] for s in stats),
                "decode_tok_s": max(s["decode_tok_s"] for s in stats), "cloud_ms_p50": stats[0]["cloud_ms_p50"],
                "aggregate_tok_s": a.sessions * a.new_tokens / max(wall - load, 1e-9),
                "aggregate_wall_s": wall, "gpu_mib_before": before, "gpu_mib_after_load": after_load,
                "gpu_mib_during_256": during, "daemon_exit": rc})
            pl = entry["plans"][-1]
            print(f"{name:10s} {label:60s} same={pl['same_tokens_as_mono']} p50={pl['token_ms_p50']:.2f} ms "
                  f"tok/s={pl['decode_tok_s']:.1f} agg{a.sessions}={pl['aggregate_tok_s']:.1f} mem_load={after_load} "
                  f"mem_run={during} exit={rc}", flush=True)
        print(f"{name:10s} monolithic: p50={entry['mono']['token_ms_p50']:.2f} ms tok/s={entry['mono']['decode_tok_s']:.1f}"
              f" transfer={entry['transfer']}", flush=True)
        results["models"].append(entry)
        json.dump(results, open(a.out, "w"), indent=1)

if __name__ == "__main__":
    main()
