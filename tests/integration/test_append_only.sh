#!/bin/bash
# Append-only storage: with the repository's directories made append-only
# by the file system (chattr +a: names can be added, never removed or
# replaced) and --append-only on the client, backup, restore and check
# still work; forget and prune fail with a clear message and change
# nothing.  Without chattr support, only the client-side flag is tested.
#   $1: the bulwark binary
set -eu
B=${1:?usage: $0 path/to/bulwark}
T=$(mktemp -d /tmp/bw-append.XXXXXX)
R=$T/repo
unlock() { [ -d "$R" ] && chattr -R -a "$R" 2>/dev/null || true; }
trap 'unlock; rm -rf "$T"' EXIT
export XDG_CACHE_HOME=$T/cache BULWARK_PASSWORD=append-only-test
unset BULWARK_PASSWORD_FILE BULWARK_REPO
fail() { echo "FAIL: $*" >&2; exit 1; }

mkdir -p "$T/src/d"
head -c 3000000 /dev/urandom > "$T/src/random"
seq 1 200000 > "$T/src/d/text"
$B -q -r "$R" init
$B -q -r "$R" backup "$T/src"

fs=no
if chattr -R +a "$R" 2>/dev/null && ! rm -f "$R"/keys/* 2>/dev/null; then
	fs=yes
	echo "repository directories are append-only (chattr +a)"
else
	unlock
	echo "SKIP: chattr +a not supported here; testing --append-only alone"
fi
manifest() { (cd "$R" && find . -type f ! -name '.tmp*' -printf '%p %s\n' | sort); }
manifest > "$T/before"

echo "checking: backup into the append-only repository"
echo "new file" > "$T/src/new"
$B -r "$R" --append-only backup "$T/src" > "$T/out" 2>&1 || { cat "$T/out"; fail "backup failed"; }
manifest > "$T/after"
# nothing that was there may be gone or changed: every old line is still present
missing=$(comm -23 "$T/before" "$T/after" | grep -v '^./locks/' || true)
[ -z "$missing" ] || fail "objects removed or changed by backup: $missing"

echo "checking: check --read-data and restore"
$B -r "$R" --append-only check --read-data > "$T/out" 2>&1 || { cat "$T/out"; fail "check failed"; }
$B -q -r "$R" --append-only restore latest --target "$T/restore"
diff -r "$T/src" "$T/restore$T/src" || fail "restore differs"

echo "checking: forget and prune are refused, nothing changes"
manifest > "$T/before2"
rc=0
$B -r "$R" --append-only forget --keep-last 1 > "$T/out" 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "forget succeeded on an append-only repository"
grep -qi "append-only" "$T/out" || { cat "$T/out"; fail "forget: no append-only message"; }
rc=0
$B -r "$R" --append-only prune > "$T/out" 2>&1 || rc=$?
[ $rc -ne 0 ] || fail "prune succeeded on an append-only repository"
grep -qi "append-only" "$T/out" || { cat "$T/out"; fail "prune: no append-only message"; }
manifest > "$T/after2"
cmp -s "$T/before2" "$T/after2" || fail "forget/prune changed the repository"
n=$($B -r "$R" --json snapshots | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
[ "$n" = 2 ] || fail "expected 2 snapshots, found $n"
if [ $fs = yes ]; then
	leftovers=$(find "$R" -name '.tmp*' | wc -l)
	[ "$leftovers" = 0 ] || fail "$leftovers temporary files left in the append-only repository"
fi
echo "append-only: ok"
