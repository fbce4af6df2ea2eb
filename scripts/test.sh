#!/usr/bin/env bash
# Build and run every test: gcc build + unit and integration tests, a clang
# build (warnings are errors), the same tests under ASan/UBSan, a short
# libFuzzer run of every fuzz target over its seed corpus, and a check for
# banned functions.  Usage: scripts/test.sh   (FUZZ_SECONDS=N to fuzz longer)
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh || exit 1
jobs=$(nproc)
fuzz_seconds=${FUZZ_SECONDS:-15}
passed=0 failed=0
failures=()

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); failures+=("$1"); echo "FAILED: $1"; }

run_ctest() { # dir label
	if (cd "$1" && ctest --output-on-failure -j"$jobs" --timeout 900); then ok; else bad "$2"; fi
}

step "banned functions (STYLE.md)"
if grep -nE '\b(strcpy|strcat|sprintf|vsprintf|gets|strtok|atoi|atol)\s*\(' \
	$(git ls-files 'src/*.c' 'src/*.h' 'include/*.h' 'tests/*.c' 2>/dev/null || find src include tests -name '*.[ch]'); then
	bad "banned functions"
else
	echo "none"; ok
fi

step "gcc build (RelWithDebInfo, -Werror)"
if cmake -S . -B build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=gcc >/dev/null &&
   cmake --build build-test -j"$jobs" >/dev/null; then
	ok
	step "unit and integration tests (gcc)"
	run_ctest build-test "tests (gcc)"
else
	bad "gcc build"
fi

step "clang build (-Werror)"
if cmake -S . -B build-clang -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang >/dev/null &&
   cmake --build build-clang -j"$jobs" >/dev/null; then ok; else bad "clang build"; fi

step "ASan/UBSan build and tests"
if cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_COMPILER=clang -DBW_SANITIZE=ON >/dev/null &&
   cmake --build build-asan -j"$jobs" >/dev/null; then
	ok
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	export BW_TEST_ASAN=1
	run_ctest build-asan "tests (ASan/UBSan)"
	unset BW_TEST_ASAN
else
	bad "asan build"
fi

step "fuzz targets: ${fuzz_seconds}s each over the seed corpora"
if cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=clang -DBW_FUZZ=ON >/dev/null &&
   cmake --build build-fuzz -j"$jobs" >/dev/null; then
	for f in tests/fuzz/fuzz_*.c; do
		name=$(basename "$f" .c)
		corpus=tests/fuzz/corpus/${name#fuzz_}
		work=$(mktemp -d)
		[ -d "$corpus" ] && cp -r "$corpus/." "$work/"
		if (cd "$work" && "$OLDPWD/build-fuzz/tests/$name" -max_total_time="$fuzz_seconds" \
			-timeout=10 -rss_limit_mb=2048 -print_final_stats=0 . >"$work.log" 2>&1); then
			runs=$(grep -oE '^#[0-9]+' "$work.log" | tail -1 | tr -d '#')
			echo "$name: ok, ${runs:-?} inputs run"
			ok
		else
			tail -30 "$work.log"
			bad "fuzz $name"
		fi
		rm -rf "$work" "$work.log"
	done
else
	bad "fuzz build"
fi

echo
if [ "$failed" -ne 0 ]; then
	printf 'failed: %s\n' "${failures[@]}"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
