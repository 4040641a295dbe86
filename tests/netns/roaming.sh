#!/bin/bash
# Endpoint roaming: node A's underlay address changes while it pings B, and B follows.
#
#   ┌──────────── roA-<pid> ─────────────┐      ┌──────────── roB-<pid> ─────────────┐
#   │  mesh0  100.64.0.1/10              │      │  mesh0  100.64.0.2/10              │
#   │  vethA  192.0.2.1/24               │      │  B's config: a at 192.0.2.1:51820  │
#   │   then  192.0.2.11/24 (1 removed)  ├──────┤  vethB  192.0.2.2/24               │
#   └────────────────────────────────────┘      └────────────────────────────────────┘
#
# A pings B five times a second. After PINGS_BEFORE_MOVE answered echoes, A gets the new
# address 192.0.2.11 and loses 192.0.2.1 (promote_secondaries keeps the subnet route, so
# A's datagrams now leave from the new address). Checks: B's log says "endpoint
# 192.0.2.1:51820 -> 192.0.2.11:51820", B's endpoint for A is the new one in
# `meshd status`, at most MAX_LOST echoes are lost, every echo of the last LAST_ALL_OK
# is answered, and B can reach A again on its own (B→A ping) after the move.
#
# Needs root, /dev/net/tun, iproute2 (exits 77 = SKIP otherwise) and a built meshd.
set -u

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/netns/lib.sh
. "$here/lib.sh"

lib_require_root
lib_require_tun
lib_require_cmd ip iproute2
lib_require_cmd ping iputils-ping
lib_find_meshd

lib_mktemp
lib_trap_cleanup

NS_A=roA-$$
NS_B=roB-$$
UNDERLAY_A=192.0.2.1
UNDERLAY_A_NEW=192.0.2.11
UNDERLAY_B=192.0.2.2
OVERLAY_A=100.64.0.1
OVERLAY_B=100.64.0.2
PORT=51820
IFACE=mesh0
T=$LIB_TMPDIR
PING_COUNT=60          # at 0.2 s: 12 s of pinging
PINGS_BEFORE_MOVE=10   # answered echoes before the address changes
MAX_LOST=3             # B's replies to the old address until A's next echo moves it: about 1
LAST_ALL_OK=20         # the last echoes must all be answered: the ping continues

lib_ns_create "$NS_A"
lib_ns_create "$NS_B"
lib_veth "$NS_A" vethA "$UNDERLAY_A/24" "$NS_B" vethB "$UNDERLAY_B/24"
# Removing the primary address then promotes the new (secondary) one instead of deleting it.
ip netns exec "$NS_A" sysctl -q -w net.ipv4.conf.vethA.promote_secondaries=1 ||
	lib_die "cannot set promote_secondaries in $NS_A"
lib_genkey "$T" a
lib_genkey "$T" b
lib_write_config "$T/a.yaml" "$IFACE" "$T/a.key" "$PORT" "$OVERLAY_A/10" \
	b "$(cat "$T/b.pub")" "$UNDERLAY_B:$PORT" "$OVERLAY_B/32"
lib_write_config "$T/b.yaml" "$IFACE" "$T/b.key" "$PORT" "$OVERLAY_B/10" \
	a "$(cat "$T/a.pub")" "$UNDERLAY_A:$PORT" "$OVERLAY_A/32"

PID_A=
PID_B=
lib_meshd_start PID_A "$NS_A" "$T/a.yaml" "$T/a.log"
lib_meshd_start PID_B "$NS_B" "$T/b.yaml" "$T/b.log"
if lib_meshd_wait_up "$PID_A" "$NS_A" "$IFACE" && lib_meshd_wait_up "$PID_B" "$NS_B" "$IFACE"; then
	lib_ok "meshd A and B start"
else
	lib_not_ok "meshd A and B start: $(tail -n 3 "$T/a.log" "$T/b.log")"
	lib_summary
	exit 1
fi
lib_check "ping A→B over the overlay" lib_wait_for 10 lib_ping "$NS_A" "$OVERLAY_B"

