#!/usr/bin/env bash
# bench/guard.sh - the ransomware guard's benchmark (issue #3): the emulator
# against the guard, benign jobs with the guard off and on, the cost per
# rewrite, and the guard's memory.  Prints tables; see bench/README.md.
#
# Environment:
#   BENCH_RUNS         emulator and microbenchmark runs per scenario (default 3)
#   BENCH_QUICK=1      short run: 1 run, smaller benign jobs (a few minutes)
#   BENCH_BENIGN_RUNS  off/on pairs per benign job (default 3; quick: 1)
#   BENCH_DIR          results and logs (default /var/tmp/bulwark-guard-bench)
#   BENCH_SCENARIOS    only these emulator scenarios (names as in the table)
#   BENCH_SKIP         skip parts: any of "attacks benign micro"
#   BULWARK_BIN        bulwark binary (default <repo>/build/bulwark)
#   BW_RANSIM          the emulator (default <repo>/build/tests/bw-ransim)
#
# Needs root, Linux 6.14+ (fanotify pre-content events) and loop devices.
# Everything happens on a loop-mounted ext4 image of its own; the guard's
# state directories are on the root file system beside it.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
. "$TOP/tests/guard/loopimg.sh"
REPORT="$HERE/guard_report.py"

BENCH_QUICK=${BENCH_QUICK:-0}
if [[ "$BENCH_QUICK" == 1 ]]; then
  BENCH_RUNS=${BENCH_RUNS:-1}
else
  BENCH_RUNS=${BENCH_RUNS:-3}
fi
if [[ "$BENCH_QUICK" == 1 ]]; then
  BENCH_BENIGN_RUNS=${BENCH_BENIGN_RUNS:-1}
else
  BENCH_BENIGN_RUNS=${BENCH_BENIGN_RUNS:-3}
fi
BENCH_DIR=${BENCH_DIR:-/var/tmp/bulwark-guard-bench}
BENCH_SCENARIOS=${BENCH_SCENARIOS:-}
BENCH_SKIP=${BENCH_SKIP:-}
BENCH_JOBS=${BENCH_JOBS:-}
BULWARK_BIN=${BULWARK_BIN:-$TOP/build/bulwark}
BW_RANSIM=${BW_RANSIM:-$TOP/build/tests/bw-ransim}

die() { echo "guard-bench: error: $*" >&2; exit 1; }
say() { echo "guard-bench: $*" >&2; }

