#!/usr/bin/env bash
# Installs what duet needs to build and run on Debian 12, as root. Idempotent and quick when all
# is there: apt runs only for packages that are missing, and `apt-get update` only when the lists
# are empty or a package cannot be found; `npm ci` for the music page only when its lock changed.
# timidity and freepats (a General MIDI patch set) let the main job write a WAV of the tune; they
# are optional: set-up goes on without them, with a warning.
set -euo pipefail
pkgs=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libtorch-dev
  libgloo-dev
  libzmq3-dev cppzmq-dev libmsgpack-cxx-dev libssl-dev
  nlohmann-json3-dev libtomlplusplus-dev libcli11-dev libspdlog-dev libfmt-dev
  doctest-dev
  libcpp-httplib-dev      # the daemon's /metrics and duet-edge serve
  abcm2ps abcmidi
  prometheus              # the metrics test scrapes the daemon with a real Prometheus
  chromium curl python3   # duet-edge serve's tests: the page in a browser, SSE by curl, a stdlib client
  iproute2 python3-matplotlib  # the link lab (scripts/lab): namespaces, veth, tc tbf; the sweep's plots
)
# libFuzzer comes with clang; optional everywhere else, but CI runs the short fuzz pass.
[ "${DUET_NO_FUZZ:-0}" = 1 ] || pkgs+=(clang libclang-rt-14-dev)
# the music page's abcjs comes from the npm registry (web/package-lock.json); Debian's npm when
# the machine has none
command -v npm >/dev/null || pkgs+=(npm)
optional=(timidity freepats)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
# web/node_modules from the lock file; skipped when it was installed from this same lock
web_deps() {
  local web; web="$(cd "$(dirname "$0")/.." && pwd)/web"
  [ -f "$web/package-lock.json" ] || return 0
  if cmp -s "$web/package-lock.json" "$web/node_modules/.duet-installed-lock" 2>/dev/null; then
    echo "setup: web/node_modules up to date"
    return 0
  fi
  echo "setup: npm ci in web/"
  (cd "$web" && npm ci --no-audit --no-fund --loglevel=error) && cp "$web/package-lock.json" "$web/node_modules/.duet-installed-lock"
}
missing=()
for p in "${pkgs[@]}"; do installed "$p" || missing+=("$p"); done
missing_optional=()
for p in "${optional[@]}"; do installed "$p" || missing_optional+=("$p"); done
if [ ${#missing[@]} -eq 0 ] && [ ${#missing_optional[@]} -eq 0 ]; then
  echo "setup: all $(( ${#pkgs[@]} + ${#optional[@]} )) packages present"
  web_deps
  exit 0
fi
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
if [ -z "$(ls /var/lib/apt/lists 2>/dev/null | grep -v -e lock -e partial -e auxfiles)" ]; then
  $SUDO apt-get update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  if ! $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi
if [ ${#missing_optional[@]} -gt 0 ]; then
  echo "setup: installing ${missing_optional[*]} (WAV output of the main job)"
  $SUDO apt-get install -y -qq --no-install-recommends "${missing_optional[@]}" ||
    { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${missing_optional[@]}"; } ||
    echo "setup: warning: could not install ${missing_optional[*]}: the main job will write no WAV" >&2
fi
web_deps
