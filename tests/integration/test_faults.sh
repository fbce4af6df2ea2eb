#!/bin/bash
# Faults a user meets: wrong passphrase, no repository, a repository of
# another version, missing/truncated/corrupted packs, unreadable files,
# odd file names, a full disk, files that change or vanish during backup.
# Each must give one clear message naming the object or file, the
# documented exit code, and must not lose anything already stored: after
# each case `check --read-data` passes and snapshot A restores exactly.
#   $1: the bulwark binary
# Cases that need root (unprivileged user, tmpfs mounts) are skipped with
# a SKIP line when not run as root.
set -eu
B=${1:?usage: $0 path/to/bulwark}
T=$(mktemp -d /tmp/bw-faults.XXXXXX)
MNT=
cleanup() {
	[ -z "$MNT" ] || umount "$MNT" 2> /dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
export XDG_CACHE_HOME=$T/cache BULWARK_PASSWORD_FILE=$T/pw
unset BULWARK_PASSWORD BULWARK_REPO
echo "faults test passphrase" > "$T/pw"
R=$T/repo
fail() { echo "FAIL: $*" >&2; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }

# gen DIR SEED: four directories of random and compressible files (~10 MB)
gen() {
	python3 - "$1" "$2" <<'EOF'
import os, random, sys
root, seed = sys.argv[1], int(sys.argv[2])
rnd = random.Random(seed)
for d in range(4):
    p = os.path.join(root, "d%d" % d)
    os.makedirs(p)
    for f in range(8):
        n = rnd.randint(1000, 600000)
        with open(os.path.join(p, "f%d" % f), "wb") as fh:
            if f % 2:
                fh.write(os.urandom(n))
            else:
                fh.write((b"%d line %d\n" % (seed, f)) * (n // 10))
EOF
}

flip() { # file offset
	python3 - "$1" "$2" <<'EOF'
import sys
f = open(sys.argv[1], "r+b"); off = int(sys.argv[2])
f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0x40]))
EOF
}

manifest() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum); }
snap_id() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read().splitlines()[-1])["id"])'; }
nsnaps() { $B -r "$1" --json snapshots | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }

# intact REPO LABEL: check --read-data passes, snapshot A restores exactly
intact() {
	local rc=0
	$B -r "$1" check --read-data > "$T/check.out" 2>&1 || rc=$?
	[ "$rc" = 0 ] || { cat "$T/check.out"; fail "$2: check --read-data exited $rc afterwards"; }
	rm -rf "$T/rA"
	$B -q -r "$1" restore --target "$T/rA" "$A" > /dev/null || fail "$2: restore of snapshot A failed afterwards"
	diff -r "$T/srcA" "$T/rA$T/srcA" > /dev/null || fail "$2: snapshot A restores differently afterwards"
	rm -rf "$T/rA"
	echo "   ...and check --read-data passes, snapshot A restores exactly"
}

# named OUTFILE RESTOREROOT: paths that restore's "error: PATH: ..." lines name
named() {
	sed -n 's/^.*error: \(\/.*\): blob .*$/\1/p' "$1" | sort -u
}
# differing SRC RESTORED: files of SRC whose restored copy differs
differing() {
	(cd "$1" && find . -type f | sort) | while read -r f; do
		cmp -s "$1/$f" "$2/$f" || echo "$1/${f#./}"
	done
}

gen "$T/srcA" 1
$B -q -r "$R" init
# three backups so that the data lies in several packs
$B -q -r "$R" backup "$T/srcA/d0"
$B -q -r "$R" backup "$T/srcA/d1"
A=$($B -r "$R" --json backup "$T/srcA" | snap_id)
$B -r "$R" check --read-data > "$T/out" 2>&1 || { cat "$T/out"; fail "fresh repository does not pass check"; }
echo "setup: snapshot A ${A:0:8} of $(find "$T/srcA" -type f | wc -l) files in $(find "$R/data" -type f | wc -l) packs"

# ---------------------------------------------------------------------------
echo "checking: wrong passphrase"
echo "not the passphrase" > "$T/badpw"
manifest "$R" > "$T/before"
rc=0
$B -r "$R" -p "$T/badpw" backup "$T/srcA" > "$T/out" 2>&1 || rc=$?
[ "$rc" = 11 ] || { cat "$T/out"; fail "wrong passphrase: exit $rc, want 11"; }
grep -q "wrong passphrase" "$T/out" || { cat "$T/out"; fail "wrong passphrase: message does not say so"; }
[ "$(wc -l < "$T/out")" = 1 ] || { cat "$T/out"; fail "wrong passphrase: more than one line of message"; }
manifest "$R" > "$T/after"
cmp -s "$T/before" "$T/after" || fail "wrong passphrase: the repository was modified"
echo "ok: wrong passphrase: exit 11, '$(cat "$T/out")'"
intact "$R" "wrong passphrase"

