#!/usr/bin/env bash
# scripts/render_tunes.sh (the main job's rendering) with stand-in renderers: an abcm2ps layout
# complaint ("Line too much shrunk", as abcm2ps 8.14 gives for --style ryans-hornpipe --seed 2)
# keeps the score and exits 0; the WAV is normalised to a peak of -1 dBFS; a real abcm2ps error
# removes the score and exits 1 naming the tune.
#   bash render_tunes_check.sh SOURCE_DIR
set -euo pipefail
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/bin" "$tmp/out"
# abcm2ps -g -O OUT.svg FILE: writes OUT001.svg; says what $ABCM2PS_SAYS says and exits 1 if told
cat >"$tmp/bin/abcm2ps" <<'SH'
#!/bin/sh
out=$3
echo "abcm2ps-8.14.14 (2022-12-19)"
echo "$ABCM2PS_SAYS" >&2
printf '<svg xmlns="http://www.w3.org/2000/svg"></svg>\n' >"${out%.svg}001.svg"
exit "${ABCM2PS_RC:-0}"
SH
cat >"$tmp/bin/abc2midi" <<'SH'
#!/bin/sh
printf 'MThd' >"$3"
SH
# timidity [-c CFG] [-An] -Ow -o OUT.wav IN.mid: a 16-bit WAV whose samples are 50 x the volume
# percentage (-A, 70 by default as timidity's): 3,500 (-19.4 dBFS) unamplified
cat >"$tmp/bin/timidity" <<'SH'
#!/bin/sh
amp=70 out=
while [ $# -gt 0 ]; do
  case "$1" in -A*) amp=${1#-A} ;; -o) out=$2; shift ;; esac
  shift
done
v=$((amp * 50)) w=$((65536 - amp * 50))
le() { printf "\\$(printf %03o $(($1 % 256)))\\$(printf %03o $(($1 / 256)))"; }
{ printf 'RIFF\000\000\000\000WAVEfmt '; printf '\000%.0s' $(seq 20); printf 'data\014\000\000\000'
  le $v; le $v; le $w; le $w; le $((v / 2)); le $((v / 2)); } >"$out"
echo "Playing time: ~1 seconds"
SH
chmod +x "$tmp/bin/"*
printf 'X:1\nT:Hornpipe\nM:4/4\nL:1/8\nK:D\nABcd efga|bagf edcB|]\n' >"$tmp/out/tune.abc"
export PATH="$tmp/bin:$PATH"

ABCM2PS_SAYS="tune1.abc:7:1: error: Line too much shrunk 0.41 0.52 0.50" ABCM2PS_RC=1 \
  bash "$src/scripts/render_tunes.sh" "$tmp/out/tune.abc" >"$tmp/layout.log" 2>&1 ||
  { cat "$tmp/layout.log"; echo "FAIL: a layout complaint failed the render" >&2; exit 1; }
[ -s "$tmp/out/tune1.svg" ] || { cat "$tmp/layout.log"; echo "FAIL: the score was removed" >&2; exit 1; }
# the WAV is amplified to a peak of -1 dBFS (29,205): -A584 gives 29,200
peak=$(tail -c +45 "$tmp/out/tune1.wav" | od -An -v -t d2 -w2 | awk '{x = $1 < 0 ? -$1 : $1; if (x > p) p = x} END {print p}')
[ "$peak" = 29200 ] || { cat "$tmp/layout.log"; echo "FAIL: the WAV's peak is $peak, not 29200 (-1 dBFS)" >&2; exit 1; }
grep -q "WAV .*tune1.wav (peak -1.0 dBFS, RMS -2.3 dBFS)" "$tmp/layout.log" ||
  { cat "$tmp/layout.log"; echo "FAIL: the WAV line does not give its level" >&2; exit 1; }

rm -f "$tmp/out/tune1."*
if ABCM2PS_SAYS="tune1.abc:6:3: error: Bad character 'Z'" bash "$src/scripts/render_tunes.sh" "$tmp/out/tune.abc" \
     >"$tmp/error.log" 2>&1; then
  cat "$tmp/error.log"; echo "FAIL: an abcm2ps error passed" >&2; exit 1
fi
grep -q "tune 1 ('Hornpipe'): abcm2ps: .*Bad character" "$tmp/error.log" ||
  { cat "$tmp/error.log"; echo "FAIL: the error does not name the tune and the cause" >&2; exit 1; }
[ ! -e "$tmp/out/tune1.svg" ] || { echo "FAIL: a broken score was kept" >&2; exit 1; }
echo "render_tunes: ok (layout complaint kept the score; the WAV peaks at -1 dBFS; an error named tune 1 and removed it)"
