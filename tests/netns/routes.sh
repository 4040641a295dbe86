#!/bin/bash
# Subnet routes and exit nodes in the NAT lab (issue 10, items 1, 2, 5).
#
#   coordinator 203.0.113.10      auto-approves c's exit offer (auto_approve_routes)
#   a   10.1.0.2 behind a cone NAT (203.0.113.21)       the client
#   b   10.2.0.2 behind a cone NAT, and on its home LAN 192.168.77.1/24 with a "NAS"
#       (192.168.77.50, no route back to the mesh): advertises 192.168.77.0/24
#   c   203.0.113.23 (public): advertise_exit_node
#   inet 198.51.100.80: an "internet" host on the wan
#
# Checks: a reaches the NAS only after 'meshcoord routes approve' (not before, not after a
# revoke); the NAS sees b's LAN address (SNAT), and a's overlay address with snat_routes:
# false; with 'meshd set exit-node c', a's pings to 198.51.100.80 arrive from c's address
# while a keeps its coordinator connection and its direct path to b; when c goes away a says
# so; the nftables table and the ip rules are gone after meshd exits, and a stale set left by
# kill -9 is replaced at the next start. Counting happens in nft counters of the receivers.
#
# Needs root, /dev/net/tun, nftables, conntrack (exits 77 = SKIP otherwise).
set -u

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/netns/lib.sh
. "$here/lib.sh"
# shellcheck source=tests/netns/natlab.sh
. "$here/natlab.sh"

natlab_mesh_test_begin \
	ping iputils-ping \
	unshare util-linux

CONTROL_PORT=51821
STUN_PORT=3478
NAS_IP=192.168.77.50
LAN_GW=192.168.77.1
LAN=192.168.77.0/24
INET_IP=198.51.100.80
# Waits: the map reaches a node within a second (deltas); 8 s covers a slow CI machine.
WAIT_S=$((8 * LIB_TIME_BOUNDS_SCALE))
declare -A NS PID

natlab_init
natlab_site a cone NS[a]
natlab_site b cone NS[b]
natlab_site c public NS[c]
NS_NAS=$NATLAB_ID-nas
NS_INET=$NATLAB_ID-inet
lib_ns_create "$NS_NAS"
lib_veth "${NS[b]}" lan0 "$LAN_GW/24" "$NS_NAS" eth0 "$NAS_IP/24"
lib_ns_create "$NS_INET"
natlab_attach "$NS_INET" eth0 "$INET_IP/24"

# Receivers count echo requests by source address.
count_rules() { # NS SRC...
	local ns=$1 s rules=""
	shift
	for s in "$@"; do rules="$rules ip saddr $s icmp type echo-request counter"$'\n'; done
	# (add then delete: a second call starts the counters afresh)
	ip netns exec "$ns" nft -f - <<-EOF || lib_die "nft counters in $ns"
	add table ip count
	delete table ip count
	table ip count {
		chain input {
			type filter hook input priority filter; policy accept;
			$rules
		}
	}
	EOF
}
counted() { # NS SRC: echo requests seen from SRC
	ip netns exec "$1" nft list table ip count 2>/dev/null |
		awk -v s="$2" '$0 ~ "saddr " s " " { for (i = 1; i <= NF; i++) if ($i == "packets") print $(i + 1) }' | head -n 1
}

CONF=$T/coord.yaml
lib_coord_write_config "$CONF" "$NATLAB_COORD_IP:$CONTROL_PORT" "$NATLAB_COORD_IP:$STUN_PORT" \
	"$NATLAB_COORD_IP:$CONTROL_PORT" "$T/coord-state"
cat >>"$CONF" <<EOF
auto_approve_routes:
  - {prefix: 0.0.0.0/0, nodes: [c]}
  - {prefix: '::/0', nodes: [c]}
EOF
COORD_PID=
lib_coord_start COORD_PID "$NATLAB_COORD" "$CONF" "$T/coord.log" info
lib_coord_wait_up "$COORD_PID" "$NATLAB_COORD" "$CONTROL_PORT" || lib_die "meshcoord did not start (see $T/coord.log)"
KEY=$(lib_coord_authkey "$CONF" --reusable) || lib_die "no join key"

