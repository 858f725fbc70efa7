#!/usr/bin/env bash
# Why the link lab is skipped, as a user of scripts/test.sh sees it. With a stand-in iproute2:
#   1. in a chroot `ip netns exec` fails mounting (iproute2: "mount --make-rslave /" failed):
#      `netns.sh check` names that command and its message, not "tc tbf is not available";
#   2. where tbf is missing, it names the tc command and what tc said;
#   3. test_link_lab.sh exits 77 with the reason, and scripts/skip_reasons.sh prints it after a
#      ctest run (ctest itself shows only "***Skipped").
#   bash lab_skip_check.sh SOURCE_DIR
set -euo pipefail
src=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/bin"
cat >"$tmp/bin/id" <<'SH'
#!/bin/sh
echo 0
SH
# ip: netns add/del and link add succeed; netns exec fails as in a chroot when IP_EXEC_FAILS is
# set, else runs the command
cat >"$tmp/bin/ip" <<'SH'
#!/bin/sh
if [ "$1 $2" = "netns exec" ]; then
  if [ -n "${IP_EXEC_FAILS:-}" ]; then
    echo '"mount --make-rslave /" failed: Invalid argument' >&2
    exit 1
  fi
  shift 3
  exec "$@"
fi
exit 0
SH
cat >"$tmp/bin/tc" <<'SH'
#!/bin/sh
[ -z "${TC_FAILS:-}" ] && exit 0
echo "Error: Specified qdisc kind is unknown." >&2
exit 2
SH
chmod +x "$tmp/bin/"*
export PATH="$tmp/bin:$PATH"
fail() { echo "FAIL: $*" >&2; exit 1; }

# 1. a chroot
if said=$(IP_EXEC_FAILS=1 bash "$src/scripts/lab/netns.sh" check 2>&1); then fail "check passed in a chroot"; fi
echo "chroot: $said"
[[ $said == *"'ip netns exec duetprobe"*"-a true' failed: \"mount --make-rslave /\" failed: Invalid argument"* ]] ||
  fail "the reason does not give the failing command and its message: $said"
[[ $said != *"tc tbf"* ]] || fail "a chroot is blamed on tc tbf: $said"

# 2. no tbf
if said=$(TC_FAILS=1 bash "$src/scripts/lab/netns.sh" check 2>&1); then fail "check passed without tbf"; fi
echo "no tbf: $said"
[[ $said == *"tc tbf is not available"*"'ip netns exec duetprobe"*"tc qdisc add dev lab0 root tbf"*"failed: Error: Specified qdisc kind is unknown."* ]] ||
  fail "the reason does not give tc's command and message: $said"
IP_EXEC_FAILS= TC_FAILS= bash "$src/scripts/lab/netns.sh" check || fail "check failed with everything there"

# 3. through ctest and skip_reasons.sh, as scripts/test.sh runs them
mkdir "$tmp/proj"
cat >"$tmp/proj/CMakeLists.txt" <<CM
cmake_minimum_required(VERSION 3.16)
project(lab_skip NONE)
enable_testing()
add_test(NAME test_link_lab COMMAND bash $src/tests/integration/test_link_lab.sh $tmp/proj/b $src)
set_tests_properties(test_link_lab PROPERTIES SKIP_RETURN_CODE 77 ENVIRONMENT "PATH=$PATH;IP_EXEC_FAILS=1")
CM
cmake -S "$tmp/proj" -B "$tmp/proj/b" >/dev/null
ctest --test-dir "$tmp/proj/b" --output-on-failure >"$tmp/ctest.out" 2>&1 || true
grep -q "test_link_lab .*Skipped" "$tmp/ctest.out" || { cat "$tmp/ctest.out"; fail "test_link_lab was not skipped"; }
reasons=$(bash "$src/scripts/skip_reasons.sh" "$tmp/proj/b" "$tmp/ctest.out")
echo "$reasons"
[[ $reasons == "skipped: test_link_lab: SKIPPED: the link lab cannot run here: "*"'ip netns exec duetprobe"*"\"mount --make-rslave /\" failed: Invalid argument"* ]] ||
  fail "skip_reasons.sh does not print the reason: $reasons"
echo "lab_skip: ok (the failing command and its message, in netns.sh check and after ctest)"
