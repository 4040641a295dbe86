#!/bin/bash
# What a large peer map costs a node. For each size N (default 0 1 100 1000 10000) it reports
#   - meshd's RSS with N coordinator peers: a real `meshd up` in a namespace of its own (only
#     lo), started from a saved peer map (<state_dir>/coordinator.state, the file a node
#     keeps across restarts) with N peers, each announcing one TEST-NET-3 endpoint; no
#     coordinator answers, so the map stays as saved. Sampled once RSS is steady: at least
#     SETTLE seconds after start, then until two samples a second apart agree within
#     STEADY_KIB (every peer has been sent an initiation and probed by then; a slow start
#     with a large map would otherwise be caught half way), at most MAX_WAIT_S longer.
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

SIZES="0 1 100 1000 10000"
PACKETS=200000
SETTLE_S=5
STEADY_KIB=256 # RSS samples this close, a second apart: the start is over
MAX_WAIT_S=60  # after SETTLE_S, the longest we wait for a steady RSS
# peerbench's own bound on --peers; the state file takes ~100,000 (STATE_FILE_MAX).
MAX_PEERS=50000
usage() {
	echo "usage: $0 [--sizes \"N ...\" (each 0..$MAX_PEERS)] [--packets M (1000..10000000)] [--settle S (1..60)]"
}
while [ $# -gt 0 ]; do
	case $1 in
	--sizes) [ $# -ge 2 ] || { usage >&2; exit 2; }; SIZES=$2; shift 2 ;;
	--packets) [ $# -ge 2 ] || { usage >&2; exit 2; }; PACKETS=$2; shift 2 ;;
	--settle) [ $# -ge 2 ] || { usage >&2; exit 2; }; SETTLE_S=$2; shift 2 ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
whole_in() { # VALUE MIN MAX NAME
	case $1 in
	'' | *[!0-9]*) echo "$4: '$1' is not a whole number" >&2; exit 2 ;;
	esac
	if [ "$1" -lt "$2" ] || [ "$1" -gt "$3" ]; then
		echo "$4: $1 is outside $2..$3" >&2
		exit 2
	fi
}
for n in $SIZES; do whole_in "$n" 0 "$MAX_PEERS" --sizes; done
whole_in "$PACKETS" 1000 10000000 --packets
whole_in "$SETTLE_S" 1 60 --settle

: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
: "${top_builddir:=$top_srcdir}"
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

rss_kb() { # PID
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null
}
field() { # LINE NAME
	printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}

# write_state DIR N: a registered node (100.64.0.1) with N peers, 100.64.0.0/10 + i + 2 each,
# keys random, one endpoint 203.0.113.x:51820 each; the coordinator is 127.0.0.1:1 (nothing
# listens there, so the node keeps retrying and the map stays as saved).
write_state() {
	mkdir -p "$1" && chmod 700 "$1"
	python3 - "$1" "$2" <<-'EOF'
	import base64, ipaddress, os, sys
	d, n = sys.argv[1], int(sys.argv[2])
	k = lambda: base64.b64encode(os.urandom(32)).decode()
	v4 = int(ipaddress.IPv4Address("100.64.0.0"))
	v6 = int(ipaddress.IPv6Address("fd7a:115c:a1e0::"))
	with open(os.path.join(d, "coordinator.state"), "w") as f:
	    f.write("meshd-state 1\n")
	    f.write("coordinator 127.0.0.1:1 %s\n" % k())
	    f.write("self bench 100.64.0.1/10 fd7a:115c:a1e0::1/48\n")
	    for i in range(n):
	        f.write("peer %s p%d %s %s 203.0.113.%d:51820\n" % (k(), i, ipaddress.IPv4Address(v4 + i + 2),
	                ipaddress.IPv6Address(v6 + i + 2), i % 250 + 1))
	os.chmod(os.path.join(d, "coordinator.state"), 0o600)
	EOF
}

# real_rss N: sets RSS to meshd's RSS in KiB with N peers ("-" when it could not be measured).
# Not in a $(...) subshell: the PIDs and namespaces it makes must stay known to the cleanup.
real_rss() {
	local n=$1 dir=$T/n$1 ns=ps$1-$$ mpid
	RSS=-
	write_state "$dir/state" "$n" || return 1
	cat >"$dir/node.yaml" <<-EOF
	interface: bench0
	listen_port: 0
	state_dir: $dir/state
	control_socket: $dir/ctl.sock
	EOF
	lib_ns_create "$ns"
	lib_meshd_start mpid "$ns" "$dir/node.yaml" "$dir/meshd.log" warn
	if ! lib_meshd_wait_up "$mpid" "$ns" bench0; then
		lib_log "N=$n: meshd did not come up:"
		tail -n 5 "$dir/meshd.log" | sed 's/^/#   /' >&2
		lib_stop_pid "$mpid"
		lib_ns_delete "$ns"
		return 1
	fi
	sleep "$SETTLE_S"
	local prev cur waited=0
	cur=$(rss_kb "$mpid")
	while [ -n "$cur" ] && [ "$waited" -lt "$MAX_WAIT_S" ]; do
		prev=$cur
		sleep 1
		waited=$((waited + 1))
		cur=$(rss_kb "$mpid")
		[ -n "$cur" ] && [ $((cur > prev ? cur - prev : prev - cur)) -le "$STEADY_KIB" ] && break
	done
	RSS=${cur:--}
	[ "$RSS" = - ] || lib_log "N=$n: RSS steady after $((SETTLE_S + waited)) s"
	lib_pid_alive "$mpid" || { lib_log "N=$n: meshd died:"; tail -n 5 "$dir/meshd.log" | sed 's/^/#   /' >&2; RSS=-; }
	lib_stop_pid "$mpid" 10
	lib_ns_delete "$ns"
}

lib_log "meshd: $MESHD; peerbench: $PEERBENCH"
lib_log "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), kernel $(uname -r)"

ROWS=()
base_rss=
for N in $SIZES; do
	rss=-
	if [ "$REAL" = 1 ]; then
		real_rss "$N"
		rss=$RSS
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
