#!/bin/bash
# What a large peer map costs a node. For each size N (default 0 1 100 1000 10000) it reports
#   - meshd's RSS with N coordinator peers: a real `meshd up` in a namespace of its own (only
#     lo), started from a saved peer map (<state_dir>/coordinator.state, the file a node
#     keeps across restarts) with N peers, each announcing one TEST-NET-3 endpoint; no
#     coordinator answers, so the map stays as saved. Sampled once RSS is steady: at least
#     SETTLE seconds after start, then until two samples a second apart agree within
#     STEADY_KIB (every peer has been probed, and the first 64 sent an initiation, as
#     meshd starts handshakes ahead of traffic with no more, by then; a slow start with a
#     large map would otherwise be caught half way), at most MAX_WAIT_S longer.
#     Needs root and TUN; skipped (with a note) without them;
#   - from tests/tools/peerbench (an offline device in one process, no root): RSS per
#     peer, the time to refuse a stranger's data message (random receiver index), a route
#     lookup (overlay destination -> peer) and a loop turn's timer work with nothing due.
# The goal (issue 7): per-packet work and loop turns independent of N, an idle peer a few
# hundred bytes.
#
# Usage (from a built tree): contrib/bench/peer-scale.sh [--sizes "0 1 100 1000 10000"]
#                            [--packets M] [--settle SECONDS]
# MESHD and PEERBENCH override the binaries.
set -u

here=$(cd "$(dirname "$0")" && pwd)
LIB_SKIP_CODE=1
# shellcheck source=tests/netns/lib.sh
. "$here/../../tests/netns/lib.sh"
# shellcheck source=contrib/bench/benchlib.sh
. "$here/benchlib.sh"

SIZES="0 1 100 1000 10000"
PACKETS=200000
SETTLE_S=$BENCH_SETTLE_S
# peerbench's own bound on --peers; the state file takes ~100,000 (STATE_FILE_MAX).
MAX_PEERS=50000
BENCH_USAGE="$0 [options]"
bench_opt sizes SIZES str:"N ..." "map sizes, each 0..$MAX_PEERS (default \"$SIZES\")"
bench_opt packets PACKETS num 1000 10000000 "peerbench packets per figure"
bench_opt settle SETTLE_S num 1 60 "seconds after start before RSS is sampled"
bench_parse_args "$@"
for n in $SIZES; do bench_num_arg --sizes "$n" 0 "$MAX_PEERS"; done
# RSS samples this close (KiB), a second apart: the start is over; at most this long after
# SETTLE_S waiting for that.
BENCH_SETTLE_S=$SETTLE_S
BENCH_STEADY_KIB=256
BENCH_MAX_WAIT_S=60

bench_find_builddir
: "${PEERBENCH:=$top_builddir/tests/tools/peerbench}"
[ -x "$PEERBENCH" ] || lib_die "peerbench not found at $PEERBENCH (make check TESTS= builds it, or set PEERBENCH=)"
lib_find_meshd
lib_require_cmd python3 python3

REAL=1
if [ "$(id -u)" -ne 0 ] || [ ! -c /dev/net/tun ]; then
	REAL=0
	lib_log "not root or no /dev/net/tun: meshd's own RSS is not measured, only peerbench"
fi

lib_mktemp
lib_trap_cleanup
T=$LIB_TMPDIR

field() { # LINE NAME
	printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}

lib_log "meshd: $MESHD; peerbench: $PEERBENCH"
lib_log "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), kernel $(uname -r)"

ROWS=()
base_rss=
for N in $SIZES; do
	rss=-
	if [ "$REAL" = 1 ]; then
		bench_idle_rss "$N"
		rss=$BENCH_RSS
		[ -z "$base_rss" ] && [ "$N" = 0 ] && [ "$rss" != - ] && base_rss=$rss
	fi
	per_peer=-
	if [ "$rss" != - ] && [ -n "$base_rss" ] && [ "$N" -gt 0 ]; then
		per_peer=$(awk -v a="$rss" -v b="$base_rss" -v n="$N" 'BEGIN { printf "%.2f", (a - b) / n }')
	fi
	line=$("$PEERBENCH" --peers "$N" --packets "$PACKETS") || lib_log "N=$N: peerbench failed: $line"
	lib_log "N=$N: meshd RSS ${rss} KiB; peerbench: $line"
	ROWS+=("$(printf '%7s | %13s | %13s | %13s | %14s | %12s | %14s' "$N" \
		"$(awk -v k="$rss" 'BEGIN { if (k == "-") print "-"; else printf "%.1f", k / 1024 }')" "$per_peer" \
		"$(field "$line" kib_per_peer)" "$(field "$line" stranger_ns)" "$(field "$line" route_ns)" \
		"$(field "$line" timer_turn_ns)")")
done

echo
echo "peer map scale ($(nproc) CPUs)"
printf '%7s | %13s | %13s | %13s | %14s | %12s | %14s\n' peers "meshd RSS MiB" "KiB/peer" "bench KiB/peer" \
	"stranger ns" "route ns" "timer turn ns"
echo "--------+---------------+---------------+---------------+----------------+--------------+---------------"
for row in "${ROWS[@]}"; do
	echo "$row"
done
echo
echo "meshd RSS: 'meshd up' with N peers from a saved map, once steady (>= ${SETTLE_S} s after start); KiB/peer: (RSS N - RSS 0) / N."
echo "bench columns (tests/tools/peerbench, offline device): KiB/peer of RSS; stranger: one data message with"
echo "a random receiver index refused ($PACKETS of them); route: overlay destination -> peer; timer turn:"
echo "device_run_timers with nothing due."
