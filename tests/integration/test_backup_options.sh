#!/bin/bash
# backup's options, each checked by what ends up in the snapshot:
# --exclude (name and path patterns), --exclude-file, --one-file-system,
# --tag (and snapshots --tag), --host, --dry-run, --stdin, --parent,
# --force, several paths, --json; and an incremental backup of an
# unchanged tree reading nothing and adding nothing.
#   $1: the bulwark binary
set -eu
B=$(realpath "${1:?usage: $0 path/to/bulwark}")
T=$(mktemp -d /tmp/bw-backup-opts.XXXXXX)
MNT=
cleanup() {
	[ -z "$MNT" ] || umount "$MNT" 2> /dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
export XDG_CACHE_HOME=$T/cache BULWARK_PASSWORD_FILE=$T/pw
unset BULWARK_PASSWORD BULWARK_REPO
echo "backup options passphrase" > "$T/pw"
R=$T/repo
S=$T/src
fail() { echo "FAIL: $*" >&2; exit 1; }

# jget KEY.PATH: a field of the last JSON line on stdin (also checks it parses)
jget() {
	python3 -c '
import json, sys
d = json.loads(sys.stdin.read().splitlines()[-1])
for k in sys.argv[1].split("."):
    d = d[k]
print(json.dumps(d) if isinstance(d, (list, dict, bool)) else d)' "$1"
}
# listing SNAP: the paths in a snapshot, one per line
listing() { $B -r "$R" ls "$1"; }
has() { listing "$1" | grep -qxF "$2"; }
nsnaps() { $B -r "$R" --json snapshots "$@" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
npacks() { find "$R/data" -type f | wc -l; }

mkdir -p "$S/a" "$S/b" "$S/c/d" "$S/mnt"
for f in a/x.log a/y.txt b/x.log b/keep b/other c/d/x.tmp c/d/z c/top.tmp; do
	echo "content of $f" > "$S/$f"
done
head -c 3000000 /dev/urandom > "$S/a/random"
NFILES=$(find "$S" -type f | wc -l)
$B -q -r "$R" init

# ---------------------------------------------------------------------------
echo "checking: --json output parses and a first backup stores every file"
out=$($B -r "$R" --json backup "$S")
printf '%s\n' "$out" | python3 -c 'import json,sys; json.load(sys.stdin)' || fail "--json output does not parse: $out"
[ "$(printf '%s\n' "$out" | jget summary.files_new)" = "$NFILES" ] || fail "first backup: files_new != $NFILES: $out"
FIRST=$(printf '%s\n' "$out" | jget id)
echo "ok: first backup ${FIRST:0:8}: $NFILES new files, JSON parses"

# ---------------------------------------------------------------------------
echo "checking: an incremental backup of an unchanged tree reads and adds nothing"
# The snapshot also records the directories above $S ($T, /tmp, ...): if one
# of them changes between the two backups (other programs create files in
# /tmp) a new tree is rightly stored.  Retry when that happened.
ancestors() { local p=$S; while [ "$p" != / ]; do p=$(dirname "$p"); stat -c '%n %y %z' "$p"; done; }
mkdir -p "$T/w" # scratch files live here: creating them in $T would change $T
ok=0
# other tests running at the same time (ctest -j) create files in /tmp
for _ in $(seq 10); do
	ancestors > "$T/w/anc.before"
	$B -q -r "$R" backup "$S" # the parent of the next one
	out=$($B -r "$R" --json backup "$S")
	ancestors > "$T/w/anc.after"
	unmod=$(printf '%s\n' "$out" | jget summary.files_unmodified)
	added=$(printf '%s\n' "$out" | jget summary.data_added)
	blobs=$(printf '%s\n' "$out" | jget data_blobs)
	[ "$unmod" = "$NFILES" ] || fail "incremental: files_unmodified = $unmod, want $NFILES"
	[ "$blobs" = 0 ] || fail "incremental: $blobs new data blobs for an unchanged tree"
	if [ "$added" = 0 ]; then ok=1; break; fi
	cmp -s "$T/w/anc.before" "$T/w/anc.after" || { echo "   a parent directory of the source changed meanwhile; again"; sleep 0.3; continue; }
	fail "incremental: data_added = $added for an unchanged tree (parents unchanged too)"
done
[ "$ok" = 1 ] || fail "incremental: the parent directories kept changing, data_added never 0"
echo "ok: incremental: files_unmodified = $NFILES, data_added = 0"

# ---------------------------------------------------------------------------
echo "checking: --exclude (name and path patterns) and --exclude-file"
printf '# comment line\n\n*.tmp\n%s/b/keep\n' "$S" > "$T/excl"
out=$($B -r "$R" --json backup -e '*.log' --exclude "$S/c/*/z" --exclude-file "$T/excl" "$S")
X=$(printf '%s\n' "$out" | jget id)
for gone in a/x.log b/x.log c/d/x.tmp c/top.tmp b/keep c/d/z; do
	! has "$X" "$S/$gone" || fail "exclude: $S/$gone is in the snapshot"
done
for kept in a/y.txt a/random b/other c/d; do
	has "$X" "$S/$kept" || fail "exclude: $S/$kept is missing from the snapshot"
done
[ "$(listing "$X" | grep -c '^/.*\.log$' || true)" = 0 ] || fail "exclude: a .log file was saved"
$B -r "$R" cat snapshot "$X" | python3 -c '
import json, sys
ex = json.load(sys.stdin)["excludes"]
want = {"*.log", "*.tmp", sys.argv[1] + "/b/keep", sys.argv[1] + "/c/*/z"}
sys.exit(0 if set(ex) == want else "excludes recorded: %r" % ex)' "$S" || fail "exclude: patterns not recorded in the snapshot"
# a directory excluded by name takes everything below it
X2=$($B -r "$R" --json backup -e d "$S" | jget id)
! has "$X2" "$S/c/d" && ! has "$X2" "$S/c/d/z" || fail "exclude: directory d or its contents saved"
has "$X2" "$S/c/top.tmp" || fail "exclude of d removed more than d"
echo "ok: exclude by name, by path ('*' crossing '/'), from a file; directories with their contents"

# ---------------------------------------------------------------------------
echo "checking: --one-file-system"
if [ "$(id -u)" = 0 ]; then
	MNT=$S/mnt
	mount -t tmpfs -o size=1m tmpfs "$MNT"
	echo "on another file system" > "$MNT/inside"
	Y=$($B -r "$R" --json backup "$S" | jget id)
	has "$Y" "$MNT/inside" || fail "without -x the mounted file system is not saved (test broken?)"
	Y=$($B -r "$R" --json backup -x "$S" | jget id)
	has "$Y" "$MNT" || fail "-x: the mount point directory is missing"
	! has "$Y" "$MNT/inside" || fail "-x: the mounted file system's contents were saved"
	has "$Y" "$S/a/random" || fail "-x: files of the source file system are missing"
	rm -rf "$T/rx"
	$B -q -r "$R" restore --target "$T/rx" "$Y" > /dev/null || fail "-x: restore failed"
	[ -d "$T/rx$MNT" ] && [ -z "$(ls -A "$T/rx$MNT")" ] || fail "-x: the mount point does not restore as an empty directory"
	rm -rf "$T/rx"
	umount "$MNT"
	MNT=
	echo "ok: -x saves the mount point empty, without -x its contents are saved"
else
	echo "SKIP: --one-file-system (needs root to mount a tmpfs)"
fi

# ---------------------------------------------------------------------------
echo "checking: --tag, --host and the snapshots filters"
TG=$($B -r "$R" --json backup --tag nightly --tag "with space" "$S" | jget id)
HS=$($B -r "$R" --json backup --host otherhost "$S" | jget id)
[ "$(nsnaps --tag nightly)" = 1 ] || fail "snapshots --tag nightly does not list exactly 1 snapshot"
[ "$($B -r "$R" --json snapshots --tag "with space" | python3 -c 'import json,sys; print(" ".join(s["id"] for s in json.load(sys.stdin)))')" = "$TG" ] ||
	fail "snapshots --tag 'with space' does not find the tagged snapshot"
[ "$(nsnaps --tag nosuchtag)" = 0 ] || fail "snapshots --tag nosuchtag lists snapshots"
$B -r "$R" --json snapshots --tag nightly | python3 -c '
import json, sys
s = json.load(sys.stdin)[0]
sys.exit(0 if s["id"] == sys.argv[1] and sorted(s["tags"]) == ["nightly", "with space"] else "bad: %r" % s)' "$TG" ||
	fail "the tagged snapshot does not carry both tags"
[ "$(nsnaps --host otherhost)" = 1 ] || fail "snapshots --host otherhost does not list exactly 1 snapshot"
$B -r "$R" --json snapshots --host otherhost | python3 -c '
import json, sys
s = json.load(sys.stdin)[0]
sys.exit(0 if s["id"] == sys.argv[1] and s["hostname"] == "otherhost" else "bad: %r" % s)' "$HS" ||
	fail "--host otherhost not recorded"
echo "ok: tags and host recorded and filtered"

# ---------------------------------------------------------------------------
echo "checking: --dry-run stores nothing"
echo "new data for the dry run $RANDOM" > "$S/b/new"
head -c 1000000 /dev/urandom > "$S/b/newrandom"
(cd "$R" && find . -type f | sort) > "$T/before"
n0=$(nsnaps)
out=$($B -r "$R" --json backup --dry-run "$S")
[ "$(printf '%s\n' "$out" | jget dry_run)" = true ] || fail "--dry-run: JSON does not say dry_run: $out"
[ "$(printf '%s\n' "$out" | jget summary.files_new)" -ge 2 ] || fail "--dry-run: the new files were not seen: $out"
(cd "$R" && find . -type f | sort) > "$T/after"
[ "$(nsnaps)" = "$n0" ] || fail "--dry-run: a snapshot was saved"
diff "$T/before" "$T/after" > /dev/null || { diff "$T/before" "$T/after"; fail "--dry-run: the repository's files changed"; }
echo "ok: --dry-run: no new snapshot, no new file in the repository"

# ---------------------------------------------------------------------------
echo "checking: --stdin and --stdin-filename"
head -c 2500000 /dev/urandom > "$T/stream"
printf 'tail\0with\0nuls' >> "$T/stream"
SI=$($B -r "$R" --json backup --stdin --stdin-filename db.dump < "$T/stream" | jget id)
[ "$(listing "$SI")" = /db.dump ] || fail "--stdin: snapshot does not hold exactly /db.dump"
$B -q -r "$R" restore --target "$T/rs" "$SI" > /dev/null || fail "--stdin: restore failed"
cmp "$T/stream" "$T/rs/db.dump" || fail "--stdin: restored bytes differ"
SD=$(printf 'small' | $B -r "$R" --json backup --stdin | jget id)
[ "$(listing "$SD")" = /stdin ] || fail "--stdin without a name: not saved as /stdin"
rm -rf "$T/rs"
echo "ok: --stdin restores the exact bytes, default name 'stdin'"

# ---------------------------------------------------------------------------
echo "checking: --parent and --force"
parent_of() { $B -r "$R" cat snapshot "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("parent", "none"))'; }
NFILES=$(find "$S" -type f | wc -l)
L1=$($B -r "$R" --json backup "$S" | jget id)
L2=$($B -r "$R" --json backup "$S" | jget id)
[ "$(parent_of "$L2")" = "$L1" ] || fail "default parent of $L2 is not the latest snapshot $L1"
out=$($B -r "$R" --json backup --parent "${FIRST:0:8}" "$S")
[ "$(parent_of "$(printf '%s\n' "$out" | jget id)")" = "$FIRST" ] || fail "--parent ${FIRST:0:8} not used"
# FIRST lacks b/new and b/newrandom: exactly those two are new against it
[ "$(printf '%s\n' "$out" | jget summary.files_new)" = 2 ] || fail "--parent: files_new != 2 against the first snapshot: $out"
[ "$(printf '%s\n' "$out" | jget summary.files_unmodified)" = $((NFILES - 2)) ] || fail "--parent: files_unmodified wrong: $out"
rc=0
$B -r "$R" backup --parent ffffffffffff "$S" > "$T/out" 2>&1 || rc=$?
[ "$rc" != 0 ] && grep -q ffffffffffff "$T/out" || { cat "$T/out"; fail "--parent with an unknown ID: exit $rc"; }
out=$($B -r "$R" --json backup --force "$S")
[ "$(printf '%s\n' "$out" | jget summary.files_unmodified)" = 0 ] || fail "--force: files_unmodified != 0: $out"
[ "$(printf '%s\n' "$out" | jget summary.total_files)" = "$NFILES" ] || fail "--force: total_files != $NFILES: $out"
[ "$(printf '%s\n' "$out" | jget data_blobs)" = 0 ] || fail "--force: re-reading stored new data blobs: $out"
echo "ok: parent is the latest by default, --parent overrides, --force re-reads every file and dedups"

# ---------------------------------------------------------------------------
echo "checking: several paths at once"
mkdir -p "$T/other"
echo "second root" > "$T/other/file"
out=$($B -r "$R" --json backup "$S/a" "$T/other" "$S/c/d/z")
M=$(printf '%s\n' "$out" | jget id)
printf '%s\n' "$out" | python3 -c '
import json, sys
p = json.loads(sys.stdin.read())["paths"]
want = sorted(sys.argv[1:])
sys.exit(0 if sorted(p) == want else "paths %r, want %r" % (p, want))' "$S/a" "$T/other" "$S/c/d/z" ||
	fail "several paths: snapshot paths wrong"
$B -q -r "$R" restore --target "$T/rm" "$M" > /dev/null || fail "several paths: restore failed"
diff -r "$S/a" "$T/rm$S/a" > /dev/null || fail "several paths: $S/a restores differently"
diff -r "$T/other" "$T/rm$T/other" > /dev/null || fail "several paths: $T/other restores differently"
cmp "$S/c/d/z" "$T/rm$S/c/d/z" || fail "several paths: single file restores differently"
[ ! -e "$T/rm$S/b" ] || fail "several paths: $S/b was saved though not given"
rm -rf "$T/rm"
echo "ok: several paths saved and restored, nothing else"

# ---------------------------------------------------------------------------
echo "checking: options after the paths, and '--' before a path starting with '-'"
mkdir -p "$T/w/-dash"
echo "dash" > "$T/w/-dash/f"
out=$(cd "$T/w" && $B -r "$R" --json backup "$S/c" --tag late -e z -- -dash)
printf '%s\n' "$out" | python3 -c '
import json, sys
d = json.loads(sys.stdin.read())
want = sorted([sys.argv[1] + "/c", sys.argv[2] + "/-dash"])
sys.exit(0 if sorted(d["paths"]) == want and d["tags"] == ["late"] else "got %r %r" % (d["paths"], d["tags"]))' "$S" "$T/w" ||
	fail "options after the paths were not applied"
! has "$(printf '%s\n' "$out" | jget id)" "$S/c/d/z" || fail "-e z after the paths was not applied"
echo "ok: options after the paths apply; '--' ends the options"

$B -r "$R" check --read-data > "$T/out" 2>&1 || { cat "$T/out"; fail "check --read-data failed at the end"; }
echo "all backup option tests passed"
