#!/bin/bash
# Single-stream TCP throughput and RTT between two network namespaces, side by side in one
# run: the bare veth, meshd, wireguard-go (the userspace reference) and, if the kernel has
# it, kernel WireGuard (the upper bound for any tunnel).
#
#   ┌────────────── benchA-<pid> ──────────────┐      ┌────────────── benchB-<pid> ──────────────┐
#   │ mesh0    100.64.0.1/10   (meshd)         │      │ mesh0    100.64.0.2/10   (meshd)         │
#   │ bwgA-<n> 100.65.0.1/24   (wireguard-go)  │      │ bwgB-<n> 100.65.0.2/24   (wireguard-go)  │
#   │ bkwA     100.66.0.1/24   (kernel wg)     │      │ bkwB     100.66.0.2/24   (kernel wg)     │
#   │ vethA    192.0.2.1/24  ──────────────────┼──────┼──────────────────  vethB  192.0.2.2/24   │
#   └──────────────────────────────────────────┘      └──────────────────────────────────────────┘
#
# One tunnel runs at a time, all over the same veth. Usage (root, from a built tree):
#   contrib/bench/throughput.sh [--duration SECONDS] [--no-kernel-wg]
# Needs iperf3, wireguard-go, wireguard-tools. MESHD overrides the meshd binary.
set -u

here=$(cd "$(dirname "$0")" && pwd)
LIB_SKIP_CODE=1
# shellcheck source=tests/netns/lib.sh
. "$here/../../tests/netns/lib.sh"

DURATION=10
KERNEL_WG=yes
usage() {
	echo "usage: $0 [--duration SECONDS (1-300, default 10)] [--no-kernel-wg]"
}
while [ $# -gt 0 ]; do
	case $1 in
	--duration)
		[ $# -ge 2 ] || { usage >&2; exit 2; }
		DURATION=$2
		shift 2
		;;
	--duration=*)
		DURATION=${1#*=}
		shift
		;;
	--no-kernel-wg)
		KERNEL_WG=
		shift
		;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		usage >&2
		exit 2
		;;
	esac
done
case $DURATION in
'' | *[!0-9]*) echo "--duration: '$DURATION' is not a whole number of seconds" >&2; exit 2 ;;
esac
if [ "$DURATION" -lt 1 ] || [ "$DURATION" -gt 300 ]; then
	echo "--duration: $DURATION is outside 1..300" >&2
	exit 2
fi

if [ -z "${MESHD:-}" ] && [ ! -x "$here/../../src/meshd/meshd" ] && [ -x ./src/meshd/meshd ]; then
	MESHD=./src/meshd/meshd
fi
lib_require_root
lib_require_tun
lib_require_cmd ip iproute2
lib_require_cmd ping iputils-ping
lib_require_cmd iperf3 iperf3
lib_require_cmd wireguard-go wireguard-go
lib_require_cmd wg wireguard-tools
lib_find_meshd

lib_mktemp
lib_trap_cleanup

NS_A=benchA-$$
NS_B=benchB-$$
T=$LIB_TMPDIR
IPERF_PORT=5201
# Each client run may take this much longer than --duration (connect, stats exchange).
IPERF_SLACK_S=30
PING_COUNT=20
# Userspace WireGuard names its control socket after the interface in the shared
# /var/run/wireguard, so the names must be unique on the host, not only per namespace.
WG_IF_A=bwgA-$$
WG_IF_B=bwgB-$$
FAILED=

lib_ns_create "$NS_A"
lib_ns_create "$NS_B"
lib_veth "$NS_A" vethA 192.0.2.1/24 "$NS_B" vethB 192.0.2.2/24

# iperf3 -J: the receiver's view of the whole test, in Mbit/s.
iperf_mbit() {
	awk -F: '/"sum_received"/ { f = 1 }
		f && /"bits_per_second"/ { v = $2; gsub(/[^0-9.eE+-]/, "", v); printf "%.0f\n", v / 1e6; exit }' "$1"
}

