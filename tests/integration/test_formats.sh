#!/bin/bash
# Every repository format this build writes (init --format 1, 2, 3) goes
# through backup, an incremental backup, check --read-data, restore, forget
# and prune; pack and object names are checked against an independent
# implementation of the format's hash (sha256sum for 1 and 2, b3sum for 3).
# Usage: test_formats.sh path/to/bulwark
set -u
B=$(realpath "$1")
W=$(mktemp -d /tmp/bw-formats-test.XXXXXX)
[ -n "${KEEP:-}" ] || trap 'rm -rf "$W"' EXIT
export BULWARK_PASSWORD_FILE=$W/pw XDG_CACHE_HOME=$W/cache
echo test-pass > "$W/pw"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

S=$W/src
mkdir -p "$S/small" "$S/big"
for i in $(seq 1 300); do printf 'file %d of the small ones\n%s\n' "$i" "$(seq "$i")" > "$S/small/f$i.txt"; done
head -c 3000000 /dev/urandom > "$S/big/random.bin"
{ for i in $(seq 1 200000); do echo "line $i of a compressible file"; done; } > "$S/big/text.log"

# names of stored objects: data/XX/NAME, index/NAME, snapshots/NAME
names_ok() { # REPO HASHCMD
	local f n h bad=0 count=0
	while IFS= read -r f; do
		n=$(basename "$f")
		h=$($2 < "$f" | cut -d' ' -f1)
		count=$((count + 1))
		[ "$h" = "$n" ] || { echo "  $f: $2 says $h"; bad=1; }
	done < <(find "$1/data" "$1/index" "$1/snapshots" -type f)
	[ $count -gt 0 ] || { echo "  no objects"; bad=1; }
	return $bad
}

for fmt in 1 2 3; do
	R=$W/repo$fmt
	$B init -r "$R" --format $fmt > /dev/null || { fail "format $fmt: init failed"; continue; }
	grep -q "\"version\": $fmt," "$R/config" || fail "format $fmt: config does not say version $fmt"
	$B backup -r "$R" "$S" --quiet || fail "format $fmt: backup failed"
	echo "one more line" >> "$S/small/f7.txt"
	$B backup -r "$R" "$S" --quiet || fail "format $fmt: second backup failed"
	$B check -r "$R" --read-data > "$W/check.out" 2>&1 || { cat "$W/check.out"; fail "format $fmt: check --read-data failed"; }
	rm -rf "$W/out"
	$B restore -r "$R" latest --target "$W/out" --quiet || fail "format $fmt: restore failed"
	diff -r "$S" "$W/out$S" > /dev/null || fail "format $fmt: restored tree differs"
	if [ $fmt -ge 3 ]; then hc=b3sum; else hc=sha256sum; fi
	if command -v $hc > /dev/null; then
		names_ok "$R" $hc || fail "format $fmt: object names are not the $hc of their bytes"
	else
		fail "format $fmt: $hc is not installed (scripts/deps.sh installs it)"
	fi
	$B forget -r "$R" --keep-last 1 > /dev/null || fail "format $fmt: forget failed"
	$B prune -r "$R" > /dev/null 2>&1 || fail "format $fmt: prune failed"
	$B check -r "$R" --read-data > "$W/check.out" 2>&1 || { cat "$W/check.out"; fail "format $fmt: check after prune failed"; }
	echo "ok: format $fmt ($hc names, $(find "$R/data" -type f | wc -l) packs)"
done
$B init -r "$W/bad" --format 4 > "$W/out4" 2>&1 && fail "init --format 4 succeeded"
grep -q "format" "$W/out4" || fail "init --format 4: message does not name the format"

[ $fails -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "all format tests passed"
