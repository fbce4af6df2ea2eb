#!/bin/bash
# Hard links whose names are far apart in the walk (more than one restore
# batch of 1024 files between them) are restored as links to one inode,
# with the right content; --verify agrees.
#   $1: the bulwark binary
set -eu
B=${1:?usage: $0 path/to/bulwark}
T=$(mktemp -d /tmp/bw-hardlinks.XXXXXX)
trap 'rm -rf "$T"' EXIT
export XDG_CACHE_HOME=$T/cache BULWARK_PASSWORD=hardlinks-test
unset BULWARK_PASSWORD_FILE BULWARK_REPO
fail() { echo "FAIL: $*" >&2; exit 1; }
S=$T/src
mkdir -p "$S/aaa" "$S/mmm" "$S/zzz"
for i in $(seq 1 40); do echo "linked file $i" > "$S/aaa/l$i"; done
head -c 3000000 /dev/urandom > "$S/aaa/big"
# 3000 filler files between the first and the second names
for i in $(seq 1 3000); do echo "$i" > "$S/mmm/f$i"; done
for i in $(seq 1 40); do ln "$S/aaa/l$i" "$S/zzz/l$i"; done
ln "$S/aaa/big" "$S/zzz/big"
ln "$S/aaa/big" "$S/mmm/big3"   # three names
$B -q -r "$T/repo" init
$B -q -r "$T/repo" backup "$S"
$B -q -r "$T/repo" restore latest --target "$T/r" --verify
R=$T/r$S
diff -r "$S" "$R" || fail "restored tree differs"
for i in $(seq 1 40); do
	[ "$(stat -c %i "$R/aaa/l$i")" = "$(stat -c %i "$R/zzz/l$i")" ] ||
		fail "aaa/l$i and zzz/l$i are not one inode"
done
[ "$(stat -c %i "$R/aaa/big")" = "$(stat -c %i "$R/zzz/big")" ] &&
	[ "$(stat -c %i "$R/aaa/big")" = "$(stat -c %i "$R/mmm/big3")" ] ||
	fail "the three names of big are not one inode"
[ "$(stat -c %h "$R/aaa/big")" = 3 ] || fail "big has $(stat -c %h "$R/aaa/big") links, want 3"
echo "hard links across batches: ok"
