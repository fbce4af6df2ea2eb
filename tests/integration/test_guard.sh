#!/usr/bin/env bash
# The guard against the ransomware emulator, on a loop-mounted ext4 image
# of its own (never the root file system: a bug can only stall writers to
# that image).  For every variant: the emulator is frozen and killed,
# every file comes back byte for byte (sha256 manifest taken before the
# attack), and the files it created are gone.  Then a few benign jobs
# with the guard on get no alert, on-demand rollback, the supervisor
# restarting a killed guard and reporting the gap, and `guard status`.
#
# Needs root, a kernel with fanotify pre-content events (6.14+) and loop
# devices; elsewhere it says why and is skipped (exit 77).
# Usage: test_guard.sh path/to/bulwark   (BW_RANSIM = the emulator)
#        GUARD_VARIANTS="inplace newdelete" to run only some variants.
set -uo pipefail
BW=$(realpath "$1")
RANSIM=${BW_RANSIM:-$(dirname "$BW")/tests/bw-ransim}
SRC=${BW_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$SRC/tests/guard/loopimg.sh"
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*"; FAILED=1; }
FAILED=0

[ "$(id -u)" -eq 0 ] || skip "the guard needs root (fanotify permission events)"
command -v losetup >/dev/null && command -v mkfs.ext4 >/dev/null || skip "no losetup/mkfs.ext4"
[ -x "$RANSIM" ] || skip "no emulator at $RANSIM"

mkdir -p /tmp/bw-guard-tests
T=$(mktemp -d /tmp/bw-guard-tests/test.XXXXXX)
MNT=$T/mnt
GUARD_PID=
cleanup() {
	[ -n "$GUARD_PID" ] && kill "$GUARD_PID" 2>/dev/null && wait "$GUARD_PID" 2>/dev/null
	pkill -9 -f "$RANSIM attack $MNT" 2>/dev/null
	# GUARD_TEST_LOGS=DIR keeps the guard's state (alerts, journal) and the
	# emulator's logs for a look afterwards
	if [ -n "${GUARD_TEST_LOGS:-}" ]; then
		mkdir -p "$GUARD_TEST_LOGS" && cp -r "$T/state" "$T"/ransim-* "$T/guard.err" "$GUARD_TEST_LOGS"/ 2>/dev/null
	fi
	loop_release "$MNT"
	rm -rf "$T"
}
trap cleanup EXIT

loop_image "$T/img" "$MNT" 512M || skip "cannot make and loop-mount an ext4 image here"
DATA=$MNT/data
WORK=$MNT/work
mkdir -p "$DATA" "$WORK"

python3 "$SRC/tests/guard/mkcorpus.py" "$DATA" --size small --seed 7 --manifest "$T/manifest" >/dev/null ||
	{ echo "FAIL: corpus generation"; exit 1; }
"$RANSIM" init "$DATA" >/dev/null || { echo "FAIL: ransim init"; exit 1; }
# the manifest covers the corpus; the marker is the emulator's
(cd "$DATA" && find . -type f ! -name '.bw-ransim-marker' | sort) >"$T/files.before"

start_guard() {
	"$BW" guard run --protect "$DATA" --protect "$WORK" --state-dir "$T/state" \
		--no-syslog --json >>"$T/alerts.out" 2>>"$T/guard.err" &
	GUARD_PID=$!
	for _ in $(seq 100); do
		[ -s "$T/state/state.json" ] && grep -q '"pid"' "$T/state/state.json" && return 0
		sleep 0.1
	done
	cat "$T/guard.err"
	if grep -q "pre-content" "$T/guard.err"; then
		skip "this kernel has no fanotify pre-content events"
	fi
	echo "FAIL: the guard did not start"; exit 1
}
start_guard
# the canary is the guard's own file, not part of the corpus
sleep 0.5

alerts() { grep -c '"event":"ransomware"' "$T/state/alerts.jsonl" 2>/dev/null || true; }

verify_corpus() { # label
	if ! (cd "$DATA" && sha256sum --quiet -c "$T/manifest" >"$T/verify.out" 2>&1); then
		fail "$1: files not restored byte for byte:"; head -20 "$T/verify.out"
		return 1
	fi
	(cd "$DATA" && find . -type f ! -name '.bw-ransim-marker' ! -name '!bulwark-canary-*' | sort) >"$T/files.after"
	if ! diff -q "$T/files.before" "$T/files.after" >/dev/null; then
		fail "$1: the tree holds other files than before:"
		diff "$T/files.before" "$T/files.after" | head -20
		return 1
	fi
	return 0
}

VARIANTS=${GUARD_VARIANTS:-"inplace newdelete renameover renamethenenc encthenrename otrunc truncate punchhole header stripes16 nofm percent mmap odirect iouring b64"}
# each variant once, with the modifiers spread over them (--setsid: every
# helper in a session of its own, judged together through their starter)
declare -A MODS=( [newdelete]="--note --ext random" [renameover]="--delete-backups-first" \
	[inplace]="--workers 4 --mode fork" [header]="--workers 3 --mode threads" \
	[percent]="--workers 2 --mode pool" [stripes16]="--mode execrelay" \
	[encthenrename]="--script" [otrunc]="--delay-ms 300" [mmap]="--ext none" \
	[nofm]="--order size" [b64]="--order reverse" [odirect]="--order bfs" \
	[punchhole]="--workers 4 --mode fork --setsid" [truncate]="--workers 2 --mode pool --setsid" )
for v in $VARIANTS; do
	before=$(alerts)
	log=$T/ransim-$v.log
	t0=$(date +%s.%N)
	# its own session: the guard freezes the whole session of the attacker
	setsid "$RANSIM" attack "$DATA" --variant "$v" --log "$log" --quiet ${MODS[$v]:-} \
		>"$T/ransim-$v.out" 2>&1
	rc=$?
	# the kill is followed by the rollback; wait for its alert, then until
	# no other verdict follows for a second (helpers in sessions of their
	# own can be judged one after another)
	for _ in $(seq 100); do [ "$(alerts)" -gt "$before" ] && break; sleep 0.1; done
	n=$(alerts) quiet=0
	for _ in $(seq 100); do
		sleep 0.1
		if [ "$(alerts)" -gt "$n" ]; then n=$(alerts) quiet=0; else quiet=$((quiet + 1)); fi
		[ "$quiet" -ge 10 ] && break
	done
	if [ "$rc" -eq 77 ]; then
		echo "variant $v: not available here (skipped)"; continue
	fi
	if [ "$(alerts)" -le "$before" ]; then
		fail "variant $v: no alert (emulator exit $rc)"; cat "$T/ransim-$v.out" | tail -3
		# put the corpus back so the next variant starts clean
		"$BW" guard rollback --state-dir "$T/state" --since "$(python3 -c "import time;print(int(time.time()-float('$t0')+2))")s" >/dev/null 2>&1
		continue
	fi
	[ "$rc" -eq 137 ] || [ "$rc" -eq 143 ] || fail "variant $v: emulator was not killed (exit $rc)"
	done_files=$(grep -vc '^start' "$log" 2>/dev/null || echo 0)
	line=$(grep '"event":"ransomware"' "$T/state/alerts.jsonl" | tail -1)
	echo "variant $v: killed after $done_files file(s) done; $(echo "$line" | python3 -c '
import json,sys; a=json.load(sys.stdin); r=a.get("rollback",{})
print("score %.1f, restored %d, removed %d, failed %d" % (a["score"], r.get("restored",0), r.get("removed",0), r.get("failed",0)))')"
	verify_corpus "variant $v" && echo "variant $v: all files intact"
done

# ---- benign work in a protected tree: no alert, nothing denied -----------
before=$(alerts)
(
	set -e
	cd "$WORK"
	tar -cf corpus.tar -C "$DATA" .
	gzip -k corpus.tar
	zstd -q corpus.tar -o corpus.tar.zst
	xz -k -T1 corpus.tar
	mkdir -p src && cp -r "$DATA"/. src/
	for f in src/*.txt; do [ -f "$f" ] && sed -i 's/the/THE/g' "$f"; done
	for f in src/*.csv; do [ -f "$f" ] && echo "1,2,3" >>"$f"; done
	if command -v gpg >/dev/null; then
		gpg --batch --yes --quiet --pinentry-mode loopback --passphrase test \
			--symmetric -o corpus.tar.gpg corpus.tar
	fi
	python3 - <<'EOF'
import sqlite3
c = sqlite3.connect("db.sqlite")
c.execute("create table t(a integer primary key, b text)")
for i in range(2000):
    c.execute("insert into t(b) values (?)", ("row %d of a benign workload" % i,))
    if i % 100 == 0:
        c.commit()
c.commit()
EOF
	rm -rf src corpus.tar
	mv corpus.tar.gz corpus-old.tar.gz
) >"$T/benign.out" 2>&1 || fail "benign jobs failed with the guard on: $(tail -3 "$T/benign.out")"
sleep 0.5
[ "$(alerts)" -eq "$before" ] || fail "benign jobs raised an alert: $(grep '"event":"ransomware"' "$T/state/alerts.jsonl" | tail -1 | cut -c1-300)"
denied=$(python3 -c "import json;print(json.load(open('$T/state/state.json'))['counters']['denied'])")
echo "benign jobs: no alert; $denied writes denied in the whole run"

# ---- rollback on demand -------------------------------------------------
f=$(head -1 "$T/manifest" | cut -c67-)
cp "$DATA/$f" "$T/orig"
sleep 1
echo "changed by hand" >"$DATA/$f"
sleep 0.5
"$BW" guard rollback --state-dir "$T/state" --since 1s --dry-run | grep -q "restore" ||
	fail "rollback --dry-run does not list the changed file"
cmp -s "$T/orig" "$DATA/$f" && fail "dry run changed the file"
"$BW" guard rollback --state-dir "$T/state" --since 1s >"$T/rb.out" 2>&1 ||
	fail "rollback failed: $(cat "$T/rb.out")"
cmp -s "$T/orig" "$DATA/$f" || fail "rollback on demand did not restore $f"
echo "rollback on demand: restored"

# ---- a hard link's removal leaves the other name protected ----------------
# the held descriptor must survive the removal of one of the inode's names,
# or a later delete of the last name finds nothing to copy from
seq 1 30000 >"$DATA/hl-a.txt"
cp "$DATA/hl-a.txt" "$T/hl-orig"
ln "$DATA/hl-a.txt" "$DATA/hl-b.txt"
sleep 0.5
rm "$DATA/hl-b.txt"
sleep 2.2
rm "$DATA/hl-a.txt"
sleep 0.5
"$BW" guard rollback --state-dir "$T/state" --since 1s >"$T/rb-hl.out" 2>&1 ||
	fail "rollback of a deleted hard-linked file failed: $(cat "$T/rb-hl.out")"
cmp -s "$T/hl-orig" "$DATA/hl-a.txt" ||
	fail "a file deleted after one of its hard links was lost: $(cat "$T/rb-hl.out")"
rm -f "$DATA/hl-a.txt" "$DATA/hl-b.txt"
echo "hard links: the last name's content kept after another name was removed"

# ---- zero blocks: copies keep them as holes, rollback brings them back -----
# a large file is copied by range before each write and whole at its
# delete; blocks of zeros are not stored, so check both read back exactly
python3 - "$DATA/zb-a.bin" "$DATA/zb-b.bin" <<'EOF2'
import os, sys
for p in sys.argv[1:]:
    with open(p, "wb") as f:
        for i in range(96):          # 3 MiB: 32 KiB runs, every third one zeros
            f.write(bytes(32768) if i % 3 == 1 else os.urandom(32768))
EOF2
cp "$DATA/zb-a.bin" "$T/zb-a"; cp "$DATA/zb-b.bin" "$T/zb-b"
sleep 2.2
python3 - "$DATA/zb-a.bin" <<'EOF2'
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
for at in range(0, 3 << 20, 20480):   # across zero and data blocks alike
    os.pwrite(fd, b"\xa5" * 6000, at)
os.close(fd)
EOF2
# that many writes ended its ranged copy in a snapshot: the file's next
# episode is copied whole at its first write, not range by range
python3 -c '
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY)
os.pwrite(fd, b"\x5a" * 100, 1 << 20)
os.close(fd)
' "$DATA/zb-a.bin"
python3 - "$T/state/journal.jsonl" "$DATA/zb-a.bin" <<'EOF2' || fail "the second episode of a snapshotted file was copied by range, not whole"
import json, sys
copies = []
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("op") in ("copy", "zcopy") and e.get("path") == sys.argv[2]:
        copies.append(e)
# episode 1: a ranged copy, then its snapshot; episode 2: one whole copy
sys.exit(0 if len(copies) == 3 and copies[0].get("ranged") and
         not copies[1].get("ranged") and not copies[2].get("ranged") else 1)
EOF2
rm "$DATA/zb-b.bin"
sleep 0.5
"$BW" guard rollback --state-dir "$T/state" --since 2s >"$T/rb-zb.out" 2>&1 ||
	fail "rollback of files with zero blocks failed: $(cat "$T/rb-zb.out")"
cmp -s "$T/zb-a" "$DATA/zb-a.bin" || fail "a rewritten file with zero blocks did not come back byte for byte"
cmp -s "$T/zb-b" "$DATA/zb-b.bin" || fail "a deleted file with zero blocks did not come back byte for byte"
rm -f "$DATA/zb-a.bin" "$DATA/zb-b.bin"
echo "zero blocks: a ranged copy and a whole copy restored byte for byte (a snapshotted file's next episode copied whole)"

# ---- a process rewriting a file it made itself needs no copy -------------
# (what the file holds is its own output; a rollback of it removes the
# file), but another process writing it does, and an on-demand rollback
# of the maker from after the file's creation says what it cannot undo
python3 - "$DATA/own.txt" >"$T/own.pids" <<'EOF2'
import os, subprocess, sys, time
p = sys.argv[1]
with open(p, "w") as f:
    f.write("made\n" * 1000)
time.sleep(4)
with open(p, "r+") as f:
    f.write("mine\n" * 1000)
time.sleep(0.3)
q = subprocess.Popen([sys.executable, "-c",
    "import sys; open(sys.argv[1], 'r+').write('them\\n' * 1000)", p])
q.wait()
print(os.getpid(), q.pid)
EOF2
read -r OWN_P OWN_Q <"$T/own.pids"
sleep 0.5
python3 - "$T/state/journal.jsonl" "$DATA/own.txt" "$OWN_P" "$OWN_Q" <<'EOF2' ||
import json, sys
ops = []
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("path") == sys.argv[2] and e.get("op") != "seen":
        ops.append((e.get("op"), str(e.get("pid"))))
want = [("create", sys.argv[3]), ("own", sys.argv[3])]
copies = [o[1] for o in ops if o[0] in ("copy", "zcopy")]
sys.exit(0 if ops[:2] == want and copies == [sys.argv[4]] else 1)
EOF2
	fail "own rewrites: journal is not create, own (maker), one copy (the other process): $(grep own.txt "$T/state/journal.jsonl")"
"$BW" guard rollback --state-dir "$T/state" --since 3s --pid "$OWN_Q" >"$T/rb-own.out" 2>&1 ||
	fail "rollback of the other writer failed: $(cat "$T/rb-own.out")"
grep -qx 'mine' "$DATA/own.txt" && [ "$(sort -u "$DATA/own.txt")" = mine ] ||
	fail "the other writer's rollback did not bring back the maker's rewrite"
if "$BW" guard rollback --state-dir "$T/state" --since 3s --pid "$OWN_P" --dry-run >"$T/rb-own2.out" 2>&1; then
	fail "a rollback of the maker from after the creation claimed success: $(cat "$T/rb-own2.out")"
fi
grep -q 'was not kept' "$T/rb-own2.out" ||
	fail "a rollback of the maker does not say what it could not undo: $(cat "$T/rb-own2.out")"
rm -f "$DATA/own.txt"
echo "own rewrites: the maker's rewrite needed no copy, the other writer's was undone, and the maker's window rollback says what it cannot undo"

# ---- truncate(2) by name of files nobody has open for writing ------------
# no permission event reaches the guard for it (reads of such files are
# not watched); the modification watch must still catch it and stop it
before=$(alerts)
mkdir -p "$WORK/cut"
for i in 1 2 3 4; do seq 1 20000 >"$WORK/cut/f$i.txt"; done
sleep 0.5
cat "$WORK"/cut/f*.txt >/dev/null
setsid python3 -c '
import os, sys, time
for p in sys.argv[1:]:
    os.truncate(p, 0)
    time.sleep(0.05)
time.sleep(2)
' "$WORK"/cut/f*.txt >/dev/null 2>&1
rc=$?
for _ in $(seq 50); do [ "$(alerts)" -gt "$before" ] && break; sleep 0.1; done
grep -q '"op":"cut"' "$T/state/journal.jsonl" || fail "truncate by name: not in the journal"
[ "$(alerts)" -gt "$before" ] || fail "truncate by name: no alert"
[ "$rc" -eq 137 ] || [ "$rc" -eq 143 ] || fail "truncate by name: the truncating process was not killed (exit $rc)"
echo "truncate(2) by name: detected and stopped (exit $rc; those files' content is not kept)"
rm -rf "$WORK/cut"

# ---- status ------------------------------------------------------------------
"$BW" guard status --state-dir "$T/state" >"$T/status.out" || fail "guard status failed"
grep -q "^guard: *running" "$T/status.out" || fail "status does not say running: $(head -1 "$T/status.out")"
grep -q "protected: *$DATA" "$T/status.out" || fail "status does not list $DATA"
"$BW" guard status --state-dir "$T/state" --json | python3 -c 'import json,sys; s=json.load(sys.stdin); assert s["running"] and s["vault"]["copies"] > 0' ||
	fail "status --json"

# ---- the supervisor restarts a killed guard and reports the gap ------------
old=$(python3 -c "import json;print(json.load(open('$T/state/state.json'))['pid'])")
kill -9 "$old"
t_kill=$(date +%s.%N)
new=$old
for _ in $(seq 50); do
	sleep 0.1
	new=$(python3 -c "import json;print(json.load(open('$T/state/state.json'))['pid'])" 2>/dev/null || echo "$old")
	[ "$new" != "$old" ] && break
done
t_up=$(date +%s.%N)
[ "$new" != "$old" ] || fail "the guard was not restarted after kill -9"
grep -q '"event":"coverage_gap"' "$T/state/alerts.jsonl" || fail "no coverage_gap alert after the restart"
echo "supervisor: restarted in $(python3 -c "print('%.2f' % ($t_up - $t_kill))") s, gap reported"

# the restarted guard still protects
if [[ " $VARIANTS " == *" inplace "* ]]; then
	before=$(alerts)
	setsid "$RANSIM" attack "$DATA" --variant inplace --log "$T/ransim-again.log" --quiet >/dev/null 2>&1
	for _ in $(seq 100); do [ "$(alerts)" -gt "$before" ] && break; sleep 0.1; done
	[ "$(alerts)" -gt "$before" ] || fail "the restarted guard did not stop the emulator"
	verify_corpus "after restart" && echo "after restart: stopped, all files intact"
fi

# ---- files opened before the guard started ---------------------------------
kill "$GUARD_PID"; wait "$GUARD_PID" 2>/dev/null; GUARD_PID=
setsid "$RANSIM" attack "$DATA" --variant inplace --preopen --preopen-wait-ms 20000 \
	--max-files 20 --log "$T/ransim-pre.log" --quiet >"$T/ransim-pre.out" 2>&1 &
RPID=$!
for _ in $(seq 100); do grep -q "preopened" "$T/ransim-pre.out" && break; sleep 0.1; done
before=$(alerts)
start_guard
sleep 0.5
kill -USR1 "$RPID" 2>/dev/null
wait "$RPID" 2>/dev/null
for _ in $(seq 100); do [ "$(alerts)" -gt "$before" ] && break; sleep 0.1; done
if [ "$(alerts)" -gt "$before" ]; then
	verify_corpus "preopened" && echo "files opened before the guard started: stopped, all files intact"
else
	fail "files opened before the guard started: no alert"
	"$BW" guard rollback --state-dir "$T/state" --since 30s >/dev/null 2>&1
fi

kill "$GUARD_PID"; wait "$GUARD_PID" 2>/dev/null; GUARD_PID=
python3 -c "import json,sys; sys.exit(0 if json.load(open('$T/state/state.json'))['clean_stop'] else 1)" ||
	fail "the guard did not record a clean stop"
[ "$FAILED" -eq 0 ] && echo "test_guard: ok"
exit "$FAILED"
