#!/usr/bin/env bash
# The guard end to end: protect a tree of real documents on a loop-mounted
# ext4 image of its own, let the safe ransomware emulator loose on it, and
# show the guard freezing and killing it and restoring every file byte for
# byte.  Needs root and Linux 6.14+ (fanotify pre-content events).
# Usage: sudo scripts/guard-demo.sh [VARIANT]   (default newdelete; see
#        build/tests/bw-ransim --help for the others)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "guard-demo: run as root (fanotify permission events)" >&2; exit 1; }
scripts/build.sh
. tests/guard/loopimg.sh
B=$PWD/build/bulwark R=$PWD/build/tests/bw-ransim
variant=${1:-newdelete}
work=$(mktemp -d /tmp/bulwark-guard-demo.XXXXXX)
guard=
cleanup() {
	[ -n "$guard" ] && kill "$guard" 2>/dev/null && wait "$guard" 2>/dev/null
	loop_release "$work/mnt"
	rm -rf "$work"
}
trap cleanup EXIT
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "a 256 MiB ext4 image at $work/mnt, with 200 documents in data/"
loop_image "$work/img" "$work/mnt" 256M
python3 tests/guard/mkcorpus.py "$work/mnt/data" --size small --manifest "$work/manifest"
"$R" init "$work/mnt/data" >/dev/null

say "bulwark guard run --protect $work/mnt/data"
"$B" guard run --protect "$work/mnt/data" --state-dir "$work/state" --no-syslog &
guard=$!
for _ in $(seq 100); do [ -s "$work/state/state.json" ] && break; sleep 0.1; done
sleep 0.5

say "the emulator attacks ($variant), in a session of its own"
rc=0
setsid "$R" attack "$work/mnt/data" --variant "$variant" --note --log "$work/attack.log" || rc=$?
echo "emulator exit status: $rc$([ "$rc" -eq 137 ] && echo ' (killed by the guard)')"
echo "files it finished before it was stopped: $(grep -vc '^start' "$work/attack.log")"
sleep 1

say "bulwark guard status"
"$B" guard status --state-dir "$work/state" || true

say "every document, byte for byte (sha256 manifest taken before the attack)"
(cd "$work/mnt/data" && sha256sum --quiet -c "$work/manifest") && echo "all $(wc -l <"$work/manifest") files intact"
left=$(cd "$work/mnt/data" && find . -type f ! -name '.bw-ransim-marker' ! -name '!bulwark-canary-*' | wc -l)
echo "files in the tree now: $left"
say "the alert (as the management server will receive it)"
grep '"event":"ransomware"' "$work/state/alerts.jsonl" | tail -1 | python3 -m json.tool | head -40
