#!/usr/bin/env bash
# bench/backup.sh - bulwark vs restic vs borg, same data, same machine, one run.
# See bench/README.md for usage and for what each column means.
#
# Environment:
#   BENCH_SIZE_MB   data set size in MB (default 2048)
#   BENCH_QUICK=1   smoke test: 200 MB data set (overrides BENCH_SIZE_MB)
#   BENCH_DIR       work dir (default /var/tmp/bulwark-bench)
#   BENCH_RUNS      repetitions (default 1; the table shows the median per step)
#   BENCH_TOOLS     subset/order of tools (default "bulwark restic borg")
#   BENCH_SEED      seed of the 1% change (default 1)
#   BENCH_VERIFY    1 (default): diff each restored tree against the source (not timed)
#   BENCH_KEEP      1: keep the repositories of the last run (default: deleted)
#   BENCH_RESTORE_FS  loop (default as root): each restore into a new ext4 file system
#                   in a loop-mounted image; dir: a directory under BENCH_DIR
#   BULWARK_BIN     bulwark binary (default <repo>/build/bulwark)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
TOP=$(cd "$HERE/.." && pwd)
LIB="$HERE/benchlib.py"

BENCH_QUICK=${BENCH_QUICK:-0}
if [[ "$BENCH_QUICK" == 1 ]]; then
  SIZE_MB=200
else
  SIZE_MB=${BENCH_SIZE_MB:-2048}
fi
BENCH_DIR=${BENCH_DIR:-/var/tmp/bulwark-bench}
BENCH_RUNS=${BENCH_RUNS:-1}
BENCH_TOOLS=${BENCH_TOOLS:-"bulwark restic borg"}
BENCH_SEED=${BENCH_SEED:-1}
BENCH_VERIFY=${BENCH_VERIFY:-1}
BENCH_KEEP=${BENCH_KEEP:-0}
if [[ $(id -u) == 0 ]] && command -v mkfs.ext4 >/dev/null && command -v losetup >/dev/null; then
  BENCH_RESTORE_FS=${BENCH_RESTORE_FS:-loop}
else
  BENCH_RESTORE_FS=${BENCH_RESTORE_FS:-dir}
fi
[[ "$BENCH_RESTORE_FS" == loop || "$BENCH_RESTORE_FS" == dir ]] || die "BENCH_RESTORE_FS is loop or dir (got '$BENCH_RESTORE_FS')"
BULWARK_BIN=${BULWARK_BIN:-$TOP/build/bulwark}
DATASET_VERSION=2   # bump when the selection or change logic changes

die() { echo "bench: error: $*" >&2; exit 1; }
say() { echo "bench: $*" >&2; }

