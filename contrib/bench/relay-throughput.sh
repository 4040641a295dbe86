#!/bin/bash
# Relay speed (issue 6, item 8): single-stream TCP throughput and ping RTT between two meshd
# nodes, each behind its own cone NAT in the NAT lab (tests/netns/natlab.sh), joined to a
# meshcoord coordinator on the wan, in one run over four paths:
#
#   plain        no tunnel: the laptop's host -> the server's router's public address, with a
#                port forward (TCP to the iperf3 port and ICMP echo, DNAT to the server's
#                host). The same underlay the direct tunnel crosses (host veth, the laptop's
#                masquerade, the wan bridge, the server's router, its LAN veth): the baseline.
#   direct       the tunnel, both nodes logging "path direct".
#   relay UDP    UDP between the two sites cut (natlab_cut_udp): both nodes on "path relay",
#                the coordinator forwarding relay frames over UDP.
#   relay TCP    UDP between each site and the coordinator cut too: the relay frames travel in
#                the TCP control connections. meshd notices that UDP to the relay stopped after
#                up to RELAYCLIENT_ACK_FRESH_MS (~32 s); the coordinator keeps sending to a node
#                over UDP until its binding is relay_bind_fresh old (default 60 s), so this
#                waits (bounded, --tcp-wait) until pings cross and the coordinator's counters
#                show TCP frames only.
#
#   ┌ <id>-lap ─┐   ┌ <id>-lap-r ┐        ┌ <id>-wan ┐        ┌ <id>-srv-r ┐   ┌ <id>-srv ─┐
#   │ meshd     ├───┤ masquerade ├────────┤  bridge  ├────────┤ masquerade ├───┤ meshd     │
#   │ iperf3 -c │   │ 203.0.113.x│        └────┬─────┘        │ 203.0.113.y│   │ iperf3 -s │
#   └───────────┘   └────────────┘   ┌ <id>-coord ┐           └────────────┘   └───────────┘
#                                    │ meshcoord 203.0.113.10 (relay_rate_limit: 0) │
#
# The coordinator runs with relay_rate_limit: 0 (no limit): this measures the relay, not the
# limiter. Usage (root, from a built tree):
#   contrib/bench/relay-throughput.sh [--duration SECONDS] [--tcp-wait SECONDS]
# Needs iperf3, nft, conntrack. MESHD and MESHCOORD override the binaries; KEEP_TMPDIR=1
# keeps the logs.
set -u

here=$(cd "$(dirname "$0")" && pwd)
LIB_SKIP_CODE=1
# shellcheck source=tests/netns/lib.sh
. "$here/../../tests/netns/lib.sh"
# shellcheck source=tests/netns/natlab.sh
. "$here/../../tests/netns/natlab.sh"
# shellcheck source=contrib/bench/benchlib.sh
. "$here/benchlib.sh"

DURATION=10
TCP_WAIT=90
MTU=
BENCH_USAGE="$0 [options]"
bench_opt duration DURATION num 1 300 "length of each iperf3 run"
bench_opt tcp-wait TCP_WAIT num 10 300 "how long to wait for the relay to move to the TCP control connections"
bench_opt mtu MTU str:BYTES "the nodes' tunnel MTU (1280-1500; default: meshd's own default)"
bench_parse_args "$@"
[ -z "$MTU" ] || bench_num_arg --mtu "$MTU" 1280 1500

bench_find_builddir
lib_require_root
lib_require_tun
natlab_require
lib_require_cmd ping iputils-ping
lib_require_cmd iperf3 iperf3
lib_find_meshd
lib_find_meshcoord

lib_mktemp
lib_trap_cleanup
T=$LIB_TMPDIR

IFACE=mesh0
CONTROL_PORT=51821
STUN_PORT=3478
IPERF_PORT=5201
# Each client run may take this much longer than --duration (connect, stats exchange).
IPERF_SLACK_S=30
PING_COUNT=20
REGISTER_LIMIT_S=10
DIRECT_LIMIT_S=25
RELAY_LIMIT_S=10
FAILED=

