#!/usr/bin/env bash
# Browsing commands: ls, find, diff, stats and (when FUSE is usable) mount,
# against two snapshots of a small tree with known changes between them.
# Usage: test_browse.sh PATH-TO-BULWARK.  Exit status 0 only if every
# assertion held; the mount part prints "SKIP: ..." when it cannot run.
set -u
BW=$(realpath "${1:?usage: test_browse.sh PATH-TO-BULWARK}")
T=$(mktemp -d "${TMPDIR:-/tmp}/bw-browse.XXXXXX")
T=$(realpath "$T")
S=$T/src
M=$T/mnt
MOUNT_PID=
fails=0

cleanup() {
	if [ -n "$MOUNT_PID" ]; then
		fusermount3 -u "$M" 2>/dev/null
		kill "$MOUNT_PID" 2>/dev/null
		wait "$MOUNT_PID" 2>/dev/null
	fi
	rm -rf "$T"
}
trap cleanup EXIT

umask 022
export LC_ALL=C TZ=UTC BULWARK_REPO=$T/repo BULWARK_PASSWORD_FILE=$T/pw
unset BULWARK_PASSWORD
echo "browse test password" >"$T/pw"

fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# expect NAME EXPECTED ACTUAL
expect() {
	if [ "$2" != "$3" ]; then
		fail "$1"
		diff -u <(printf '%s\n' "$2") <(printf '%s\n' "$3") | sed 's/^/    /'
	fi
}
# contains NAME HAYSTACK NEEDLE (fixed string)
contains() {
	grep -qF -- "$3" <<<"$2" || { fail "$1: no '$3' in:"; sed 's/^/    /' <<<"$2"; }
}
bw() { "$BW" --no-progress "$@"; }

# ---- the tree, snapshot 1 ------------------------------------------------
mkdir -p "$S/dir/sub" "$S/empty" "$M"
printf 'alpha\n' >"$S/a.txt"
printf 'bravo\n' >"$S/b.txt"
printf 'charlie' >"$S/dir/c.txt"
head -c 4194304 /dev/urandom >"$S/dir/sub/d.bin" # several chunks
ln -s a.txt "$S/link"
: >"$S/we$(printf '\001')ird"
XATTR=0
if setfattr -n user.colour -v blue "$S/a.txt" 2>/dev/null; then XATTR=1; fi
touch -h -d '2024-01-02 03:04:05' "$S/link" "$S/a.txt" "$S/b.txt" "$S/dir/c.txt"

bw init >/dev/null || { echo "FAIL: init"; exit 1; }
bw -q backup "$S" || { echo "FAIL: backup 1"; exit 1; }
S1=$(bw --json snapshots | grep -o '"short_id":"[0-9a-f]*"' | head -1 | cut -d'"' -f4)

# ---- changes, snapshot 2 -----------------------------------------------------
printf 'bravo2\n' >"$S/b.txt"
rm "$S/dir/c.txt"
mkdir "$S/new"
printf 'echo\n' >"$S/new/e.txt"
chmod 600 "$S/a.txt"
rm "$S/link"
printf 'now a file\n' >"$S/link"
sleep 1.1 # distinct snapshot times
bw -q backup "$S" || { echo "FAIL: backup 2"; exit 1; }
S2=$(bw --json snapshots | grep -o '"short_id":"[0-9a-f]*"' | tail -1 | cut -d'"' -f4)
[ -n "$S1" ] && [ -n "$S2" ] && [ "$S1" != "$S2" ] || { echo "FAIL: snapshot IDs '$S1' '$S2'"; exit 1; }

