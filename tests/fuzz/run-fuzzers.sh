#!/bin/bash
# Runs every libFuzzer target for a bounded time, each from a copy of its seed corpus
# (tests/fuzz/corpus/<target>; the copy grows, the seeds in the tree do not), and reports the
# executions each made. A crash, leak or sanitizer report stops that target: its input is
# kept in BUILD_DIR/fuzz-artifacts/ and the target counts as failed.
#
# Usage: tests/fuzz/run-fuzzers.sh BUILD_DIR [SECONDS_PER_TARGET]      (default 30)
# BUILD_DIR is configured with CC=clang --enable-fuzzers (see README: Fuzzing) and built.
# Output: one line per target, "fuzz TARGET: ok, N executions in S s, corpus A -> B files"
# (or FAILED and why), then "fuzzers: N passed, M failed". Exit status 0 when all passed.
set -u

build=${1:?usage: run-fuzzers.sh BUILD_DIR [SECONDS]}
seconds=${2:-30}
here=$(cd "$(dirname "$0")" && pwd)
case $seconds in '' | *[!0-9]*) echo "run-fuzzers.sh: SECONDS must be a number" >&2; exit 2 ;; esac
# A target that wedges must not hang CI: libFuzzer's own time limit, plus a margin.
hard_limit=$((seconds + 60))
# One input taking longer than this is a bug worth reporting (a parser loop).
per_input_timeout=10
# Enough for any parser here; a target using more has a leak or an unbounded allocation.
rss_limit_mb=2048

artifacts=$build/fuzz-artifacts
work=$(mktemp -d) || exit 1
trap 'rm -rf "$work"' EXIT
mkdir -p "$artifacts"
passed=0 failed=0

for seeds in "$here"/corpus/*/; do
	target=$(basename "$seeds")
	bin=$build/tests/fuzz/${target}_fuzzer
	if [ ! -x "$bin" ]; then
		echo "fuzz $target: FAILED, $bin not built (configure CC=clang --enable-fuzzers)"
		failed=$((failed + 1))
		continue
	fi
	corpus=$work/$target
	mkdir -p "$corpus" && cp -r "$seeds". "$corpus"/
	before=$(find "$corpus" -type f | wc -l)
	start=$(date +%s)
	timeout "$hard_limit" "$bin" -max_total_time="$seconds" -timeout="$per_input_timeout" \
		-rss_limit_mb="$rss_limit_mb" -print_final_stats=1 -artifact_prefix="$artifacts/$target-" \
		"$corpus" >"$work/$target.log" 2>&1
	rc=$?
	took=$(($(date +%s) - start))
	after=$(find "$corpus" -type f | wc -l)
	execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$work/$target.log" | tail -n 1)
	if [ "$rc" -eq 0 ] && [ -n "$execs" ]; then
		echo "fuzz $target: ok, $execs executions in $took s, corpus $before -> $after files"
		passed=$((passed + 1))
	else
		echo "fuzz $target: FAILED (exit $rc after $took s, ${execs:-?} executions); the end of its output:"
		tail -n 30 "$work/$target.log" | sed 's/^/    /'
		failed=$((failed + 1))
	fi
done
echo "fuzzers: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
