#!/usr/bin/env bash
# Renders every tune of an .abc file (X:1, X:2, ...) on its own, beside it: tuneN.abc, tuneN.svg
# (abcm2ps), tuneN.mid (abc2midi), tuneN.wav (timidity, when installed; normalised to a peak of
# -1 dBFS), each renderer's log in render-N-*.log. A renderer's failure is an error naming the tune (exit 1); a layout warning
# is not one. Used by scripts/run.sh; tested by tests/integration/render_tunes_check.sh.
#   bash scripts/render_tunes.sh out/tune.abc
set -euo pipefail
abc=$1
dir=$(dirname "$abc")
# one file per tune (X:n), rendered on its own so that a failure names its tune
awk -v d="$dir" '/^X:/{n++} n{print > (d "/tune" n ".abc")}' "$abc"
# Debian's timidity.cfg points at fluid-soundfont-gm (140 MB); setup.sh installs the smaller freepats
tim_cfg=()
[ ! -f /etc/timidity/fluidr3_gm.cfg ] && [ -f /etc/timidity/freepats.cfg ] && tim_cfg=(-c /etc/timidity/freepats.cfg)
failed=0
fail() { echo "run: error: $*" >&2; failed=1; }
# "PEAK RMS" of a 16-bit PCM WAV as timidity -Ow writes it (44-byte header, "data" at byte 36):
# the largest |sample| and the RMS in dBFS; nothing when the file is not that form
wav_level() {
  [ "$(head -c 40 "$1" | tail -c 4)" = data ] || return 0
  tail -c +45 "$1" | od -An -v -t d2 -w2 |
    awk '{x = $1 < 0 ? -$1 : $1; if (x > p) p = x; s += $1 * $1; n++}
         END {if (n && s) printf "%d %.1f\n", p, 10 * log(s / n / 32768 / 32768) / log(10)}'
}
# timidity's output is quiet (about -16 dBFS peak, -28 dBFS RMS at its default -A70): render at
# -A100, measure, render again amplified to a peak of -1 dBFS (timidity's volume is linear, at
# most 800 %)
render_wav() {  # MID WAV LOG
  timidity "${tim_cfg[@]}" -A100 -Ow -o "$2" "$1" >"$3" 2>&1 && [ -s "$2" ] || return 1
  local level amp
  level=$(wav_level "$2")
  [ -n "$level" ] || return 0
  amp=$(echo "$level" | awk '{a = int(100 * 32768 * 10 ^ (-1 / 20) / $1); print (a > 800 ? 800 : a)}')
  [ "$amp" -gt 100 ] || return 0
  timidity "${tim_cfg[@]}" -A"$amp" -Ow -o "$2" "$1" >>"$3" 2>&1 && [ -s "$2" ]
}
for f in $(ls $dir/tune[0-9]*.abc | sort -V); do
  n=${f#$dir/tune}; n=${n%.abc}
  name="tune $n ('$(sed -n 's/^T://p' "$f" | head -1)')"
  if command -v abcm2ps >/dev/null; then
    log=$dir/render-$n-abcm2ps.log
    # abcm2ps exits non-zero on mere layout warnings, and exits 0 having drawn only part of a
    # broken tune: its "error" lines decide, less the layout ones (a line squeezed or overfull is
    # still a good score)
    abcm2ps -g -O "$dir/tune$n.svg" "$f" >"$log" 2>&1 || true
    svg=$(ls $dir/tune"$n"*.svg 2>/dev/null | head -1)
    [ -n "$svg" ] && [ "$svg" != "$dir/tune$n.svg" ] && mv "$svg" "$dir/tune$n.svg"
    if grep -i 'error' "$log" | grep -qviE 'too much shrunk|overfull|underfull' || [ ! -s "$dir/tune$n.svg" ]; then
      rm -f $dir/tune"$n"*.svg
      fail "$name: abcm2ps: $(grep -i 'error' "$log" | head -1 || echo 'no score written') ($log)"
    else
      echo "run: score  $dir/tune$n.svg (abcm2ps: $(grep -ci 'warning' "$log" || true) warnings, $log)"
    fi
  fi
  if command -v abc2midi >/dev/null; then
    log=$dir/render-$n-abc2midi.log
    abc2midi "$f" -o "$dir/tune$n.mid" >"$log" 2>&1 || true
    if [ ! -s "$dir/tune$n.mid" ] || grep -qi 'error' "$log"; then
      rm -f "$dir/tune$n.mid"
      fail "$name: abc2midi: $(grep -i 'error' "$log" | head -1 || echo 'no MIDI written') ($log)"
      continue
    fi
    w=$(grep -ci 'warning' "$log" || true)
    echo "run: MIDI   $dir/tune$n.mid (abc2midi: $w warnings, $log)"
    if command -v timidity >/dev/null; then
      log=$dir/render-$n-timidity.log
      if render_wav "$dir/tune$n.mid" "$dir/tune$n.wav" "$log" && ! grep -qiE 'no instrument|can.t|error' "$log"; then
        level=$(wav_level "$dir/tune$n.wav")
        echo "run: WAV    $dir/tune$n.wav${level:+ ($(echo "$level" |
          awk '{printf "peak %.1f dBFS, RMS %.1f dBFS", 20 * log(($1 ? $1 : 1) / 32768) / log(10), $2}'))}"
      else
        rm -f "$dir/tune$n.wav"
        fail "$name: timidity: $(grep -iE 'no instrument|can.t|error' "$log" | head -1 || tail -1 "$log") ($log)"
      fi
    else
      echo "run: no WAV: timidity is not installed (bash scripts/setup.sh installs it)"
    fi
  fi
done
exit $failed
