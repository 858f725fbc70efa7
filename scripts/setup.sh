#!/usr/bin/env bash
# Installs what duet needs to build and run on Debian 12, as root. Idempotent and quick when all
# is there: apt runs only for packages that are missing, and `apt-get update` only when the lists
# are empty or a package cannot be found. timidity and freepats (a General MIDI patch set) let the
# main job write a WAV of the tune; they are optional: set-up goes on without them, with a warning.
set -euo pipefail
pkgs=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libtorch-dev
  libzmq3-dev cppzmq-dev libmsgpack-cxx-dev libssl-dev
  nlohmann-json3-dev libtomlplusplus-dev libcli11-dev libspdlog-dev libfmt-dev
  doctest-dev libcpp-httplib-dev
  abcm2ps abcmidi
  prometheus
)
# libFuzzer comes with clang; optional everywhere else, but CI runs the short fuzz pass.
[ "${DUET_NO_FUZZ:-0}" = 1 ] || pkgs+=(clang libclang-rt-14-dev)
optional=(timidity freepats)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
missing=()
for p in "${pkgs[@]}"; do installed "$p" || missing+=("$p"); done
missing_optional=()
for p in "${optional[@]}"; do installed "$p" || missing_optional+=("$p"); done
if [ ${#missing[@]} -eq 0 ] && [ ${#missing_optional[@]} -eq 0 ]; then
  echo "setup: all $(( ${#pkgs[@]} + ${#optional[@]} )) packages present"
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