# ---------------------------------------------------------------------------
echo "checking: no repository at the path"
for loc in "$T/nothere" "$T/emptydir"; do
	[ "$loc" = "$T/nothere" ] || mkdir "$loc"
	for cmd in snapshots "backup $T/srcA/d0"; do
		rc=0
		# shellcheck disable=SC2086
		$B -r "$loc" $cmd > "$T/out" 2>&1 || rc=$?
		[ "$rc" = 10 ] || { cat "$T/out"; fail "no repository ($cmd at $loc): exit $rc, want 10"; }
		grep -q "$loc" "$T/out" || { cat "$T/out"; fail "no repository: message does not name $loc"; }
	done
	echo "ok: no repository at $loc: exit 10, '$(cat "$T/out")'"
done
[ ! -e "$T/nothere" ] || fail "backup to a missing repository created $T/nothere"
[ -z "$(ls -A "$T/emptydir")" ] || fail "backup to an empty directory wrote into it"

# ---------------------------------------------------------------------------
echo "checking: a repository of another format version"
cp -a "$R" "$T/v2"
sed -i 's/"version": 3,/"version": 4,/' "$T/v2/config"
grep -q '"version": 4,' "$T/v2/config" || fail "version: could not edit the config copy"
for cmd in snapshots "backup $T/srcA/d0"; do
	rc=0
	# shellcheck disable=SC2086
	$B -r "$T/v2" $cmd > "$T/out" 2>&1 || rc=$?
	[ "$rc" != 0 ] || { cat "$T/out"; fail "version 4 repository: $cmd succeeded"; }
	grep -q "version 4" "$T/out" || { cat "$T/out"; fail "version 4 repository: message does not name the version"; }
done
[ "$(ls "$T/v2/snapshots" | wc -l)" = "$(ls "$R/snapshots" | wc -l)" ] || fail "version 4: backup wrote a snapshot"
echo "ok: version 4 refused: exit $rc, '$(cat "$T/out")'"
intact "$R" "version"

# ---------------------------------------------------------------------------
# damage DAMAGE-LABEL: restore of A from the damaged copy $T/d exits 3; the
# files it names are exactly those that differ; the others are exact
restore_damaged() {
	local label=$1 rc=0 nbad ngood
	rm -rf "$T/rd"
	$B -r "$T/d" restore --target "$T/rd" "$A" > "$T/out" 2>&1 || rc=$?
	[ "$rc" = 3 ] || { cat "$T/out"; fail "$label: restore exited $rc, want 3"; }
	named "$T/out" > "$T/named"
	differing "$T/srcA" "$T/rd$T/srcA" > "$T/differ"
	nbad=$(wc -l < "$T/differ")
	ngood=$(( $(find "$T/srcA" -type f | wc -l) - nbad ))
	[ "$nbad" -gt 0 ] || fail "$label: no restored file differs (the damage was not in data?)"
	cmp -s "$T/named" "$T/differ" || {
		cat "$T/out"; echo "named:"; cat "$T/named"; echo "differ:"; cat "$T/differ"
		fail "$label: the files named are not exactly the damaged ones"
	}
	grep -q "$(printf '\033')" "$T/out" && fail "$label: terminal codes in restore output that is not a terminal"
	echo "ok: $label: restore exits 3, names the $nbad damaged file(s); $ngood others exact"
}
biggest_pack() { find "$T/d/data" -type f -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2; }
check_names() { # label pack
	local rc=0
	$B -r "$T/d" check > "$T/out" 2>&1 || rc=$?
	[ "$rc" = 3 ] && grep -q "pack $2" "$T/out" ||
		{ cat "$T/out"; fail "$1: check (exit $rc) does not name pack $2"; }
	echo "ok: $1: check exits 3 and names pack ${2:0:16}"
}

echo "checking: a missing pack"
rm -rf "$T/d"; cp -a "$R" "$T/d"
P=$(biggest_pack); PN=$(basename "$P"); rm "$P"
restore_damaged "missing pack"
grep -q "${PN:0:16}" "$T/out" || { cat "$T/out"; fail "missing pack: restore does not name pack $PN"; }
check_names "missing pack" "$PN"

