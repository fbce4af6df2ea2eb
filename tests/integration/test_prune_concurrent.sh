#!/bin/bash
# prune running at the same time as backups, and prune killed at random
# points, must never cost a snapshot any data:
#   1. three snapshots of a ~30 MB tree, forget one;
#   2. several rounds of two backups (different trees) and a prune running
#      concurrently, forgetting older snapshots between rounds;
#   3. prune killed with SIGKILL at random instants, ten times;
# after 2 and after 3: `check --read-data` passes and every remaining
# snapshot restores to exactly the files it was taken from.
#   $1: the bulwark binary
set -eu
B=${1:?usage: $0 path/to/bulwark}
T=$(mktemp -d /tmp/bw-prune-conc.XXXXXX)
trap 'rm -rf "$T"' EXIT
export XDG_CACHE_HOME=$T/cache BULWARK_PASSWORD_FILE=$T/pw
echo "concurrent prune passphrase" > "$T/pw"
R=$T/repo
M=$T/manifests
mkdir -p "$M"
fail() { echo "FAIL: $*" >&2; exit 1; }

# gen DIR MB SEED: (re)write a tree of random and compressible files,
# changing about half of the files on every call
gen() {
	python3 - "$1" "$2" "$3" <<'EOF'
import os, random, sys
root, mb, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(seed)
os.makedirs(root, exist_ok=True)
left = mb << 20
i = 0
while left > 0:
    d = os.path.join(root, "dir%d" % (i % 5))
    os.makedirs(d, exist_ok=True)
    n = min(left, rnd.randint(20000, 3 << 20))
    path = os.path.join(d, "file%d" % i)
    if not os.path.exists(path) or rnd.random() < 0.5:
        with open(path, "wb") as f:
            if i % 3:
                f.write(os.urandom(n))
            else:
                f.write((("%d %d\n" % (seed, i)) * (n // 8 + 1)).encode()[:n])
    left -= n
    i += 1
EOF
}

manifest() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }

# backup DIR: saves a snapshot and the manifest of what it saved
backup() {
	local dir=$1 out id
	manifest "$dir" > "$T/m.$$.$BASHPID"
	out=$($B -r "$R" --json backup "$dir") || { echo "$out"; return 1; }
	id=$(printf '%s\n' "$out" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read().splitlines()[-1])["id"])')
	mv "$T/m.$$.$BASHPID" "$M/$id"
	printf '%s\n' "$dir" > "$M/$id.path"
	printf '%s\n' "$id" > "$T/last_id"
}

verify_all() { # label
	local rc=0 n=0
	$B -r "$R" check --read-data > "$T/check.out" 2>&1 || rc=$?
	[ "$rc" = 0 ] || { cat "$T/check.out"; fail "$1: check --read-data exited $rc"; }
	for id in $($B -r "$R" --json snapshots | python3 -c 'import json,sys; [print(s["id"]) for s in json.load(sys.stdin)]'); do
		[ -f "$M/$id" ] || fail "$1: snapshot $id has no manifest"
		rm -rf "$T/restore"
		$B -q -r "$R" restore --target "$T/restore" "$id" > /dev/null ||
			fail "$1: restore of snapshot $id failed"
		manifest "$T/restore$(cat "$M/$id.path")" > "$T/restored.m"
		cmp -s "$M/$id" "$T/restored.m" || fail "$1: snapshot $id restored differently"
		n=$((n + 1))
	done
	echo "ok: $1: check --read-data passes, $n snapshots restore exactly"
}

$B -q -r "$R" init
if ! $B restore --help > /dev/null 2>&1; then
	fail "bulwark restore is not available: cannot verify restores"
fi

# 1. three snapshots of a changing ~30 MB tree; forget the middle one
for s in 1 2 3; do
	gen "$T/main" 30 $s
	backup "$T/main"
done
mid=$($B -r "$R" --json snapshots | python3 -c 'import json,sys; print(json.load(sys.stdin)[1]["id"])')
$B -q -r "$R" forget "$mid"
rm -f "$M/$mid" "$M/$mid.path"

# 2. two backups and a prune at the same time, a few rounds
for round in 1 2 3; do
	gen "$T/a" 8 $((round * 10))
	gen "$T/b" 8 $((round * 10 + 5))
	backup "$T/a" & pa=$!
	backup "$T/b" & pb=$!
	sleep 0.$((RANDOM % 5))
	$B -r "$R" prune > "$T/prune.$round" 2>&1 & pp=$!
	wait $pa || fail "round $round: backup of a failed"
	wait $pb || fail "round $round: backup of b failed"
	wait $pp || { cat "$T/prune.$round"; fail "round $round: prune failed"; }
	sed "s/^/  round $round prune: /" "$T/prune.$round"
	# keep the newest snapshot of each group: the rest becomes garbage
	$B -q -r "$R" forget --keep-last 1 > /dev/null
	for id in $(ls "$M" | grep -v '\.path$'); do
		$B -r "$R" --json snapshots | grep -q "$id" || rm -f "$M/$id" "$M/$id.path"
	done
done
$B -r "$R" prune | sed 's/^/  final prune: /'
[ -z "$(ls "$R/plans")" ] || fail "plans left after a prune with nothing running"
verify_all "after concurrent rounds"

# 2b. a backup that started before the plan and reuses planned data: the
# plan must wait for it, and the next prune must rescue the pack it needs
mkdir -p "$T/stdin_src"
head -c 3000000 /dev/urandom > "$T/stdin_src/data.bin"
$B -q -r "$R" backup --stdin --stdin-filename data.bin < "$T/stdin_src/data.bin"
old=$($B -r "$R" --json snapshots | python3 -c 'import json,sys; print([s["id"] for s in json.load(sys.stdin) if s["paths"] == ["/data.bin"]][0])')
$B -q -r "$R" forget "$old"
# the backup loads the index now, but reads its data only after 4 s
{ sleep 4; cat "$T/stdin_src/data.bin"; } |
	$B -r "$R" --json backup --stdin --stdin-filename data.bin > "$T/slow.out" & ps=$!
sleep 1
$B -r "$R" prune > "$T/prune.wait" 2>&1 || { cat "$T/prune.wait"; fail "prune beside a slow backup failed"; }
sed 's/^/  prune beside a slow backup: /' "$T/prune.wait"
grep -q "waiting for 1 running session" "$T/prune.wait" || fail "prune did not wait for the running backup"
wait $ps || fail "slow backup failed"
id=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])["id"])' "$T/slow.out")
manifest "$T/stdin_src" > "$M/$id"
printf '\n' > "$M/$id.path"
$B -v -r "$R" prune > "$T/prune.after" 2>&1 || { cat "$T/prune.after"; fail "prune after the slow backup failed"; }
sed 's/^/  prune after the slow backup: /' "$T/prune.after"
grep -q "needed by a snapshot made since it was planned; kept" "$T/prune.after" ||
	fail "the pack the slow backup reused was not rescued"
