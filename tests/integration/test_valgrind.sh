#!/bin/bash
# The main commands under valgrind (memcheck): no invalid access, no use of
# uninitialised memory, no definite leak.  ASan cannot see uninitialised
# reads; valgrind can.  Skipped in the ASan build (the two do not mix).
#   $1: the bulwark binary
set -eu
B=${1:?usage: $0 path/to/bulwark}
if [ "${BW_TEST_ASAN:-0}" = 1 ]; then echo "SKIP: ASan build"; exit 0; fi
command -v valgrind >/dev/null || { echo "SKIP: valgrind not installed"; exit 0; }
T=$(mktemp -d /tmp/bw-valgrind.XXXXXX)
trap 'rm -rf "$T"' EXIT
export XDG_CACHE_HOME=$T/cache BULWARK_PASSWORD=valgrind-test
unset BULWARK_PASSWORD_FILE BULWARK_REPO
R=$T/repo
vg() { valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite "$@"; }
fail() { echo "FAIL: $*" >&2; exit 1; }

mkdir -p "$T/src/sub"
head -c 2000000 /dev/urandom > "$T/src/random"
seq 1 100000 > "$T/src/sub/text"
ln -s sub/text "$T/src/link"
printf 'x' > "$T/src/sub/$(printf 'odd\001name')"

step() { echo "valgrind: $*"; rc=0; vg "$B" "$@" > "$T/out" 2>&1 || rc=$?; [ $rc -ne 99 ] || { cat "$T/out"; fail "$*: valgrind reported errors"; }; [ $rc -eq 0 ] || { cat "$T/out"; fail "$* exited $rc"; }; }
step -r "$R" init --kdf-mem 1M
step -q -r "$R" backup "$T/src"
echo more >> "$T/src/sub/text"
step -q -r "$R" backup "$T/src"
step -r "$R" snapshots
step -r "$R" ls -l latest
step -q -r "$R" restore latest --target "$T/restore" --verify
diff -r "$T/src" "$T/restore$T/src" || fail "restore differs"
step -r "$R" check --read-data
first=$("$B" -r "$R" --json snapshots | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["short_id"])')
step -r "$R" diff "$first" latest
step -r "$R" stats --mode raw-data
step -r "$R" forget --keep-last 1
step -r "$R" prune
step -r "$R" check
echo "valgrind: clean"
