#!/bin/sh
# Replays each fuzz target's seed corpus through its replay binary (run by `make check`).
# Environment: top_builddir, top_srcdir, FUZZ_TARGETS (space-separated target names).
set -u

: "${top_builddir:=.}"
: "${top_srcdir:=.}"
: "${FUZZ_TARGETS:=fuzz_config fuzz_ip_packet fuzz_packet}"

status=0
for t in $FUZZ_TARGETS; do
	bin="$top_builddir/tests/fuzz/${t}_replay"
	corpus="$top_srcdir/tests/fuzz/corpus/$t"
	if [ ! -x "$bin" ]; then
		echo "FAIL: $t: replay binary $bin not built" >&2
		status=1
		continue
	fi
	if [ ! -d "$corpus" ]; then
		echo "FAIL: $t: corpus directory $corpus is missing" >&2
		status=1
		continue
	fi
	# An empty corpus would make the replay pass without testing anything.
	seeds=0
	for f in "$corpus"/*; do
		[ -f "$f" ] && seeds=$((seeds + 1))
	done
	if [ "$seeds" -eq 0 ]; then
		echo "FAIL: $t: corpus directory $corpus is empty" >&2
		status=1
		continue
	fi
	if out=$("$bin" "$corpus"); then
		echo "PASS: $t: $out"
	else
		echo "FAIL: $t: $out (exit status $?)" >&2
		status=1
	fi
done
exit $status