# measure LABEL SERVER_ADDR(in B) CLIENT_ADDR(in A): appends one row to $T/rows.
measure() {
	local label=$1 addr_b=$2 fwd=n/a rev=n/a rtt=n/a srv
	echo "== $label: ${DURATION}s iperf3 A→B, ${DURATION}s B→A (-R), ping -c $PING_COUNT" >&2
	if ! lib_wait_for 10 lib_ping "$NS_A" "$addr_b"; then
		echo "   $label: no ping reply from $addr_b within 10 s; skipping" >&2
		FAILED=yes
		printf '%s|%s|%s|%s\n' "$label" failed failed failed >>"$T/rows"
		return
	fi
	ip netns exec "$NS_B" iperf3 -s -B "$addr_b" -p "$IPERF_PORT" >"$T/iperf-server.log" 2>&1 &
	srv=$!
	lib_track_pid "$srv"
	if lib_wait_for 5 lib_tcp_listening "$NS_B" "$IPERF_PORT"; then
		ip netns exec "$NS_A" timeout $((DURATION + IPERF_SLACK_S)) \
			iperf3 -c "$addr_b" -p "$IPERF_PORT" -t "$DURATION" -J >"$T/fwd.json" 2>&1
		fwd=$(iperf_mbit "$T/fwd.json")
		ip netns exec "$NS_A" timeout $((DURATION + IPERF_SLACK_S)) \
			iperf3 -c "$addr_b" -p "$IPERF_PORT" -t "$DURATION" -R -J >"$T/rev.json" 2>&1
		rev=$(iperf_mbit "$T/rev.json")
	fi
	lib_stop_pid "$srv" 2
	rtt=$(ip netns exec "$NS_A" ping -n -q -c "$PING_COUNT" -i 0.2 -W 1 "$addr_b" 2>/dev/null |
		sed -n 's|^rtt [^=]*= [0-9.]*/\([0-9.]*\)/.*|\1|p')
	[ -n "$fwd" ] || { fwd=failed; FAILED=yes; grep -m1 '"error"' "$T/fwd.json" >&2; }
	[ -n "$rev" ] || { rev=failed; FAILED=yes; grep -m1 '"error"' "$T/rev.json" >&2; }
	[ -n "$rtt" ] || { rtt=failed; FAILED=yes; }
	echo "   $label: A→B $fwd Mbit/s, B→A $rev Mbit/s, RTT $rtt ms" >&2
	printf '%s|%s|%s|%s\n' "$label" "$fwd" "$rev" "$rtt" >>"$T/rows"
}

: >"$T/rows"

# ---------------------------------------------------------------- (a) bare veth
measure "veth (no tunnel)" 192.0.2.2

# ---------------------------------------------------------------- (b) meshd
lib_genkey "$T" a
lib_genkey "$T" b
lib_write_config "$T/a.yaml" mesh0 "$T/a.key" 51820 100.64.0.1/10 \
	b "$(cat "$T/b.pub")" 192.0.2.2:51820 100.64.0.2/32
lib_write_config "$T/b.yaml" mesh0 "$T/b.key" 51820 100.64.0.2/10 \
	a "$(cat "$T/a.pub")" 192.0.2.1:51820 100.64.0.1/32
lib_meshd_start PID_A "$NS_A" "$T/a.yaml" "$T/meshd-a.log" warn
lib_meshd_start PID_B "$NS_B" "$T/b.yaml" "$T/meshd-b.log" warn
if lib_meshd_wait_up "$PID_A" "$NS_A" mesh0 && lib_meshd_wait_up "$PID_B" "$NS_B" mesh0; then
	measure "meshd" 100.64.0.2
else
	echo "   meshd did not start:" >&2
	cat "$T/meshd-a.log" "$T/meshd-b.log" >&2
	printf 'meshd|failed|failed|failed\n' >>"$T/rows"
	FAILED=yes
fi
lib_stop_pid "$PID_A"
lib_stop_pid "$PID_B"

# ---------------------------------------------------------------- (c) wireguard-go
# wg_configure NS IFACE KEYFILE ADDR PEER_PUB PEER_ALLOWED PEER_ENDPOINT PORT
wg_configure() {
	ip netns exec "$1" wg set "$2" listen-port "$8" private-key "$3" \
		peer "$5" allowed-ips "$6" endpoint "$7" &&
		ip -n "$1" addr add "$4" dev "$2" &&
		ip -n "$1" link set "$2" mtu 1420 up
}
(umask 077 && wg genkey >"$T/wa.key" && wg genkey >"$T/wb.key")
wg pubkey <"$T/wa.key" >"$T/wa.pub"
wg pubkey <"$T/wb.key" >"$T/wb.pub"

