#!/usr/bin/env bash
# NotaGen benchmark (issue 14), for the final combined GPU run: NotaGen-X's shape (patch level
# 20 x 1280, char level 6, 1024 patches) with random weights, bf16, one piece of 1,024 characters
# after the prompt "%Classical / %Beethoven, Ludwig van / %Keyboard":
#   python  a loop written like NotaGen's reference (no KV cache, numpy sampling on the CPU) and
#           transformers with its KV cache at both levels (scripts/notagen/bench_reference.py)
#   duet    duet-edge --local (monolithic) and split over CURVE to a duet-cloud daemon on the same
#           GPU, each with --full-patches (16 characters per patch, as NotaGen) and the default
#           (a patch ends at its EOS character); GPU memory of the edge and of the daemon
#   host    monolithic, 16 per patch, with DUET_NOTAGEN_HOST_SAMPLING=1: each character sampled on
#           the host (a sync per character) instead of by the device sampler (one per patch);
#           the same seeds must give the same pieces
# Usage: OUT=/path bash scripts/bench/gpu_notagen.sh BUILD_DIR     (BUILD_DIR: a CUDA build of duet)
# Writes $OUT/notagen-*.json|jsonl|log and $OUT/notagen-bench.md. About 2 minutes.
set -uo pipefail
B=${1:?usage: OUT=... bash scripts/bench/gpu_notagen.sh BUILD_DIR}
OUT=${OUT:?set OUT}; mkdir -p "$OUT"
M=/tmp/notagen-x; K=/tmp/notagen-keys; PORT=7797
export PYTHONUNBUFFERED=1
log() { echo "[notagen $(date +%T)] $*" | tee -a "$OUT/notagen-bench.log"; }
PROMPT=$(printf '%%Classical\n%%Beethoven, Ludwig van\n%%Keyboard\n')
EDGE=("$B/edge/client/duet-edge" generate --model "$M" --device cuda --dtype bf16 --prompt "$PROMPT" -n 1024
      --seed 1 --count 2 --json --no-stream)

# correctness on CUDA first (fp32, greedy): the tiny golden model and notagen-folk against
# transformers' greedy pieces (tests/fixtures/notagen/golden.json, models/notagen-folk/reference_greedy.json)
for dev in cpu cuda; do
  "$B/edge/client/duet-edge" generate --model tests/fixtures/notagen/tiny --local --device $dev --dtype fp32 \
    --temperature 0 --max-patches 24 --json --no-stream >"$OUT/notagen-check-tiny-$dev.json" 2>>"$OUT/notagen-bench.log"
  "$B/edge/client/duet-edge" generate --model models/notagen-folk --local --device $dev --dtype fp32 --style oneills-jig \
    --meter 6/8 --unit 1/8 --key D --temperature 0 --max-patches 24 --no-constraint --json --no-stream \
    >"$OUT/notagen-check-folk-$dev.json" 2>>"$OUT/notagen-bench.log"
done
python3 - "$OUT" <<'PY' 2>&1 | tee -a "$OUT/notagen-bench.log"
import json, os, sys
out = sys.argv[1]
gold = json.load(open("tests/fixtures/notagen/golden.json"))["cases"][0]["greedy_text"]
ref = json.load(open("models/notagen-folk/reference_greedy.json"))["cases"][0]["greedy_text"]
for dev in ("cpu", "cuda"):
    try:
        t = json.load(open(os.path.join(out, "notagen-check-tiny-%s.json" % dev)))["text"]
        f = json.load(open(os.path.join(out, "notagen-check-folk-%s.json" % dev)))["text"]
        print("correctness %s fp32 greedy: tiny == transformers %s, notagen-folk == transformers %s" % (dev, t == gold, f == ref))
    except Exception as e:
        print("correctness %s: failed to run (%s)" % (dev, e))
PY

# GPU memory per process, sampled every 100 ms while the runs go on
# (per process where the container shows them; the device total always, with each phase's window)
nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits -lms 100 >"$OUT/notagen-gpumem.csv" 2>/dev/null &
SMI=$!
nvidia-smi --query-gpu=timestamp,memory.used --format=csv,noheader,nounits -lms 100 >"$OUT/notagen-gpumem-total.csv" 2>/dev/null &
SMI2=$!
phase() { echo "$1 $(date +%s.%N)" >>"$OUT/notagen-phases.txt"; }
rm -f "$OUT/notagen-phases.txt"; phase base-start; sleep 0.5; phase base-end
t0=$SECONDS
[ -f "$M/model.safetensors" ] || python3 scripts/notagen/bench_reference.py make --out "$M" 2>&1 | tee -a "$OUT/notagen-bench.log"
log "model ready ($((SECONDS - t0)) s)"
timeout 150 python3 scripts/notagen/bench_reference.py run --model "$M" --chars 1024 --json "$OUT/notagen-python.json" \
  2>&1 | tee -a "$OUT/notagen-bench.log"
log "python baselines done ($((SECONDS - t0)) s)"

pids=()
phase mono-start
for mode in full eos; do
  extra=(); [ $mode = full ] && extra=(--full-patches)
  timeout 60 "${EDGE[@]}" --local "${extra[@]}" >"$OUT/notagen-mono-$mode.jsonl" 2>"$OUT/notagen-mono-$mode.log" &
  pids+=("mono-$mode:$!"); wait $!
  log "duet mono ($mode) exit $?"
done
# the same run with the characters sampled on the host: what the device sampler gains
DUET_NOTAGEN_HOST_SAMPLING=1 timeout 60 "${EDGE[@]}" --local --full-patches \
  >"$OUT/notagen-mono-full-host.jsonl" 2>"$OUT/notagen-mono-full-host.log" &
pids+=("mono-full-host:$!"); wait $!
log "duet mono (full, host sampling) exit $?"
phase mono-end

