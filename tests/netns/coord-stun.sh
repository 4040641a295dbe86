#!/bin/bash
# meshcoord's STUN server against real STUN clients from Debian, directly and through a NAT.
#
#                    ┌──────────────── cstH-<pid> (hub: bridge br0) ────────────────┐
#                    └──────┬──────────────────────┬───────────────────────┬────────┘
#   ┌─ cstC-<pid> ─────────┴──┐   ┌─ cstA-<pid> ───┴───────┐   ┌─ cstR-<pid> ──┴──────────────┐
#   │ meshcoord 192.0.2.10    │   │ client 192.0.2.20      │   │ router wan 192.0.2.1         │
#   │ STUN udp 3478           │   │ stun, turnutils_...    │   │ nft masquerade  lan 10.0.1.1 │
#   └─────────────────────────┘   └────────────────────────┘   └──────────────┬───────────────┘
#                                                               ┌─ cstN-<pid> ─┴──────────────┐
#                                                               │ NATed client 10.0.1.2       │
#                                                               └─────────────────────────────┘
#
# Checks: the classic RFC 3489 client `stun` (Debian package stun-client) gets the client's
# own address as its mapped address, also from its full NAT-type test; the RFC 5389 client
# `turnutils_stunclient` (package coturn) gets the same through XOR-MAPPED-ADDRESS; behind
# the masquerading router both see the router's public address 192.0.2.1.
#
# Needs root, iproute2, nftables (exit 77 = SKIP otherwise) and a built meshcoord (exit 1
# otherwise). Each STUN client and socat are optional for a developer: a missing one is reported
# as a skipped check naming its package (CI installs them and counts such a skip as a failure).
set -u

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/netns/lib.sh
. "$here/lib.sh"

lib_require_root
lib_require_cmd ip iproute2
lib_require_cmd nft nftables
lib_find_meshcoord

lib_mktemp
lib_trap_cleanup

NS_HUB=cstH-$$
NS_COORD=cstC-$$
NS_CLIENT=cstA-$$
NS_ROUTER=cstR-$$
NS_NATC=cstN-$$
COORD_IP=192.0.2.10
CLIENT_IP=192.0.2.20
ROUTER_WAN_IP=192.0.2.1
ROUTER_LAN_IP=10.0.1.1
NATC_IP=10.0.1.2
CONTROL_PORT=51821
STUN_PORT=3478
# The clients' source ports, so the mapped port can be checked too (no NAT in between).
CLIENT_PORT=40020
NATC_PORT=40030
# A STUN client that gets no answer waits forever; this bounds each run.
STUN_TIMEOUT_S=10
# The classic client's full test sends several requests with retransmissions.
STUN_FULL_TIMEOUT_S=30
T=$LIB_TMPDIR

lib_hub_create "$NS_HUB"
lib_ns_create "$NS_COORD"
lib_ns_create "$NS_CLIENT"
lib_ns_create "$NS_ROUTER"
lib_ns_create "$NS_NATC"
lib_hub_attach "$NS_HUB" "$NS_COORD" eth0 "$COORD_IP/24"
lib_hub_attach "$NS_HUB" "$NS_CLIENT" eth0 "$CLIENT_IP/24"
lib_hub_attach "$NS_HUB" "$NS_ROUTER" wan "$ROUTER_WAN_IP/24"
lib_veth "$NS_ROUTER" lan "$ROUTER_LAN_IP/24" "$NS_NATC" eth0 "$NATC_IP/24"
ip -n "$NS_NATC" route add default via "$ROUTER_LAN_IP"
lib_nat_masquerade "$NS_ROUTER" wan

lib_coord_write_config "$T/coord.yaml" "0.0.0.0:$CONTROL_PORT" "0.0.0.0:$STUN_PORT" \
	"$COORD_IP:$CONTROL_PORT" "$T/coord-state"
lib_log "meshcoord: $MESHCOORD"
lib_log "temp dir: $T"

COORD_PID=
lib_coord_start COORD_PID "$NS_COORD" "$T/coord.yaml" "$T/coord.log"
stun_bound() {
	ip netns exec "$NS_COORD" ss -Hlun "sport = :$STUN_PORT" | grep -q .
}
if lib_coord_wait_up "$COORD_PID" "$NS_COORD" "$CONTROL_PORT" && lib_wait_for 5 stun_bound; then
	lib_ok "meshcoord serves control TCP $CONTROL_PORT and STUN UDP $STUN_PORT"
else
	lib_not_ok "meshcoord serves control TCP $CONTROL_PORT and STUN UDP $STUN_PORT"
fi

# The NAT is real before anything depends on it: a TCP connect from behind it shows up at
# the coordinator from the router's address.
nat_works() {
	# shellcheck disable=SC2016 # $SOCAT_PEERADDR is for the shell socat starts
	ip netns exec "$NS_COORD" timeout 5 socat -u TCP-LISTEN:5555,reuseaddr,bind="$COORD_IP" \
		SYSTEM:'echo "$SOCAT_PEERADDR" >'"$T/nat-peer" 2>/dev/null &
	local pid=$!
	lib_wait_for 3 lib_tcp_listening "$NS_COORD" 5555
	echo hi | ip netns exec "$NS_NATC" timeout 3 socat -u - "TCP:$COORD_IP:5555" 2>/dev/null
	wait "$pid" 2>/dev/null
	[ "$(cat "$T/nat-peer" 2>/dev/null)" = "$ROUTER_WAN_IP" ]
}
if command -v socat >/dev/null 2>&1; then
	lib_check "the lab's router masquerades 10.0.1.2 as $ROUTER_WAN_IP" nat_works
