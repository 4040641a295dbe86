#!/bin/bash
# meshcoord's relay, driven by three scripted nodes (tests/tools/relaynode) on one LAN.
#
#            ┌──────────────────────── crH-<pid> (hub: bridge br0) ────────────────────────┐
#            └────┬───────────────────┬──────────────────────┬──────────────────────┬───────┘
#   ┌─ crC-<pid> ─┴──────┐   ┌─ crA-<pid> ─┴──┐   ┌─ crB-<pid> ─┴──┐   ┌─ crX-<pid> ─┴──────────┐
#   │ meshcoord          │   │ relaynode A    │   │ relaynode B    │   │ relaynode C: never     │
#   │ 192.0.2.10         │   │ 192.0.2.21     │   │ 192.0.2.22     │   │ binds; replays A's BIND│
#   │ TCP 51821, UDP     │   │ udp 41641      │   │ udp 41642      │   │ 192.0.2.23 udp 41643   │
#   │ 3478 (+relay),3479 │   └────────────────┘   └────────────────┘   └────────────────────────┘
#   └────────────────────┘
#
# Checks: RELAY_INFO follows REGISTERED with the STUN and alternate ports and the rate;
# A and B bind and exchange DATA through the relay over UDP both ways, with the sender's key
# in place of the destination's and every frame the size it was sent at (1 to 3968 payload
# bytes) and intact; an oversized frame is refused; C's DATA (registered, never bound) is not
# forwarded; A's BIND replayed from C's address binds nothing (A still receives, C does not);
# once A's binding is older than relay_bind_fresh its frames go over its TCP session, and
# over UDP again after a new BIND; RELAY over TCP reaches a bound node by UDP and an unbound
# one by TCP; the rate limit drops what is above relay_rate_limit (counted); both STUN ports
# answer and the alternate one relays nothing; a removed node's traffic is forwarded neither
# way. SIGUSR1's counters account for each drop.
#
# Needs root, iproute2 and built meshcoord and relaynode (exit 77 = SKIP otherwise).
# KEEP_TMPDIR=1 keeps the logs.
set -u

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/netns/lib.sh
. "$here/lib.sh"

lib_require_root
lib_require_cmd ip iproute2
lib_find_meshcoord
: "${RELAYNODE:=$top_builddir/tests/tools/relaynode}"
[ -x "$RELAYNODE" ] || lib_skip "relaynode not found at $RELAYNODE (make check builds it; or set RELAYNODE=)"

lib_mktemp
lib_trap_cleanup

NS_HUB=crH-$$
NS_COORD=crC-$$
COORD_IP=192.0.2.10
CONTROL_PORT=51821
STUN_PORT=3478
STUN_ALT_PORT=3479
# Low enough to reach in a test, high enough that the functional steps never hit it.
RATE=200000
BURST=20000
# The test waits this long (+ margin) for A's binding to go stale; every UDP step binds
# right before it, so a slow machine (make -j) cannot make a binding stale by accident.
FRESH_S=6
# Rate step: frames of this payload, this many, this far apart (up to ~5 MB/s offered: far
# above RATE even on a slow machine, yet no flood for the socket buffers).
RL_SIZE=1000
RL_COUNT=300
RL_GAP_US=200
# Queue step: B sends this many frames to C (unbound: over TCP) while C does not read.
QF_COUNT=600
QF_SIZE=1400
QF_GAP_US=4000
C_RCVBUF=4096
# Every wait for an event a relaynode prints.
EVENT_LIMIT_S=5
# How long "nothing arrives" is watched for.
QUIET_S=1
T=$LIB_TMPDIR
declare -A NS IP PORT PID FD KEY NAME
# d and e are one node (one key) that moves: d from A's host, then e from C's host.
NS=([a]=crA-$$ [b]=crB-$$ [c]=crX-$$ [d]=crA-$$ [e]=crX-$$)
IP=([a]=192.0.2.21 [b]=192.0.2.22 [c]=192.0.2.23 [d]=192.0.2.21 [e]=192.0.2.23)
PORT=([a]=41641 [b]=41642 [c]=41643 [d]=41644 [e]=41645)

