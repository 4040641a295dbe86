#!/bin/bash
# What a change gained, measured in one run: the same two-node tunnel (two namespaces, a veth,
# static peers, as contrib/bench/throughput.sh sets up) run with each of several meshd
# binaries in turn, ROUNDS times round-robin, so the machine's drift hits every build alike.
# Per build: TCP 1 stream A->B and B->A (Mbit/s), UDP 1200-byte datagrams received per second,
# idle ping (ms), and both daemons' CPU seconds per GB over the TCP runs; the median of the
# rounds, and each build's ratio to the first.
#
# Usage (root): contrib/bench/compare.sh [--duration S] [--rounds N] LABEL=MESHD ...
#   e.g. compare.sh before=/tmp/old/src/meshd/meshd after=build/src/meshd/meshd
# Traffic stays inside the namespaces it creates; needs iperf3 and ping.
set -u

here=$(cd "$(dirname "$0")" && pwd)
LIB_SKIP_CODE=1
# shellcheck source=tests/netns/lib.sh
. "$here/../../tests/netns/lib.sh"
# shellcheck source=contrib/bench/benchlib.sh
. "$here/benchlib.sh"

DURATION=5
ROUNDS=3
PING_COUNT=10
UDP_RATE=5G
UDP_LEN=1200
IPERF_PORT=5201
IPERF_SLACK_S=30
LABELS=() BINS=()
while [ $# -gt 0 ]; do
	case $1 in
	--duration) DURATION=$2; shift 2 ;;
	--rounds) ROUNDS=$2; shift 2 ;;
	-h | --help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*=*) LABELS+=("${1%%=*}"); BINS+=("${1#*=}"); shift ;;
	*) echo "compare.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
done
bench_num_arg --duration "$DURATION" 1 120
bench_num_arg --rounds "$ROUNDS" 1 20
[ "${#BINS[@]}" -ge 1 ] || { echo "compare.sh: give at least one LABEL=MESHD" >&2; exit 2; }
for b in "${BINS[@]}"; do [ -x "$b" ] || { echo "compare.sh: $b is not an executable" >&2; exit 2; }; done
lib_require_root
lib_require_tun
lib_require_cmd iperf3 iperf3
lib_require_cmd ping iputils-ping
MESHD=${BINS[0]}
lib_find_meshd
lib_mktemp
lib_trap_cleanup
T=$LIB_TMPDIR
NS_A=cmpA-$$
NS_B=cmpB-$$
HZ=$(getconf CLK_TCK)

lib_ns_create "$NS_A"
lib_ns_create "$NS_B"
lib_veth "$NS_A" vethA 192.0.2.1/24 "$NS_B" vethB 192.0.2.2/24
lib_genkey "$T" a
lib_genkey "$T" b
lib_write_config "$T/a.yaml" mesh0 "$T/a.key" 51820 100.64.0.1/10 b "$(cat "$T/b.pub")" 192.0.2.2:51820 100.64.0.2/32
lib_write_config "$T/b.yaml" mesh0 "$T/b.key" 51820 100.64.0.2/10 a "$(cat "$T/a.pub")" 192.0.2.1:51820 100.64.0.1/32
ip netns exec "$NS_B" iperf3 -s -p "$IPERF_PORT" >"$T/iperf-server.log" 2>&1 &
lib_track_pid $!
lib_wait_for 5 lib_tcp_listening "$NS_B" "$IPERF_PORT" || lib_die "iperf3 server did not start"

iperf_json() { # FILE ARGS...
	local f=$1
	shift
	ip netns exec "$NS_A" timeout $((DURATION + IPERF_SLACK_S)) \
		iperf3 -c 100.64.0.2 -p "$IPERF_PORT" -t "$DURATION" -J "$@" >"$f" 2>&1
}

# One round with one build: appends "label metric value" lines to $T/figures.
measure() {
	local label=$1 bin=$2 r=$3 pa pb t0 t1 moved=0 f
	MESHD=$bin lib_meshd_start pa "$NS_A" "$T/a.yaml" "$T/a-$label.log" warn
	MESHD=$bin lib_meshd_start pb "$NS_B" "$T/b.yaml" "$T/b-$label.log" warn
	if ! lib_meshd_wait_up "$pa" "$NS_A" mesh0 || ! lib_meshd_wait_up "$pb" "$NS_B" mesh0 ||
		! lib_wait_for 10 lib_ping "$NS_A" 100.64.0.2; then
		echo "   $label: the tunnel did not come up" >&2
		lib_stop_pid "$pa"
		lib_stop_pid "$pb"
		return 1
	fi
	echo "$label ping_ms $(bench_ping_avg "$NS_A" 100.64.0.2 "$PING_COUNT")" >>"$T/figures"
	t0=$(bench_cpu_ticks "$pa" "$pb")
	for dir in ab ba; do
		f=$T/$label-$r-$dir.json
		if [ "$dir" = ab ]; then iperf_json "$f"; else iperf_json "$f" -R; fi
		echo "$label tcp_${dir}_mbit $(bench_iperf_mbit "$f")" >>"$T/figures"
		moved=$(awk -v a="$moved" -v b="$(bench_iperf_field "$f" bytes)" 'BEGIN { printf "%.0f", a + b }')
	done
	t1=$(bench_cpu_ticks "$pa" "$pb")
	echo "$label cpu_s_per_gb $(awk -v t=$((t1 - t0)) -v hz="$HZ" -v b="$moved" 'BEGIN { if (b > 0) printf "%.2f", t / hz / (b / 1e9) }')" >>"$T/figures"
	f=$T/$label-$r-udp.json
	iperf_json "$f" -u -b "$UDP_RATE" -l "$UDP_LEN"
	echo "$label udp_rx_pps $(awk -v b="$(bench_iperf_field "$f" bytes)" -v s="$(bench_iperf_field "$f" seconds)" -v l="$UDP_LEN" 'BEGIN { if (s > 0) printf "%.0f", b / l / s }')" >>"$T/figures"
	lib_stop_pid "$pa"
	lib_stop_pid "$pb"
}

: >"$T/figures"
for r in $(seq 1 "$ROUNDS"); do
	for i in "${!BINS[@]}"; do
		echo "== round $r/$ROUNDS: ${LABELS[$i]}" >&2
		measure "${LABELS[$i]}" "${BINS[$i]}" "$r"
	done
done

median() { # LABEL METRIC
	awk -v l="$1" -v m="$2" '$1 == l && $2 == m && $3 != "" { print $3 }' "$T/figures" | sort -g |
		awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}
bench_header
echo "compare.sh: ${#BINS[@]} builds, $ROUNDS rounds of ${DURATION} s runs (median of the rounds; x = ratio to ${LABELS[0]})"
printf '%-16s' metric
for l in "${LABELS[@]}"; do printf ' | %12s %6s' "$l" x; done
echo
for m in tcp_ab_mbit tcp_ba_mbit udp_rx_pps ping_ms cpu_s_per_gb; do
	printf '%-16s' "$m"
	base=$(median "${LABELS[0]}" "$m")
	for l in "${LABELS[@]}"; do
		v=$(median "$l" "$m")
		printf ' | %12s %6s' "${v:--}" "$(awk -v a="$v" -v b="$base" 'BEGIN { if (a != "" && b > 0) printf "%.2f", a / b; else print "-" }')"
	done
	echo
done
