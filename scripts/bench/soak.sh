#!/usr/bin/env bash
# The daemon left running: one duet-cloud over CURVE for DURATION seconds under a load that comes
# and goes (duet-load at 1, 4 and 8 sessions with every token checked, a client killed mid-run
# whose sessions must expire, idle gaps), sampling after each round the daemon's memory (VmRSS),
# file descriptors, threads and its /metrics (sessions open, forwards waiting, queued bytes).
# Prints the samples and fails (exit 1) if, after the first quarter of the rounds, memory grows
# more than GROW_MIB, descriptors or threads grow, a round's tokens differ, or sessions stay open.
#   scripts/bench/soak.sh                 (build/ binaries, the bundled model, 20 minutes)
# Knobs: BUILD (build), MODEL (models/abc-folk), DURATION (1200 s), IDLE (20 s, every third
# round), GROW_MIB (24), DEVICES (cpu), OUT (a temporary folder, kept), CLOUD_EXTRA (more daemon flags).
set -uo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
B=${BUILD:-$src/build}; MODEL=${MODEL:-$src/models/abc-folk}; DURATION=${DURATION:-1200}; IDLE=${IDLE:-20}
GROW_MIB=${GROW_MIB:-24}; OUT=${OUT:-$(mktemp -d /tmp/duet-soak.XXXXXX)}
mkdir -p "$OUT"
for bin in cloud/duet-cloud bench/duet-load protocol/duet-keygen; do
  [ -x "$B/$bin" ] || { echo "soak: $B/$bin is missing (cmake --build $B --target duet-cloud duet-load duet-keygen)"; exit 2; }
done
[ -f "$MODEL/config.json" ] || { echo "soak: no model at $MODEL"; exit 2; }
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; }
trap cleanup EXIT
K=$OUT/keys; rm -rf "$K"; mkdir -p "$K/clients"
"$B/protocol/duet-keygen" --out "$K" --name server >/dev/null
"$B/protocol/duet-keygen" --out "$K/clients" --name load >/dev/null
# a short idle timeout: the killed client's sessions must expire within the soak, not in 5 minutes
"$B/cloud/duet-cloud" --model "$MODEL" --listen 'tcp://127.0.0.1:*' --devices "${DEVICES:-cpu}" \
  --secret-key "$K/server.key_secret" --authorized-keys "$K/clients" --metrics-listen 127.0.0.1:0 \
  --idle-timeout 5 --log-level info ${CLOUD_EXTRA:-} >"$OUT/cloud.log" 2>&1 &
pid=$!
for _ in $(seq 300); do grep -qs "listening on" "$OUT/cloud.log" && break; sleep 0.2; done
ep=$(sed -n 's/.*listening on \(tcp:[^ ]*\).*/\1/p' "$OUT/cloud.log" | head -1)
metrics=$(sed -n 's|.*metrics (Prometheus text) on http://\([0-9.:]*\)/metrics.*|\1|p' "$OUT/cloud.log" | head -1)
[ -n "$ep" ] && [ -n "$metrics" ] || { echo "soak: duet-cloud did not start:"; cat "$OUT/cloud.log"; exit 1; }

load() {  # SESSIONS NEW_TOKENS [extra...]
  local n=$1 new=$2; shift 2
  "$B/bench/duet-load" --endpoint "$ep" --server-key "$K/server.key" --client-key "$K/clients/load.key_secret" \
    --model "$MODEL" --sessions "$n" --prompts 4 --prompt-len 24 --new-tokens "$new" --warmup-steps 0 \
    --timeout-ms 60000 "$@"
}
metric() {  # NAME: its unlabelled sample's value
  python3 -c "import sys, urllib.request as u
for l in u.urlopen('http://$metrics/metrics', timeout=5).read().decode().splitlines():
    p = l.split()
    if len(p) == 2 and p[0] == sys.argv[1]: print(p[1].removesuffix('.0') if p[1].endswith('.0') else p[1]); break" "$1"
}
status_kib() { awk -v f="$1:" '$1 == f { print $2 }' "/proc/$pid/status"; }

