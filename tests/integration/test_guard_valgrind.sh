#!/usr/bin/env bash
# The guard engine under valgrind (memcheck): a daemon must run clean.
# It watches a loop-mounted ext4 image, stops one emulated attack, serves
# a status and a rollback, and stops on SIGTERM; valgrind must report no
# invalid access, no uninitialised read and no definite leak.
# Skipped in the ASan build, without root, or without fanotify
# pre-content events (exit 77).
set -uo pipefail
BW=$(realpath "$1")
RANSIM=${BW_RANSIM:-$(dirname "$BW")/tests/bw-ransim}
SRC=${BW_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$SRC/tests/guard/loopimg.sh"
skip() { echo "SKIP: $*"; exit 77; }
[ "${BW_TEST_ASAN:-0}" = 1 ] && skip "ASan build"
command -v valgrind >/dev/null || skip "valgrind not installed"
[ "$(id -u)" -eq 0 ] || skip "needs root"
command -v losetup >/dev/null && command -v mkfs.ext4 >/dev/null || skip "no losetup/mkfs.ext4"

mkdir -p /tmp/bw-guard-tests
T=$(mktemp -d /tmp/bw-guard-tests/vg.XXXXXX)
MNT=$T/mnt
VG=
cleanup() {
	[ -n "$VG" ] && kill "$VG" 2>/dev/null && wait "$VG" 2>/dev/null
	loop_release "$MNT"
	rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$T/vg.log" ] && tail -40 "$T/vg.log"; exit 1; }

loop_image "$T/img" "$MNT" 128M || skip "cannot make and loop-mount an ext4 image here"
python3 "$SRC/tests/guard/mkcorpus.py" "$MNT/data" --size small --seed 3 --manifest "$T/manifest" >/dev/null ||
	fail "corpus"
"$RANSIM" init "$MNT/data" >/dev/null || fail "ransim init"

valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite \
	--log-file="$T/vg.log" "$BW" guard run --no-supervisor --protect "$MNT/data" \
	--state-dir "$T/state" --no-syslog --json >"$T/alerts.out" 2>"$T/guard.err" &
VG=$!
for _ in $(seq 300); do
	grep -q '"pid"' "$T/state/state.json" 2>/dev/null && break
	kill -0 "$VG" 2>/dev/null || break
	sleep 0.1
done
if ! grep -q '"pid"' "$T/state/state.json" 2>/dev/null; then
	grep -q "pre-content" "$T/guard.err" && skip "no fanotify pre-content events here"
	cat "$T/guard.err"; fail "the guard did not start under valgrind"
fi
setsid "$RANSIM" attack "$MNT/data" --variant inplace --log "$T/r.log" --quiet >/dev/null 2>&1
for _ in $(seq 300); do grep -q '"rollback"' "$T/alerts.out" && break; sleep 0.1; done
grep -q '"action":"killed"' "$T/alerts.out" || fail "the attack was not stopped under valgrind"
(cd "$MNT/data" && sha256sum --quiet -c "$T/manifest") || fail "files not restored under valgrind"
"$BW" guard status --state-dir "$T/state" >/dev/null || fail "status"
kill -TERM "$VG"
wait "$VG"
rc=$?
VG=
[ "$rc" -eq 99 ] && fail "valgrind reported errors"
[ "$rc" -eq 0 ] || fail "the guard exited $rc on SIGTERM"
echo "guard under valgrind: clean"
