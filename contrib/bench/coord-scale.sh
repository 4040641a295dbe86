#!/bin/bash
# How meshcoord scales: N simulated nodes (tests/tools/fakenode) register over loopback with
# one reusable join key and hold their control sessions. For each N it reports
#   - registrations per second (connect, Noise handshake, REGISTER, committed, REGISTERED),
#   - how long until every node holds the full peer map (N x (N-1) PEER messages),
#   - the time for one endpoint change to reach all N-1 other nodes,
#   - meshcoord's resident memory per node (RSS with N sessions minus RSS before any),
#   - meshcoord's CPU while idle with N sessions (10 s; fakenode sends keepalives every 25 s).
#
# Usage (from a built tree; root is not needed, everything stays on 127.0.0.1):
#   contrib/bench/coord-scale.sh [--sizes "1000 10000"] [--hold SECONDS] [--timeout SECONDS]
# MESHCOORD and FAKENODE override the binaries (default: coord/meshcoord, tests/tools/fakenode).
# Each size starts from an empty registry in a temp dir, removed at the end (KEEP_TMPDIR=1 keeps it).
set -u

here=$(cd "$(dirname "$0")" && pwd)
LIB_SKIP_CODE=1
# shellcheck source=tests/netns/lib.sh
. "$here/../../tests/netns/lib.sh"
# shellcheck source=contrib/bench/benchlib.sh
. "$here/benchlib.sh"

SIZES="1000 10000"
HOLD_S=30
TIMEOUT_S=900
# fakenode's own limit on --count, and the benchmark's.
MAX_NODES=20000
# After "all done", let the last messages drain before sampling.
SETTLE_S=2
IDLE_SAMPLE_S=10
BENCH_USAGE="$0 [options]"
bench_opt sizes SIZES str:"N ..." "node counts, each 1..$MAX_NODES (default \"$SIZES\")"
bench_opt hold HOLD_S num 15 600 "seconds the sessions are held once everything is done"
bench_opt timeout TIMEOUT_S num 60 3600 "seconds per size at most"
bench_parse_args "$@"
for n in $SIZES; do bench_num_arg --sizes "$n" 1 "$MAX_NODES"; done
# The idle sample happens during the hold.
[ "$HOLD_S" -ge $((SETTLE_S + IDLE_SAMPLE_S + 3)) ] || { echo "--hold must leave room for the idle sample" >&2; exit 2; }

bench_find_builddir
lib_require_cmd ss iproute2
lib_require_cmd getconf libc-bin
lib_find_meshcoord
lib_find_fakenode

# Both processes hold one descriptor per node (plus a few): raise the soft limit as far as
# the hard one allows, and check it is enough for the largest size.
largest=0
for n in $SIZES; do [ "$n" -gt "$largest" ] && largest=$n; done
hard=$(ulimit -Hn)
if [ "$hard" = unlimited ] || [ "$hard" -gt 1048576 ]; then hard=1048576; fi
ulimit -n "$hard" || lib_die "cannot raise the open file limit to $hard"
[ "$hard" -ge $((largest + 128)) ] || lib_die "open file limit $hard is too small for $largest nodes (raise ulimit -Hn)"

lib_mktemp
lib_trap_cleanup
T=$LIB_TMPDIR
CLK_TCK=$(getconf CLK_TCK)

# A free loopback port pair, so a coordinator already running on the machine is no problem.
free_port() { # START
	local p=$1
	while [ "$p" -lt $(($1 + 200)) ]; do
		if ! ss -Htuan "sport = :$p" | grep -q .; then
			echo "$p"
			return 0
		fi
		p=$((p + 1))
	done
	return 1
}
CONTROL_PORT=$(free_port 52821) || lib_die "no free TCP port near 52821 on 127.0.0.1"
STUN_PORT=$(free_port 53478) || lib_die "no free UDP port near 53478 on 127.0.0.1"

rss_kb() { # PID
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null
}
hwm_kb() { # PID: peak RSS
	awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null
}
cpu_ticks() { # PID: utime + stime (fields 14 and 15; the name field has no spaces for meshcoord)
	awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null
}
field() { # LINE NAME
	printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1
}

lib_log "meshcoord: $MESHCOORD"
lib_log "fakenode: $FAKENODE"
lib_log "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), kernel $(uname -r)"
lib_log "open file limit: $(ulimit -n); loopback ports: TCP $CONTROL_PORT, UDP $STUN_PORT"