[ -z "$(ls "$R/plans")" ] || fail "plans left after the slow backup ended"
verify_all "after a rescue"

# 3. kill -9 prune at random instants
killed=0
for k in $(seq 1 10); do
	gen "$T/junk$k" 3 $((100 + k))
	backup "$T/junk$k"
	id=$(cat "$T/last_id")
	$B -q -r "$R" forget "$id" > /dev/null
	rm -rf "$T/junk$k" "$M/$id" "$M/$id.path"
	$B -q -r "$R" prune --max-unused 0 > /dev/null 2>&1 & pp=$!
	sleep "0.$(printf '%03d' $((RANDOM % 150)))"
	kill -9 $pp 2> /dev/null || true
	rc=0
	wait $pp 2> /dev/null || rc=$?
	[ "$rc" = 137 ] && killed=$((killed + 1))
	rc=0
	$B -r "$R" check > "$T/check.out" 2>&1 || rc=$?
	[ "$rc" = 0 ] || { cat "$T/check.out"; fail "kill $k: check exited $rc"; }
done
echo "  $killed of 10 prunes were killed before they ended"
verify_all "after 10 killed prunes"
$B -r "$R" prune | sed 's/^/  prune after kills: /'
verify_all "after a completed prune"
echo "all concurrent prune checks passed"