# the directories above $S, as ls prints them: /tmp, /tmp/bw-browse.X
prefix=
parents=
IFS=/ read -ra parts <<<"${S#/}"
for ((i = 0; i < ${#parts[@]} - 1; i++)); do
	prefix="$prefix/${parts[i]}"
	parents+="$prefix"$'\n'
done
nparents=$((${#parts[@]} - 1))

# ---- ls ------------------------------------------------------------------------
expect "ls whole snapshot" "${parents}$S
$S/a.txt
$S/b.txt
$S/dir
$S/dir/c.txt
$S/dir/sub
$S/dir/sub/d.bin
$S/empty
$S/link
$S/we\\x01ird" "$(bw ls "$S1")"
expect "ls directory" "$S/dir/c.txt
$S/dir/sub" "$(bw ls "$S1" "$S/dir")"
expect "ls -R directory" "$S/dir/c.txt
$S/dir/sub
$S/dir/sub/d.bin" "$(bw ls --recursive "$S1" "$S/dir/")"
u=$(printf '%-8s' "$(id -un)")
gr=$(printf '%-8s' "$(id -gn)")
expect "ls -l symlink" "lrwxrwxrwx $u $gr          0 2024-01-02 03:04:05 $S/link -> a.txt" \
	"$(bw ls -l "$S1" "$S/link")"
expect "ls -l file" "-rw-r--r-- $u $gr          6 2024-01-02 03:04:05 $S/a.txt" \
	"$(bw ls -l "$S1" "$S/a.txt")"
expect "ls -l latest mode" "-rw-------" "$(bw ls -l latest "$S/a.txt" | cut -c1-10)"
j=$(bw --json ls "$S1" "$S/a.txt")
contains "ls --json snapshot line" "$(head -1 <<<"$j")" '"message_type":"snapshot"'
contains "ls --json node" "$(tail -1 <<<"$j")" \
	"\"message_type\":\"node\",\"name\":\"a.txt\",\"type\":\"file\",\"path\":\"$S/a.txt\",\"size\":6"
contains "ls --json mtime" "$j" '"mtime":"2024-01-02T03:04:05'
contains "ls --json escaped name" "$(bw --json ls "$S1" "$S")" '"name":"we\u0001ird"'
bw ls "$S1" "$S/nonexistent" 2>/dev/null
expect "ls missing path exit code" 1 $?
bw ls 2>/dev/null
expect "ls without snapshot exit code" 2 $?

# ---- find -------------------------------------------------------------------------
expect "find *.txt" "$(printf '%s\n' "$S1 $S/a.txt" "$S1 $S/b.txt" "$S1 $S/dir/c.txt" \
	"$S2 $S/a.txt" "$S2 $S/b.txt" "$S2 $S/new/e.txt" | sort)" \
	"$(bw find '*.txt' | awk '{print $1, $NF}' | sort)"
expect "find path pattern" "$S/dir/c.txt
$S/dir/sub/
$S/dir/sub/d.bin" "$(bw find --snapshot "$S1" '*/dir/*' | awk '{print $NF}')"
expect "find -i" "$(printf '%s\n' "$S1 $S/a.txt" "$S2 $S/a.txt" | sort)" \
	"$(bw find -i 'A.TXT' | awk '{print $1, $NF}' | sort)"
expect "find size column" "7" "$(bw find --snapshot "$S1" c.txt | awk '{print $4}')"
out=$(bw find --snapshot "$S2" 'c.txt' 2>&1)
expect "find nothing exit code" 0 $?
expect "find nothing message" "no matches in 1 snapshot" "$out"
contains "find --json" "$(bw --json find --snapshot "$S2" e.txt)" \
	"\"message_type\":\"match\",\"name\":\"e.txt\""

# ---- diff ---------------------------------------------------------------------------
d=$(bw diff "$S1" "$S2")
expect "diff changes" "M    $S/b.txt
-    $S/dir/c.txt
T    $S/link
+    $S/new/
+    $S/new/e.txt" "$(grep -E '^[-+MTU] ' <<<"$d")"
contains "diff files summary" "$d" "Files:     1 new, 1 removed, 1 changed"
contains "diff dirs summary" "$d" "Dirs:      1 new, 0 removed"
contains "diff type summary" "$d" "Type:      1 changed"
# added: e.txt 5 + b.txt 7 + link file 11; removed: c.txt 7 + b.txt 6
contains "diff added bytes" "$d" "Added:     23 B"
contains "diff removed bytes" "$d" "Removed:   13 B"
dm=$(bw diff --metadata "$S1" "$S2")
contains "diff --metadata a.txt" "$dm" "U    $S/a.txt"
if grep -q "a.txt" <<<"$d"; then fail "diff without --metadata shows a.txt"; fi
contains "diff --json stats" "$(bw --json diff "$S1" "$S2" | tail -1)" \
	'"added":{"files":1,"dirs":1,"others":0,"bytes":23},"removed":{"files":1,"dirs":0,"others":0,"bytes":13},"files_changed":1'
expect "diff same snapshot" "" "$(bw diff "$S1" "$S1" | grep -E '^[-+MTU] ')"
expect "diff reverse" "M    $S/b.txt
+    $S/dir/c.txt
T    $S/link
-    $S/new/
-    $S/new/e.txt" "$(bw diff "$S2" "$S1" | grep -E '^[-+MTU] ')"

# ---- stats ----------------------------------------------------------------------------
big=4194304
dirs1=$((nparents + 4)) # parents, src, dir, sub, empty
st=$(bw --json stats "$S1")
contains "stats restore-size S1" "$st" \
	"\"files\":5,\"dirs\":$dirs1,\"others\":1,\"restore_size\":$((6 + 6 + 7 + big))"
contains "stats repository snapshots" "$st" '"repository":{"snapshots":2,'
st=$(bw --json stats)
contains "stats total" "$st" "\"total_file_count\":11,"
# distinct contents: alpha bravo charlie d.bin bravo2 echo link-file (+ empty)
raw=$((6 + 6 + 7 + big + 7 + 5 + 11))
contains "stats raw-data dedup" "$(bw --json stats --mode raw-data)" "\"data_plaintext_size\":$raw,"
contains "stats blobs-per-file" "$(bw --json stats --mode blobs-per-file)" '"unique_files":8,'
contains "stats text" "$(bw stats "$S2")" "Total file count:    6"
bw stats --mode bogus 2>/dev/null
expect "stats bad mode exit code" 2 $?

# ---- mount ------------------------------------------------------------------------------
# wait (at most 20 s) for the mount process to end; its exit status
wait_mount() {
	local i
	for ((i = 0; i < 200; i++)); do
		kill -0 "$MOUNT_PID" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$MOUNT_PID" 2>/dev/null; then
		fail "mount did not stop within 20 s"
		fusermount3 -uz "$M" 2>/dev/null
		kill -KILL "$MOUNT_PID"
	fi
	wait "$MOUNT_PID"
}
mount_test() {
	local log=$T/mount.log i
	"$BW" mount "$M" >"$log" 2>&1 & # not the bw function: $! must be bulwark
	MOUNT_PID=$!
	for ((i = 0; i < 100; i++)); do
		[ -L "$M/snapshots/latest" ] && break
		kill -0 "$MOUNT_PID" 2>/dev/null || break
		sleep 0.1
	done
	if ! [ -L "$M/snapshots/latest" ]; then
		if grep -q "built without FUSE" "$log"; then
			echo "SKIP: mount test: bulwark was built without FUSE support"
		else
			fail "mount did not come up:"; sed 's/^/    /' "$log"
		fi
		MOUNT_PID=
		return
	fi
	local snaps l1 l2
	snaps=$(ls "$M/snapshots" | sed 's/^.*_//')
	expect "mount snapshot list" "$S1
$S2
latest" "$snaps"
	expect "mount ids" "$(printf '%s\n' "$S1" "$S2" | sort)" "$(ls "$M/ids")"
	l2=$M/snapshots/latest$S
	l1=$M/ids/$S1$S
	expect "mount ls latest" "a.txt b.txt dir empty link new we$(printf '\001')ird" \
		"$(ls "$l2" | tr '\n' ' ' | sed 's/ $//')"
	for f in a.txt b.txt dir/sub/d.bin new/e.txt link "we$(printf '\001')ird"; do
		cmp -s "$l2/$f" "$S/$f" || fail "mount: $f differs from the source"
	done
	cmp -s "$l1/dir/sub/d.bin" "$S/dir/sub/d.bin" || fail "mount: old d.bin differs"
	expect "mount read old file" "charlie" "$(cat "$l1/dir/c.txt")"
	# reads at offsets across blob boundaries
	for off in 1 524287 1048575 2097152 3000001 4194000; do
		a=$(dd if="$l1/dir/sub/d.bin" bs=1 skip=$off count=300 2>/dev/null | od -An -tx1)
		b=$(dd if="$S/dir/sub/d.bin" bs=1 skip=$off count=300 2>/dev/null | od -An -tx1)
		[ "$a" = "$b" ] || fail "mount: read at offset $off"
	done
	expect "mount readlink" "a.txt" "$(readlink "$l1/link")"
	expect "mount stat file" "600 6 $(id -u) $(date -d '2024-01-02 03:04:05' +%s)" "$(stat -c '%a %s %u %Y' "$l2/a.txt")"
	expect "mount stat dir nlink" "3" "$(stat -c '%h' "$l1/dir")"
	expect "mount latest link" "$(ls "$M/snapshots" | grep "_$S2")" "$(readlink "$M/snapshots/latest")"
	if [ "$XATTR" = 1 ]; then
		expect "mount getfattr" "blue" "$(getfattr --only-values -n user.colour "$l2/a.txt" 2>/dev/null)"
		contains "mount listxattr" "$(getfattr -d "$l2/a.txt" 2>/dev/null)" 'user.colour="blue"'
	else
		echo "note: no user xattrs on $T's file system; xattr checks left out"
	fi
	echo x 2>/dev/null >"$l2/a.txt" && fail "mount: writing succeeded"
	fusermount3 -u "$M" || fail "fusermount3 -u"
	wait_mount
	expect "mount exit code" 0 $?
	grep -q "ERROR\|Sanitizer" "$log" && { fail "mount log:"; sed 's/^/    /' "$log"; }
	MOUNT_PID=
	# Ctrl-C (SIGINT) also unmounts cleanly
	"$BW" -q mount "$M" >"$log" 2>&1 &
	MOUNT_PID=$!
	for ((i = 0; i < 100; i++)); do
		[ -L "$M/snapshots/latest" ] && break
		sleep 0.1
	done
	kill -INT "$MOUNT_PID"
	wait_mount
	expect "mount exit code after SIGINT" 0 $?
	MOUNT_PID=
	if grep -q " $M " /proc/mounts; then fail "still mounted after SIGINT"; fi
	bw mount "$T/no-such-dir" 2>/dev/null
	expect "mount on a missing directory" 2 $?
}
if ! [ -c /dev/fuse ]; then
	echo "SKIP: mount test: /dev/fuse is missing"
elif ! command -v fusermount3 >/dev/null; then
	echo "SKIP: mount test: fusermount3 is missing"
else
	mount_test
fi

if [ "$fails" -ne 0 ]; then
	echo "test_browse: $fails failure(s)"
	exit 1
fi
echo "test_browse: all passed"
