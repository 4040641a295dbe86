#!/bin/bash
# max_peers (issue 8, finding 5): a coordinator's map larger than the node's max_peers adds
# only max_peers peers, says so in one log line, and counts the rest; without the cap the
# same map is taken whole. The map comes from a saved state file (no coordinator runs: the
# node lives on what it saved), MAP_PEERS peers with TEST-NET-3 endpoints nobody answers, in
# a namespace with only lo.
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
lib_summary