# node_start NODE [EXTRA YAML]: meshd up --join; its host name is the node's name.
node_start() {
	local n=$1
	printf 'interface: mesh0\nstate_dir: %s\ncontrol_socket: %s\n%s' "$T/$n-state" "$T/$n.sock" "${2:-}" >"$T/$n.yaml"
	lib_meshd_start_args "PID[$n]" "${NS[$n]}" "$n" "$T/$n.yaml" "$T/$n.log" info --join "$KEY"
}
# node_kill9 NODE: as a crash would
node_kill9() {
	kill -KILL "${PID[$1]}"
	wait "${PID[$1]}" 2>/dev/null
	lib_untrack_pid "${PID[$1]}"
}
status() { "$MESHD" status "$@" 2>/dev/null; }
sees_peers() { # NODE PEER...: NODE's status lists every PEER
	local n=$1 out p
	out=$(status -s "$T/$n.sock") || return 1
	shift
	for p in "$@"; do grep -q "^$p " <<<"$out" || return 1; done
}
routes_has() { "$MESHCOORD" routes list -c "$CONF" 2>/dev/null | grep -Eq "$1"; }
no_ping() { ! ip netns exec "$1" ping -n -q -c 2 -i 0.2 -W 1 "$2" >/dev/null 2>&1; }
has_rule() { ip -n "$1" rule show | grep -q 'lookup 5182'; }
no_rule() { ! has_rule "$1"; }
has_table() { ip netns exec "$1" nft list table inet meshd_mesh0 >/dev/null 2>&1; }
no_table() { ! has_table "$1"; }
no_lan_route() { ! ip -n "$1" route show "$LAN" | grep -q mesh0; }

node_start b "advertise_routes: [$LAN]"$'\n'
node_start c $'advertise_exit_node: true\n'
node_start a
for n in a b c; do
	lib_wait_for 10 test -S "$T/$n.sock" || lib_die "meshd $n did not start (see $T/$n.log)"
done
not_mapped() { # PID LIBRARY
	[ -r "/proc/$1/maps" ] && ! grep -q "$2" "/proc/$1/maps"
}

lib_check "a sees b and c" lib_wait_for "$WAIT_S" sees_peers a b c
count_rules "$NS_NAS" "$LAN_GW" 100.64.0.0/10
count_rules "$NS_INET" "${NATLAB_WAN_IP[a]}" "${NATLAB_WAN_IP[c]}"

# ---- subnet route: pending, approved, revoked
lib_check "routes list: b's $LAN advertised, pending" lib_wait_for "$WAIT_S" routes_has "^b +$LAN +yes +no +pending"
lib_check "routes list: c's exit auto-approved" lib_wait_for "$WAIT_S" routes_has '^c +0\.0\.0\.0/0 +yes +yes +active'
lib_check "a cannot reach the NAS before approval" no_ping "${NS[a]}" "$NAS_IP"
lib_check "approve b $LAN" "$MESHCOORD" routes approve b "$LAN" -c "$CONF"
lib_check "a reaches the NAS at $NAS_IP after approval" lib_wait_for "$WAIT_S" lib_ping "${NS[a]}" "$NAS_IP"
lib_check "the NAS sees b's LAN address (SNAT)" [ "$(counted "$NS_NAS" "$LAN_GW")" -gt 0 ]
lib_check "the NAS sees no overlay address" [ "$(counted "$NS_NAS" 100.64.0.0/10)" = 0 ]
st=$(status -s "$T/a.sock")
lib_check "a's status: b offers $LAN, used" grep -q "routes $LAN (used)" <<<"$st"
st=$(status -s "$T/b.sock")
lib_check "b's status: advertises $LAN (approved)" grep -q "advertises $LAN (approved)" <<<"$st"
lib_check "b has its nftables table" has_table "${NS[b]}"
# libnftables is loaded for each change and unloaded after (src/meshd/meshnft.c): idle RSS.
lib_check "b's meshd does not keep libnftables mapped" not_mapped "${PID[b]}" libnftables
lib_check "revoke b $LAN" "$MESHCOORD" routes revoke b "$LAN" -c "$CONF"
lib_check "a drops its route to the NAS after the revoke" lib_wait_for "$WAIT_S" no_lan_route "${NS[a]}"
lib_check "... and cannot reach the NAS" no_ping "${NS[a]}" "$NAS_IP"

# ---- snat_routes: false (the NAS needs a route back to the mesh now)
lib_stop_pid "${PID[b]}"
lib_check "b's table is gone after it exits" no_table "${NS[b]}"
ip -n "$NS_NAS" route add 100.64.0.0/10 via "$LAN_GW"
node_start b "advertise_routes: [$LAN]"$'\nsnat_routes: false\n'
"$MESHCOORD" routes approve b "$LAN" -c "$CONF" >/dev/null 2>&1
count_rules "$NS_NAS" "$LAN_GW" 100.64.0.0/10
lib_check "without SNAT a reaches the NAS" lib_wait_for "$WAIT_S" lib_ping "${NS[a]}" "$NAS_IP"
lib_check "the NAS sees a's overlay address" [ "$(counted "$NS_NAS" 100.64.0.0/10)" -gt 0 ]
lib_check "the NAS sees nothing from b's LAN address" [ "$(counted "$NS_NAS" "$LAN_GW")" = 0 ]