echo "checking: a truncated pack"
rm -rf "$T/d"; cp -a "$R" "$T/d"
P=$(biggest_pack); PN=$(basename "$P"); truncate -s $(( $(stat -c %s "$P") / 2 )) "$P"
restore_damaged "truncated pack"
grep -q "${PN:0:16}" "$T/out" || { cat "$T/out"; fail "truncated pack: restore does not name pack $PN"; }
check_names "truncated pack" "$PN"

echo "checking: a flipped byte in a data blob"
rm -rf "$T/d"; cp -a "$R" "$T/d"
P=$(biggest_pack); PN=$(basename "$P"); flip "$P" $(( $(stat -c %s "$P") / 3 ))
restore_damaged "flipped byte"
[ "$(wc -l < "$T/named")" = 1 ] || fail "flipped byte: more than one file named for one damaged blob"
rc=0
$B -r "$T/d" check --read-data > "$T/out" 2>&1 || rc=$?
[ "$rc" = 3 ] && grep -q "$PN" "$T/out" || { cat "$T/out"; fail "flipped byte: check --read-data (exit $rc) does not name pack $PN"; }
echo "ok: flipped byte: check --read-data exits 3 and names pack ${PN:0:16}"
rm -rf "$T/d" "$T/rd"
intact "$R" "damaged copies"

# ---------------------------------------------------------------------------
echo "checking: unreadable files (backup as an unprivileged user)"
if is_root && id nobody > /dev/null 2>&1; then
	U=$T/nobody
	mkdir -p "$U/src/sub" "$U/src/closed"
	echo readable > "$U/src/ok"
	echo readable too > "$U/src/sub/ok2"
	echo secret > "$U/src/noread"
	echo hidden > "$U/src/closed/inner"
	cp "$T/pw" "$U/pw"
	chmod 755 "$T"
	chown -R nobody "$U"
	chmod 000 "$U/src/noread" "$U/src/closed"
	asnobody() {
		setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups \
			env XDG_CACHE_HOME="$U/cache" BULWARK_PASSWORD_FILE="$U/pw" "$@"
	}
	asnobody "$B" -q -r "$U/repo" init
	rc=0
	asnobody "$B" -r "$U/repo" backup "$U/src" > "$T/out" 2>&1 || rc=$?
	[ "$rc" = 3 ] || { cat "$T/out"; fail "unreadable files: backup exited $rc, want 3"; }
	grep "error: " "$T/out" | grep -q "$U/src/noread" || { cat "$T/out"; fail "unreadable files: $U/src/noread not named"; }
	grep "error: " "$T/out" | grep -q "$U/src/closed" || { cat "$T/out"; fail "unreadable files: $U/src/closed not named"; }
	[ "$(nsnaps "$U/repo")" = 1 ] || fail "unreadable files: no snapshot was saved"
	$B -q -r "$U/repo" -p "$U/pw" restore --target "$T/ru" latest > /dev/null
	cmp "$U/src/ok" "$T/ru$U/src/ok" && cmp "$U/src/sub/ok2" "$T/ru$U/src/sub/ok2" ||
		fail "unreadable files: readable files not restored exactly"
	[ ! -e "$T/ru$U/src/noread" ] || fail "unreadable files: the unreadable file is in the snapshot"
	$B -r "$U/repo" -p "$U/pw" check --read-data > "$T/out" 2>&1 || { cat "$T/out"; fail "unreadable files: check failed"; }
	echo "ok: unreadable files: exit 3, both named, snapshot holds the readable files"
	grep -q "$(printf '\033')" "$T/out" && fail "unreadable files: terminal codes in output that is not a terminal"
	# unreadable files with odd names: one line each, names escaped; JSON
	# error lines parse and carry the name even when it is not UTF-8
	printf x > "$U/src/$(printf 'nl\nx')"
	printf x > "$U/src/$(printf 'b\xffd')"
	chown nobody "$U/src/$(printf 'nl\nx')" "$U/src/$(printf 'b\xffd')"
	chmod 000 "$U/src/$(printf 'nl\nx')" "$U/src/$(printf 'b\xffd')"
	rc=0
	asnobody "$B" -r "$U/repo" backup "$U/src" > "$T/out" 2>&1 || rc=$?
	[ "$rc" = 3 ] || { cat "$T/out"; fail "unreadable odd names: backup exited $rc, want 3"; }
	[ "$(grep -c '^error: ' "$T/out")" = 4 ] || { cat -v "$T/out"; fail "unreadable odd names: not 4 error lines"; }
	grep -qF "error: $U/src/nl\x0ax: cannot open" "$T/out" || { cat -v "$T/out"; fail "unreadable odd names: newline in a name not escaped"; }
	rc=0
	asnobody "$B" -r "$U/repo" --json backup "$U/src" > /dev/null 2> "$T/err" || rc=$?
	[ "$rc" = 3 ] || { cat "$T/err"; fail "unreadable odd names: --json backup exited $rc, want 3"; }
	python3 - "$T/err" "$U/src" <<'PY' || fail "unreadable odd names: --json error lines wrong"