printf "round\tt_s\tkind\tok\topen_at_kill\trss_mib\tfds\tthreads\tsessions_open\tforwards_waiting\tqueued_bytes\n" >"$OUT/samples.tsv"
t0=$SECONDS; round=0; failures=0
while [ $((SECONDS - t0)) -lt "$DURATION" ]; do
  round=$((round + 1)); at_kill=-
  case $((round % 3)) in
    1) kind="load-1,4"; load 1,4 48 >"$OUT/round.txt" 2>&1; ok=$? ;;
    2) kind="load-8"; load 8 32 >"$OUT/round.txt" 2>&1; ok=$? ;;
    0) # a client killed mid-generation, then quiet: its sessions expire, nothing is kept
       kind="kill+idle"; load 4 900 --no-check >/dev/null 2>&1 & lp=$!
       for _ in $(seq 100); do [ "$(metric duet_sessions_open)" -gt 0 ] 2>/dev/null && break; sleep 0.1; done
       sleep 1; at_kill=$(metric duet_sessions_open); pkill -9 -P $lp; kill -9 $lp 2>/dev/null; wait $lp 2>/dev/null
       sleep "$IDLE"; ok=0 ;;
  esac
  [ $ok = 0 ] || { failures=$((failures + 1)); echo "round $round ($kind) failed:"; tail -5 "$OUT/round.txt"; }
  kill -0 $pid 2>/dev/null || { echo "soak: the daemon died in round $round"; tail -20 "$OUT/cloud.log"; exit 1; }
  # sessions close at the end of a run; a killed client's expire within --idle-timeout + 1 s
  for _ in $(seq 40); do [ "$(metric duet_sessions_open)" = 0 ] && break; sleep 0.25; done
  printf "%d\t%d\t%s\t%s\t%s\t%.1f\t%d\t%d\t%s\t%s\t%s\n" $round $((SECONDS - t0)) "$kind" $ok "$at_kill" \
    "$(awk -v k="$(status_kib VmRSS)" 'BEGIN { print k / 1024 }')" "$(ls /proc/$pid/fd | wc -l)" "$(status_kib Threads)" \
    "$(metric duet_sessions_open)" "$(metric duet_forwards_waiting)" "$(metric duet_queued_bytes)" >>"$OUT/samples.tsv"
done
column -t "$OUT/samples.tsv"
python3 - "$OUT/samples.tsv" "$GROW_MIB" "$failures" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
grow_mib, failures = float(sys.argv[2]), int(sys.argv[3])
bad = []
if len(rows) < 8:
    bad.append(f"only {len(rows)} rounds: run longer (DURATION)")
else:
    warm = rows[: len(rows) // 4]
    later = rows[len(rows) // 4 :]
    base = max(float(r["rss_mib"]) for r in warm)
    peak = max(float(r["rss_mib"]) for r in later)
    print(f"rounds {len(rows)}; RSS after warm-up {base:.1f} MiB, later peak {peak:.1f} MiB, last {float(rows[-1]['rss_mib']):.1f} MiB")
    if peak - base > grow_mib:
        bad.append(f"RSS grew {peak - base:.1f} MiB after warm-up (bound {grow_mib})")
    for key in ("fds", "threads"):
        w, l = max(int(r[key]) for r in warm), max(int(r[key]) for r in later)
        print(f"{key}: warm-up at most {w}, later at most {l}")
        if l > w:
            bad.append(f"{key} grew from {w} to {l}")
for r in rows:
    if r["kind"] == "kill+idle" and not (r["open_at_kill"].isdigit() and int(r["open_at_kill"]) > 0):
        bad.append(f"round {r['round']}: no session was open when the client was killed")
    if r["sessions_open"] != "0":
        bad.append(f"round {r['round']}: {r['sessions_open']} sessions still open after the round")
    if r["forwards_waiting"] not in ("0", ""):
        bad.append(f"round {r['round']}: {r['forwards_waiting']} forwards waiting after the round")
if failures:
    bad.append(f"{failures} load rounds failed (tokens or errors)")
print("soak: " + ("PASS" if not bad else "FAIL: " + "; ".join(bad)))
sys.exit(1 if bad else 0)
PY
