#!/usr/bin/env bash
# Why ctest skipped what it skipped. ctest prints "***Skipped" and keeps the test's own output to
# itself (LastTest.log), so a test that exits 77 with its reason (test_link_lab: "SKIPPED: the link
# lab cannot run here: ...") looks the same as a broken one. This prints, for each test ctest's
# output lists as skipped, its "SKIPPED:" lines (else its last line of output). Used by
# scripts/test.sh; tested by tests/integration/lab_skip_check.sh.
#   skip_reasons.sh BUILD_DIR CTEST_OUTPUT
set -euo pipefail
log=$1/Testing/Temporary/LastTest.log
# ctest's summary: "The following tests did not run:" then "  59 - test_link_lab (Skipped)"
names=$(sed -n 's/^[[:space:]]*[0-9][0-9]* - \(.*\) (Skipped)$/\1/p' "$2")
[ -n "$names" ] || exit 0
[ -f "$log" ] || { echo "skipped: $(echo $names) (no $log to say why)"; exit 0; }
while IFS= read -r name; do
  # the test's section of LastTest.log: "N/M Test: NAME" ... "Output:" / dashes ... "<end of output>"
  out=$(awk -v name="$name" '
    /^[0-9]+\/[0-9]+ Test: / { t = $0; sub(/^[0-9]+\/[0-9]+ Test: /, "", t); mine = (t == name); out = 0; next }
    mine && /^Output:$/ { out = 1; getline; next }
    mine && out && /^<end of output>$/ { out = 0; mine = 0; next }
    mine && out { print }' "$log")
  reason=$(printf '%s\n' "$out" | grep '^SKIPPED' | head -3 || true)
  [ -n "$reason" ] || reason=$(printf '%s\n' "$out" | grep -v '^[[:space:]]*$' | tail -1 || true)
  echo "skipped: $name: ${reason:-(it printed nothing)}"
done <<<"$names"