import json, sys
lines = open(sys.argv[1], "rb").read().decode().splitlines()
errs = [json.loads(l) for l in lines]
paths = sorted(e["path"] for e in errs if e["message_type"] == "error")
want = sorted(sys.argv[2] + p for p in ["/noread", "/closed", "/nl\nx", "/b\\xffd"])
if paths != want:
    sys.exit("paths %r, want %r" % (paths, want))
PY
	echo "ok: unreadable odd names: one escaped line each; JSON error lines name every path"
	rm -rf "$U" "$T/ru"
else
	echo "SKIP: unreadable files (needs root to run bulwark as user nobody)"
fi

# ---------------------------------------------------------------------------
echo "checking: odd names (non-UTF-8, newlines, leading dashes, 255 bytes, 60 levels deep)"
N=$T/names
mkdir -p "$N"
printf 'a' > "$N/$(printf 'bad\xff\xfename')"
printf 'b' > "$N/$(printf 'new\nline')"
printf 'c' > "$N/$(printf 'trailing newline\n')"
printf 'd' > "$N/-leading-dash"
printf 'e' > "$N/--double-dash"
printf 'f' > "$N/$(printf '%0255d' 0)"
printf 'g' > "$N/$(printf 'tab\tand\033escape')"
mkdir "$N/$(printf 'dir\xc3')"
printf 'h' > "$N/$(printf 'dir\xc3')/$(printf 'x\ny')"
deep=$N
for i in $(seq 60); do deep=$deep/level$i; done
mkdir -p "$deep"
printf 'i' > "$deep/bottom"
[ "$(find "$N" -type f | wc -l)" -ge 8 ] || fail "odd names: could not create the files"
$B -q -r "$R" backup "$N" || fail "odd names: backup failed"
$B -q -r "$R" restore --target "$T/rn" latest > /dev/null || fail "odd names: restore failed"
diff -r "$N" "$T/rn$N" > /dev/null || fail "odd names: restored tree differs"
[ "$(find "$T/rn$N" | wc -l)" = "$(find "$N" | wc -l)" ] || fail "odd names: entry count differs"
echo "ok: odd names round-trip exactly"
rm -rf "$T/rn"
intact "$R" "odd names"

# ---------------------------------------------------------------------------
echo "checking: a full disk"
if is_root; then
	MNT=$T/small
	mkdir -p "$MNT"
	mount -t tmpfs -o size=8m tmpfs "$MNT"
	FR=$MNT/repo
	mkdir -p "$T/smallsrc" "$T/bigsrc"
	echo "small file" > "$T/smallsrc/a"
	head -c 300000 /dev/urandom > "$T/smallsrc/b"
	$B -q -r "$FR" init
	S=$($B -r "$FR" --json backup "$T/smallsrc" | snap_id)
	for i in 1 2 3; do head -c 10000000 /dev/urandom > "$T/bigsrc/f$i"; done
	rc=0
	$B -r "$FR" backup "$T/bigsrc" > "$T/out" 2>&1 || rc=$?
	[ "$rc" = 1 ] || { cat "$T/out"; fail "full disk: backup exited $rc, want 1"; }
	grep -qi "no space" "$T/out" || { cat "$T/out"; fail "full disk: message does not say 'no space'"; }
	echo "ok: full disk: exit 1, '$(tail -1 "$T/out")'"
	[ "$(nsnaps "$FR")" = 1 ] || fail "full disk: snapshot count changed"
	$B -r "$FR" check > "$T/out" 2>&1 || { cat "$T/out"; fail "full disk: check fails while the disk is full"; }
	mount -o remount,size=64m "$MNT"
	$B -r "$FR" check --read-data > "$T/out" 2>&1 || { cat "$T/out"; fail "full disk: check --read-data fails after freeing space"; }
	$B -q -r "$FR" restore --target "$T/rs" "$S" > /dev/null || fail "full disk: restore of the earlier snapshot failed"
	diff -r "$T/smallsrc" "$T/rs$T/smallsrc" > /dev/null || fail "full disk: earlier snapshot restores differently"
	$B -q -r "$FR" backup "$T/bigsrc" || fail "full disk: backup after freeing space failed"
	$B -r "$FR" check --read-data > "$T/out" 2>&1 || { cat "$T/out"; fail "full disk: check after the second backup failed"; }
	echo "ok: full disk: earlier snapshot intact, check passes, backup works once space is free"
	umount "$MNT"
	MNT=
	rm -rf "$T/small" "$T/smallsrc" "$T/bigsrc" "$T/rs"
