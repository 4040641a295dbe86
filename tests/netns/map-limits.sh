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
#    the node handshakes ahead to every peer, and the candidates are counted as refused;
#  - probes per destination: REFLECT_PEERS peers all announcing one (dialable) victim address
#    get at most DEVICE_PROBES_PER_DESTINATION_PER_S probes a second sent there after a burst
#    of as many (the victim counts what arrives in REFLECT_S seconds).
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
REFLECT_PEERS=600 # each would be probed at start
REFLECT_S=3
PROBES_PER_S=100  # DEVICE_PROBES_PER_DESTINATION_PER_S, and the burst
VICTIM_IP=198.51.100.7

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
# listen ADDR PORT SECONDS OUT: counts the UDP datagrams ADDR:PORT receives for SECONDS.
listen() {
	ip netns exec "$NS" python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
s.settimeout(0.2)
got, end = 0, time.time() + float(sys.argv[3])
while time.time() < end:
    try:
        s.recv(2048); got += 1
    except socket.timeout:
        pass
print(got)
' "$1" "$2" "$3" >"$4" 2>&1 &
	listener=$!
}
listen 127.0.0.1 "$VICTIM_PORT" "$LISTEN_S" "$T/victim.txt"
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

# ---------------------------------------------------------------- probes per destination
# The victim's address on lo: local, so what is sent there is delivered to the listener.
ip -n "$NS" addr add "$VICTIM_IP/32" dev lo || lib_die "cannot give lo the victim's address"
rm -rf "$T/state"
mkdir -p "$T/state" && chmod 700 "$T/state"
python3 - "$T/state/coordinator.state" "$REFLECT_PEERS" "$VICTIM_IP" "$VICTIM_PORT" <<'PY'
import base64, os, sys
path, n, ip, port = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
with open(path, "w") as f:
    f.write("meshd-state 1\ncoordinator 127.0.0.1:1 %s\n" % base64.b64encode(os.urandom(32)).decode())
    f.write("self reflector 100.64.0.1/10 fd7a:115c:a1e0::1/48\n")
    for i in range(n):
        f.write("peer %s r%d 100.65.%d.%d fd7a:115c:a1e0::2:%x %s:%s\n" % (
            base64.b64encode(os.urandom(32)).decode(), i, i // 250, i % 250 + 1, i, ip, port))
os.chmod(path, 0o600)
PY
listen "$VICTIM_IP" "$VICTIM_PORT" "$REFLECT_S" "$T/reflect.txt"
sleep 0.3
bench_state_node_config "$T/reflect.yaml" "$IFACE" 0 "$T/state"
lib_meshd_start node_pid "$NS" "$T/reflect.yaml" "$T/reflect.log" info
lib_meshd_wait_up "$node_pid" "$NS" "$IFACE"
rc=
lib_wait_exit rc "$listener" $((REFLECT_S + 5))
COUNTERS=$(lib_meshd_counters "$node_pid" "$T/reflect.log")
lib_stop_pid "$node_pid"
got=$(cat "$T/reflect.txt")
most=$((PROBES_PER_S + PROBES_PER_S * REFLECT_S))
lib_check "$REFLECT_PEERS peers announcing $VICTIM_IP: it got ${got:-?} datagrams in ${REFLECT_S} s (at most $most)" \
	test "${got:-0}" -gt 0 -a "${got:-$most}" -le "$most"
limited=$(lib_counter "$COUNTERS" tx_probes_limited)
lib_check "the probes held back are counted (tx_probes_limited=${limited:-?})" test "${limited:-0}" -gt 0
lib_summary
