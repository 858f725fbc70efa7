#!/usr/bin/env bash
# Installs what duet needs to build and run on Debian 12, as root. Idempotent and quick when all
# is there: apt runs only for packages that are missing, and `apt-get update` only when the lists
# are empty or a package cannot be found.
set -euo pipefail
pkgs=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libtorch-dev
  libzmq3-dev cppzmq-dev libmsgpack-cxx-dev libssl-dev
  nlohmann-json3-dev libtomlplusplus-dev libcli11-dev libspdlog-dev libfmt-dev
  doctest-dev
  abcm2ps abcmidi
  libcpp-httplib-dev   # duet-edge serve
  chromium curl python3   # duet-edge serve's tests: the page in a browser, SSE by curl, a stdlib client
)
# the music page's abcjs comes from the npm registry (web/package-lock.json); Debian's npm when
# no Node.js is there yet
command -v npm >/dev/null || pkgs+=(npm)
# libFuzzer comes with clang; optional everywhere else, but CI runs the short fuzz pass.
[ "${DUET_NO_FUZZ:-0}" = 1 ] || pkgs+=(clang libclang-rt-14-dev)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
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
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#pkgs[@]} packages present"
  web_deps
  exit 0
fi
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
if [ -z "$(ls /var/lib/apt/lists 2>/dev/null | grep -v -e lock -e partial -e auxfiles)" ]; then
  $SUDO apt-get update -qq
fi
echo "setup: installing ${missing[*]}"
if ! $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"; then
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
web_deps
