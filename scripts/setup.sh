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
  doctest-dev libcpp-httplib-dev
  abcm2ps abcmidi
  prometheus
)
# libFuzzer comes with clang; optional everywhere else, but CI runs the short fuzz pass.
[ "${DUET_NO_FUZZ:-0}" = 1 ] || pkgs+=(clang libclang-rt-14-dev)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#pkgs[@]} packages present"
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
