#!/bin/bash
# check must find each kind of damage, name the damaged object, exit 3,
# and leave the repository exactly as it was (check is read-only).
#   $1: the bulwark binary
set -eu
B=${1:?usage: $0 path/to/bulwark}
T=$(mktemp -d /tmp/bw-check-damage.XXXXXX)
trap 'rm -rf "$T"' EXIT
export XDG_CACHE_HOME=$T/cache BULWARK_PASSWORD_FILE=$T/pw
echo "damage test passphrase" > "$T/pw"
fail() { echo "FAIL: $*" >&2; exit 1; }

python3 - "$T/src" <<'EOF'
import os, random, sys
random.seed(7)
root = sys.argv[1]
for d in range(4):
    p = os.path.join(root, "d%d" % d)
    os.makedirs(p)
    for f in range(12):
        n = random.randint(1000, 400000)
        with open(os.path.join(p, "f%d" % f), "wb") as fh:
            fh.write(os.urandom(n) if f % 2 else (b"line %d\n" % f) * (n // 8))
EOF

R0=$T/pristine
$B -q -r "$R0" init
$B -q -r "$R0" backup "$T/src/d0" "$T/src/d1"
$B -q -r "$R0" backup "$T/src"
$B -r "$R0" check --read-data > "$T/out" 2>&1 || { cat "$T/out"; fail "pristine repository does not pass check"; }

manifest() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }

flip() { # file offset
	python3 - "$1" "$2" <<'EOF'
import sys
f = open(sys.argv[1], "r+b"); off = int(sys.argv[2])
f.seek(off); b = f.read(1); f.seek(off); f.write(bytes([b[0] ^ 0x40]))
EOF
}

# run check on a damaged copy: exit 3, NAME in the output, nothing changed
expect_damage() { # label repo name
	local label=$1 R=$2 name=$3 rc=0
	manifest "$R" > "$T/before"
	$B -r "$R" check --read-data > "$T/out" 2>&1 || rc=$?
	[ "$rc" = 3 ] || { cat "$T/out"; fail "$label: check exited $rc, want 3"; }
	grep -q "$name" "$T/out" || { cat "$T/out"; fail "$label: output does not name $name"; }
	manifest "$R" > "$T/after"
	cmp -s "$T/before" "$T/after" || fail "$label: check modified the repository"
	echo "ok: $label ($(grep -c "$name" "$T/out") lines name it)"
}

fresh() { rm -rf "$T/r"; cp -a "$R0" "$T/r"; }
biggest_pack() { find "$T/r/data" -type f -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2; }

fresh; P=$(biggest_pack); flip "$P" 4000
expect_damage "byte flipped in a pack" "$T/r" "$(basename "$P")"

fresh; P=$(biggest_pack); truncate -s -100 "$P"
expect_damage "truncated pack" "$T/r" "$(basename "$P")"

fresh; P=$(biggest_pack); rm "$P"
expect_damage "deleted pack" "$T/r" "$(basename "$P")"

fresh; I=$(find "$T/r/index" -type f | head -1); flip "$I" 50
expect_damage "corrupted index file" "$T/r" "index $(basename "$I")"

fresh; S=$(find "$T/r/snapshots" -type f | head -1); flip "$S" 30
expect_damage "corrupted snapshot" "$T/r" "snapshot $(basename "$S")"

# structure-only check must also catch a missing pack (no --read-data)
fresh; P=$(biggest_pack); rm "$P"; rc=0
$B -r "$T/r" check > "$T/out" 2>&1 || rc=$?
[ "$rc" = 3 ] && grep -q "$(basename "$P"): missing" "$T/out" || { cat "$T/out"; fail "check without --read-data missed a deleted pack"; }
echo "ok: structure check finds a deleted pack"

echo "all damage checks passed"