rm -rf $K; mkdir -p $K/clients
"$B/protocol/duet-keygen" --out $K --name server >/dev/null
"$B/protocol/duet-keygen" --out $K/clients --name edge >/dev/null
"$B/cloud/duet-cloud" --model "$M" --listen tcp://127.0.0.1:$PORT --devices cuda --dtype bf16 --wire-dtypes bf16,fp32 \
  --secret-key $K/server.key_secret --authorized-keys $K/clients --max-sessions 4 --max-positions 1024 \
  --kv-memory-mb 512 >"$OUT/notagen-cloud.log" 2>&1 &
CP=$!
for _ in $(seq 300); do grep -q '^listening on' "$OUT/notagen-cloud.log" && break; sleep 0.1; done
pids+=("daemon:$CP")
sleep 1; phase daemon-start; sleep 1; phase daemon-end
phase split-start
for mode in full eos; do
  extra=(); [ $mode = full ] && extra=(--full-patches)
  timeout 60 "${EDGE[@]}" --server tcp://127.0.0.1:$PORT --server-key $K/server.key \
    --client-key $K/clients/edge.key_secret --wire-dtype bf16 "${extra[@]}" \
    >"$OUT/notagen-split-$mode.jsonl" 2>"$OUT/notagen-split-$mode.log" &
  pids+=("split-edge-$mode:$!"); wait $!
  log "duet split ($mode) exit $?"
done
phase split-end
kill $CP; wait $CP 2>/dev/null
kill $SMI $SMI2 2>/dev/null
printf '%s\n' "${pids[@]}" >"$OUT/notagen-pids.txt"
python3 - "$OUT" <<'PY' 2>&1 | tee -a "$OUT/notagen-bench.log"
import csv, json, os, sys
out = sys.argv[1]
py = json.load(open(os.path.join(out, "notagen-python.json")))
mem = {}
for row in csv.reader(open(os.path.join(out, "notagen-gpumem.csv"))):
    try:
        pid, mib = int(row[0]), float(row[1])
    except (ValueError, IndexError):
        continue
    mem[pid] = max(mem.get(pid, 0), mib)
roles = dict(l.strip().split(":")[::-1] for l in open(os.path.join(out, "notagen-pids.txt")) if ":" in l)
rows = [("NotaGen-style loop (no KV cache)", py["reference"]), ("transformers, KV cache", py["hf_kv"])]
pieces = {}
for name in ("mono-full", "mono-full-host", "mono-eos", "split-full", "split-eos"):
    try:
        recs = [json.loads(l) for l in open(os.path.join(out, "notagen-%s.jsonl" % name)) if l.startswith("{")]
        pieces[name] = [x["text"] for x in recs]
        r = recs[-1]                         # the second piece: warm (graphs captured)
        label = "duet %s (characters sampled on the %s)" % (name, r.get("char_sampling", "?"))
        rows.append((label, {"chars_per_s": r["chars_per_s"], "patches_per_s": r["patches_per_s"],
                             "chars": r["chars"], "patches": r["patches"], "patch_ms_p50": r["patch_ms_p50"]}))
    except (OSError, IndexError, KeyError, ValueError) as e:
        rows.append(("duet %s" % name, {"error": str(e)}))
ref = py["reference"]["chars_per_s"]; hf = py["hf_kv"]["chars_per_s"]
lines = ["| run | chars | patches | chars/s | patches/s | x reference | x transformers KV |", "|---|---:|---:|---:|---:|---:|---:|"]
for name, r in rows:
    if "error" in r:
        lines.append("| %s | failed: %s |" % (name, r["error"])); continue
    lines.append("| %s | %d | %d | %.0f | %.1f | %.1f | %.2f |" % (name, r["chars"], r["patches"], r["chars_per_s"],
                 r["patches_per_s"], r["chars_per_s"] / ref, r["chars_per_s"] / hf))
lines.append("")
if "mono-full" in pieces and "mono-full-host" in pieces:
    lines.append("device sampling gives the host sampling's pieces (same seeds): %s"
                 % (pieces["mono-full"] == pieces["mono-full-host"]))
lines.append("GPU memory (nvidia-smi, max per process, MiB): " + ", ".join(
    "%s %d" % (roles.get(str(p), "pid %d" % p), m) for p, m in sorted(mem.items())))
lines.append("python process (torch max allocated): %.0f MiB" % py["gpu_memory_mib"])
try:  # the device's total memory.used in each phase's window, less the idle baseline
    import datetime
    phases = {}
    for l in open(os.path.join(out, "notagen-phases.txt")):
        name, t = l.split()
        phases[name] = float(t)
    samples = []
    for row in csv.reader(open(os.path.join(out, "notagen-gpumem-total.csv"))):
        try:
            ts = datetime.datetime.strptime(row[0].strip(), "%Y/%m/%d %H:%M:%S.%f").timestamp()
            samples.append((ts, float(row[1])))
        except (ValueError, IndexError):
            continue
    def peak(name):
        v = [m for t, m in samples if phases[name + "-start"] <= t <= phases[name + "-end"]]
        return max(v) if v else float("nan")
    base, mono, daemon, split = peak("base"), peak("mono"), peak("daemon"), peak("split")
    lines.append("GPU memory.used above idle (%.0f MiB), MiB: monolithic edge process %.0f; daemon alone %.0f; "
                 "split edge (split peak - daemon alone) %.0f" % (base, mono - base, daemon - base, split - daemon))
except Exception as e:
    lines.append("GPU memory totals: not available (%s)" % e)
lines.append("device %s, torch %s, transformers %s" % (py["device"], py["torch"], py["transformers"]))
open(os.path.join(out, "notagen-bench.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
log "done in $((SECONDS - t0)) s"
