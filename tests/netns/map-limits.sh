#!/bin/bash
# What a node takes from a coordinator's map (issue 8, findings 5 and 7). The map comes from a
# saved state file (no coordinator runs: the node lives on what it saved), in a namespace with
# only lo.
#  - max_peers: a map of MAP_PEERS peers (TEST-NET-3 endpoints nobody answers) with max_peers
#    MAX_PEERS gives MAX_PEERS peers, one log line and a count of the rest; without the cap
#    the same map is taken whole;
#  - undialable candidates: peers announcing 127.0.0.1, ::1, 0.0.0.0, a broadcast and a multicast
#    endpoint (what a malicious node or coordinator would use to turn the mesh into a
#    reflector) are never sent anything: a UDP listener on 127.0.0.1 sees no datagram while
#    the node handshakes ahead to every peer, and the candidates are counted as refused.
set -u

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"
# shellcheck source=contrib/bench/benchlib.sh
. "$here/../../contrib/bench/benchlib.sh"

lib_require_root
lib_require_tun
lib_require_cmd ip iproute2
lib_require_cmd python3 python3
lib_find_meshd
lib_mktemp
lib_trap_cleanup

T=$LIB_TMPDIR
NS=pcap-$$
IFACE=cap0
MAP_PEERS=40
MAX_PEERS=25
VICTIM_PORT=47999 # the "victim" on the node's own loopback
LISTEN_S=6        # a handshake ahead goes out at start; retries every 5 s

lib_ns_create "$NS"
bench_write_state "$T/state" "$MAP_PEERS" capped 100.64.0.1/10 fd7a:115c:a1e0::1/48 || lib_die "cannot write the state"

# run_node LABEL [max_peers]: starts meshd on the saved map, waits for its interface, asks for
# its counters and status; sets PEERS (from status --json) and COUNTERS.
run_node() {
	local label=$1 cap=${2:-} node_pid
	bench_state_node_config "$T/$label.yaml" "$IFACE" 0 "$T/state"
	[ -n "$cap" ] && echo "max_peers: $cap" >>"$T/$label.yaml"
	lib_meshd_start node_pid "$NS" "$T/$label.yaml" "$T/$label.log" info
	PEERS= COUNTERS=
	if lib_meshd_wait_up "$node_pid" "$NS" "$IFACE"; then
		COUNTERS=$(lib_meshd_counters "$node_pid" "$T/$label.log")
		PEERS=$(ip netns exec "$NS" "$MESHD" status --json -s "$T/$label.sock" |
			python3 -c 'import json, sys; print(len(json.load(sys.stdin)["peers"]))')
	fi
	lib_stop_pid "$node_pid"
}

run_node capped "$MAX_PEERS"
lib_check "with max_peers: $MAX_PEERS, a map of $MAP_PEERS peers gives ${PEERS:-?} peers" test "${PEERS:-0}" -eq "$MAX_PEERS"
over=$(lib_counter "$COUNTERS" map_peers_over_max)
lib_check "the $((MAP_PEERS - MAX_PEERS)) left out are counted (map_peers_over_max=${over:-?})" \
	test "${over:-0}" -eq "$((MAP_PEERS - MAX_PEERS))"
lines=$(grep -c "more than max_peers ($MAX_PEERS) peers" "$T/capped.log")
lib_check "one log line says so ($lines): '$(grep -m 1 'more than max_peers' "$T/capped.log" | sed 's/.*the coordinator/the coordinator/' | cut -c1-100)'" \
	test "$lines" -eq 1

run_node uncapped
lib_check "without max_peers (default $((16384))), the same map gives all ${PEERS:-?} of $MAP_PEERS" test "${PEERS:-0}" -eq "$MAP_PEERS"
lib_check "and says nothing about max_peers" bash -c "! grep -q max_peers '$T/uncapped.log'"
# ---------------------------------------------------------------- undialable candidates
rm -rf "$T/state"
bench_write_state "$T/state" 0 victim 100.64.0.1/10 fd7a:115c:a1e0::1/48 \
	"peer $(lib_random_pubkey) evil1 100.64.9.1 fd7a:115c:a1e0::9:1 127.0.0.1:$VICTIM_PORT" \
	"peer $(lib_random_pubkey) evil2 100.64.9.2 fd7a:115c:a1e0::9:2 0.0.0.0:$VICTIM_PORT 255.255.255.255:$VICTIM_PORT" \
	"peer $(lib_random_pubkey) evil3 100.64.9.3 fd7a:115c:a1e0::9:3 224.0.0.1:$VICTIM_PORT [::1]:$VICTIM_PORT" ||
	lib_die "cannot write the state"
ip netns exec "$NS" python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.settimeout(0.2)
got, end = 0, time.time() + float(sys.argv[2])
while time.time() < end:
    try:
        s.recv(2048); got += 1
    except socket.timeout:
        pass
print(got)
' "$VICTIM_PORT" "$LISTEN_S" >"$T/victim.txt" 2>&1 &
listener=$!
lib_track_pid "$listener"
sleep 0.3
bench_state_node_config "$T/victim.yaml" "$IFACE" 0 "$T/state"
lib_meshd_start node_pid "$NS" "$T/victim.yaml" "$T/victim.log" debug
lib_meshd_wait_up "$node_pid" "$NS" "$IFACE"
rc=
lib_wait_exit rc "$listener" $((LISTEN_S + 5))
COUNTERS=$(lib_meshd_counters "$node_pid" "$T/victim.log")
PEERS=$(ip netns exec "$NS" "$MESHD" status --json -s "$T/victim.sock" |
	python3 -c 'import json, sys; print(len(json.load(sys.stdin)["peers"]))')
lib_stop_pid "$node_pid"
lib_check "the node runs on the saved map of 3 peers (${PEERS:-?})" test "${PEERS:-0}" -eq 3
[ "${PEERS:-0}" -eq 3 ] || tail -n 5 "$T/victim.log" | sed 's/^/# /'
got=$(cat "$T/victim.txt")
lib_check "nothing was sent to 127.0.0.1:$VICTIM_PORT in ${LISTEN_S} s (got ${got:-?} datagrams)" test "${got:-1}" = 0
refused=$(lib_counter "$COUNTERS" map_endpoints_refused)
lib_check "the 5 undialable candidates were refused (map_endpoints_refused=${refused:-?})" test "${refused:-0}" -eq 5
lib_summary