else
	echo "SKIP: full disk (needs root to mount a small tmpfs)"
fi

# ---------------------------------------------------------------------------
echo "checking: a file that changes while being read"
C=$T/changing
mkdir -p "$C"
echo "stays the same" > "$C/still"
head -c 64000000 /dev/urandom > "$C/big"
seen=0
for attempt in 1 2 3; do
	(
		while :; do
			dd if=/dev/urandom of="$C/big" bs=64k count=4 seek=$((RANDOM % 900)) \
			   conv=notrunc status=none
		done
	) &
	W=$!
	sleep 0.2
	before=$(nsnaps "$R")
	rc=0
	$B -r "$R" backup --force "$C" > "$T/out" 2>&1 || rc=$?
	kill "$W"; wait "$W" 2> /dev/null || true
	[ "$(nsnaps "$R")" = $((before + 1)) ] || { cat "$T/out"; fail "changing file: no snapshot saved (exit $rc)"; }
	if [ "$rc" = 3 ] && grep "error: " "$T/out" | grep "$C/big" | grep -q "changed while being read"; then
		seen=1
		break
	fi
	[ "$rc" = 0 ] || { cat "$T/out"; fail "changing file: exit $rc without naming the file as changed"; }
	echo "   attempt $attempt: the change was not caught (exit 0); again"
done
[ "$seen" = 1 ] || fail "changing file: three backups did not report $C/big as changed while being read"
$B -q -r "$R" restore --target "$T/rc" latest > /dev/null || fail "changing file: restore failed"
cmp "$C/still" "$T/rc$C/still" || fail "changing file: the unchanged file restores differently"
echo "ok: changing file: exit 3, '$(grep 'error: ' "$T/out" | sed 's/^.*error: //')'"
rm -rf "$T/rc" "$C"
intact "$R" "changing file"

# ---------------------------------------------------------------------------
echo "checking: files that vanish during backup"
# The race is timing-dependent: try a few delays, stop at the first run in
# which files vanished between listing and reading.
V=$T/vanish
vanished=0
for delay in 0.04 0.05 0.06 0.03 0.08 0.1; do
	rm -rf "$V"
	mkdir -p "$V/v"
	python3 -c '
import sys
for i in range(2000):
    open("%s/v/f%d" % (sys.argv[1], i), "w").write("%d\n" % i)' "$V"
	head -c 8000000 /dev/urandom > "$V/big"
	( sleep "$delay"; rm -f "$V"/v/f* ) &
	W=$!
	rc=0
	$B -r "$R" backup "$V" > "$T/out" 2>&1 || rc=$?
	wait "$W"
	case $rc in
	0) echo "   delay $delay: no file vanished while being read (exit 0)" ;;
	3) if grep "error: " "$T/out" | grep -v "$V/v/f[0-9]*: vanished" | grep -q .; then
		   cat "$T/out"; fail "vanishing files: an error line is not about a vanished file"
	   fi
	   vanished=$(grep -c "error: .*: vanished" "$T/out")
	   echo "   delay $delay: $vanished files named as vanished (exit 3)" ;;
	*) cat "$T/out"; fail "vanishing files: backup exited $rc (want 0 or 3)" ;;
	esac
	$B -q -r "$R" restore --target "$T/rv" latest > /dev/null || fail "vanishing files: restore failed"
	cmp "$V/big" "$T/rv$V/big" || fail "vanishing files: the big file restores differently"
	rm -rf "$T/rv"
	[ "$vanished" = 0 ] || break
done
echo "ok: vanishing files: backups exit 0 or 3 and name only vanished files ($vanished in the last run)"
rm -rf "$V"
intact "$R" "vanishing files"

echo "all fault tests passed"