lib_hub_create "$NS_HUB"
lib_ns_create "$NS_COORD"
lib_hub_attach "$NS_HUB" "$NS_COORD" eth0 "$COORD_IP/24"
for n in a b c; do
	lib_ns_create "${NS[$n]}"
	lib_hub_attach "$NS_HUB" "${NS[$n]}" eth0 "${IP[$n]}/24"
done

CONF=$T/coord.yaml
lib_coord_write_config "$CONF" "0.0.0.0:$CONTROL_PORT" "0.0.0.0:$STUN_PORT" "$COORD_IP:$CONTROL_PORT" "$T/coord-state"
cat >>"$CONF" <<EOF
relay_rate_limit: $RATE
relay_burst: $BURST
relay_bind_fresh: $FRESH_S
EOF
lib_log "meshcoord: $MESHCOORD"
lib_log "relaynode: $RELAYNODE"
lib_log "temp dir: $T"

COORD_PID=
lib_coord_start COORD_PID "$NS_COORD" "$CONF" "$T/coord.log" debug
lib_coord_wait_up "$COORD_PID" "$NS_COORD" "$CONTROL_PORT" || lib_die "meshcoord did not start (see $T/coord.log)"
JOIN=$(lib_coord_authkey "$CONF" --reusable) || lib_die "no join key"

# rn_start NODE: a relaynode reading commands from a FIFO we keep open on FD[NODE].
rn_start() {
	local n=$1 fd
	shift
	mkfifo "$T/$n.in" || lib_die "mkfifo failed"
	ip netns exec "${NS[$n]}" "$RELAYNODE" --join "$JOIN" --udp-port "${PORT[$n]}" --hostname "relay-$n" \
		--timeout 300 "$@" <"$T/$n.in" >"$T/$n.out" 2>"$T/$n.err" &
	PID[$n]=$!
	lib_track_pid "${PID[$n]}"
	exec {fd}>"$T/$n.in"
	FD[$n]=$fd
}

rn() { # NODE COMMAND...
	printf '%s\n' "$2" >&"${FD[$1]}"
}

count() { # NODE ERE
	lib_log_count "$T/$1.out" "$2"
}

# wait_count NODE ERE N: NODE printed at least N lines matching ERE.
wait_count() {
	# shellcheck disable=SC2016
	lib_wait_for "$EVENT_LIMIT_S" bash -c '[ "$(grep -c -E -e "$2" "$1")" -ge "$3" ]' _ "$T/$1.out" "$2" "$3"
}

bind_node() { # NODE: a fresh BIND, acknowledged
	local before
	before=$(count "$1" '^bound ')
	rn "$1" "bind ${2:-}"
	wait_count "$1" '^bound ' $((before + 1))
}

counters() {
	lib_meshd_counters "$COORD_PID" "$T/coord.log"
}

# check DESCRIPTION TEST...: ok if every test (a string for [ ], joined by &&) holds.
check() {
	local desc=$1 t
	shift
	for t in "$@"; do
		# shellcheck disable=SC2086
		if ! [ $t ]; then
			lib_not_ok "$desc (failed: $t)"
			return
		fi
	done
	lib_ok "$desc"
}

ctr() { # NAME: from the last counters line taken
	local v
	v=$(lib_counter "$CTR" "$1")
	echo "${v:-0}"
}

# ---------------------------------------------------------------- registration
rn_start a
rn_start b
# C's small receive buffer lets the coordinator's queue to it fill when it stops reading.
rn_start c --tcp-rcvbuf "$C_RCVBUF"
for n in a b c; do
	wait_count "$n" '^relayinfo ' 1 || lib_die "relaynode $n did not get RELAY_INFO (see $T/$n.out, $T/$n.err)"
	line=$(grep '^registered ' "$T/$n.out" | head -n 1)
	NAME[$n]=$(echo "$line" | cut -d' ' -f2)
	KEY[$n]=$(echo "$line" | cut -d' ' -f3)
