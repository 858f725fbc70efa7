#!/usr/bin/env bash
# The main job: set up, build, make keys (once), start duet-cloud on loopback, generate a folk tune
# with duet-edge on the bundled model, render it (SVG score, MIDI), stop the daemon cleanly.
#   bash scripts/run.sh [duet-edge generate options, e.g. --style oneills-jig --meter 6/8 --key D --seed 7]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh >/dev/null
bin=${DUET_BUILD_DIR:-build}

if [ ! -f keys/server.key_secret ] || [ ! -f keys/edge.key_secret ]; then
  "$bin/protocol/duet-keygen" --out keys --name server --force >/dev/null
  "$bin/protocol/duet-keygen" --out keys/clients --name edge --force >/dev/null
  mv keys/clients/edge.key_secret keys/edge.key_secret
  echo "run: made CURVE keys in keys/ (server pair, one authorized edge)"
fi

mkdir -p out
log=out/cloud.log
"$bin/cloud/duet-cloud" --config configs/cloud.toml >"$log" 2>&1 &
cloud=$!
stop_cloud() {
  if kill -0 "$cloud" 2>/dev/null; then
    kill -TERM "$cloud"
    wait "$cloud" && echo "run: duet-cloud stopped cleanly" || echo "run: duet-cloud exited with $?"
  fi
}
trap stop_cloud EXIT
for _ in $(seq 100); do
  grep -q '^listening on' "$log" && break
  kill -0 "$cloud" 2>/dev/null || { cat "$log"; echo "run: duet-cloud failed to start" >&2; exit 1; }
  sleep 0.1
done
sed -n '/^stage plan/,/^listening/p' "$log"

# with no options: a jig in D, the model's best-covered style (see models/abc-folk/README.md)
[ $# -gt 0 ] || set -- --style oneills-jig --meter 6/8 --key D
"$bin/edge/client/duet-edge" generate --config configs/edge.toml --abc-out out/tune.abc "$@"

if command -v abcm2ps >/dev/null; then
  rm -f out/tune*.svg
  # abcm2ps exits non-zero on any complaint but still writes what it could: report both
  abcm2ps -g -O out/tune.svg out/tune.abc >out/abcm2ps.log 2>&1 || echo "run: abcm2ps reported problems (out/abcm2ps.log)"
  ls out/tune*.svg 2>/dev/null | sed 's/^/run: score  /' || echo "run: abcm2ps wrote no score"
fi
if command -v abc2midi >/dev/null; then
  abc2midi out/tune.abc -o out/tune.mid >out/abc2midi.log 2>&1 || true
  if [ -s out/tune.mid ]; then
    n=$(grep -ciE 'error|warning' out/abc2midi.log || true)
    echo "run: MIDI   out/tune.mid (abc2midi: $n errors/warnings, out/abc2midi.log)"
  else
    echo "run: abc2midi rejected the tune (out/abc2midi.log)"
  fi
fi