answered() { # echoes answered so far
	grep -c 'bytes from' "$T/ping.txt" 2>/dev/null
}

ip netns exec "$NS_A" ping -n -c "$PING_COUNT" -i 0.2 -W 1 "$OVERLAY_B" >"$T/ping.txt" 2>&1 &
PING_PID=$!
lib_track_pid "$PING_PID"
# shellcheck disable=SC2016
lib_wait_for 10 bash -c '[ "$(grep -c "bytes from" "$1")" -ge "$2" ]' _ "$T/ping.txt" "$PINGS_BEFORE_MOVE" ||
	lib_not_ok "only $(answered) echoes answered before the move"

# The move: the new address first, then the old one goes.
ip -n "$NS_A" addr add "$UNDERLAY_A_NEW/24" dev vethA
ip -n "$NS_A" addr del "$UNDERLAY_A/24" dev vethA
lib_log "moved A from $UNDERLAY_A to $UNDERLAY_A_NEW after $(answered) answered echoes"
if ip -n "$NS_A" -4 addr show dev vethA | grep -q "inet $UNDERLAY_A_NEW/" &&
	! ip -n "$NS_A" -4 addr show dev vethA | grep -q "inet $UNDERLAY_A/"; then
	lib_ok "A's underlay address is now $UNDERLAY_A_NEW only"
else
	lib_not_ok "A's underlay addresses: $(ip -n "$NS_A" -4 -br addr show dev vethA)"
fi

# Bounded: ping -c ends after PING_COUNT * 0.2 s plus the last reply's wait.
wait "$PING_PID"
lib_untrack_pid "$PING_PID"

if grep -q "peer a: endpoint $UNDERLAY_A:$PORT -> $UNDERLAY_A_NEW:$PORT" "$T/b.log"; then
	lib_ok "B's log: endpoint $UNDERLAY_A:$PORT -> $UNDERLAY_A_NEW:$PORT"
else
	lib_not_ok "B's log has no endpoint move to $UNDERLAY_A_NEW:$PORT: $(grep endpoint "$T/b.log" | tail -n 3)"
fi

got=$(answered)
lost=$((PING_COUNT - got))
if [ "$lost" -le "$MAX_LOST" ]; then
	lib_ok "ping continued across the move: $got of $PING_COUNT answered (at most $MAX_LOST lost)"
else
	lib_not_ok "ping across the move: $got of $PING_COUNT answered, $lost lost (at most $MAX_LOST)"
fi
missing_tail=0
for ((seq = PING_COUNT - LAST_ALL_OK + 1; seq <= PING_COUNT; seq++)); do
	grep -q "icmp_seq=$seq " "$T/ping.txt" || missing_tail=$((missing_tail + 1))
done
if [ "$missing_tail" -eq 0 ]; then
	lib_ok "the last $LAST_ALL_OK echoes were all answered"
else
	lib_not_ok "$missing_tail of the last $LAST_ALL_OK echoes were not answered"
	sed 's/^/#   /' "$T/ping.txt" | tail -n 5
fi

status=$(ip netns exec "$NS_B" "$MESHD" status -s "$T/b.sock" 2>&1)
if printf '%s\n' "$status" | grep -q "$UNDERLAY_A_NEW:$PORT"; then
	lib_ok "meshd status on B shows a at $UNDERLAY_A_NEW:$PORT"
else
	lib_not_ok "meshd status on B does not show $UNDERLAY_A_NEW:$PORT:"
	printf '%s\n' "$status" | sed 's/^/#   /'
fi
lib_check "ping B→A after the move (B sends to the new endpoint first)" lib_ping "$NS_B" "$OVERLAY_A"

for who in A B; do
	pid_var=PID_$who
	if lib_stop_pid "${!pid_var}"; then
		lib_ok "meshd $who exits 0 on SIGTERM"
	else
		lib_not_ok "meshd $who exit status on SIGTERM: $?; log: $(tail -n 5 "$T/${who,,}.log")"
	fi
done

lib_summary