# -f: stay in the foreground so we hold its PID; the banner about the kernel module goes to the log.
ip netns exec "$NS_A" wireguard-go -f "$WG_IF_A" >"$T/wg-a.log" 2>&1 &
WG_PID_A=$!
lib_track_pid "$WG_PID_A"
ip netns exec "$NS_B" wireguard-go -f "$WG_IF_B" >"$T/wg-b.log" 2>&1 &
WG_PID_B=$!
lib_track_pid "$WG_PID_B"
if lib_wait_for 10 lib_link_exists "$NS_A" "$WG_IF_A" && lib_wait_for 10 lib_link_exists "$NS_B" "$WG_IF_B" &&
	lib_wait_for 5 test -S "/var/run/wireguard/$WG_IF_A.sock" &&
	lib_wait_for 5 test -S "/var/run/wireguard/$WG_IF_B.sock" &&
	wg_configure "$NS_A" "$WG_IF_A" "$T/wa.key" 100.65.0.1/24 "$(cat "$T/wb.pub")" 100.65.0.2/32 192.0.2.2:51821 51821 &&
	wg_configure "$NS_B" "$WG_IF_B" "$T/wb.key" 100.65.0.2/24 "$(cat "$T/wa.pub")" 100.65.0.1/32 192.0.2.1:51821 51821; then
	measure "wireguard-go" 100.65.0.2
else
	echo "   wireguard-go did not start:" >&2
	cat "$T/wg-a.log" "$T/wg-b.log" >&2
	printf 'wireguard-go|failed|failed|failed\n' >>"$T/rows"
	FAILED=yes
fi
lib_stop_pid "$WG_PID_A"
lib_stop_pid "$WG_PID_B"

# ---------------------------------------------------------------- (d) kernel WireGuard
if [ -n "$KERNEL_WG" ] && ip -n "$NS_A" link add bkwA type wireguard 2>/dev/null; then
	ip -n "$NS_B" link add bkwB type wireguard
	if wg_configure "$NS_A" bkwA "$T/wa.key" 100.66.0.1/24 "$(cat "$T/wb.pub")" 100.66.0.2/32 192.0.2.2:51822 51822 &&
		wg_configure "$NS_B" bkwB "$T/wb.key" 100.66.0.2/24 "$(cat "$T/wa.pub")" 100.66.0.1/32 192.0.2.1:51822 51822; then
		measure "wireguard (kernel)" 100.66.0.2
	else
		printf 'wireguard (kernel)|failed|failed|failed\n' >>"$T/rows"
		FAILED=yes
	fi
	ip -n "$NS_A" link del bkwA 2>/dev/null
	ip -n "$NS_B" link del bkwB 2>/dev/null
elif [ -n "$KERNEL_WG" ]; then
	echo "== kernel WireGuard not available here; leaving it out" >&2
fi

# ---------------------------------------------------------------- table
echo
echo "Single-stream TCP (iperf3, ${DURATION} s each way) and ping RTT (${PING_COUNT} pings), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "kernel $(uname -r), $(nproc) CPU(s): $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
echo "meshd: $("$MESHD" --version 2>/dev/null | head -n 1); $(iperf3 --version | head -n 1)"
echo
awk -F'|' '
	function num(x) { return x ~ /^[0-9.]+$/ }
	NR == 1 { base = (num($2) && num($3)) ? ($2 + $3) / 2 : 0 }
	{ rows[NR] = $0 }
	END {
		fmt = "%-20s | %14s | %14s | %8s | %13s\n"
		printf fmt, "path", "TCP A→B Mbit/s", "TCP B→A Mbit/s", "RTT ms", "vs veth (avg)"
		printf "%s\n", "---------------------+----------------+----------------+----------+---------------"
		for (i = 1; i <= NR; i++) {
			split(rows[i], f, "|")
			ratio = "n/a"
			if (base > 0 && num(f[2]) && num(f[3]))
				ratio = sprintf("%.1f %%", 100 * (f[2] + f[3]) / 2 / base)
			printf fmt, f[1], f[2], f[3], f[4], ratio
		}
	}' "$T/rows"

[ -z "$FAILED" ]