natlab_init >/dev/null
natlab_site srv cone >/dev/null
natlab_site lap cone >/dev/null
natlab_selfcheck srv lap >"$T/selfcheck.tap" || { cat "$T/selfcheck.tap" >&2; lib_die "NAT lab broken"; }

ping_once() { # NS ADDR
	ip netns exec "$1" ping -n -q -c 1 -W 1 "$2"
}

# measure LABEL ADDR [NOTE]: iperf3 from the laptop's host to ADDR (its server in the server's
# host), then ping; appends one row to $T/rows.
measure() {
	local label=$1 addr=$2 note=${3:-} ns_c=${NATLAB_HOST[lap]} ns_s=${NATLAB_HOST[srv]} mbit='' rtt='' srv
	echo "== $label: ${DURATION}s iperf3 laptop -> server ($addr), ping -c $PING_COUNT" >&2
	if ! lib_wait_for 10 ping_once "$ns_c" "$addr"; then
		echo "   $label: no ping reply from $addr within 10 s; skipping" >&2
		FAILED=yes
		printf '%s|failed|failed|%s\n' "$label" "$note" >>"$T/rows"
		return
	fi
	ip netns exec "$ns_s" iperf3 -s -p "$IPERF_PORT" >"$T/iperf-server.log" 2>&1 &
	srv=$!
	lib_track_pid "$srv"
	if lib_wait_for 5 lib_tcp_listening "$ns_s" "$IPERF_PORT"; then
		ip netns exec "$ns_c" timeout $((DURATION + IPERF_SLACK_S)) \
			iperf3 -c "$addr" -p "$IPERF_PORT" -t "$DURATION" -J >"$T/iperf-$label.json" 2>&1
		mbit=$(bench_iperf_mbit "$T/iperf-$label.json")
	fi
	lib_stop_pid "$srv" 2
	rtt=$(bench_ping_avg "$ns_c" "$addr" "$PING_COUNT")
	[ -n "$mbit" ] || { mbit=failed; FAILED=yes; grep -m1 '"error"' "$T/iperf-$label.json" >&2; }
	[ -n "$rtt" ] || { rtt=failed; FAILED=yes; }
	echo "   $label: $mbit Mbit/s, RTT $rtt ms" >&2
	printf '%s|%s|%s|%s\n' "$label" "$mbit" "$rtt" "$note" >>"$T/rows"
}
: >"$T/rows"

# ---------------------------------------------------------------- (a) plain, no tunnel
SRV_WAN=${NATLAB_WAN_IP[srv]}
ip netns exec "${NATLAB_ROUTER[srv]}" nft -f - <<-NFT || lib_die "cannot add the port forward"
table ip benchfwd {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		iifname "wan" tcp dport $IPERF_PORT dnat to ${NATLAB_HOST_IP[srv]}
		iifname "wan" icmp type echo-request dnat to ${NATLAB_HOST_IP[srv]}
	}
}
NFT
measure plain "$SRV_WAN" "no tunnel: laptop -> server's router $SRV_WAN, port forward to the server"
ip netns exec "${NATLAB_ROUTER[srv]}" nft delete table ip benchfwd
# Forget the forwarded flows, so nothing of the baseline's NAT state lingers.
natlab_conntrack_flush srv
natlab_conntrack_flush lap

# ---------------------------------------------------------------- coordinator and nodes
CONF=$T/coord.yaml
lib_coord_write_config "$CONF" "$NATLAB_COORD_IP:$CONTROL_PORT" "$NATLAB_COORD_IP:$STUN_PORT" \
	"$NATLAB_COORD_IP:$CONTROL_PORT" "$T/coord-state"
echo "relay_rate_limit: 0" >>"$CONF"
lib_coord_start COORD_PID "$NATLAB_COORD" "$CONF" "$T/coord.log" info
lib_coord_wait_up "$COORD_PID" "$NATLAB_COORD" "$CONTROL_PORT" || {
	cat "$T/coord.log" >&2
	lib_die "meshcoord does not start"
}
KEY=$(lib_coord_authkey "$CONF" --reusable)
[ -n "$KEY" ] || lib_die "no join key"

