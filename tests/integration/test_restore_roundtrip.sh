#!/bin/bash
# Back up a tree holding every kind of file, restore it elsewhere and
# compare contents, metadata, xattrs and ACLs; then check --sparse,
# --include/--exclude/--path, --overwrite, --verify and damage reporting.
# Usage: test_restore_roundtrip.sh path/to/bulwark
set -u
B=$(realpath "$1")
W=$(mktemp -d /tmp/bw-restore-test.XXXXXX)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$W"' EXIT
export BULWARK_PASSWORD_FILE=$W/pw XDG_CACHE_HOME=$W/cache
echo test-pass > "$W/pw"
R=$W/repo
S=$W/src/data
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
have() { command -v "$1" >/dev/null 2>&1; }
root=0; [ "$(id -u)" = 0 ] && root=1

# ---- the source tree ----
mkdir -p "$S/dir/sub" "$S/empty dir" "$S/deep/a/b/c/d"
echo hello > "$S/dir/file.txt"
: > "$S/empty"
head -c 300000 /dev/urandom > "$S/dir/sub/random.bin"
# 50 MB: 20 MB random, 10 MB zeros, 20 MB random (sparse candidate)
{ head -c 20000000 /dev/urandom; head -c 10000000 /dev/zero; head -c 20000000 /dev/urandom; } > "$S/big.img"
head -c 12345678 /dev/zero > "$S/zeros.img"
echo linked > "$S/dir/hard1"
ln "$S/dir/hard1" "$S/hard2"
ln "$S/dir/hard1" "$S/deep/a/hard3"
ln -s file.txt "$S/dir/link"
ln -s /nonexistent/target "$S/dangling"
ln -s ../../dir "$S/deep/a/uplink"
mkfifo "$S/fifo"
[ $root = 1 ] && mknod "$S/chardev" c 1 3
printf 'spaces' > "$S/name with spaces"
printf 'newline' > "$S/name"$'\n'"with newline"
printf 'latin1' > "$S/caf"$'\xe9'
printf 'tab' > "$S/t"$'\t'"ab"
echo suid > "$S/suid"; chmod 4755 "$S/suid"
echo sgid > "$S/dir/sgid"; chmod 2750 "$S/dir/sgid"
chmod 1777 "$S/empty dir"
chmod 0500 "$S/deep/a/b"
echo ro > "$S/readonly"; chmod 0400 "$S/readonly"
touch -h -d '1999-12-31 23:59:59.123456789' "$S/dir/file.txt" "$S/dir/link"
touch -d '2038-01-19 03:14:08' "$S/big.img"
touch -d '1970-01-01 00:00:01' "$S/empty"
touch -a -d '2001-02-03 04:05:06' "$S/dir/sub/random.bin"
if [ $root = 1 ]; then
	chown 1234:5678 "$S/dir/file.txt"
	chown -h 4321:8765 "$S/dir/link"
	chown nobody:nogroup "$S/name with spaces" 2>/dev/null || true
fi
xattrs=0
if have setfattr && setfattr -n user.test -v hello "$S/dir/file.txt" 2>/dev/null; then
	xattrs=1
	setfattr -n user.bin -v 0x00ff10 "$S/empty"
	setfattr -n user.dirattr -v 'on a dir' "$S/dir"
	[ $root = 1 ] && setfattr -h -n trusted.sym -v x "$S/dir/link"
fi
acls=0
if have setfacl && setfacl -m u:1234:rwx,g:5678:r "$S/dir/sub/random.bin" 2>/dev/null; then
	acls=1
	setfacl -d -m u:1234:rx "$S/dir/sub"
fi
# directory times last (creating children moved them)
touch -d '2005-05-05 05:05:05' "$S/dir/sub" "$S/deep/a/b" "$S"

"$B" -r "$R" init >/dev/null || { echo "init failed"; exit 1; }
"$B" -r "$R" -q backup "$S" || fail "backup exited $?"

# ---- comparison helpers (symlink atimes move when they are read) ----
meta() { # one line per entry (directory sizes and atimes are the file system's)
	(cd "$1" && find . -printf '%p|%s|%m|%U|%G|%T@|%A@|%n|%y|%l\n' |
	 awk -F'|' -v OFS='|' '$9=="d"{$2="";$7=""} $9=="l"{$7=""} 1' | LC_ALL=C sort)
}
compare() { # src restored label; metadata first: reading moves atimes
	diff "$W/src.meta" <(meta "$2") >"$W/meta.diff" ||
		{ fail "$3: metadata differs"; head -20 "$W/meta.diff"; }
	# diff cannot compare special files: their type is in the metadata
	diff -r --no-dereference "$1" "$2" 2>&1 |
		grep -Ev '^File .* is a (fifo|character special file) while file .* is a \1$' >"$W/diff.out"
	[ -s "$W/diff.out" ] && { fail "$3: contents differ"; head -5 "$W/diff.out"; }
	if [ $xattrs = 1 ]; then
		diff <(cd "$1" && getfattr -h -d -m - -R . 2>/dev/null | grep -v '^security\.') \
		     <(cd "$2" && getfattr -h -d -m - -R . 2>/dev/null | grep -v '^security\.') >/dev/null ||
			fail "$3: xattrs differ"
	fi
	if [ $acls = 1 ]; then
		diff <(cd "$1" && getfacl -R -P . 2>/dev/null) <(cd "$2" && getfacl -R -P . 2>/dev/null) >/dev/null ||
			fail "$3: ACLs differ"
	fi
}

# the source's metadata now, before anything reads it (the backup does
# not move atimes: it reads with O_NOATIME)
meta "$S" >"$W/src.meta"

