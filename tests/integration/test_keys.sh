#!/bin/bash
# Passphrase management: key add / list / passwd / remove.  Each step
# checks which passphrases open the repository afterwards, and that the
# data stays readable through every key.
#   $1: the bulwark binary
set -eu
B=${1:?usage: $0 path/to/bulwark}
T=$(mktemp -d /tmp/bw-keys.XXXXXX)
trap 'rm -rf "$T"' EXIT
export XDG_CACHE_HOME=$T/cache
unset BULWARK_PASSWORD BULWARK_PASSWORD_FILE BULWARK_NEW_PASSWORD BULWARK_REPO
R=$T/repo
fail() { echo "FAIL: $*" >&2; exit 1; }
echo "first passphrase" > "$T/p1"
echo "second passphrase" > "$T/p2"
echo "third passphrase" > "$T/p3"
echo "never a key" > "$T/bad"

# opens PWFILE: 0 if the passphrase opens the repository; fails the test
# on any exit other than 0 or 11 (wrong passphrase)
opens() {
	local rc=0
	$B -r "$R" -p "$1" snapshots > "$T/out" 2>&1 || rc=$?
	case $rc in
	0) return 0 ;;
	11) grep -q "wrong passphrase" "$T/out" || { cat "$T/out"; fail "exit 11 without 'wrong passphrase'"; }
	    return 1 ;;
	*) cat "$T/out"; fail "snapshots with $(basename "$1") exited $rc (want 0 or 11)" ;;
	esac
}
must_open() { opens "$T/$1" || fail "$2: passphrase $1 is rejected"; }
must_reject() { ! opens "$T/$1" || fail "$2: passphrase $1 still opens the repository"; }
# key_ids PWFILE: "ID current" lines from key list --json
key_ids() {
	$B -r "$R" -p "$1" --json key list |
		python3 -c 'import json,sys; [print(k["id"], int(k["current"])) for k in json.load(sys.stdin)]'
}

$B -q -r "$R" -p "$T/p1" init
mkdir -p "$T/src"
head -c 200000 /dev/urandom > "$T/src/data"
$B -q -r "$R" -p "$T/p1" backup "$T/src"
must_open p1 "after init"
must_reject bad "after init"

echo "checking: key add makes a second passphrase work and keeps the first"
$B -r "$R" -p "$T/p1" key add --new-password-file "$T/p2" > "$T/out" 2>&1 || { cat "$T/out"; fail "key add failed"; }
grep -q "added key" "$T/out" || { cat "$T/out"; fail "key add does not say which key it added"; }
must_open p1 "after key add"
must_open p2 "after key add"
must_reject bad "after key add"
echo "ok: key add"

echo "checking: key list shows 2 keys, --json parses, the key in use is marked"
key_ids "$T/p1" > "$T/k1"
key_ids "$T/p2" > "$T/k2"
[ "$(wc -l < "$T/k1")" = 2 ] || { cat "$T/k1"; fail "key list --json does not list 2 keys"; }
[ "$(grep -c ' 1$' "$T/k1")" = 1 ] || { cat "$T/k1"; fail "not exactly one key marked current"; }
K1=$(awk '$2 == 1 {print $1}' "$T/k1")
K2=$(awk '$2 == 1 {print $1}' "$T/k2")
[ "$K1" != "$K2" ] || fail "both passphrases report the same current key $K1"
$B -r "$R" -p "$T/p1" key list > "$T/out"
grep -q "^\*${K1:0:8}" "$T/out" || { cat "$T/out"; fail "key list does not mark ${K1:0:8} with '*'"; }
grep -q "^ ${K2:0:8}" "$T/out" || { cat "$T/out"; fail "key list does not show ${K2:0:8} unmarked"; }
echo "ok: key list (p1 is ${K1:0:8}, p2 is ${K2:0:8})"

echo "checking: key passwd replaces the passphrase in use"
$B -q -r "$R" -p "$T/p2" key passwd --new-password-file "$T/p3" || fail "key passwd failed"
must_reject p2 "after key passwd"
must_open p3 "after key passwd"
must_open p1 "after key passwd"
[ "$(key_ids "$T/p3" | wc -l)" = 2 ] || fail "key passwd changed the number of keys"
K3=$(key_ids "$T/p3" | awk '$2 == 1 {print $1}')
echo "ok: key passwd (p3 is ${K3:0:8})"

echo "checking: key remove refuses the key in use"
rc=0
$B -r "$R" -p "$T/p1" key remove "${K1:0:8}" > "$T/out" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "key remove of the key in use succeeded"
grep -q "in use" "$T/out" || { cat "$T/out"; fail "refusal does not say the key is in use"; }
msg=$(head -1 "$T/out")
must_open p1 "after refused remove"
[ "$(key_ids "$T/p1" | wc -l)" = 2 ] || fail "refused remove changed the number of keys"
echo "ok: key in use not removed (exit $rc: $msg)"

echo "checking: key remove of another key"
$B -q -r "$R" -p "$T/p1" key remove "${K3:0:8}" || fail "key remove ${K3:0:8} failed"
must_reject p3 "after key remove"
must_open p1 "after key remove"
[ "$(key_ids "$T/p1" | wc -l)" = 1 ] || fail "key list does not show 1 key after remove"
rc=0
$B -r "$R" -p "$T/p1" key remove "${K3:0:8}" > "$T/out" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "removing an already removed key succeeded"
echo "ok: removed key's passphrase rejected; removing it again fails (exit $rc)"

echo "checking: data still restores exactly with the remaining key"
$B -q -r "$R" -p "$T/p1" restore latest --target "$T/restore" > /dev/null || fail "restore failed"
cmp "$T/src/data" "$T/restore$T/src/data" || fail "restored data differs"
$B -r "$R" -p "$T/p1" check --read-data > "$T/out" 2>&1 || { cat "$T/out"; fail "check --read-data failed"; }
echo "ok: restore and check --read-data after key changes"
echo "all key tests passed"