declare -A PID=() IP=()
# node_start SITE: meshd on SITE's host, joined with the reusable key; waits for its address.
node_start() {
	local n=$1 ns=${NATLAB_HOST[$1]}
	mkdir -p "$T/$n-state" && chmod 700 "$T/$n-state"
	printf 'interface: %s\nstate_dir: %s\nlisten_port: 41641\ncontrol_socket: %s\n' "$IFACE" "$T/$n-state" "$T/$n.sock" >"$T/$n.yaml"
	[ -z "$MTU" ] || printf 'mtu: %s\n' "$MTU" >>"$T/$n.yaml"
	lib_meshd_start_args "PID[$n]" "$ns" "$n" "$T/$n.yaml" "$T/$n.log" info --join "$KEY"
	if ! lib_wait_for "$REGISTER_LIMIT_S" grep -q 'registered with coordinator' "$T/$n.log" ||
		! lib_wait_for 5 bash -c "ip -n $ns -4 -o addr show dev $IFACE | grep -q inet"; then
		tail -n 20 "$T/$n.log" >&2
		lib_die "meshd on $n did not register"
	fi
	IP[$n]=$(lib_iface_ipv4 "$ns" "$IFACE")
}
node_start srv
node_start lap
TUN_MTU=$(ip -n "${NATLAB_HOST[lap]}" -o link show dev "$IFACE" | sed -n 's/.* mtu \([0-9]*\).*/\1/p')

# The path SITE's node last logged: direct, relay or none.
current_path() {
	case $(grep -E 'path (direct|relay)' "$T/$1.log" | tail -n 1) in
	*"path direct"*) echo direct ;;
	*"path relay"*) echo relay ;;
	*) echo none ;;
	esac
}
both_on() { [ "$(current_path srv)" = "$1" ] && [ "$(current_path lap)" = "$1" ]; }

# coord_counters: the coordinator's counters line (SIGUSR1), or empty.
coord_counters() { lib_meshd_counters "$COORD_PID" "$T/coord.log"; }
# relay_frames BEFORE AFTER: "udp N tcp M", the relay frames forwarded between two lines.
relay_frames() {
	local u0 u1 t0 t1
	u0=$(lib_counter "$1" relay_udp_frames) u1=$(lib_counter "$2" relay_udp_frames)
	t0=$(lib_counter "$1" relay_tcp_frames) t1=$(lib_counter "$2" relay_tcp_frames)
	echo "udp $((${u1:-0} - ${u0:-0})) tcp $((${t1:-0} - ${t0:-0}))"
}
# measure_relay LABEL EXPECT: measure over the tunnel, then check which kind of relay frames
# (udp or tcp) the coordinator forwarded meanwhile.
measure_relay() {
	local label=$1 expect=$2 before after frames
	before=$(coord_counters)
	measure "$label" "${IP[srv]}" "both nodes: path $(current_path srv)/$(current_path lap)"
	after=$(coord_counters)
	frames=$(relay_frames "$before" "$after")
	echo "   coordinator forwarded during $label: $frames frames" >&2
	case $expect in
	udp) [[ $frames =~ ^udp\ [1-9][0-9]*\ tcp\ 0$ ]] ;;
	tcp) [[ $frames =~ ^udp\ 0\ tcp\ [1-9][0-9]*$ ]] ;;
	esac || { echo "   $label: expected $expect relay frames only" >&2; FAILED=yes; }
	sed -i "\$s/\$/; relay frames: $frames/" "$T/rows"
}

# ---------------------------------------------------------------- (b) direct
lib_wait_for 10 ping_once "${NATLAB_HOST[lap]}" "${IP[srv]}"
if lib_wait_for "$DIRECT_LIMIT_S" both_on direct; then
	measure direct "${IP[srv]}" "both nodes: path direct"
else
	echo "   the nodes did not both go direct within $DIRECT_LIMIT_S s (srv: $(current_path srv), lap: $(current_path lap))" >&2
	printf 'direct|failed|failed|not direct\n' >>"$T/rows"
	FAILED=yes