done
info=$(grep '^relayinfo ' "$T/a.out" | head -n 1)
lib_check "RELAY_INFO after REGISTERED: $info" \
	[ "$info" = "relayinfo stun=$STUN_PORT alt=$STUN_ALT_PORT rate=$RATE" ]
lib_check "REGISTERED comes before RELAY_INFO" \
	[ "$(head -n 2 "$T/a.out" | cut -d' ' -f1 | tr '\n' ' ')" = "registered relayinfo " ]

# ---------------------------------------------------------------- UDP both ways
lib_check "A binds its data socket" bind_node a "$T/a.bind"
lib_check "B binds its data socket" bind_node b

SIZES="1 100 1400 3968"
for s in $SIZES; do
	rn a "send ${KEY[b]} $s 1"
done
ok=1
for s in $SIZES; do
	wait_count b "^rx udp ${KEY[a]//+/\\+} $((s + 36)) $s ok\$" 1 || ok=0
done
lib_check "A -> B over UDP: sender's key, frames of 37..4004 bytes arrive the size they were sent" [ "$ok" = 1 ]
bind_node a
rn b "send ${KEY[a]} 1400 3"
lib_check "B -> A over UDP: 3 frames of 1436 bytes" wait_count a "^rx udp ${KEY[b]//+/\\+} 1436 1400 ok\$" 3

CTR=$(counters)
malformed0=$(ctr relay_malformed)
rn a "send ${KEY[b]} 3969 1"
sleep "$QUIET_S"
CTR=$(counters)
check "a payload above 3968 bytes is not relayed (relay_malformed counted)" \
	"$(count b "^rx .* 3969 ") -eq 0" "$(ctr relay_malformed) -gt $malformed0"

# ---------------------------------------------------------------- unbound and replayed
rx_a=$(count a '^rx ')
unbound0=$(ctr relay_unbound_source)
rn c "send ${KEY[a]} 100 5"
sleep "$QUIET_S"
CTR=$(counters)
check "C (registered, never bound): nothing forwarded to A, relay_unbound_source +5" \
	"$(count a '^rx ') -eq $rx_a" "$(ctr relay_unbound_source) -eq $((unbound0 + 5))"

# Fresh bindings (A's now newer than the copy C holds), so what follows is not about staleness.
bind_node a
bind_node b
replayed0=$(ctr relay_bind_replayed)
rn c "raw $T/a.bind"
sleep "$QUIET_S"
CTR=$(counters)
check "A's BIND replayed from C's address: relay_bind_replayed +1, no ACK to C" \
	"$(ctr relay_bind_replayed) -eq $((replayed0 + 1))" "$(count c '^bound ') -eq 0"
