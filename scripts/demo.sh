#!/usr/bin/env bash
# The main job on embedded defaults: back up a directory into a new local
# repository, list the snapshot, restore it to a scratch place and verify it
# byte for byte.  Usage: scripts/demo.sh [DIRECTORY]  (default /usr/share/doc)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
B=$PWD/build/bulwark
src=${1:-/usr/share/doc}
work=$(mktemp -d /tmp/bulwark-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
head -c 24 /dev/urandom | base64 > "$work/passphrase"
chmod 600 "$work/passphrase"
export BULWARK_REPO=$work/repo BULWARK_PASSWORD_FILE=$work/passphrase

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
say "bulwark init  (repository $BULWARK_REPO)"
"$B" init
say "bulwark backup $src"
"$B" backup "$src"
say "bulwark backup $src  (again: unchanged files are not read)"
"$B" backup "$src"
say "bulwark snapshots"
"$B" snapshots
say "bulwark restore latest --target $work/restore --verify"
"$B" restore latest --target "$work/restore" --verify
say "compare byte for byte: diff -r $src $work/restore$src"
diff -r --no-dereference "$src" "$work/restore$src"
echo "identical"
say "bulwark check --read-data"
"$B" check --read-data
say "done: the repository and the restore were in $work (removed now)"
