#!/usr/bin/env bash
# Install the Debian packages bulwark needs to build, test and benchmark.
# Idempotent: does nothing when everything is there already.
set -euo pipefail

pkgs=(build-essential cmake pkg-config clang libclang-rt-14-dev
      libsodium-dev libzstd-dev libjansson-dev libssl-dev librust-blake3-dev
      libfuse3-dev fuse3 attr acl python3 time valgrind
      e2fsprogs util-linux zstd xz-utils gzip gnupg b3sum)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}" >&2
SUDO=
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -q "${missing[@]}" >/dev/null; then
	$SUDO apt-get update -q >/dev/null
	$SUDO apt-get install -y -q "${missing[@]}" >/dev/null
fi
