#!/bin/bash
# A backup killed with SIGKILL at a random instant must leave a repository
# that passes check, with every earlier snapshot intact:
#   1. snapshot A of a ~150 MB generated tree (random and compressible
#      data, many files);
#   2. ten times: change part of the tree, start a backup, kill -9 it
#      after a random delay; then `check` exits 0 (unreferenced packs are
#      allowed) and snapshot A restores byte-identical;
#   3. prune removes what the killed backups left (check: no unreferenced
#      pack), and a final backup succeeds; check --read-data passes.
#   $1: the bulwark binary
set -eu
B=${1:?usage: $0 path/to/bulwark}
T=$(mktemp -d /tmp/bw-kill-backup.XXXXXX)
BK=
cleanup() {
	[ -z "$BK" ] || kill -9 "$BK" 2> /dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
export XDG_CACHE_HOME=$T/cache BULWARK_PASSWORD_FILE=$T/pw
unset BULWARK_PASSWORD BULWARK_REPO
echo "kill backup passphrase" > "$T/pw"
R=$T/repo
S=$T/src
fail() { echo "FAIL: $*" >&2; exit 1; }
manifest() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 -r sha256sum); }
# check_json [ARGS]: runs check; sets crc (exit status), problems and
# unref (unreferenced packs) from its --json summary
check_json() {
	crc=0
	$B -r "$R" --json check "$@" > "$T/check.out" 2> "$T/check.err" || crc=$?
	read -r problems unref < <(tail -1 "$T/check.out" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(d["problems"], d["unreferenced_packs"])') || { problems=unparsed; unref=unparsed; }
}

# gen ROUND: round 0 writes the ~150 MB tree; later rounds rewrite about
# 30 MB of it (random data, so the backup has new packs to write) and add
# a few files
gen() {
	python3 - "$S" "$1" <<'EOF'
import os, random, sys
root, rnd_round = sys.argv[1], int(sys.argv[2])
rnd = random.Random(rnd_round)
def write(path, n, random_data):
    with open(path, "wb") as f:
        if random_data:
            f.write(os.urandom(n))
        else:
            line = ("%s round %d\n" % (os.path.basename(path), rnd_round)).encode()
            f.write((line * (n // len(line) + 1))[:n])
if rnd_round == 0:
    left, i = 150 << 20, 0
    while left > 0:
        d = os.path.join(root, "dir%02d" % (i % 20), "sub%d" % (i % 3))
        os.makedirs(d, exist_ok=True)
        k = rnd.random()
        n = min(left, rnd.randint(100, 20000) if k < 0.6 else
                rnd.randint(20000, 300000) if k < 0.9 else rnd.randint(300000, 3 << 20))
        write(os.path.join(d, "file%04d" % i), n, i % 3 != 0)
        left -= n
        i += 1
else:
    files = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(root) for f in fs)
    left = 30 << 20
    while left > 0:
        p = rnd.choice(files)
        n = min(left, rnd.randint(10000, 2 << 20))
        write(p, n, True)
        left -= n
    d = os.path.join(root, "new%d" % rnd_round)
    os.makedirs(d, exist_ok=True)
    for j in range(20):
        write(os.path.join(d, "n%d" % j), rnd.randint(100, 100000), j % 2 == 0)
EOF
}

gen 0
echo "tree: $(find "$S" -type f | wc -l) files, $(du -sm "$S" | cut -f1) MB"
$B -q -r "$R" init
A=$($B -r "$R" --json backup "$S" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read().splitlines()[-1])["id"])')
manifest "$S" > "$T/A.manifest"
echo "snapshot A ${A:0:8} saved"

# The delay is random in 0.05-1.5 s, but a backup here may take much less:
# then it is random within the time an uninterrupted backup of a changed
# tree takes (measured once), so that most kills land mid-backup.
gen 100
t0=$(date +%s.%N)
$B -q -r "$R" backup --force "$S"
D=$(python3 -c "print($(date +%s.%N) - $t0)")
printf "an uninterrupted backup of a changed tree takes %.2fs\n" "$D"

killed=0
for round in $(seq 1 10); do
	gen "$round"
	delay=$(python3 -c "import random; print('%.3f' % random.uniform(0.05 * min(1, $D), min(1.5, $D)))")
	force=
	[ $((round % 3)) = 0 ] || force=--force
	$B -q -r "$R" backup $force "$S" > "$T/bk.out" 2>&1 &
	BK=$!
	sleep "$delay"
	if kill -9 "$BK" 2> /dev/null; then
		state="killed after ${delay}s"
	else
		state="finished before the kill (${delay}s)"
	fi
	rc=0
	wait "$BK" 2> /dev/null || rc=$?
	BK=
	case $rc in
	137) killed=$((killed + 1)) ;;
	0) state="finished before the kill (${delay}s)" ;;
	*) cat "$T/bk.out"; fail "round $round: backup exited $rc" ;;
	esac
	check_json
	[ "$crc" = 0 ] && [ "$problems" = 0 ] ||
		{ cat "$T/check.out" "$T/check.err"; fail "round $round ($state): check exited $crc"; }
	rm -rf "$T/restore"
	$B -q -r "$R" restore --target "$T/restore" "$A" > "$T/restore.out" 2>&1 ||
		{ cat "$T/restore.out"; fail "round $round ($state): restore of A failed"; }
	manifest "$T/restore$S" > "$T/restored.manifest"
	cmp -s "$T/A.manifest" "$T/restored.manifest" || fail "round $round ($state): snapshot A restores differently"
	rm -rf "$T/restore"
	echo "ok: round $round: backup $force ${state}; check passes ($unref unreferenced packs), A restores exactly"
done
[ "$killed" -ge 5 ] || fail "only $killed of 10 backups were killed before finishing: the test did not test much"

echo "checking: prune cleans up after the killed backups"
$B -r "$R" prune > "$T/prune.out" 2>&1 || { cat "$T/prune.out"; fail "prune failed"; }
check_json
[ "$crc" = 0 ] && [ "$problems" = 0 ] || { cat "$T/check.out" "$T/check.err"; fail "check after prune exited $crc"; }
[ "$unref" = 0 ] || { cat "$T/prune.out"; fail "$unref unreferenced packs remain after prune"; }
echo "ok: prune: $(grep -i -m1 'deleted\|freed' "$T/prune.out" || tail -1 "$T/prune.out"); no unreferenced pack left"

echo "checking: a final backup succeeds and everything verifies"
gen 11
$B -q -r "$R" backup "$S" || fail "final backup failed"
manifest "$S" > "$T/final.manifest"
check_json --read-data
[ "$crc" = 0 ] && [ "$problems" = 0 ] || { cat "$T/check.out" "$T/check.err"; fail "check --read-data at the end exited $crc"; }
$B -q -r "$R" restore --target "$T/restore" latest > /dev/null || fail "restore of the final snapshot failed"
manifest "$T/restore$S" | cmp -s - "$T/final.manifest" || fail "the final snapshot restores differently"
echo "ok: final backup restores exactly, check --read-data passes"
echo "all kill-backup tests passed ($killed of 10 backups killed mid-way)"