[[ "$SIZE_MB" =~ ^[0-9]+$ && "$SIZE_MB" -ge 10 ]] || die "BENCH_SIZE_MB must be an integer >= 10 (got '$SIZE_MB')"
[[ "$BENCH_RUNS" =~ ^[0-9]+$ && "$BENCH_RUNS" -ge 1 ]] || die "BENCH_RUNS must be an integer >= 1 (got '$BENCH_RUNS')"
[[ "$BENCH_SEED" =~ ^[0-9]+$ ]] || die "BENCH_SEED must be an integer (got '$BENCH_SEED')"
read -r -a TOOLS <<<"$BENCH_TOOLS"
[[ ${#TOOLS[@]} -ge 1 ]] || die "BENCH_TOOLS is empty"
for t in "${TOOLS[@]}"; do
  case "$t" in bulwark|restic|borg) ;; *) die "unknown tool '$t' in BENCH_TOOLS (allowed: bulwark restic borg)";; esac
done
has_tool() { local t; for t in "${TOOLS[@]}"; do [[ "$t" == "$1" ]] && return 0; done; return 1; }

case "$BENCH_DIR" in
  /*) ;; *) die "BENCH_DIR must be an absolute path (got '$BENCH_DIR')";;
esac
[[ "$BENCH_DIR" != / && "$BENCH_DIR" != /usr* ]] || die "refusing BENCH_DIR=$BENCH_DIR"
BENCH_DIR=${BENCH_DIR%/}

# ---------------------------------------------------------------- bulwark binary
if has_tool bulwark; then
  [[ -x "$BULWARK_BIN" ]] || die "bulwark binary not found at $BULWARK_BIN: build it first
  (scripts/build.sh, or: cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j)
  or point BULWARK_BIN at it, or leave bulwark out: BENCH_TOOLS=\"restic borg\""
  BULWARK_BIN=$(cd "$(dirname "$BULWARK_BIN")" && pwd)/$(basename "$BULWARK_BIN")
fi

# ---------------------------------------------------------------- dependencies
install_pkgs() {
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "missing packages ($*) and not root: install them first"
    sudo=(sudo)
  fi
  say "installing: $*"
  if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2; then
    say "apt-get install failed; running apt-get update and retrying"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2 \
      || die "could not install: $*"
  fi
}
missing=()
[[ -x /usr/bin/time ]] || missing+=(time)
command -v python3 >/dev/null || missing+=(python3)
command -v flock >/dev/null || missing+=(util-linux)
command -v diff >/dev/null || missing+=(diffutils)
has_tool restic && ! command -v restic >/dev/null && missing+=(restic)
has_tool borg && ! command -v borg >/dev/null && missing+=(borgbackup)
[[ ${#missing[@]} -eq 0 ]] || install_pkgs "${missing[@]}"
python3 -c 'import random; random.Random(1).randbytes(1)' 2>/dev/null \
  || die "python3 >= 3.9 is needed (random.randbytes)"

# ---------------------------------------------------------------- work dir, lock
mkdir -p "$BENCH_DIR"
exec 9>"$BENCH_DIR/.lock"
flock -n 9 || die "another benchmark is running in $BENCH_DIR (lock $BENCH_DIR/.lock)"

DATA="$BENCH_DIR/data"            # the unchanged tree
CHANGED="$BENCH_DIR/data-changed" # cp -al of data + the 1% change (changed files are new inodes)
SRC="$BENCH_DIR/src"              # the one path every tool backs up (a renamed data or data-changed)
REPOS="$BENCH_DIR/repos"
CACHES="$BENCH_DIR/cache"
RESTORE="$BENCH_DIR/restore"
LOGS="$BENCH_DIR/logs"
RESULTS="$BENCH_DIR/results.jsonl"
TABLE="$BENCH_DIR/results.txt"

# The tools see the same absolute path ($SRC) in every step: data/ is renamed to
# src/ for steps 1-2, data-changed/ for step 3.  Which one src/ is follows from
# which of the two names is missing, so a crashed run is repaired on the next one.
put_back() {
  if [[ -d "$SRC" ]]; then
    if [[ ! -e "$DATA" ]]; then mv "$SRC" "$DATA"
    elif [[ ! -e "$CHANGED" ]]; then mv "$SRC" "$CHANGED"
    else die "$SRC, $DATA and $CHANGED all exist: remove $BENCH_DIR and rerun"
    fi
  fi
}
use_tree() { # base | changed
  put_back
  if [[ "$1" == base ]]; then mv "$DATA" "$SRC"; else mv "$CHANGED" "$SRC"; fi
}
cleanup() {
  local rc=$?
  set +e
  put_back 2>/dev/null
  restore_fs_down 2>/dev/null
  rm -rf "$RESTORE"
  if [[ "$BENCH_KEEP" != 1 ]]; then rm -rf "$REPOS" "$CACHES"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

put_back
if mountpoint -q "$RESTORE" 2>/dev/null; then umount "$RESTORE"; fi # a killed run's
rm -f "$BENCH_DIR/restore.img"
rm -rf "$REPOS" "$CACHES" "$RESTORE" "$LOGS"
mkdir -p "$LOGS"

# ---------------------------------------------------------------- disk space
SIZE_BYTES=$((SIZE_MB * 1000 * 1000))
MARKER="$BENCH_DIR/dataset.ok"
WANT_MARKER="version=$DATASET_VERSION size_mb=$SIZE_MB seed=$BENCH_SEED"
reuse=0
if [[ -f "$MARKER" && -d "$DATA" && -d "$CHANGED" && "$(head -n1 "$MARKER")" == "$WANT_MARKER" ]]; then
  reuse=1
fi
avail=$(df -B1 --output=avail "$BENCH_DIR" | tail -n1 | tr -d ' ')
# data + 3 repositories + 1 restore + caches: about 5x the data set
need=$((5 * SIZE_BYTES))
[[ $reuse == 1 ]] && need=$((4 * SIZE_BYTES))
if [[ "$avail" -lt "$need" ]]; then
  die "not enough free space in $BENCH_DIR: $((avail / 1000000)) MB free, about $((need / 1000000)) MB needed
  (about 5x the $SIZE_MB MB data set). Free space, choose another BENCH_DIR, or lower BENCH_SIZE_MB."
fi

# ---------------------------------------------------------------- data set
if [[ $reuse == 1 ]]; then
  say "reusing data set in $DATA ($SIZE_MB MB)"
else
  say "building a $SIZE_MB MB data set from /usr/share and /usr/lib into $DATA"
  rm -rf "$DATA" "$CHANGED" "$DATA.tmp" "$CHANGED.tmp" "$MARKER"
  python3 "$LIB" select "$SIZE_BYTES" "$BENCH_DIR/dataset.list" >/dev/null
  mkdir -p "$DATA.tmp"
  tar -C /usr --null --no-recursion -T "$BENCH_DIR/dataset.list" -cf - \
    | tar -C "$DATA.tmp" -xpf -
  mv "$DATA.tmp" "$DATA"
  say "building the 1% change variant in $CHANGED (seed $BENCH_SEED)"
  cp -al "$DATA" "$CHANGED.tmp"
  python3 "$LIB" change "$CHANGED.tmp" "$BENCH_SEED" >"$BENCH_DIR/change.json"
  mv "$CHANGED.tmp" "$CHANGED"
  {
    echo "$WANT_MARKER"
    echo "data $(python3 "$LIB" treestat "$DATA")"
    echo "changed $(python3 "$LIB" treestat "$CHANGED")"
  } >"$MARKER"
fi
read -r _ DATA_FILES DATA_BYTES < <(grep '^data ' "$MARKER")
read -r _ CHANGED_FILES CHANGED_BYTES < <(grep '^changed ' "$MARKER")

# ---------------------------------------------------------------- versions
ver_bulwark=- ver_restic=- ver_borg=-
if has_tool bulwark; then
  ver_bulwark=$("$BULWARK_BIN" version 2>/dev/null | head -n1 || true)
  [[ -n "$ver_bulwark" ]] || ver_bulwark=$("$BULWARK_BIN" --version 2>/dev/null | head -n1 || true)
  [[ -n "$ver_bulwark" ]] || ver_bulwark="unknown ($BULWARK_BIN)"
fi
has_tool restic && ver_restic=$(restic version | head -n1)
has_tool borg && ver_borg=$(borg --version | head -n1)
NPROC=$(nproc)
CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || echo unknown)
MEM=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)

HEADER=$(cat <<EOF
bulwark backup benchmark  $(date -u +%Y-%m-%dT%H:%M:%SZ)
  bulwark: $ver_bulwark
  restic:  $ver_restic
  borg:    $ver_borg
  nproc:   $NPROC   cpu: $CPU   memory: $MEM
  data:    $DATA_BYTES bytes in $DATA_FILES files (changed variant: $CHANGED_BYTES bytes, $CHANGED_FILES files)
  change:  $(cat "$BENCH_DIR/change.json")
  tools:   ${TOOLS[*]}   runs: $BENCH_RUNS   work dir: $BENCH_DIR
EOF
)
echo "$HEADER"
echo

# the meta line starts a fresh results.jsonl
python3 -c '
import json, sys
res, sz, db, df, cb, cf, runs, tools, nproc, vb, vr, vg, cpu, chg = sys.argv[1:]
meta = {"type": "meta", "date": __import__("time").strftime("%Y-%m-%dT%H:%M:%SZ", __import__("time").gmtime()), "size_mb": int(sz), "dataset_bytes": int(db), "dataset_files": int(df),
        "changed_bytes": int(cb), "changed_files": int(cf), "change": json.load(open(chg)),
        "runs": int(runs), "tools": tools, "nproc": int(nproc),
        "versions": {"bulwark": vb, "restic": vr, "borg": vg}, "cpu": cpu}
open(res, "w").write(json.dumps(meta) + "\n")
' "$RESULTS" "$SIZE_MB" "$DATA_BYTES" "$DATA_FILES" "$CHANGED_BYTES" "$CHANGED_FILES" \
  "$BENCH_RUNS" "${TOOLS[*]}" "$NPROC" "$ver_bulwark" "$ver_restic" "$ver_borg" "$CPU" \
  "$BENCH_DIR/change.json"

# ---------------------------------------------------------------- tool adapters
export RESTIC_PASSWORD=bench-restic-password
export BORG_PASSPHRASE=bench-borg-password
export BULWARK_PASSWORD=bench-bulwark-password
export RESTIC_CACHE_DIR="$CACHES/restic"
export BORG_BASE_DIR="$CACHES/borg"
export BORG_CACHE_DIR="$CACHES/borg/cache"
export BORG_CONFIG_DIR="$CACHES/borg/config"
export BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
export XDG_CACHE_HOME="$CACHES/bulwark"   # in case bulwark keeps a client cache there
unset RESTIC_REPOSITORY BORG_REPO BULWARK_REPO RESTIC_PASSWORD_FILE RESTIC_PASSWORD_COMMAND \
      BORG_PASSCOMMAND BORG_PASSPHRASE_FD 2>/dev/null || true

# Each adapter prints the command to run (one word per line) for: init, backup N,
# restore DIR, check.  Commands run with cwd $BENCH_DIR and output to a log file.
cmd_bulwark() {
  local repo="$REPOS/bulwark"
  case "$1" in
    init)    printf '%s\n' "$BULWARK_BIN" -r "$repo" init ;;
    backup)  printf '%s\n' "$BULWARK_BIN" -r "$repo" backup "$SRC" ;;
    restore) printf '%s\n' "$BULWARK_BIN" -r "$repo" restore "$BULWARK_SNAP" --target "$2" ;;
    check)   printf '%s\n' "$BULWARK_BIN" -r "$repo" check --read-data ;;
  esac
}
cmd_restic() {
  local repo="$REPOS/restic"
  case "$1" in
    init)    printf '%s\n' restic -r "$repo" init --repository-version 2 ;;
    backup)  printf '%s\n' restic -r "$repo" backup --compression auto --host bench "$SRC" ;;
    restore) printf '%s\n' restic -r "$repo" restore latest --target "$2" ;;
    check)   printf '%s\n' restic -r "$repo" check --read-data ;;
  esac
}
cmd_borg() {
  local repo="$REPOS/borg"
  case "$1" in
    init)    printf '%s\n' borg init -e repokey-blake2 "$repo" ;;
    backup)  printf '%s\n' borg create --compression zstd,3 "$repo::snap$2" "$SRC" ;;
    # borg extracts into the current directory
    restore) printf '%s\n' env -C "$2" borg extract "$repo::snap3" ;;
    check)   printf '%s\n' borg check --verify-data "$repo" ;;
  esac
}

# Newest bulwark snapshot id from `snapshots --json`; falls back to "latest".
bulwark_latest() {
  local id
  id=$("$BULWARK_BIN" -r "$REPOS/bulwark" snapshots --json 2>/dev/null | python3 "$LIB" snapid || true)
  echo "${id:-latest}"
}

# Where a tool put the restored tree: restic and borg recreate the absolute
# path under the target; accept src/ or the target itself for bulwark.
restored_root() {
  local d
  for d in "$1/${SRC#/}" "$1/src" "$1"; do
    if [[ -d "$d/share" || -d "$d/lib" ]]; then echo "$d"; return 0; fi
  done
  return 1
}

json_step() { # run tool step ok seconds maxrss_kib rc log user_s sys_s
  printf '{"type":"step","run":%s,"tool":"%s","step":"%s","ok":%s,"seconds":%s,"maxrss_kib":%s,"rc":%s,"log":"%s","user_s":%s,"sys_s":%s}\n' \
    "$@" >>"$RESULTS"
}
json_size() { # run tool when bytes cache_bytes
  printf '{"type":"reposize","run":%s,"tool":"%s","when":"%s","bytes":%s,"cache_bytes":%s}\n' \
    "$@" >>"$RESULTS"
}
json_verify() { # run tool ok
  printf '{"type":"verify","run":%s,"tool":"%s","ok":%s}\n' "$@" >>"$RESULTS"
}

# Restore targets.  With BENCH_RESTORE_FS=loop every restore gets a new ext4
# file system (an image in BENCH_DIR, loop-mounted on $RESTORE, inode tables
# written at mkfs time so no lazy init runs during the restore): each tool
# starts from the same empty file system, and nobody pays for the inodes the
# previous restore freed (below).  Unmounting drops the image's page cache.
RESTORE_IMG="$BENCH_DIR/restore.img"
restore_fs_up() {
  mkdir -p "$RESTORE"
  [[ "$BENCH_RESTORE_FS" == loop ]] || return 0
  rm -f "$RESTORE_IMG"
  truncate -s $((SIZE_MB * 3 + 1024))M "$RESTORE_IMG"
  mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$RESTORE_IMG"
  mount -o loop "$RESTORE_IMG" "$RESTORE"
}
restore_fs_down() {
  if [[ "$BENCH_RESTORE_FS" == loop ]]; then
    if mountpoint -q "$RESTORE"; then umount "$RESTORE"; fi
    rm -f "$RESTORE_IMG"
    rmdir "$RESTORE" 2>/dev/null || true
  else
    rm -rf "$RESTORE"
    LAST_DELETE=$SECONDS
  fi
}

# After an rm -rf of a large tree, ext4 skips the freed inodes for about
# 30 s (dirty_expire_centisecs) and every new file then costs a scan of
# inode tables: a restore started in that window runs several times
# slower, whichever tool it is.  Each restore waits until the last mass
# delete is BENCH_SETTLE seconds old (the data stays in the page cache).
LAST_DELETE=-1000
settle() {
  local wait=$(( ${BENCH_SETTLE:-35} - (SECONDS - LAST_DELETE) ))
  if (( wait > 0 )); then sync; sleep "$wait"; fi
}

warm() { # read the whole tree once so the data is in the page cache
  tar -C "$BENCH_DIR" -cf - src | cat >/dev/null
}

# run_step RUN TOOL STEP CMD...: time CMD, record seconds/peak RSS; returns CMD's status
run_step() {
  local run=$1 tool=$2 step=$3; shift 3
  local log="$LOGS/run$run-$tool-$step.log" tf="$LOGS/.time" rc secs rss usr sys
  printf '  %-8s %-8s ' "$tool" "$step" >&2
  # what the steps before wrote (the last backup, a new restore file
  # system's inode tables) goes to disk first, untimed: no step pays for
  # another's writeback
  sync
  set +e
  ( cd "$BENCH_DIR" && exec /usr/bin/time -f '%e %M %U %S' -o "$tf" "$@" ) >"$log" 2>&1 </dev/null
  rc=$?
  set -e
  read -r secs rss usr sys < <(tail -n1 "$tf" 2>/dev/null || echo "0 0 0 0")
  [[ "$secs" =~ ^[0-9.]+$ ]] || secs=0
  [[ "$rss" =~ ^[0-9]+$ ]] || rss=0
  [[ "$usr" =~ ^[0-9.]+$ ]] || usr=0
  [[ "$sys" =~ ^[0-9.]+$ ]] || sys=0
  if [[ $rc -eq 0 ]]; then
    json_step "$run" "$tool" "$step" true "$secs" "$rss" 0 "$log" "$usr" "$sys"
    awk -v s="$secs" -v r="$rss" -v u="$usr" -v y="$sys" \
      'BEGIN { printf "%8.2f s %9.1f MB peak RSS %7.2f s CPU (%.2f user, %.2f sys)\n", s, r / 1024, u + y, u, y }' >&2
  else
    json_step "$run" "$tool" "$step" false "$secs" "$rss" "$rc" "$log" "$usr" "$sys"
    printf 'FAILED (exit %s), log: %s\n' "$rc" "$log" >&2
    tail -n 15 "$log" | sed 's/^/      | /' >&2
  fi
  return $rc
}

repo_bytes() { du -sb "$1" 2>/dev/null | cut -f1 || echo 0; }

FAILED=0
bench_tool() { # RUN TOOL
  local run=$1 tool=$2 cmd=() n dir root id
  local repo="$REPOS/$tool"
  rm -rf "$repo" "${CACHES:?}/$tool" "$RESTORE"
  mkdir -p "$REPOS" "$CACHES/$tool"
  mapfile -t cmd < <("cmd_$tool" init)
  run_step "$run" "$tool" init "${cmd[@]}" || return 1

  use_tree base
  warm
  for n in 1 2 3; do
    if [[ $n == 3 ]]; then use_tree changed; warm; fi
    mapfile -t cmd < <("cmd_$tool" backup "$n")
    run_step "$run" "$tool" "backup$n" "${cmd[@]}" || return 1
    json_size "$run" "$tool" "backup$n" "$(repo_bytes "$repo")" "$(repo_bytes "$CACHES/$tool")"
  done

  restore_fs_up
  dir="$RESTORE/$tool"
  mkdir -p "$dir"
  [[ "$BENCH_RESTORE_FS" == loop ]] || settle
  [[ "$tool" == bulwark ]] && BULWARK_SNAP=$(bulwark_latest)
  mapfile -t cmd < <("cmd_$tool" restore "$dir")
  run_step "$run" "$tool" restore "${cmd[@]}" || return 1
  if [[ "$BENCH_VERIFY" == 1 ]]; then
    if root=$(restored_root "$dir") && diff -rq --no-dereference "$SRC" "$root" >"$LOGS/run$run-$tool-verify.log" 2>&1; then
      json_verify "$run" "$tool" true
      say "  $tool restore verified identical to the source (diff -r)"
    else
      json_verify "$run" "$tool" false
      say "  $tool: RESTORED TREE DIFFERS from the source, see $LOGS/run$run-$tool-verify.log"
      FAILED=1
    fi
  fi
  restore_fs_down

  mapfile -t cmd < <("cmd_$tool" check)
  run_step "$run" "$tool" check "${cmd[@]}" || return 1
  put_back
  return 0
}

for ((run = 1; run <= BENCH_RUNS; run++)); do
  say "run $run/$BENCH_RUNS"
  for tool in "${TOOLS[@]}"; do
    if ! bench_tool "$run" "$tool"; then
      FAILED=1
      say "  $tool: run $run aborted after a failed step (remaining steps skipped)"
    fi
    put_back
    [[ -e "$RESTORE" ]] && restore_fs_down
    if [[ "$BENCH_KEEP" != 1 || $run -lt $BENCH_RUNS ]]; then
      rm -rf "${REPOS:?}/$tool"
    fi
  done
done
put_back

# ---------------------------------------------------------------- report
{
  echo "$HEADER"
  echo
  python3 "$LIB" report "$RESULTS" "${TOOLS[*]}"
} >"$TABLE"
echo
python3 "$LIB" report "$RESULTS" "${TOOLS[*]}"
echo
say "raw results: $RESULTS   table: $TABLE   logs: $LOGS"
[[ $FAILED == 0 ]] || die "some steps failed or a restore did not match (see above)"
