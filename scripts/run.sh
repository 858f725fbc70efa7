#!/usr/bin/env bash
# The main job: set up, build, make keys (once), start duet-cloud on loopback, generate a folk tune
# with duet-edge on the bundled model (bar constraint on), render each tune (SVG score, MIDI, and a
# WAV when timidity is installed), stop the daemon cleanly.
#   bash scripts/run.sh [duet-edge generate options, e.g. --style oneills-jig --key D --seed 7 --count 3]
#   DUET_MODEL=models/notagen-folk bash scripts/run.sh ...   another model folder for daemon and edge
# The seed is random unless --seed is given; it is printed and written into the tune (% duet-edge:
# seed N), so `--seed N` gives the same tune again. Outputs of earlier runs are removed first: what
# is reported is what this run wrote. A renderer's failure is an error naming the tune (exit 1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bin=${DUET_BUILD_DIR:-build}
mkdir -p out
# a build folder copied from another checkout keeps compiling that one (absolute paths): start afresh
if [ -f "$bin/CMakeCache.txt" ]; then
  src=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$bin/CMakeCache.txt")
  if [ -n "$src" ] && [ "$(cd "$src" 2>/dev/null && pwd -P)" != "$(pwd -P)" ]; then
    echo "run: $bin/ was configured for $src: configuring it again for $(pwd -P)"
    rm -rf "$bin/CMakeCache.txt" "$bin/CMakeFiles"
  fi
fi
# the main job builds without the test suites (scripts/test.sh turns them on)
first=0
[ -f "$bin/CMakeCache.txt" ] || { first=1; export DUET_CMAKE_ARGS="${DUET_CMAKE_ARGS:--DDUET_BUILD_TESTS=OFF}"; }
[ "$first" = 1 ] && echo "run: building duet (the first build takes a while: ~30 minutes on 2 cores; log: out/build.log)"
if [ "$first" = 1 ]; then
  # one progress line per 20 steps, not ninja's every line
  set +e
  bash scripts/build.sh 2>&1 | tee out/build.log | awk '/^\[[0-9]+\/[0-9]+\]/ { n++; if (n % 20 == 0) { print "run: build " $1; fflush() } }'
  rc=${PIPESTATUS[0]}
  set -e
else
  bash scripts/build.sh >out/build.log 2>&1 && rc=0 || rc=$?
fi
if [ "$rc" != 0 ]; then
  # ninja writes the compiler's errors to stdout: show them, not only the exit code
  grep -E -A12 'error|FAILED' out/build.log | head -60 >&2 || tail -40 out/build.log >&2
  echo "run: error: the build failed (exit $rc); the whole log is out/build.log" >&2
  exit 1
fi

if [ ! -f keys/server.key_secret ] || [ ! -f keys/edge.key_secret ]; then
  "$bin/protocol/duet-keygen" --out keys --name server --force >/dev/null
  "$bin/protocol/duet-keygen" --out keys/clients --name edge --force >/dev/null
  mv keys/clients/edge.key_secret keys/edge.key_secret
  echo "run: made CURVE keys in keys/ (server pair, one authorized edge)"
fi

model_args=()
[ -n "${DUET_MODEL:-}" ] && model_args=(--model "$DUET_MODEL")
# the options are checked (style, meter, unit, key, ...) before a daemon is started
[ $# -gt 0 ] || set -- --style oneills-jig --key D
"$bin/edge/client/duet-edge" generate --config configs/edge.toml "${model_args[@]}" --check "$@"

# with no options (above): a jig in D, the model's best-covered style (see models/abc-folk/README.md)
log=out/cloud.log
"$bin/cloud/duet-cloud" --config configs/cloud.toml "${model_args[@]}" >"$log" 2>&1 &
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

seed_given=0
for a in "$@"; do case "$a" in --seed|--seed=*) seed_given=1 ;; esac; done
if [ "$seed_given" = 0 ]; then
  seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
  set -- "$@" --seed "$seed"
  echo "run: seed $seed (add --seed $seed to hear this tune again)"
fi
rm -f out/tune*.abc out/tune*.svg out/tune*.mid out/tune*.wav out/tune*.abc.part out/render-*.log
"$bin/edge/client/duet-edge" generate --config configs/edge.toml "${model_args[@]}" --abc-out out/tune.abc "$@"

bash scripts/render_tunes.sh out/tune.abc