fi

# ---------------------------------------------------------------- (c) relay over UDP
natlab_cut_udp srv lap
# Traffic makes the nodes notice the silent direct path.
ip netns exec "${NATLAB_HOST[lap]}" ping -n -q -c $((RELAY_LIMIT_S * 5)) -i 0.2 -W 1 "${IP[srv]}" >/dev/null 2>&1 &
PING_PID=$!
lib_track_pid "$PING_PID"
start=$(lib_now_ms)
if lib_wait_for "$RELAY_LIMIT_S" both_on relay; then
	echo "== direct path cut: both nodes on the relay after $(($(lib_now_ms) - start)) ms" >&2
	lib_stop_pid "$PING_PID" 1
	measure_relay "relay UDP" udp
else
	lib_stop_pid "$PING_PID" 1
	echo "   the nodes did not both move to the relay within $RELAY_LIMIT_S s" >&2
	printf 'relay UDP|failed|failed|not relayed\n' >>"$T/rows"
	FAILED=yes
fi

# ---------------------------------------------------------------- (d) relay over TCP
natlab_cut_udp srv coord
natlab_cut_udp lap coord
echo "== UDP to the coordinator cut: waiting (at most $TCP_WAIT s) for the relay to move to TCP" >&2
start=$(lib_now_ms)
deadline=$((start + TCP_WAIT * 1000))
on_tcp=
while [ "$(lib_now_ms)" -lt "$deadline" ]; do
	before=$(coord_counters)
	if ip netns exec "${NATLAB_HOST[lap]}" ping -n -q -c 3 -i 0.2 -W 1 "${IP[srv]}" >/dev/null 2>&1; then
		frames=$(relay_frames "$before" "$(coord_counters)")
		if [[ $frames =~ ^udp\ 0\ tcp\ [1-9] ]]; then
			on_tcp=yes
			break
		fi
	fi
	sleep 1
done
if [ -n "$on_tcp" ]; then
	echo "   relayed over TCP both ways after $(($(lib_now_ms) - start)) ms" >&2
	measure_relay "relay TCP" tcp
else
	echo "   no ping over a TCP-only relay within $TCP_WAIT s" >&2
	printf 'relay TCP|failed|failed|not on TCP\n' >>"$T/rows"
	FAILED=yes
fi

lib_stop_pid "${PID[lap]}"
lib_stop_pid "${PID[srv]}"
lib_stop_pid "$COORD_PID"

# ---------------------------------------------------------------- table
echo
echo "Single-stream TCP laptop -> server (iperf3, ${DURATION} s) and ping RTT (${PING_COUNT} pings), two cone NATs"
bench_header
echo "tunnel MTU ${TUN_MTU:-?}"
echo
awk -F'|' '
	function num(x) { return x ~ /^[0-9.]+$/ }
	{ rows[NR] = $0; if ($1 == "direct" && num($2)) direct = $2 }
	END {
		fmt = "%-10s | %10s | %11s | %7s | %s\n"
		printf fmt, "path", "TCP Mbit/s", "% of direct", "ping ms", "what"
		printf "%s\n", "-----------+------------+-------------+---------+------------------------------"
		for (i = 1; i <= NR; i++) {
			split(rows[i], f, "|")
			pct = (direct > 0 && num(f[2])) ? sprintf("%.1f %%", 100 * f[2] / direct) : "n/a"
			printf fmt, f[1], f[2], pct, f[3], f[4]
			if (f[1] ~ /^relay/) relay[f[1]] = num(f[2]) && direct > 0 ? sprintf("%.2f", f[2] / direct) : "n/a"
		}
		printf "\nrelay/direct: over UDP %s, over TCP %s (goal >= 0.80)\n", \
			("relay UDP" in relay) ? relay["relay UDP"] : "n/a", ("relay TCP" in relay) ? relay["relay TCP"] : "n/a"
	}' "$T/rows"

[ -z "$FAILED" ]