else
	lib_ok "the lab's router masquerades 10.0.1.2 as $ROUTER_WAN_IP # SKIP socat not installed (Debian package socat)"
fi

# ------------------------------------------------------------------ the classic client: stun
# `stun HOST 1 -v -p PORT` sends one Binding request (RFC 3489 test I) from PORT and prints
# "MappedAddress = a.b.c.d:port" for the answer.
stun_mapped() { # NS SRC_PORT -> prints the mapped address or nothing
	ip netns exec "$1" timeout "$STUN_TIMEOUT_S" stun "$COORD_IP" 1 -v -p "$2" 2>&1 |
		sed -n 's/^MappedAddress = \([0-9.]*:[0-9]*\).*/\1/p' | head -n 1
}
if ! command -v stun >/dev/null 2>&1; then
	lib_ok "classic STUN client (stun) gets $CLIENT_IP:$CLIENT_PORT # SKIP 'stun' not installed (Debian package stun-client)"
	lib_ok "classic STUN client behind the NAT gets $ROUTER_WAN_IP # SKIP 'stun' not installed (Debian package stun-client)"
	lib_ok "classic STUN client's NAT-type test completes # SKIP 'stun' not installed (Debian package stun-client)"
else
	got=$(stun_mapped "$NS_CLIENT" "$CLIENT_PORT")
	lib_check "classic STUN client (stun) gets $CLIENT_IP:$CLIENT_PORT (got ${got:-no answer})" \
		test "$got" = "$CLIENT_IP:$CLIENT_PORT"
	got=$(stun_mapped "$NS_NATC" "$NATC_PORT")
	lib_check "classic STUN client behind the NAT gets $ROUTER_WAN_IP (got ${got:-no answer})" \
		test "${got%:*}" = "$ROUTER_WAN_IP"
	# The full test also sends CHANGE-REQUEST (test II: change address and port, test III:
	# change port); the server must answer those too (it has one address, so from the same
	# one) rather than go silent or break. Test I alone would print a MappedAddress, so each
	# test's verdict is checked: all three answered, and the client on the open hub says
	# "Open". A server that ignores CHANGE-REQUEST requests gets "test II = 0".
	ip netns exec "$NS_CLIENT" timeout "$STUN_FULL_TIMEOUT_S" stun "$COORD_IP" -v >"$T/stun-full.txt" 2>&1
	full_rc=$?
	verdicts=$(grep -E '^test (I|II|III) = ' "$T/stun-full.txt" | tr -s ' ' | tr '\n' ',')
	primary=$(grep -m 1 -E '^Primary' "$T/stun-full.txt" | tr -s ' \t' ' ')
	if [ "$full_rc" -ne 124 ] && grep -q "MappedAddress = $CLIENT_IP:" "$T/stun-full.txt" &&
		[ "$verdicts" = "test I = 1,test II = 1,test III = 1," ] && [ "${primary% }" = "Primary: Open" ]; then
		lib_ok "classic STUN client's NAT-type test completes, its CHANGE-REQUEST tests answered ($verdicts $primary)"
	else
		lib_not_ok "classic STUN client's NAT-type test completes, its CHANGE-REQUEST tests answered (exit $full_rc; ${verdicts:-no verdicts} ${primary:-no result})"
		tail -n 15 "$T/stun-full.txt" | sed 's/^/#   stun: /'
	fi
fi

# ------------------------------------------------------------------ RFC 5389 client
# turnutils_stunclient prints "UDP reflexive addr: a.b.c.d:port" from XOR-MAPPED-ADDRESS.
turnutils_mapped() { # NS
	ip netns exec "$1" timeout "$STUN_TIMEOUT_S" turnutils_stunclient -p "$STUN_PORT" "$COORD_IP" 2>&1 |
		sed -n 's/.*reflexive addr: \([0-9.]*:[0-9]*\).*/\1/p' | head -n 1
}
if ! command -v turnutils_stunclient >/dev/null 2>&1; then
	lib_ok "RFC 5389 STUN client (turnutils_stunclient) gets $CLIENT_IP # SKIP not installed (Debian package coturn)"
	lib_ok "RFC 5389 STUN client behind the NAT gets $ROUTER_WAN_IP # SKIP not installed (Debian package coturn)"
else
	got=$(turnutils_mapped "$NS_CLIENT")
	lib_check "RFC 5389 STUN client (turnutils_stunclient) gets $CLIENT_IP (got ${got:-no answer})" \
		test "${got%:*}" = "$CLIENT_IP"
	got=$(turnutils_mapped "$NS_NATC")
	lib_check "RFC 5389 STUN client behind the NAT gets $ROUTER_WAN_IP (got ${got:-no answer})" \
		test "${got%:*}" = "$ROUTER_WAN_IP"
fi

lib_check "meshcoord still running" lib_pid_alive "$COORD_PID"
lib_stop_pid "$COORD_PID"
rc=$?
lib_check "meshcoord exits 0 on SIGTERM (exit $rc)" test "$rc" -eq 0

if [ "$LIB_FAILED" -gt 0 ]; then
	echo "# ---- last lines of meshcoord's log"
	tail -n 30 "$T/coord.log" | sed 's/^/# /'
fi
lib_summary