rn b "send ${KEY[a]} 200 1"
lib_check "after the replay A still receives over UDP" wait_count a "^rx udp ${KEY[b]//+/\\+} 236 200 ok\$" 1
rn c "send ${KEY[b]} 100 1"
sleep "$QUIET_S"
check "C receives nothing meant for A, and its own DATA still goes nowhere" \
	"$(count c '^rx ') -eq 0" "$(count b "^rx .*${KEY[c]//+/\\+}") -eq 0"

# ---------------------------------------------------------------- stale binding: TCP
sleep $((FRESH_S + 1))
rn b "send ${KEY[a]} 500 1"
lib_check "A's binding older than relay_bind_fresh: the frame arrives over A's TCP session" \
	wait_count a "^rx tcp ${KEY[b]//+/\\+} 500 ok\$" 1
bind_node a
rn b "send ${KEY[a]} 501 1"
lib_check "after a new BIND, over UDP again" wait_count a "^rx udp ${KEY[b]//+/\\+} 537 501 ok\$" 1
rn c "tcpsend ${KEY[a]} 300 1"
lib_check "RELAY over TCP from C reaches bound A over UDP, from C's key" \
	wait_count a "^rx udp ${KEY[c]//+/\\+} 336 300 ok\$" 1
rn a "tcpsend ${KEY[c]} 301 1"
lib_check "RELAY over TCP to unbound C arrives over C's TCP session" \
	wait_count c "^rx tcp ${KEY[a]//+/\\+} 301 ok\$" 1

# ---------------------------------------------------------------- a full TCP queue
CTR=$(counters)
qfull0=$(ctr relay_queue_full)
slow0=$(ctr slow_readers)
rx_c=$(count c '^rx tcp ')
rn c pause
wait_count c '^paused$' 1
rn b "send ${KEY[c]} $QF_SIZE $QF_COUNT $QF_GAP_US"
lib_wait_for 10 bash -c "grep -q '^sent $QF_COUNT\$' '$T/b.out'"
sleep "$QUIET_S"
CTR=$(counters)
rn c resume
sleep "$QUIET_S"
got=$(($(count c '^rx tcp ') - rx_c))
lib_log "queue: $got of $QF_COUNT frames reached C over TCP, relay_queue_full +$(($(ctr relay_queue_full) - qfull0))"
check "C not reading: relay frames dropped at the queue bound (relay_queue_full), C not closed as a slow reader" \
	"$(ctr relay_queue_full) -gt $qfull0" "$(ctr slow_readers) -eq $slow0" "$(count c '^closed$') -eq 0"
check "C reads again: the queued frames arrive over its session" "$got -gt 0"

# ---------------------------------------------------------------- rate limit
bind_node b
CTR=$(counters)
limited0=$(ctr relay_rate_limited)
rx_b=$(count b "^rx udp ${KEY[a]//+/\\+} $((RL_SIZE + 36)) ")
t0=$(lib_now_ms)
rn a "send ${KEY[b]} $RL_SIZE $RL_COUNT $RL_GAP_US"
wait_count a "^sent $RL_COUNT\$" 1
rl_ms=$(($(lib_now_ms) - t0))
sleep "$QUIET_S" # the last frames land
CTR=$(counters)
got=$(($(count b "^rx udp ${KEY[a]//+/\\+} $((RL_SIZE + 36)) ") - rx_b))
limited=$(($(ctr relay_rate_limited) - limited0))
lib_log "rate limit: $RL_COUNT frames offered in $rl_ms ms against $RATE bytes/s: $got forwarded, $limited dropped"
check "rate limit: some frames pass, most are dropped" "$got -ge 10" "$limited -ge $((RL_COUNT / 3))"
lib_check "rate limit: every frame is either forwarded or counted" [ $((got + limited)) -eq "$RL_COUNT" ]
lib_check "rate limit: at most the burst plus the rate over the time taken (+1 s)" \
	[ $((got * (RL_SIZE + 36))) -le $((BURST + RATE * (rl_ms + 1000) / 1000)) ]

# ---------------------------------------------------------------- STUN on both ports
rn a "stun $STUN_PORT"
lib_check "STUN on $STUN_PORT answers A's data socket address" \
	wait_count a "^stun $STUN_PORT ${IP[a]}:${PORT[a]}\$" 1
rn a "stun $STUN_ALT_PORT"
lib_check "the alternate STUN port $STUN_ALT_PORT answers too" \
	wait_count a "^stun $STUN_ALT_PORT ${IP[a]}:${PORT[a]}\$" 1
rx_b=$(count b '^rx ')
rn a "send ${KEY[b]} 100 1 0 $STUN_ALT_PORT"
sleep "$QUIET_S"
lib_check "the alternate port relays nothing" [ "$(count b '^rx ')" = "$rx_b" ]

CTR=$(counters)
lib_log "$CTR"
ok=1
for c in relay_binds relay_udp_frames relay_tcp_frames relay_bytes relay_unbound_source relay_bind_replayed \
	relay_rate_limited relay_malformed stun_alt_requests; do
	[ "$(ctr $c)" -gt 0 ] || { lib_log "counter $c is 0"; ok=0; }
done
lib_check "SIGUSR1 counters account for binds, forwards and each kind of drop" [ "$ok" = 1 ]
lib_check "no relayed payload arrived corrupted" \
	[ "$(cat "$T/a.out" "$T/b.out" "$T/c.out" | grep -c ' corrupt$')" = 0 ]

# ---------------------------------------------------------------- a session replaced
# Node D binds from A's host, then the same key registers again from C's host (a restart or
# a move): the old session, its binding and its token are gone at once.
rn_start d --key-file "$T/d.key"
wait_count d '^relayinfo ' 1 || lib_die "relaynode d did not get RELAY_INFO (see $T/d.out, $T/d.err)"
KEY[d]=$(grep '^registered ' "$T/d.out" | head -n 1 | cut -d' ' -f3)
bind_node d
bind_node a
rn a "send ${KEY[d]} 700 1"
lib_check "D (first session) bound: receives over UDP" wait_count d "^rx udp ${KEY[a]//+/\\+} 736 700 ok\$" 1
rn_start e --key-file "$T/d.key"
wait_count e '^relayinfo ' 1 || lib_die "relaynode e did not get RELAY_INFO (see $T/e.out, $T/e.err)"
lib_check "the same key registering again closes D's first session" wait_count d '^closed$' 1
CTR=$(counters)
badmac0=$(ctr relay_bind_bad_mac)
unbound0=$(ctr relay_unbound_source)
rx_d=$(count d '^rx ')
rn a "send ${KEY[d]} 701 1"
lib_check "to D now: over its new session's TCP (not bound yet), not to the old address" \
	wait_count e "^rx tcp ${KEY[a]//+/\\+} 701 ok\$" 1
rn d bind
rn d "send ${KEY[a]} 100 1"
sleep "$QUIET_S"
CTR=$(counters)
check "the old session's BIND fails (old token: relay_bind_bad_mac +1), its DATA goes nowhere (relay_unbound_source +1)" \
	"$(ctr relay_bind_bad_mac) -eq $((badmac0 + 1))" "$(ctr relay_unbound_source) -eq $((unbound0 + 1))" \
	"$(count d '^bound ') -eq 1" "$(count d '^rx ') -eq $rx_d"
lib_check "the new session binds and receives over UDP" bind_node e
rn a "send ${KEY[d]} 702 1"
lib_check "to D: over UDP to its new address" wait_count e "^rx udp ${KEY[a]//+/\\+} 738 702 ok\$" 1

# ---------------------------------------------------------------- removal
bind_node b
"$MESHCOORD" nodes remove "${NAME[b]}" -c "$CONF" >/dev/null 2>&1 || lib_log "nodes remove failed"
lib_check "removed B's session is closed" wait_count b '^closed$' 1
CTR=$(counters)
unknown0=$(ctr relay_dest_unknown)
unbound0=$(ctr relay_unbound_source)
rx_a=$(count a '^rx ')
rn a "send ${KEY[b]} 100 1"
rn b "send ${KEY[a]} 100 1"
sleep "$QUIET_S"
CTR=$(counters)
check "to removed B: nothing (relay_dest_unknown +1); from B's old binding: nothing (relay_unbound_source +1)" \
	"$(ctr relay_dest_unknown) -eq $((unknown0 + 1))" "$(ctr relay_unbound_source) -eq $((unbound0 + 1))" \
	"$(count a '^rx ') -eq $rx_a"

lib_check "meshcoord still runs" lib_pid_alive "$COORD_PID"
for n in a b c d e; do
	rn "$n" quit
done
lib_summary