# ---- full restore ----
T=$W/t1
"$B" -r "$R" -q restore latest --target "$T" --verify || fail "restore exited $?"
compare "$S" "$T$S" "full restore"
[ "$(stat -c %i "$T$S/hard2")" = "$(stat -c %i "$T$S/dir/hard1")" ] &&
[ "$(stat -c %i "$T$S/deep/a/hard3")" = "$(stat -c %i "$T$S/dir/hard1")" ] || fail "hard links not linked"
[ "$(stat -c %h "$T$S/hard2")" = 3 ] || fail "hard link count"
[ -p "$T$S/fifo" ] || fail "fifo"
[ $root = 1 ] && { [ -c "$T$S/chardev" ] && [ "$(stat -c %t:%T "$T$S/chardev")" = 1:3 ] || fail "char device"; }
[ "$(readlink "$T$S/dangling")" = /nonexistent/target ] || fail "dangling symlink"
[ "$(stat -c %a "$T$S/suid")" = 4755 ] || fail "setuid bit"

# ---- JSON summary ----
"$B" -r "$R" --json restore latest --target "$W/t2" >"$W/out.json" || fail "json restore exited $?"
grep -q '"message_type":"summary"' "$W/out.json" && grep -q '"errors":0' "$W/out.json" || fail "json summary: $(cat "$W/out.json")"

# ---- existing files: refused, then --overwrite ----
"$B" -r "$R" -q restore latest --target "$W/t2" 2>/dev/null
[ $? = 3 ] || fail "restore over existing files should exit 3"
echo changed > "$W/t2$S/dir/file.txt"
"$B" -r "$R" -q restore latest --target "$W/t2" --overwrite || fail "--overwrite exited $?"
compare "$S" "$W/t2$S" "overwrite"

# ---- symlinks already in the target are never followed ----
mkdir -p "$W/outside" "$W/t8"
ln -s "$W/outside" "$W/t8/tmp"
"$B" -r "$R" -q restore latest --target "$W/t8" 2>/dev/null
[ $? = 3 ] || fail "restore through a symlinked directory should exit 3"
[ -z "$(ls -A "$W/outside")" ] || fail "restore wrote through a symlink in the target"
"$B" -r "$R" -q restore latest --target "$W/t9" --include "$S/dir/*" || fail "t9 exited $?"
echo keep > "$W/outside/victim"
rm "$W/t9$S/dir/file.txt" && ln -s "$W/outside/victim" "$W/t9$S/dir/file.txt"
"$B" -r "$R" -q restore latest --target "$W/t9" --include "$S/dir/*" --overwrite || fail "t9 overwrite exited $?"
[ "$(cat "$W/outside/victim")" = keep ] || fail "--overwrite wrote through a symlink"
[ -f "$W/t9$S/dir/file.txt" ] && [ ! -L "$W/t9$S/dir/file.txt" ] || fail "--overwrite did not replace the symlink"

# ---- sparse ----
"$B" -r "$R" -q restore latest --target "$W/t3" --sparse --include "$S/big.img" --include "$S/zeros.img" || fail "sparse exited $?"
cmp -s "$S/big.img" "$W/t3$S/big.img" && cmp -s "$S/zeros.img" "$W/t3$S/zeros.img" || fail "sparse: contents differ"
blocks=$(stat -c %b "$W/t3$S/big.img"); bs=$(stat -c %B "$W/t3$S/big.img")
[ $((blocks * bs)) -lt 45000000 ] || fail "sparse: big.img has no hole ($((blocks * bs)) bytes allocated)"
[ "$(stat -c %b "$W/t3$S/zeros.img")" -lt 64 ] || fail "sparse: zeros.img is not a hole"

# ---- include / exclude / path ----
"$B" -r "$R" -q restore latest --target "$W/t4" --include "$S/dir/sub/*" --exclude '*.txt' || fail "include exited $?"
[ -f "$W/t4$S/dir/sub/random.bin" ] || fail "include: file missing"
[ -e "$W/t4$S/big.img" ] && fail "include: unrelated file restored"
[ -e "$W/t4$S/dir/file.txt" ] && fail "include: file outside the pattern restored"
[ "$(stat -c %Y "$W/t4$S/dir/sub")" = "$(stat -c %Y "$S/dir/sub")" ] || fail "include: parent dir metadata"
"$B" -r "$R" -q restore latest --target "$W/t5" --path "$S/dir" --exclude '*.txt' || fail "--path exited $?"
[ -f "$W/t5$S/dir/sub/random.bin" ] && [ ! -e "$W/t5$S/dir/file.txt" ] && [ ! -e "$W/t5$S/big.img" ] || fail "--path/--exclude selection"
"$B" -r "$R" -q restore latest --target "$W/t6" --path /no/such/path 2>/dev/null
[ $? = 1 ] || fail "--path to a missing path should exit 1"

# ---- damage: corrupt one pack, the restore reports and goes on ----
pack=$(find "$R/data" -type f -size +1M | head -1)
chmod u+w "$pack"
printf 'XXXXXXXX' | dd of="$pack" bs=1 seek=100000 conv=notrunc status=none
"$B" -r "$R" -q restore latest --target "$W/t7" 2>"$W/err7"
rc=$?
[ $rc = 3 ] || fail "damaged restore should exit 3 (got $rc)"
grep -q 'blob .* in pack .*authentication failed' "$W/err7" || fail "damage not reported: $(head -3 "$W/err7")"
[ -f "$W/t7$S/dir/file.txt" ] || fail "damaged restore did not restore the rest"

if [ $fails = 0 ]; then echo "restore round trip: OK"; exit 0; fi
echo "restore round trip: $fails failure(s)"; exit 1
