#!/usr/bin/env bash
# On the GPU machine: build against the LibTorch inside PyTorch, run the test suite, then check
# the bundled model on the GPU against transformers' greedy reference, monolithic and split.
#   source .device/on-device.sh && bash scripts/device_check.sh [build-dir]
#   bash scripts/device_check.sh --abc-only BUILD_DIR   (only the greedy check, on a built tree)
set -uo pipefail
cd "$(dirname "$0")/.."
abc_only=0
[ "${1:-}" = --abc-only ] && abc_only=1 && shift
b=${1:-/tmp/duet-build}
if [ $abc_only = 0 ]; then
  t0=$(date +%s)
  cmake -S . -B "$b" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDUET_BUILD_FUZZERS=OFF >"$b.configure.log" 2>&1 || { tail -30 "$b.configure.log"; exit 1; }
  cmake --build "$b" -j "$(nproc)" 2>&1 | tail -3
  echo "device_check: build took $(( $(date +%s) - t0 )) s"
  ctest --test-dir "$b" --output-on-failure 2>&1 | tail -15
  # batched steps on CUDA (graph replays per batch bucket) against the CPU, then the same eagerly
  "$b/tests/common/test_common" -tc='on CUDA*' 2>&1 | tail -3
  DUET_CUDA_GRAPHS=0 "$b/tests/common/test_common" -tc='on CUDA*' 2>&1 | tail -3
fi
python3 - "$b" <<'PY'
import json, subprocess, sys, time, os, signal
b = sys.argv[1]
ref = json.load(open("models/abc-folk/reference_greedy.json"))
def edge(extra):
    out = []
    for c in ref["cases"]:
        ids = ",".join(map(str, c["prompt_ids"]))
        r = subprocess.run([f"{b}/edge/client/duet-edge", "generate", "--model", "models/abc-folk", "--prompt-ids", ids,
                            "-n", str(ref["new_tokens"]), "--temperature", "0", "--json", "--device", "cuda"] + extra,
                           capture_output=True, text=True)
        if r.returncode != 0:
            print("duet-edge failed:", r.stderr.strip()); return None
        d = json.loads(r.stdout)
        # the reference does not stop at </s>: compare the common prefix up to duet's stop
        n = len(d["tokens"])
        out.append(d["tokens"] == c["greedy_ids"][:n] and (n == len(c["greedy_ids"]) or d["stop_reason"] == "eos"))
    return out
print("abc-folk on cuda, monolithic fp32 == transformers greedy:", edge(["--local"]))
p = subprocess.Popen([f"{b}/cloud/duet-cloud", "--model", "models/abc-folk", "--insecure", "--listen", "tcp://127.0.0.1:7791",
                      "--devices", "cuda:0,cuda:0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
for line in p.stdout:
    if line.startswith("listening on"): break
print("abc-folk on cuda, split (2 stages) fp32 == transformers greedy:", edge(["--insecure", "--server", "tcp://127.0.0.1:7791"]))
p.send_signal(signal.SIGTERM); p.wait(); print("daemon exit code", p.returncode)
PY
