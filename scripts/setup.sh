#!/usr/bin/env bash
# Installs what duet needs on Debian 12, as root. Idempotent and quick when all is there: apt runs
# only for packages that are missing, `apt-get update` only when the lists are empty or a package
# cannot be found. One line per step; apt's own output goes to a log.
#   bash scripts/setup.sh            the main job: build the daemon and the edge, render tunes
#   bash scripts/setup.sh --tests    and the test tools: Chromium, Prometheus, clang (libFuzzer),
#                                    the link lab's iproute2, and the music page's abcjs (npm ci)
#   bash scripts/setup.sh --page     the music page's abcjs only (web/node_modules, npm ci)
# Nothing here enables or starts a system service: packages that ship one (prometheus) are
# installed with services held back (policy-rc.d) and their units left disabled.
# timidity and freepats (a General MIDI patch set) let the main job write a WAV; they are
# optional: set-up goes on without them, with a warning. So is the page's npm step, except for
# --tests (the tests drive the page): there its failure stops the set-up with npm's error.
set -euo pipefail
want_tests=0 want_page=0
for a in "$@"; do
  case "$a" in
    --tests) want_tests=1 want_page=1 ;;
    --page) want_page=1 ;;
    *) echo "setup: unknown option $a (use --tests or --page)" >&2; exit 2 ;;
  esac
done
pkgs=(
  build-essential cmake ninja-build pkg-config ca-certificates
  libtorch-dev
  libgloo-dev
  libzmq3-dev cppzmq-dev libmsgpack-cxx-dev libssl-dev
  nlohmann-json3-dev libtomlplusplus-dev libcli11-dev libspdlog-dev libfmt-dev
  doctest-dev             # header only: the build's tests are configured in when present
  libcpp-httplib-dev      # duet-edge serve
  abcm2ps abcmidi         # the main job's score and MIDI
)
optional=(timidity freepats)
if [ "$want_tests" = 1 ]; then
  pkgs+=(git prometheus chromium curl python3 iproute2 python3-matplotlib)
  # libFuzzer comes with clang; CI runs the short fuzz passes
  [ "${DUET_NO_FUZZ:-0}" = 1 ] || pkgs+=(clang libclang-rt-14-dev)
fi
[ "$want_page" = 1 ] && ! command -v npm >/dev/null && pkgs+=(npm)
log=${DUET_SETUP_LOG:-/tmp/duet-setup.log}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
# web/node_modules from the lock file; skipped when it was installed from this same lock. A
# failure is a warning: only the music page of `duet-edge serve` needs it.
web_deps() {
  local web; web="$(cd "$(dirname "$0")/.." && pwd)/web"
  [ -f "$web/package-lock.json" ] || return 0
  if cmp -s "$web/package-lock.json" "$web/node_modules/.duet-installed-lock" 2>/dev/null; then
    echo "setup: web/node_modules up to date"
    return 0
  fi
  echo "setup: npm ci in web/ (the music page's abcjs)"
  local mark=0; [ -f "$log" ] && mark=$(wc -l <"$log")
  if (cd "$web" && npm ci --no-audit --no-fund --loglevel=error) >>"$log" 2>&1; then
    cp "$web/package-lock.json" "$web/node_modules/.duet-installed-lock"
    return 0
  fi
  local said; said=$(tail -n +"$((mark + 1))" "$log" | grep -m 3 -i 'err' || true)
  if [ "$want_tests" = 1 ]; then
    # the tests drive the page in Chromium: without abcjs they would fail half an hour later
    echo "setup: npm ci in web/ failed (see $log); the tests need the music page's abcjs" \
         "(test_serve renders a score in Chromium). npm said:" >&2
    echo "${said:-  (nothing on its error lines)}" | sed 's/^/  /' >&2
    exit 1
  fi
  echo "setup: warning: npm ci in web/ failed (see $log): the music page of duet-edge serve cannot render" \
       "scores until it runs; the main job does not need it. npm said:" >&2
  echo "${said:-  (nothing on its error lines)}" | sed 's/^/  /' >&2
  return 0
}
missing=()
for p in "${pkgs[@]}"; do installed "$p" || missing+=("$p"); done
missing_optional=()
for p in "${optional[@]}"; do installed "$p" || missing_optional+=("$p"); done
finish() { [ "$want_page" = 1 ] && web_deps; return 0; }
if [ ${#missing[@]} -eq 0 ] && [ ${#missing_optional[@]} -eq 0 ]; then
  echo "setup: all $(( ${#pkgs[@]} + ${#optional[@]} )) packages present"
  finish
  exit 0
fi
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
# hold back service starts while installing (invoke-rc.d asks policy-rc.d; 101 = not allowed)
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null && $SUDO chmod 755 "$policy" && made_policy=1
fi
cleanup() { [ "$made_policy" = 1 ] && $SUDO rm -f "$policy"; return 0; }
trap cleanup EXIT
apt_install() {
  $SUDO apt-get install -y -q --no-install-recommends "$@" >>"$log" 2>&1 ||
    { $SUDO apt-get update -q >>"$log" 2>&1 && $SUDO apt-get install -y -q --no-install-recommends "$@" >>"$log" 2>&1; }
}
if [ -z "$(ls /var/lib/apt/lists 2>/dev/null | grep -v -e lock -e partial -e auxfiles)" ]; then
  echo "setup: apt-get update"
  $SUDO apt-get update -q >>"$log" 2>&1
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${#missing[@]} packages: ${missing[*]} (log: $log)"
  apt_install "${missing[@]}" || { tail -20 "$log" >&2; echo "setup: apt-get install failed (log: $log)" >&2; exit 1; }
fi
if [ ${#missing_optional[@]} -gt 0 ]; then
  echo "setup: installing ${missing_optional[*]} (WAV output of the main job)"
  apt_install "${missing_optional[@]}" ||
    echo "setup: warning: could not install ${missing_optional[*]}: the main job will write no WAV" >&2
fi
# a package that enabled its unit anyway (deb-systemd-helper does at install): disable it again
for unit in prometheus prometheus-node-exporter; do
  if [[ " ${missing[*]} " == *" $unit "* ]] && command -v systemctl >/dev/null &&
     systemctl is-enabled "$unit" >/dev/null 2>&1; then
    $SUDO systemctl disable "$unit" >>"$log" 2>&1 && echo "setup: left $unit's service disabled (the tests run their own)"
  fi
done
finish