# ---- a stale table after kill -9 is replaced at the next start
node_kill9 b
lib_check "after kill -9 b's table is left" has_table "${NS[b]}"
node_start b "advertise_routes: [$LAN]"$'\n'
lib_check "after the restart a reaches the NAS again" lib_wait_for "$WAIT_S" lib_ping "${NS[a]}" "$NAS_IP"
n=$(ip netns exec "${NS[b]}" nft list tables | grep -c meshd_mesh0)
lib_check "one table, replaced ($n)" [ "$n" = 1 ]
# SIGHUP: a second LAN is advertised without a restart
printf 'interface: mesh0\nstate_dir: %s\ncontrol_socket: %s\nadvertise_routes: [%s, 192.168.78.0/24]\n' \
	"$T/b-state" "$T/b.sock" "$LAN" >"$T/b.yaml"
kill -HUP "${PID[b]}"
lib_check "after SIGHUP b advertises 192.168.78.0/24 too (pending)" \
	lib_wait_for "$WAIT_S" routes_has '^b +192\.168\.78\.0/24 +yes +no +pending'
# Two reloads within the coordinator's second (SERVER_ROUTES_INTERVAL_MS): the last word lands.
b_routes() { # LANS...
	local IFS=,
	printf 'interface: mesh0\nstate_dir: %s\ncontrol_socket: %s\nadvertise_routes: [%s]\n' \
		"$T/b-state" "$T/b.sock" "$*" >"$T/b.yaml"
	kill -HUP "${PID[b]}"
}
b_routes "$LAN" 192.168.79.0/24
sleep 0.2
b_routes "$LAN" 192.168.80.0/24
lib_check "two SIGHUPs within a second: the coordinator ends with the second's routes" \
	lib_wait_for "$WAIT_S" routes_has '^b +192\.168\.80\.0/24 +yes +no +pending'
lib_check "... and neither the first's nor the older ones" \
	eval '! routes_has "^b +192\.168\.(78|79)\."'

# ---- exit node
lib_check "meshd set exit-node c" "$MESHD" set exit-node c -s "$T/a.sock"
count_rules "$NS_INET" "${NATLAB_WAN_IP[a]}" "${NATLAB_WAN_IP[c]}"
lib_check "a reaches $INET_IP through the exit" lib_wait_for "$WAIT_S" lib_ping "${NS[a]}" "$INET_IP"
lib_check "$INET_IP sees c's address" [ "$(counted "$NS_INET" "${NATLAB_WAN_IP[c]}")" -gt 0 ]
lib_check "$INET_IP sees nothing from a's own public address" [ "$(counted "$NS_INET" "${NATLAB_WAN_IP[a]}")" = 0 ]
lib_check "a has its policy rules" has_rule "${NS[a]}"
sleep 3 # keepalives and probes run through the marked sockets meanwhile
st=$(status -s "$T/a.sock" --json)
lib_check "a's coordinator connection survives" grep -q '"coordinator": "connected"' <<<"$st"
lib_check "a's status: exit node c in use" grep -q '"exit_node_status": "c: in use"' <<<"$st"
# An idle path is not probed: traffic first, then the path it takes.
b_ip=$(ip -n "${NS[b]}" -4 -o addr show dev mesh0 | awk '{ split($4, a, "/"); print a[1]; exit }')
lib_check "a pings b's overlay address $b_ip" lib_wait_for "$WAIT_S" lib_ping "${NS[a]}" "$b_ip"
ip netns exec "${NS[a]}" ping -n -q -c 10 -i 0.2 -W 1 "$b_ip" >/dev/null 2>&1 &
lib_check "a's path to b is direct" lib_wait_for "$WAIT_S" bash -c "'$MESHD' status -s '$T/a.sock' | grep -E '^b ' | grep -q direct"

# c goes away: a says so, and drops internet traffic (fail closed)
lib_stop_pid "${PID[c]}"
lib_check "a logs that the exit node is offline" lib_wait_for "$WAIT_S" grep -q 'exit node c: offline' "$T/a.log"
lib_check "a's status says so" bash -c "'$MESHD' status -s '$T/a.sock' | grep -q 'exit node c: offline'"
lib_check "internet traffic is dropped, not sent directly" no_ping "${NS[a]}" "$INET_IP"

# kill -9 leaves the rules; a restart removes them (exit_node is not in a's config)
node_kill9 a
lib_check "after kill -9 a's rules are left" has_rule "${NS[a]}"
node_start a
lib_check "a's restart removes the stale rules" lib_wait_for "$WAIT_S" no_rule "${NS[a]}"
lib_wait_for 10 test -S "$T/a.sock"
lib_check "meshd set exit-node c again" "$MESHD" set exit-node c -s "$T/a.sock"
lib_stop_pid "${PID[a]}"
lib_check "a's rules are gone after it exits" no_rule "${NS[a]}"
lib_check "a's table 5182 is empty" [ -z "$(ip -n "${NS[a]}" route show table 5182 2>/dev/null)" ]
lib_stop_pid "${PID[b]}"
lib_check "b's table is gone after it exits" no_table "${NS[b]}"

lib_summary