ROWS=()
FAILED=0
for N in $SIZES; do
	dir=$T/n$N
	mkdir -p "$dir"
	lib_coord_write_config "$dir/coord.yaml" "127.0.0.1:$CONTROL_PORT" "127.0.0.1:$STUN_PORT" \
		"127.0.0.1:$CONTROL_PORT" "$dir/state"
	# No per-minute cap on the key and a loopback source per node: the coordinator's per-key
	# and per-source limits are for strangers, not for what this measures.
	key=$(lib_coord_authkey "$dir/coord.yaml" --reusable --per-minute 0)
	[ -n "$key" ] || lib_die "meshcoord authkey create failed"
	# warn: a registration is an info line; 10,000 of them would time the log, not the server
	cpid=
	lib_coord_start cpid - "$dir/coord.yaml" "$dir/coord.log" warn
	lib_coord_wait_up "$cpid" - "$CONTROL_PORT" || { tail -n 5 "$dir/coord.log" >&2; lib_die "meshcoord did not start"; }
	sleep 0.5
	rss0=$(rss_kb "$cpid")
	cpu0=$(cpu_ticks "$cpid")
	lib_log "N=$N: meshcoord PID $cpid, RSS ${rss0} KiB before any node; starting fakenode"

	"$FAKENODE" --join "$key" --count "$N" --spread-sources --measure-propagation --hold "$HOLD_S" --timeout "$TIMEOUT_S" \
		>"$dir/fakenode.out" 2>"$dir/fakenode.err" &
	fpid=$!
	lib_track_pid "$fpid"
	# shellcheck disable=SC2016
	if ! lib_wait_for "$TIMEOUT_S" bash -c 'grep -q "all done" "$1" || ! kill -0 "$2" 2>/dev/null' \
		_ "$dir/fakenode.err" "$fpid" || ! grep -q 'all done' "$dir/fakenode.err"; then
		lib_log "N=$N: fakenode did not finish the joins:"
		tail -n 5 "$dir/fakenode.err" | sed 's/^/#   /'
	fi
	cpu_join=$(cpu_ticks "$cpid")
	fake_cpu=$(cpu_ticks "$fpid")
	sleep "$SETTLE_S"
	rss1=$(rss_kb "$cpid")
	c1=$(cpu_ticks "$cpid")
	sleep "$IDLE_SAMPLE_S"
	c2=$(cpu_ticks "$cpid")
	hwm=$(hwm_kb "$cpid")
	rc=
	lib_wait_exit rc "$fpid" $((HOLD_S + 60)) || { lib_stop_pid "$fpid"; rc=timeout; }
	summary=$(grep '^registered=' "$dir/fakenode.out" | tail -n 1)
	lib_log "N=$N: fakenode exit $rc: $summary"
	lib_stop_pid "$cpid" 10
	crc=$?
	[ "$crc" -eq 0 ] || lib_log "N=$N: meshcoord exit $crc on SIGTERM"
	[ "$rc" = 0 ] || FAILED=$((FAILED + 1))

	reg=$(field "$summary" registered)
	rps=$(field "$summary" reg_per_sec)
	conv=$(field "$summary" converge_ms)
	prop=$(field "$summary" propagation_ms)
	msgs=$(field "$summary" peer_msgs)
	per_node=$(awk -v a="${rss1:-0}" -v b="${rss0:-0}" -v n="${reg:-0}" \
		'BEGIN { if (n > 0) printf "%.1f", (a - b) / n; else print "-" }')
	idle_cpu=$(awk -v d=$((${c2:-0} - ${c1:-0})) -v hz="$CLK_TCK" -v s="$IDLE_SAMPLE_S" \
		'BEGIN { printf "%.2f", d * 100 / hz / s }')
	join_cpu=$(awk -v d=$((${cpu_join:-0} - ${cpu0:-0})) -v hz="$CLK_TCK" 'BEGIN { printf "%.1f", d / hz }')
	fake_cpu_s=$(awk -v d="${fake_cpu:-0}" -v hz="$CLK_TCK" 'BEGIN { printf "%.1f", d / hz }')
	conv_s=$(awk -v m="${conv:--1}" 'BEGIN { if (m < 0) print "-"; else printf "%.1f", m / 1000 }')
	ROWS+=("$(printf '%7s | %10s | %8s | %13s | %13s | %8s | %9s | %8s | %9s | %12s | %8s | %13s' \
		"$N" "${reg:-0}" "${rps:--}" "$conv_s" "${prop:--}" \
		"$(awk -v k="${rss0:-0}" 'BEGIN { printf "%.1f", k / 1024 }')" \
		"$(awk -v k="${rss1:-0}" 'BEGIN { printf "%.1f", k / 1024 }')" \
		"$per_node" "$idle_cpu" "$join_cpu" "$(awk -v k="${hwm:-0}" 'BEGIN { printf "%.1f", k / 1024 }')" \
		"$fake_cpu_s")")
	lib_log "N=$N: $((${msgs:-0})) PEER messages received by the simulated nodes"
done

echo
echo "meshcoord scale on loopback ($(nproc) CPUs; fakenode on the same machine)"
printf '%7s | %10s | %8s | %13s | %13s | %8s | %9s | %8s | %9s | %12s | %8s | %13s\n' \
	nodes registered "joins/s" "full maps (s)" "endpoint (ms)" "RSS0 MiB" "RSS N MiB" "KiB/node" "idle CPU%" "join CPU (s)" "peak MiB" "fakenode CPU"
printf '%s\n' "--------+------------+----------+---------------+---------------+----------+-----------+----------+-----------+--------------+----------+--------------"
for row in "${ROWS[@]}"; do
	echo "$row"
done
echo
echo "joins/s: registrations acknowledged per second, all nodes connecting at once (256 handshakes in flight)."
echo "full maps: until every node knew every other (N x (N-1) PEER messages). endpoint: ms from one"
echo "node's ENDPOINTS message until all N-1 others had the PEER update. KiB/node: (RSS with N sessions -"
echo "RSS before) / N. idle CPU: meshcoord over ${IDLE_SAMPLE_S} s with N idle sessions (keepalives every 25 s)."
echo "join CPU: meshcoord CPU time from start until all maps were complete; peak: meshcoord's VmHWM."
echo "fakenode CPU: the simulator's own CPU seconds until then (it shares the machine's CPUs with"
echo "meshcoord, so with few CPUs the join figures are a lower bound for meshcoord alone)."
[ "$FAILED" -eq 0 ]
