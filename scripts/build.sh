#!/usr/bin/env bash
# Build bulwark (Release) into build/.  Usage: scripts/build.sh [cmake args]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
echo "built build/bulwark" >&2