[[ "$BENCH_RUNS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_RUNS must be an integer >= 1 (got '$BENCH_RUNS')"
[[ "$BENCH_BENIGN_RUNS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_BENIGN_RUNS must be an integer >= 1"
[[ $(id -u) -eq 0 ]] || die "the guard needs root (fanotify permission events); run as root"
case "$BENCH_DIR" in /*) ;; *) die "BENCH_DIR must be an absolute path";; esac
[[ "$BENCH_DIR" != / && "$BENCH_DIR" != /tmp && "$BENCH_DIR" != /usr* ]] || die "refusing BENCH_DIR=$BENCH_DIR"
skip() { [[ " $BENCH_SKIP " == *" $1 "* ]]; }

# ---------------------------------------------------------------- sizes
if [[ "$BENCH_QUICK" == 1 ]]; then
  BENIGN_CORPORA=1        # small corpora (about 20 MiB, 200 files each) for the benign jobs
  SLOW_FILES=6            # files for the slow (--delay-ms 2000) scenario
  SQLITE_ROWS=5000
  PG_SCALE=2 PG_TX=300
  COMPILE_TARGETS="bwcore bwcrypto bwrepo"
  MICRO_FILES=1000 MICRO_OPS=20000 MICRO_ROUNDS=1
  DEB_PKGS="python3.11-minimal libpython3.11-stdlib"
else
  BENIGN_CORPORA=2
  SLOW_FILES=20
  SQLITE_ROWS=20000
  PG_SCALE=10 PG_TX=1500
  COMPILE_TARGETS="all"            # the whole project: libraries, CLI, unit tests
  MICRO_FILES=2000 MICRO_OPS=50000 MICRO_ROUNDS=2
  DEB_PKGS="python3.11-minimal libpython3.11-stdlib perl-modules-5.36 libperl5.36"
fi
ATTACK_TIMEOUT=90        # seconds an emulator run may take before it is stopped
SETTLE=0.5               # after the guard is up (canaries placed), before the work starts

# ---------------------------------------------------------------- dependencies
apt_install() {
  say "installing: $*"
  if ! env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2; then
    say "apt-get install failed; running apt-get update and retrying"
    env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2 \
      || die "could not install: $*"
  fi
}
need_pkgs=(python3 time util-linux e2fsprogs rsync zip gzip zstd xz-utils gnupg restic borgbackup
           git cmake make gcc pkg-config libsodium-dev libzstd-dev libjansson-dev libssl-dev
           imagemagick postgresql logrotate)
missing=()
for p in "${need_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] || apt_install "${missing[@]}"
MOGRIFY=/usr/bin/mogrify
[[ -x "$MOGRIFY" ]] || die "no $MOGRIFY after installing imagemagick"
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
[[ -x "$PGBIN/initdb" && -x "$PGBIN/pgbench" ]] || die "no initdb/pgbench under /usr/lib/postgresql/*/bin"
id postgres >/dev/null 2>&1 || die "no postgres user (the postgresql package makes it)"

# ---------------------------------------------------------------- build
if [[ ! -x "$BULWARK_BIN" || ! -x "$BW_RANSIM" ]]; then
  [[ "$BULWARK_BIN" == "$TOP/build/bulwark" ]] || die "no bulwark at $BULWARK_BIN"
  for try in 1 2 3; do
    say "building bulwark and the emulator (cmake, build/)"
    if cmake -S "$TOP" -B "$TOP/build" >&2 && cmake --build "$TOP/build" -j2 >&2; then break; fi
    [[ $try == 3 ]] && die "the build failed three times"
    say "build failed (a source file mid-edit?); retrying in 60 s"
    sleep 60
  done
fi
[[ -x "$BULWARK_BIN" ]] || die "no bulwark binary at $BULWARK_BIN"
[[ -x "$BW_RANSIM" ]] || die "no emulator at $BW_RANSIM"
BULWARK_BIN=$(realpath "$BULWARK_BIN")
BW_RANSIM=$(realpath "$BW_RANSIM")

# ---------------------------------------------------------------- work dirs, lock
mkdir -p "$BENCH_DIR"
exec 9>"$BENCH_DIR/.lock"
flock -n 9 || die "another guard benchmark is running (lock $BENCH_DIR/.lock)"
LOGS="$BENCH_DIR/logs"
RESULTS="$BENCH_DIR/results.jsonl"
TABLE="$BENCH_DIR/results.txt"
rm -rf "$LOGS"
mkdir -p "$LOGS" "$BENCH_DIR/debs"

T=$(mktemp -d /var/tmp/bw-guard-bench.XXXXXX)
chmod 755 "$T"                      # the postgres user walks down to its data dir
MNT="$T/mnt"
DATA="$MNT/data"                    # the emulator's tree (fresh copy per run)
W="$MNT/work"                       # benign jobs and the microbenchmark
MIRROR="$MNT/mirror"                # the second protected tree (rsync target)
PRISTINE="$T/pristine"              # corpus copy on the root fs (not watched)
AUX="$T/aux"                        # root fs: gnupg home, borg base, pg socket, logrotate state
PROTECT=(--protect "$DATA" --protect "$W" --protect "$MIRROR")
# private copies: build/ may be relinked while the benchmark runs
mkdir -p "$T/bin"
cp "$BULWARK_BIN" "$T/bin/bulwark"
cp "$BW_RANSIM" "$T/bin/bw-ransim"
BULWARK_ORIG=$BULWARK_BIN
BULWARK_BIN="$T/bin/bulwark"
BW_RANSIM="$T/bin/bw-ransim"
GUARD_PID='' ENGINE_PID='' CUR_STATE='' ATTACK_PGID='' PG_DATA_DIR='' GUARD_STOPS=0

alive() { # PID: running and not a zombie
  local s
  s=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [[ -n "$s" && "$s" != Z && "$s" != X ]]
}
state_pid() { { sed -n 's/^ *"pid": *\([0-9][0-9]*\).*/\1/p' "$1/state.json" 2>/dev/null || true; } | head -n1; }
json_str() { python3 -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }
problem() { say "PROBLEM: $*"; printf '{"type":"problem","what":%s}\n' "$(json_str "$*")" >>"$RESULTS"; }

sample_rss() { # PHASE: the engine's peak and current RSS, the supervisor's peak
  local pid hwm rss shwm
  pid=$(state_pid "$CUR_STATE")
  [[ -n "$pid" ]] || return 0
  hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
  shwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$GUARD_PID/status" 2>/dev/null || true)
  printf '{"type":"rss","phase":"%s","pid":%s,"hwm_kib":%s,"rss_kib":%s,"sup_hwm_kib":%s}\n' \
    "$1" "$pid" "${hwm:-0}" "${rss:-0}" "${shwm:-0}" >>"$RESULTS"
}

guard_start() { # STATE_DIR
  local st=$1 old new i
  [[ -z "$GUARD_PID" ]] || die "internal: guard already running"
  mkdir -p "$st"
  CUR_STATE=$st
  old=$(state_pid "$st")
  # its own session: a verdict never reaches this script's session
  setsid "$BULWARK_BIN" guard run "${PROTECT[@]}" --state-dir "$st" --no-syslog --json \
    >>"$st.out" 2>>"$st.err" </dev/null &
  GUARD_PID=$!
  for ((i = 0; i < 300; i++)); do
    new=$(state_pid "$st")
    if [[ -n "$new" && "$new" != "${old:-}" ]] && alive "$new"; then
      ENGINE_PID=$new
      sleep "$SETTLE"
      return 0
    fi
    alive "$GUARD_PID" || break
    sleep 0.05
  done
  cat "$st.err" >&2 || true
  grep -q "pre-content" "$st.err" 2>/dev/null && die "this kernel has no fanotify pre-content events (Linux 6.14+ needed)"
  die "the guard did not start (state dir $st)"
}

guard_stop() { # PHASE (for the RSS sample; empty: no sample)
  local i now
  [[ -n "$GUARD_PID" ]] || return 0
  [[ -n "${1:-}" ]] && sample_rss "$1"
  now=$(state_pid "$CUR_STATE")
  if [[ -n "${1:-}" && -n "$ENGINE_PID" && "$now" != "$ENGINE_PID" ]]; then
    problem "the guard engine was restarted during '$1' (pid $ENGINE_PID, now ${now:-none}); see $CUR_STATE.err"
  fi
  kill -TERM "$GUARD_PID" 2>/dev/null || true
  GUARD_STOPS=$((GUARD_STOPS + 1))
  for ((i = 0; i < 400; i++)); do alive "$GUARD_PID" || break; sleep 0.05; done
  if alive "$GUARD_PID"; then
    problem "the guard did not stop within 20 s of SIGTERM (phase '${1:-}'); killed"
    kill -KILL "$GUARD_PID" 2>/dev/null || true
  fi
  wait "$GUARD_PID" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do [[ -n "$now" ]] && alive "$now" || break; sleep 0.05; done
  [[ -n "$now" ]] && alive "$now" && { problem "the guard engine $now outlived its supervisor; killed"; kill -KILL "$now" 2>/dev/null || true; }
  # keep what the guard said (its state dirs go with the work dir)
  if [[ -n "${1:-}" && -s "$CUR_STATE.err" ]]; then
    { echo "== stop $GUARD_STOPS ($1)"; cat "$CUR_STATE.err"; } >>"$LOGS/guard-$1.err"
    : >"$CUR_STATE.err"
  fi
  GUARD_PID='' ENGINE_PID=''
}

pg_stop() {
  if [[ -n "$PG_DATA_DIR" && -f "$PG_DATA_DIR/postmaster.pid" ]]; then
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PG_DATA_DIR" -m immediate -w stop >/dev/null 2>&1 || true
  fi
}

cleanup() {
  local rc=$?
  set +e
  [[ -n "$ATTACK_PGID" ]] && kill -KILL -- "-$ATTACK_PGID" 2>/dev/null
  pg_stop
  [[ -d "$AUX/gnupg" ]] && gpgconf --homedir "$AUX/gnupg" --kill gpg-agent >/dev/null 2>&1
  guard_stop ""
  [[ -n "$ATTACK_PGID" ]] && kill -KILL -- "-$ATTACK_PGID" 2>/dev/null
  loop_release "$MNT"
  rm -rf "$T"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- the image
say "work dir $T; making a 4 GiB ext4 image"
mkdir -p "$AUX"
loop_image "$T/img" "$MNT" 4G || die "cannot make and loop-mount an ext4 image here (no loop devices?)"
mkdir -p "$DATA" "$W" "$MIRROR"
chmod 755 "$MNT" "$W" "$MIRROR"

# the emulator's corpus: generated once, then copied back before every run
say "generating the emulator's corpus (small, seed 1)"
mkdir -p "$PRISTINE"
python3 "$TOP/tests/guard/mkcorpus.py" "$DATA" --size small --seed 1 --manifest "$T/manifest" >/dev/null
"$BW_RANSIM" init "$DATA" >/dev/null
cp -a "$DATA/." "$PRISTINE/"
CORPUS_FILES=$(wc -l <"$T/manifest")
CORPUS_BYTES=$(du -sb "$PRISTINE" | cut -f1)

NPROC=$(nproc)
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || echo unknown)
KERNEL=$(uname -r)
VER=$("$BULWARK_BIN" --version 2>/dev/null | head -n1 || echo unknown)
BIN_DATE=$(date -u -r "$BULWARK_ORIG" +%Y-%m-%dT%H:%M:%SZ)
BIN_SUM=$(sha256sum "$BULWARK_BIN" | cut -c1-12)
HEADER="bulwark guard benchmark  $(date -u +%Y-%m-%dT%H:%M:%SZ)
  bulwark: $VER ($BULWARK_ORIG, built $BIN_DATE, sha256 $BIN_SUM)   kernel: $KERNEL
  source:  $(git -C "$TOP" log -1 --format='%h %s' 2>/dev/null | cut -c1-70)$(git -C "$TOP" diff --quiet HEAD -- src include 2>/dev/null || echo ' (+ uncommitted changes in src/ or include/)')
  nproc:   $NPROC   cpu: $CPU   memory: $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)
  corpus:  $CORPUS_FILES files, $CORPUS_BYTES bytes (mkcorpus small, seed 1) on a loop-mounted ext4 image
  runs:    $BENCH_RUNS per scenario, $BENCH_BENIGN_RUNS off/on pair(s) per benign job, quick=$BENCH_QUICK"
echo "$HEADER"
echo
python3 -c '
import json, sys
runs, brun, nproc, cpu, kernel, ver, quick = sys.argv[2:]
open(sys.argv[1], "w").write(json.dumps({"type": "meta", "runs": int(runs), "benign_runs": int(brun),
    "nproc": int(nproc), "cpu": cpu, "kernel": kernel, "version": ver, "quick": quick == "1"}) + "\n")
' "$RESULTS" "$BENCH_RUNS" "$BENCH_BENIGN_RUNS" "$NPROC" "$CPU" "$KERNEL" "$VER" "$BENCH_QUICK"

# ================================================================ 1. emulator
# name|class|emulator options.  class full: held to the files/latency targets;
# evasive: slow or partial/camouflaged encryption (detection and recovery only).
SCENARIOS=(
  "inplace|full|--variant inplace"
  "newdelete|full|--variant newdelete"
  "renameover|full|--variant renameover"
  "renamethenenc|full|--variant renamethenenc"
  "encthenrename|full|--variant encthenrename"
  "otrunc|full|--variant otrunc"
  "truncate|full|--variant truncate"
  "punchhole|full|--variant punchhole"
  "header|evasive|--variant header"
  "stripes16|evasive|--variant stripes16"
  "nofm|evasive|--variant nofm"
  "percent|evasive|--variant percent"
  "mmap|full|--variant mmap"
  "odirect|full|--variant odirect"
  "iouring|full|--variant iouring"
  "b64|evasive|--variant b64"
  "fork|full|--variant inplace --workers 4 --mode fork"
  "threads|full|--variant inplace --workers 4 --mode threads"
  "pool|full|--variant inplace --workers 4 --mode pool"
  "fork-setsid|full|--variant inplace --workers 4 --mode fork --setsid"
  "pool-setsid|full|--variant inplace --workers 4 --mode pool --setsid"
  "punchhole-setsid|full|--variant punchhole --workers 4 --mode fork --setsid"
  "execrelay|full|--variant inplace --workers 2 --mode execrelay"
  "script|full|--variant inplace --script"
  "slow|evasive|--variant inplace --delay-ms 2000 --max-files $SLOW_FILES"
  "preopen|full|--variant inplace --preopen"
  "preopen-preguard|full|--variant inplace --preopen"
  "note|full|--variant newdelete --note"
  "ext-random|full|--variant encthenrename --ext random"
  "ext-none|full|--variant renameover --ext none"
  "delbak|full|--variant renameover --delete-backups-first"
  "order-bfs|full|--variant inplace --order bfs"
  "order-random|full|--variant inplace --order random --seed RUN"
  "order-size|full|--variant inplace --order size"
  "order-reverse|full|--variant inplace --order reverse"
)

restore_corpus() { # only while the guard is stopped: it must see a clean tree
  [[ -z "$GUARD_PID" ]] || die "internal: restore with the guard running"
  rm -rf "$DATA"
  cp -a "$PRISTINE" "$DATA"
}

ransomware_alerts() { grep -c '"event":"ransomware"' "$1/alerts.jsonl" 2>/dev/null || true; }

attack_one() { # RUN NAME CLASS OPTIONS
  local run=$1 name=$2 cls=$3 opts=$4 st="$T/state-attack" rc=0 apid target i n left limit=$ATTACK_TIMEOUT
  local log="$LOGS/attack-$name-run$run.log" out="$LOGS/attack-$name-run$run.out" args=()
  read -r -a args <<<"${opts//RUN/$run}"
  restore_corpus
  rm -rf "$st" "$st.out" "$st.err"
  [[ "$name" == preopen-preguard ]] || guard_start "$st"
  # its own session (the guard freezes the attacker's whole session); the
  # timeout is a safety net for an undetected slow run
  setsid timeout -k 5 "$limit" "$BW_RANSIM" attack "$DATA" "${args[@]}" --log "$log" \
    >"$out" 2>&1 </dev/null &
  apid=$!
  ATTACK_PGID=$apid
  if [[ " ${args[*]} " == *" --preopen "* ]]; then
    target=
    for ((i = 0; i < 400; i++)); do
      target=$(sed -n 's/.*waiting for SIGUSR1 to pid \([0-9][0-9]*\).*/\1/p' "$out" | head -n1)
      [[ -n "$target" ]] && break
      alive "$apid" || break
      sleep 0.05
    done
    # files opened before the guard started: start it now, then let the emulator go
    [[ "$name" == preopen-preguard ]] && guard_start "$st"
    if [[ -n "$target" ]]; then kill -USR1 "$target"; else problem "$name run $run: the emulator never said it had pre-opened its files"; fi
  fi
  wait "$apid" 2>/dev/null || rc=$?
  # the guard kills the whole tree; give init a moment to reap the orphans
  for ((i = 0; i < 40; i++)); do
    left=$(ps -eo pid=,pgid=,stat=,args= | awk -v g="$apid" '$2 == g && $3 !~ /^Z/' || true)
    [[ -z "$left" ]] && break
    sleep 0.05
  done
  if [[ -n "$left" ]]; then
    problem "$name run $run: attacker processes still alive 2 s after it ended (exit $rc), killed: $(echo "$left" | head -n3 | tr '\n' ';' | cut -c1-300)"
    kill -KILL -- "-$apid" 2>/dev/null || true
  fi
  ATTACK_PGID=
  # the alert is written after the rollback; a late verdict may still come
  n=60
  [[ $rc -eq 137 ]] && n=300
  [[ $rc -eq 77 ]] && n=0
  for ((i = 0; i < n; i++)); do
    [[ $(ransomware_alerts "$st") -gt 0 ]] && break
    sleep 0.05
  done
  [[ $(ransomware_alerts "$st") -gt 0 ]] && sleep 0.2
  guard_stop attack
  cp "$st/alerts.jsonl" "$LOGS/attack-$name-run$run.alerts" 2>/dev/null || true
  python3 "$REPORT" attack --run "$run" --scenario "$name" --cls "$cls" --args "${opts//RUN/$run}" \
    --rc "$rc" --log "$log" --alerts "$st/alerts.jsonl" --tree "$DATA" --manifest "$T/manifest" \
    --out "$RESULTS" || problem "$name run $run: could not evaluate the run (guard_report.py attack failed)"
}

if ! skip attacks; then
  say "1. emulator: ${#SCENARIOS[@]} scenarios x $BENCH_RUNS run(s)"
  for ((run = 1; run <= BENCH_RUNS; run++)); do
    for s in "${SCENARIOS[@]}"; do
      IFS='|' read -r name cls opts <<<"$s"
      [[ -z "$BENCH_SCENARIOS" || " $BENCH_SCENARIOS " == *" $name "* ]] || continue
      attack_one "$run" "$name" "$cls" "$opts"
    done
  done
  restore_corpus
fi

# ================================================================ 2. benign jobs
# Each job: setup (untimed, guard off), the job (timed, in its own session),
# clean (guard off).  Off first, then on, per job.
BC="$W/corpus"                       # the benign corpus, in a protected tree
J="$W/job"                           # each job's scratch dir, in a protected tree
PG_DATA_DIR="$J/pg"                  # stopped by the trap if a run ends early
export W BC J MIRROR AUX PGBIN MOGRIFY SQLITE_ROWS PG_SCALE PG_TX COMPILE_TARGETS TOP
export RESTIC_PASSWORD=bench-restic-password BORG_PASSPHRASE=bench-borg-password
export BORG_BASE_DIR="$AUX/borg" BORG_RELOCATED_REPO_ACCESS_IS_OK=yes BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
export PGPORT=54329 GNUPGHOME="$AUX/gnupg"
unset RESTIC_REPOSITORY BORG_REPO RESTIC_PASSWORD_FILE RESTIC_PASSWORD_COMMAND BORG_PASSCOMMAND 2>/dev/null || true

bj_tar_gzip()  { tar -czf "$J/corpus.tar.gz" -C "$BC" .; }
bj_tar_zstd()  { tar -cf - -C "$BC" . | zstd -q -T1 -o "$J/corpus.tar.zst"; }
bj_tar_xz()    { tar -cf - -C "$BC" . | xz -T1 >"$J/corpus.tar.xz"; }
bj_zip()       { cd "$BC" && zip -qr "$J/corpus.zip" .; }
bj_zip_pw()    { cd "$BC" && zip -qr -P bench-zip-password "$J/corpus-pw.zip" .; }
bj_gpg_setup() { tar -cf "$J/corpus.tar" -C "$BC" .; }
bj_gpg()       {
  gpg --batch --yes --quiet --pinentry-mode loopback --passphrase bench-gpg \
    --symmetric -o "$J/corpus.tar.gpg" "$J/corpus.tar"
}
bj_restic_setup() { restic -q -r "$J/restic" --no-cache init; }
bj_restic()    { restic -q -r "$J/restic" --no-cache backup "$BC" && restic -q -r "$J/restic" --no-cache check --read-data; }
bj_borg_setup() { borg init -e repokey-blake2 "$J/borg"; }
bj_borg()      { borg create "$J/borg::one" "$BC"; }
bj_git_setup() { cp -a "$AUX/src.git" "$J/src.git"; }
bj_git()       {
  git clone -q "$J/src.git" "$J/clone" && git -C "$J/clone" gc -q &&
    git -C "$J/clone" switch -q --detach HEAD~2 && git -C "$J/clone" switch -q -
}
bj_compile_setup() { mkdir -p "$J/proj" && git -C "$TOP" archive HEAD | tar -x -C "$J/proj"; }
bj_compile()   {
  local targets
  read -r -a targets <<<"$COMPILE_TARGETS"
  cmake -S "$J/proj" -B "$J/proj/build" -DCMAKE_BUILD_TYPE=Release -DBW_WERROR=OFF &&
    make -C "$J/proj/build" -j2 "${targets[@]}"
}
bj_sqlite()    {
  python3 - "$J/app.sqlite" "$SQLITE_ROWS" <<'EOF'
import random, sqlite3, sys
rnd = random.Random(1)
db = sqlite3.connect(sys.argv[1])
db.execute("create table orders(id integer primary key, customer text, qty integer, note text)")
for i in range(int(sys.argv[2])):
    db.execute("insert into orders(customer, qty, note) values (?, ?, ?)",
               ("customer %d" % rnd.randrange(500), rnd.randrange(100), "order note %d of the day" % i))
    if i % 50 == 49:
        db.commit()
    if i % 1000 == 999:
        db.execute("update orders set qty = qty + 1 where id % 97 = ?", (i % 97,))
        db.execute("delete from orders where id % 389 = ?", (i % 389,))
        db.commit()
db.commit()
db.execute("vacuum")
db.close()
EOF
}
bj_postgres_setup() { install -d -o postgres -g postgres -m 700 "$J/pg" "$AUX/pgsock"; }
bj_postgres()  {
  local pg=(runuser -u postgres --)
  "${pg[@]}" "$PGBIN/initdb" -D "$J/pg" -A trust -E UTF8 >/dev/null &&
    "${pg[@]}" "$PGBIN/pg_ctl" -D "$J/pg" -w -l "$AUX/pgsock/pg.log" \
      -o "-k $AUX/pgsock -p $PGPORT -c listen_addresses=''" start >/dev/null &&
    "${pg[@]}" "$PGBIN/pgbench" -h "$AUX/pgsock" -p "$PGPORT" -i -q -s "$PG_SCALE" postgres 2>/dev/null &&
    "${pg[@]}" "$PGBIN/pgbench" -h "$AUX/pgsock" -p "$PGPORT" -c 2 -j 2 -t "$PG_TX" postgres >/dev/null &&
    "${pg[@]}" "$PGBIN/pg_ctl" -D "$J/pg" -w -m fast stop >/dev/null
}
bj_mogrify_setup() {
  rsync -a --include='*/' --include='*.jpg' --include='*.png' --exclude='*' "$BC/" "$J/img/"
}
bj_mogrify()   {
  find "$J/img" -type f \( -name '*.jpg' -o -name '*.png' \) -print0 |
    xargs -0 -n 16 "$MOGRIFY" -resize 90% -strip
}
bj_rsync_setup() {
  cp -a "$BC" "$J/rs-src" && mkdir -p "$MIRROR/rs" && rsync -a "$J/rs-src/" "$MIRROR/rs/" &&
  # a day of changes: every file touched, a third edited, a tenth deleted, new files
  python3 - "$J/rs-src" <<'EOF'
import os, random, sys, time
rnd = random.Random(2)
files = sorted(os.path.join(r, f) for r, _, fs in os.walk(sys.argv[1]) for f in fs)
later = time.time() + 3600
for i, p in enumerate(files):
    x = rnd.random()
    if x < 0.1:
        os.unlink(p)
        continue
    if x < 0.43 and p.endswith((".txt", ".csv", ".md", ".log", ".c", ".py")):
        with open(p, "a") as f:
            f.write("edited line %d\n" % i)
    os.utime(p, (later, later))
for i in range(20):
    with open(os.path.join(sys.argv[1], "new-report-%02d.txt" % i), "w") as f:
        f.write("new report %d\n" % i * 200)
EOF
}
bj_rsync()     { rsync -a --delete "$J/rs-src/" "$MIRROR/rs/"; }
bj_rsync_clean() { rm -rf "${MIRROR:?}/rs"; }
bj_dpkg()      {
  local d
  # an install, then the same packages again over it (an upgrade in place)
  for d in "$AUX"/debs/*.deb; do dpkg -x "$d" "$J/root" || return 1; done
  for d in "$AUX"/debs/*.deb; do dpkg -x "$d" "$J/root" || return 1; done
}
bj_logrotate_setup() {
  mkdir -p "$J/logs/copy" "$J/logs/rename"
  local f
  for f in "$J"/logs/copy/app{1,2,3}.log "$J"/logs/rename/svc{1,2,3}.log; do
    seq 1 40000 | sed 's/^/2026-01-01T00:00:00Z host app: request handled id=/' >"$f"
  done
  cat >"$AUX/logrotate.conf" <<EOF
$J/logs/copy/*.log {
    copytruncate
    rotate 3
    compress
    missingok
}
$J/logs/rename/*.log {
    create 0644 root root
    rotate 3
    compress
    missingok
}
EOF
  chmod 644 "$AUX/logrotate.conf"
  rm -f "$AUX/logrotate.state"
}
bj_logrotate() {
  local r f
  for r in 1 2 3 4 5; do
    for f in "$J"/logs/*/*.log; do
      seq 1 20000 | sed "s/^/2026-01-0${r}T00:00:00Z host app: request handled id=/" >>"$f"
    done
    logrotate -f -s "$AUX/logrotate.state" "$AUX/logrotate.conf" || return 1
  done
}
BENIGN_JOBS=(tar_gzip tar_zstd tar_xz zip zip_pw gpg restic borg git compile sqlite postgres
             mogrify rsync dpkg logrotate)
export -f bj_tar_gzip bj_tar_zstd bj_tar_xz bj_zip bj_zip_pw bj_gpg bj_restic bj_borg bj_git \
  bj_compile bj_sqlite bj_postgres bj_mogrify bj_rsync bj_dpkg bj_logrotate

last_pid() { awk '{print $5}' /proc/loadavg; }   # the most recently created pid
PID_MAX=$(cat /proc/sys/kernel/pid_max)
pids_between() { # BEFORE AFTER: processes created (pid wraps at pid_max, back to 300)
  if (( $2 >= $1 )); then echo $(($2 - $1)); else echo $((PID_MAX - $1 + $2 - 300)); fi
}

benign_prepare() {
  local i debs=()
  say "2. benign jobs: preparing inputs (corpus, git repository, packages)"
  mkdir -p "$BC" "$AUX/gnupg" "$AUX/borg"
  chmod 700 "$AUX/gnupg"
  # gpg's home and agent exist before the first timed run (off and on alike)
  echo warm-up >"$AUX/gpg-warm"
  gpg --batch --yes --quiet --pinentry-mode loopback --passphrase warm --symmetric \
    -o "$AUX/gpg-warm.gpg" "$AUX/gpg-warm" >/dev/null 2>&1 || say "gpg warm-up failed"
  for ((i = 1; i <= BENIGN_CORPORA; i++)); do
    python3 "$TOP/tests/guard/mkcorpus.py" "$BC/part$i" --size small --seed $((100 + i)) >/dev/null
  done
  # a local repository with some history: this project's source and Python's standard library
  local g="$AUX/gitsrc" stdlib
  mkdir -p "$g/py"
  git -C "$TOP" archive HEAD | tar -x -C "$g"
  stdlib=$(python3 -c 'import sysconfig; print(sysconfig.get_paths()["stdlib"])')
  for i in asyncio email json http xml logging unittest concurrent importlib; do
    if [[ -d "$stdlib/$i" ]]; then cp -r "$stdlib/$i" "$g/py/"; fi
  done
  cp "$stdlib"/*.py "$g/py/" 2>/dev/null || true
  find "$g/py" -name __pycache__ -prune -exec rm -rf {} +
  (
    cd "$g"
    gitc=(git -c user.name=bench -c user.email=bench@localhost -c init.defaultBranch=main)
    "${gitc[@]}" init -q && "${gitc[@]}" add -A && "${gitc[@]}" commit -qm one
    find py -name '*.py' | sort | awk 'NR % 5 == 0' | while read -r f; do echo "# edited" >>"$f"; done
    "${gitc[@]}" commit -qam two
    find py -name '*.py' | sort | awk 'NR % 11 == 0' | xargs "${gitc[@]}" rm -q
    "${gitc[@]}" commit -qm three
  )
  git clone -q --bare "$g" "$AUX/src.git"
  rm -rf "$g"
  # packages for the dpkg -x job (downloaded once into $BENCH_DIR/debs)
  mkdir -p "$AUX/debs"
  for i in $DEB_PKGS; do
    if ! compgen -G "$BENCH_DIR/debs/${i}_*.deb" >/dev/null; then
      (cd "$BENCH_DIR/debs" && apt-get download -q "$i" >/dev/null 2>&1) || say "could not download $i"
    fi
    for f in "$BENCH_DIR/debs/${i}_"*.deb; do if [[ -f "$f" ]]; then debs+=("$f"); fi; done
  done
  if [[ ${#debs[@]} -eq 0 ]]; then
    say "no package downloaded; using the largest .debs in /var/cache/apt/archives"
    mapfile -t debs < <(ls -S /var/cache/apt/archives/*.deb 2>/dev/null | head -n 4)
  fi
  [[ ${#debs[@]} -gt 0 ]] || die "no .deb files for the package-install job"
  cp "${debs[@]}" "$AUX/debs/"
}

benign_job() { # RUN JOB
  local run=$1 j=$2 mode rc t0 t1 p0 p1 a0 k0 a1 k1 d0 d1 c0 c1 e0 e1 o0 o1 r0 r1 w0 w1 x0 x1 secs log alines
  local bstate="$T/state-benign"
  for mode in off on; do
    rm -rf "$J"
    mkdir -p "$J"
    chmod 755 "$J"
    if declare -F "bj_${j}_setup" >/dev/null; then
      ( set -e; "bj_${j}_setup" ) >"$LOGS/benign-$j-setup.log" 2>&1 || die "setup of $j failed: $(tail -3 "$LOGS/benign-$j-setup.log")"
    fi
    sync
    if [[ $mode == on ]]; then
      guard_start "$bstate"
      read -r _ e0 _ d0 c0 _ o0 r0 w0 x0 < <(python3 "$REPORT" state "$bstate/state.json")
      read -r a0 k0 _ _ < <(python3 "$REPORT" alerts "$bstate/alerts.jsonl")
    fi
    log="$LOGS/benign-$j-$mode-run$run.log"
    rc=0
    p0=$(last_pid)
    t0=$(date +%s%N)
    setsid -w bash -c "set -o pipefail; bj_$j" >"$log" 2>&1 </dev/null || rc=$?
    t1=$(date +%s%N)
    p1=$(last_pid)
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
    [[ $rc -eq 0 ]] || say "  $j (guard $mode) exited $rc: $(tail -2 "$log" | tr '\n' ' ')"
    if [[ $mode == on ]]; then
      sleep 1.3           # late verdicts (analysis after close) and the next state.json
      read -r _ e1 _ d1 c1 _ o1 r1 w1 x1 < <(python3 "$REPORT" state "$bstate/state.json")
      read -r a1 k1 _ _ < <(python3 "$REPORT" alerts "$bstate/alerts.jsonl")
      alines=$(grep '"event":"ransomware"' "$bstate/alerts.jsonl" 2>/dev/null | tail -n $((a1 - a0)) | head -c 20000 || true)
      [[ $a1 -gt $a0 ]] || alines=
      guard_stop "benign"
      printf '{"type":"benign","run":%d,"job":"%s","mode":"on","seconds":%s,"rc":%d,"procs":%d,"alerts":%d,"kills":%d,"denied":%d,"events":%d,"copies":%d,"opens":%d,"reads":%d,"writes":%d,"closes":%d,"alert_lines":[%s]}\n' \
        "$run" "$j" "$secs" "$rc" "$(pids_between "$p0" "$p1")" $((a1 - a0)) $((k1 - k0)) $((d1 - d0)) \
        $((e1 - e0)) $((c1 - c0)) $((o1 - o0)) $((r1 - r0)) $((w1 - w0)) $((x1 - x0)) "$([[ -n "$alines" ]] && json_str "$alines" || true)" >>"$RESULTS"
      say "  $(printf '%-10s' "$j") on  ${secs} s  (alerts $((a1 - a0)), denied $((d1 - d0)), copies $((c1 - c0)))"
    else
      printf '{"type":"benign","run":%d,"job":"%s","mode":"off","seconds":%s,"rc":%d,"procs":%d}\n' \
        "$run" "$j" "$secs" "$rc" "$(pids_between "$p0" "$p1")" >>"$RESULTS"
      say "  $(printf '%-10s' "$j") off ${secs} s"
    fi
    pg_stop
    if declare -F "bj_${j}_clean" >/dev/null; then ( "bj_${j}_clean" ) || true; fi
    rm -rf "$J"
  done
}

if ! skip benign; then
  benign_prepare
  for ((run = 1; run <= BENCH_BENIGN_RUNS; run++)); do
    for j in "${BENIGN_JOBS[@]}"; do
      if [[ -n "$BENCH_JOBS" && " $BENCH_JOBS " != *" $j "* ]]; then continue; fi
      benign_job "$run" "$j"
    done
  done
  cp "$T/state-benign/alerts.jsonl" "$LOGS/benign.alerts" 2>/dev/null || true
  rm -rf "$BC"
fi

# ================================================================ 3. microbenchmark
if ! skip micro; then
  say "3. rewrite microbenchmark ($MICRO_FILES files, $MICRO_ROUNDS round(s), $MICRO_OPS big-file writes)"
  GR="$T/guard_rewrite"
  cc -O2 -std=gnu11 -Wall -Wextra -o "$GR" "$HERE/guard_rewrite.c"
  FL="$T/fanotify_floor"
  cc -O2 -std=gnu11 -Wall -Wextra -pthread -o "$FL" "$HERE/fanotify_floor.c"
  M="$W/micro"
  for ((run = 1; run <= BENCH_RUNS; run++)); do
    # off, the guard, and a bare listener that allows every event at once
    # (the kernel's own price for a permission round trip)
    for mode in off on floor; do
      rm -rf "$M"
      mkdir -p "$M"
      "$GR" prepare "$M" "$MICRO_FILES" "$run"
      sync
      [[ $mode == on ]] && { rm -rf "$T/state-micro"; guard_start "$T/state-micro"; }
      rc=0
      floor=()
      [[ $mode == floor ]] && floor=("$FL" "$MNT")
      line=$(setsid -w "${floor[@]}" "$GR" run "$M" "$MICRO_FILES" "$MICRO_OPS" "$MICRO_ROUNDS" 2>"$LOGS/micro-$mode-run$run.err") || rc=$?
      if [[ $mode == on ]]; then
        a=$(ransomware_alerts "$T/state-micro")
        [[ "$a" -eq 0 ]] || problem "micro run $run: the guard raised $a alert(s) on the rewrite microbenchmark: $(grep '"event":"ransomware"' "$T/state-micro/alerts.jsonl" | head -n1 | cut -c1-400)"
        guard_stop micro
        rm -rf "$T/state-micro"
      fi
      if [[ $rc -ne 0 || "$line" != "{"* ]]; then
        problem "micro run $run (guard $mode) failed: exit $rc: $(tail -2 "$LOGS/micro-$mode-run$run.err")"
        continue
      fi
      echo "{\"type\":\"micro\",\"mode\":\"$mode\",\"run\":$run,${line#\{}" >>"$RESULTS"
      say "  guard $mode: $line"
    done
  done
  rm -rf "$M"
fi

# ================================================================ report
echo
{
  echo "$HEADER"
  echo
  python3 "$REPORT" report "$RESULTS"
} | tee "$TABLE"
echo
say "raw results: $RESULTS   table: $TABLE   logs: $LOGS"
