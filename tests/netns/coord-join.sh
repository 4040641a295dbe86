#!/bin/bash
# Nodes that know nothing but a join key: registration, live peer maps, removal, coordinator
# restarts and outages, and a kill -9 of the coordinator during registrations.
#
#            ┌───────────────────────── cjH-<pid> (hub: bridge br0) ─────────────────────────┐
#            └────┬──────────────────┬──────────────────┬──────────────────┬─────────────┬───┘
#   ┌─ cjC-<pid> ─┴──┐   ┌─ cj1-<pid> ─┴───┐   ┌─ cj2-<pid> ─┴───┐   ┌─ cj3-<pid> ─┴───┐  ┌─ cjF-<pid> ─┴┐
#   │ meshcoord      │   │ meshd n1        │   │ meshd n2        │   │ meshd n3        │  │ fakenode     │
#   │ 192.0.2.10     │   │ 192.0.2.11      │   │ 192.0.2.12      │   │ 192.0.2.13      │  │ 192.0.2.30   │
#   └────────────────┘   └─────────────────┘   └─────────────────┘   └─────────────────┘  └──────────────┘
#
# Each node's config has only interface, listen_port and state_dir; the first start adds
# --join KEY. Overlay addresses and peers come from the coordinator alone.
#   (a) n1 joins with a one-time key;  (b) the same key for n2: meshd exits 1 naming the reason;
#   (c) n2 and n3 join with a reusable key, and the nodes already there add each newcomer
#       within 1 s of its registration (seen in their own logs);  (d) every node pings every
#       other's overlay IPv4;  (e) `meshcoord nodes remove` of n3: n1 and n2 drop n3 within 1 s
#       (their logs) and n1's data path no longer routes to n3 (tx_no_route), n3's meshd exits 1,
#       and a restarted n3 is refused;  (f) meshcoord restarted: n1 and n2 register again within
#       5 s, addresses unchanged, ping works;  (g) meshcoord stopped: n1<->n2 keep pinging for
#       10 s, a restarted n1 comes back from its state dir alone and pings n2 again, and n2's
#       reconnect attempts (its TCP SYNs) are 1, 2, 4, 8, 16, 30 s apart (+ up to 1 s jitter);
#   (h) kill -9 of meshcoord while fakenode registers 200 nodes: after a restart every
#       registration fakenode saw acknowledged is in `meshcoord nodes list`.
#
# Needs root, /dev/net/tun, iproute2, ping, unshare (exit 77 = SKIP otherwise), and built meshd,
# meshcoord and fakenode (exit 1 otherwise). KEEP_TMPDIR=1 keeps the logs.
set -u

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/netns/lib.sh
. "$here/lib.sh"

lib_require_root
lib_require_tun
lib_require_cmd ip iproute2
lib_require_cmd ping iputils-ping
lib_require_cmd unshare util-linux
lib_require_cmd tcpdump tcpdump
lib_find_meshd
lib_find_meshcoord
lib_find_fakenode

lib_mktemp
lib_trap_cleanup

NS_HUB=cjH-$$
NS_COORD=cjC-$$
NS_FAKE=cjF-$$
COORD_IP=192.0.2.10
FAKE_IP=192.0.2.30
CONTROL_PORT=51821
STUN_PORT=3478
DATA_PORT=51820
IFACE=mesh0
T=$LIB_TMPDIR
NODES="n1 n2 n3"
declare -A NS IP UNDERLAY PID NAME
UNDERLAY=([n1]=192.0.2.11 [n2]=192.0.2.12 [n3]=192.0.2.13)
# Registration: connect, handshake, one database commit.
REGISTER_LIMIT_S=15
# A refused node must say so and stop.
REFUSED_EXIT_LIMIT_S=15
# A new peer: pushed within a second, then a data-plane handshake.
PING_LIMIT_S=15
# The README's promise: a peer change (add, remove) reaches every node within a second,
# measured on the receiving node (its log line, polled this often).
PEER_CHANGE_LIMIT_MS=1000
POLL_S=0.02
# Reconnect backoff starts at 1 s (+ up to 1 s jitter): a coordinator that is back within
# about a second is reached by the first or second attempt (1-2 s, then 2-3 s later).
RECONNECT_LIMIT_S=5
# (g): the gaps between reconnect attempts while the coordinator is down: 1 s doubling to a
# cap of 30 s, each plus a jitter of up to 1 s (coordclient.c); our slack on top of that.
BACKOFF_GAPS_S="1 2 4 8 16 30"
BACKOFF_JITTER_MS=1000
BACKOFF_SLACK_MS=300
# (g): 10 s of pings at 5 per second; one may be lost to a rekey or a timer edge.
OUTAGE_PINGS=50
OUTAGE_MAX_LOST=1
# (h)
KILL_NODES=200
KILL_RATE=50
KILL_AFTER_S=2

lib_hub_create "$NS_HUB"
lib_ns_create "$NS_COORD"
lib_hub_attach "$NS_HUB" "$NS_COORD" eth0 "$COORD_IP/24"
lib_ns_create "$NS_FAKE"
lib_hub_attach "$NS_HUB" "$NS_FAKE" eth0 "$FAKE_IP/24"
for n in $NODES; do
	NS[$n]=cj${n#n}-$$
	lib_ns_create "${NS[$n]}"
	lib_hub_attach "$NS_HUB" "${NS[$n]}" eth0 "${UNDERLAY[$n]}/24"
	mkdir -p "$T/$n" && chmod 700 "$T/$n"
	cat >"$T/$n.yaml" <<-EOF
	interface: $IFACE
	listen_port: $DATA_PORT
	state_dir: $T/$n
	control_socket: $T/$n.sock
	EOF
done

CONF=$T/coord.yaml
lib_coord_write_config "$CONF" "0.0.0.0:$CONTROL_PORT" "0.0.0.0:$STUN_PORT" "$COORD_IP:$CONTROL_PORT" "$T/coord-state"
lib_log "meshd: $MESHD"
lib_log "meshcoord: $MESHCOORD"
lib_log "fakenode: $FAKENODE"
lib_log "temp dir: $T"

COORD_PID=
coord_start() {
	lib_coord_start COORD_PID "$NS_COORD" "$CONF" "$T/coord.log"
	lib_coord_wait_up "$COORD_PID" "$NS_COORD" "$CONTROL_PORT"
}

# node_start NODE [--join KEY]: meshd with the node's name as its host name.
node_start() {
	local n=$1
	shift
	lib_meshd_start_args "PID[$n]" "${NS[$n]}" "$n" "$T/$n.yaml" "$T/$n.log" info "$@"
}

registered_count() { # NODE
	lib_log_count "$T/$1.log" 'registered with coordinator'
}

# wait_registered NODE BEFORE: a new "registered with coordinator" line after BEFORE of them,
# and the overlay IPv4 on the interface; sets IP[NODE] and NAME[NODE].
wait_registered() {
	local n=$1 before=$2 line
	# shellcheck disable=SC2016
	lib_wait_for "$REGISTER_LIMIT_S" bash -c '[ "$(grep -c "registered with coordinator" "$1")" -gt "$2" ]' \
		_ "$T/$n.log" "$before" || return 1
	lib_wait_for 5 bash -c "ip -n ${NS[$n]} -4 -o addr show dev $IFACE | grep -q inet" || return 1
	IP[$n]=$(lib_iface_ipv4 "${NS[$n]}" "$IFACE")
	line=$(grep 'registered with coordinator' "$T/$n.log" | tail -n 1)
	NAME[$n]=$(printf '%s\n' "$line" | sed -n 's/.* as \([^ ]*\) (.*/\1/p')
	[ -n "${IP[$n]}" ]
}

nodes_list() {
	"$MESHCOORD" nodes list -c "$CONF" 2>/dev/null
}

show_log_tail() { # FILE [LINES]
	tail -n "${2:-15}" "$1" 2>/dev/null | sed "s|^|#   ${1##*/}: |"
}

if coord_start; then
	lib_ok "meshcoord starts in $NS_COORD"
else
	lib_not_ok "meshcoord starts in $NS_COORD"
	show_log_tail "$T/coord.log"
	lib_summary
	exit 1
fi
KEY_ONCE=$(lib_coord_authkey "$CONF")
KEY_REUSABLE=$(lib_coord_authkey "$CONF" --reusable)
lib_check "a one-time and a reusable join key are created" test -n "$KEY_ONCE" -a -n "$KEY_REUSABLE"

# ------------------------------------------------------------------ (a) one-time key
node_start n1 --join "$KEY_ONCE"
if wait_registered n1 0; then
	lib_ok "(a) n1 joins with a one-time key: registered as ${NAME[n1]}, ${IP[n1]} on $IFACE"
else
	lib_not_ok "(a) n1 joins with a one-time key (no 'registered with coordinator' and address within ${REGISTER_LIMIT_S} s)"
	show_log_tail "$T/n1.log"
fi

# The key given with --join is wiped from argv at start: /proc/PID/cmdline is readable by
# every local user for the daemon's life.
if [ -r "/proc/${PID[n1]}/cmdline" ] && tr '\0' '\n' <"/proc/${PID[n1]}/cmdline" | grep -q -x -- '--join' &&
	! tr '\0' '\n' <"/proc/${PID[n1]}/cmdline" | grep -q -F -- "$KEY_ONCE"; then
	lib_ok "(a) n1's /proc/PID/cmdline no longer holds the join key"
else
	lib_not_ok "(a) n1's /proc/PID/cmdline no longer holds the join key ($(tr '\0' ' ' <"/proc/${PID[n1]}/cmdline" 2>/dev/null | cut -c1-120))"
fi

# ------------------------------------------------------------------ (b) the same key again
# Every address that appears on n2's interface while it runs (the interface goes away
# with meshd, so looking afterwards would prove nothing).
ip -n "${NS[n2]}" monitor address >"$T/n2-addr-monitor.txt" 2>&1 &
monitor_pid=$!
lib_track_pid "$monitor_pid"
node_start n2 --join "$KEY_ONCE"
rc=
if lib_wait_exit rc "${PID[n2]}" "$REFUSED_EXIT_LIMIT_S" && [ "$rc" -eq 1 ] &&
	grep -q -i 'refused.*already used' "$T/n2.log"; then
	lib_ok "(b) the used one-time key: n2's meshd exits 1 saying '$(grep -i -m 1 'already used' "$T/n2.log" | cut -c1-100)'"
else
	lib_not_ok "(b) the used one-time key: n2's meshd exits 1 and logs that the key was already used (exit ${rc:-none: still running})"
	show_log_tail "$T/n2.log"
fi
lib_stop_pid "$monitor_pid" 1
# (the kernel's own IPv6 link-local address does not count: only what meshd assigns)
n2_addrs=$(grep -E "$IFACE +inet [0-9]|$IFACE +inet6 .* scope global" "$T/n2-addr-monitor.txt")
if [ -n "$n2_addrs" ]; then
	lib_not_ok "(b) n2 never had an overlay address while it ran ($(printf '%s\n' "$n2_addrs" | head -n 1 | tr -s ' ' | cut -c1-80))"
else
	lib_ok "(b) n2 never had an overlay address while it ran (ip monitor address saw none)"
fi

# A join_key_file group or others can read is refused before anything happens, with one
# line that says how to fix it (as for the private key file).
printf '%s\n' "$KEY_REUSABLE" >"$T/n2-joinkey"
chmod 644 "$T/n2-joinkey"
{ cat "$T/n2.yaml"; echo "join_key_file: $T/n2-joinkey"; } >"$T/n2-keyfile.yaml"
lib_meshd_start_args KEYFILE_PID "${NS[n2]}" n2 "$T/n2-keyfile.yaml" "$T/n2-keyfile.log" info
rc=
if lib_wait_exit rc "$KEYFILE_PID" "$REFUSED_EXIT_LIMIT_S" && [ "$rc" -eq 1 ] &&
	grep -q "join_key_file is readable by group or others (mode 0644); run: chmod 600" "$T/n2-keyfile.log"; then
	lib_ok "(b) a join_key_file of mode 0644 is refused: '$(grep -m 1 'join_key_file is' "$T/n2-keyfile.log" | sed 's/.*join_key_file is/join_key_file is/' | cut -c1-90)'"
else
	lib_not_ok "(b) a join_key_file of mode 0644 is refused with a chmod hint (exit ${rc:-none: still running})"
	show_log_tail "$T/n2-keyfile.log"
fi
rm -f "$T/n2-joinkey"

# poll_log_ms FILE ERE BEFORE T0_NS LIMIT_MS: waits (polling every POLL_S) until FILE has
# more than BEFORE lines matching ERE; prints the milliseconds since T0_NS when it saw that.
# Fails (printing nothing) after LIMIT_MS.
poll_log_ms() {
	local file=$1 ere=$2 before=$3 t0=$4 limit=$5 now
	while :; do
		now=$(date +%s%N)
		if [ "$(lib_log_count "$file" "$ere")" -gt "$before" ]; then
			echo $(((now - t0) / 1000000))
			return 0
		fi
		[ $(((now - t0) / 1000000)) -gt "$limit" ] && return 1
		sleep "$POLL_S"
	done
}

# ------------------------------------------------------------------ (c) reusable key
for n in n2 n3; do
	before=$(registered_count "$n")
	# Nodes already in the network, and how many peers each had added so far.
	declare -A added_before=()
	for o in $NODES; do
		[ "$o" != "$n" ] && [ -n "${IP[$o]:-}" ] && lib_pid_alive "${PID[$o]}" &&
			added_before[$o]=$(lib_log_count "$T/$o.log" 'added from coordinator')
	done
	node_start "$n" --join "$KEY_REUSABLE"
	# The moment n registered, to the resolution of the poll; then each other node's log.
	t_reg=
	if poll_log_ms "$T/$n.log" 'registered with coordinator' "$before" "$(date +%s%N)" 		$((REGISTER_LIMIT_S * 1000)) >/dev/null; then
		t_reg=$(date +%s%N)
		for o in "${!added_before[@]}"; do
			if ms=$(poll_log_ms "$T/$o.log" 'added from coordinator' "${added_before[$o]}" "$t_reg" 				"$PEER_CHANGE_LIMIT_MS"); then
				lib_ok "(c) $o adds $n within ${PEER_CHANGE_LIMIT_MS} ms of its registration (${ms} ms, seen in $o's log)"
			else
				lib_not_ok "(c) $o adds $n within ${PEER_CHANGE_LIMIT_MS} ms of its registration (not in $o's log)"
			fi
		done
	fi
	if [ -n "$t_reg" ] && wait_registered "$n" "$before"; then
		lib_ok "(c) $n joins with the reusable key: registered as ${NAME[$n]}, ${IP[$n]}"
	else
		lib_not_ok "(c) $n joins with the reusable key"
		show_log_tail "$T/$n.log"
	fi
done
distinct=$(printf '%s\n' "${IP[n1]:-}" "${IP[n2]:-}" "${IP[n3]:-}" | grep -c '^100\.')
distinct_u=$(printf '%s\n' "${IP[n1]:-}" "${IP[n2]:-}" "${IP[n3]:-}" | grep '^100\.' | sort -u | wc -l)
lib_check "(c) three distinct overlay addresses from 100.64.0.0/10 (${IP[n1]:-} ${IP[n2]:-} ${IP[n3]:-})" \
	test "$distinct" -eq 3 -a "$distinct_u" -eq 3
listed_ok() {
	local n list
	list=$(nodes_list)
	for n in $NODES; do
		printf '%s\n' "$list" | grep -E "^${NAME[$n]:-none}[[:space:]]" | grep -q -F -w "${IP[$n]:-none}" || return 1
	done
}
if listed_ok; then
	lib_ok "(c) meshcoord nodes list shows the three names with their addresses"
else
	lib_not_ok "(c) meshcoord nodes list shows the three names with their addresses"
	nodes_list | sed 's/^/#   /'
fi

# ------------------------------------------------------------------ (d) full mesh
for a in $NODES; do
	for b in $NODES; do
		[ "$a" = "$b" ] && continue
		t0=$(lib_now_ms)
		if [ -n "${IP[$b]:-}" ] && lib_wait_for "$PING_LIMIT_S" lib_ping "${NS[$a]}" "${IP[$b]}"; then
			lib_ok "(d) ping $a → $b (${IP[$b]}) over the overlay ($(($(lib_now_ms) - t0)) ms)"
		else
			lib_not_ok "(d) ping $a → $b (${IP[$b]:-no address}) over the overlay within ${PING_LIMIT_S} s"
		fi
	done
done
for n in $NODES; do
	c=$(lib_log_count "$T/$n.log" 'added from coordinator')
	lib_log "$n: $c 'added from coordinator' line(s)"
done

# ------------------------------------------------------------------ (e) remove n3
# Measured on n1 and n2, not through n3: n3 exits once removed, which alone would stop any
# traffic to it. Each must log the removal within a second of the command, and n1's data path
# must then have no route to n3's address (its pings count as tx_no_route, not as sent).
declare -A removed_before=()
for o in n1 n2; do
	removed_before[$o]=$(lib_log_count "$T/$o.log" 'removed by the coordinator')
done
lib_check "(e) n1 reaches n3 before the removal" lib_wait_for 5 lib_ping "${NS[n1]}" "${IP[n3]:-192.0.2.254}"
t_remove=$(date +%s%N)
if "$MESHCOORD" nodes remove "${NAME[n3]:-n3}" -c "$CONF" >"$T/remove.out" 2>&1; then
	lib_ok "(e) meshcoord nodes remove ${NAME[n3]:-n3}"
else
	lib_not_ok "(e) meshcoord nodes remove ${NAME[n3]:-n3} ($(head -n 2 "$T/remove.out" | tr '\n' ' '))"
fi
for o in n1 n2; do
	if ms=$(poll_log_ms "$T/$o.log" 'removed by the coordinator' "${removed_before[$o]}" "$t_remove" \
		"$PEER_CHANGE_LIMIT_MS"); then
		lib_ok "(e) $o drops n3 within ${PEER_CHANGE_LIMIT_MS} ms of the removal (${ms} ms, seen in $o's log)"
	else
		lib_not_ok "(e) $o drops n3 within ${PEER_CHANGE_LIMIT_MS} ms of the removal (no 'removed by the coordinator' in $o's log)"
	fi
done
c0=$(lib_meshd_counters "${PID[n1]}" "$T/n1.log")
ip netns exec "${NS[n1]}" ping -n -q -c 3 -i 0.2 -W 1 "${IP[n3]:-192.0.2.254}" >/dev/null 2>&1
c1=$(lib_meshd_counters "${PID[n1]}" "$T/n1.log")
no_route=$(($(lib_counter "$c1" tx_no_route) - $(lib_counter "$c0" tx_no_route)))
lib_check "(e) n1's data path has no route to n3 any more (3 pings: tx_no_route +$no_route)" \
	test -n "$c0" -a -n "$c1" -a "$no_route" -eq 3
rc=
if lib_wait_exit rc "${PID[n3]}" "$REFUSED_EXIT_LIMIT_S" && [ "$rc" -eq 1 ] && grep -q -i 'removed' "$T/n3.log"; then
	lib_ok "(e) n3's meshd exits 1: '$(grep -i 'removed' "$T/n3.log" | tail -n 1 | cut -c1-100)'"
else
	lib_not_ok "(e) n3's meshd exits 1 with a 'removed' log line (exit ${rc:-none: still running})"
	show_log_tail "$T/n3.log"
	[ -z "$rc" ] && lib_stop_pid "${PID[n3]}"
fi
# The removed key is refused from then on, also with nothing but its state dir.
n3_lines=$(wc -l <"$T/n3.log")
node_start n3
rc=
if lib_wait_exit rc "${PID[n3]}" "$REFUSED_EXIT_LIMIT_S" && [ "$rc" -eq 1 ] &&
	tail -n +"$((n3_lines + 1))" "$T/n3.log" | grep -q -i 'removed'; then
	lib_ok "(e) n3 restarted from its state dir is refused again and exits 1"
else
	lib_not_ok "(e) n3 restarted from its state dir is refused again and exits 1 (exit ${rc:-none: still running})"
	show_log_tail "$T/n3.log"
	[ -z "$rc" ] && lib_stop_pid "${PID[n3]}"
fi
lib_check "(e) n1 ↔ n2 still work after the removal" lib_wait_for 5 lib_ping "${NS[n1]}" "${IP[n2]:-192.0.2.254}"

# ------------------------------------------------------------------ (f) restart meshcoord
addrs_n1=$(lib_iface_addrs "${NS[n1]}" "$IFACE")
addrs_n2=$(lib_iface_addrs "${NS[n2]}" "$IFACE")
reg_n1=$(registered_count n1)
reg_n2=$(registered_count n2)
lib_stop_pid "$COORD_PID"
rc=$?
lib_check "(f) meshcoord exits 0 on SIGTERM (exit $rc)" test "$rc" -eq 0
t0=$(lib_now_ms)
if coord_start; then
	lib_ok "(f) meshcoord starts again"
else
	lib_not_ok "(f) meshcoord starts again"
	show_log_tail "$T/coord.log"
fi
for n in n1 n2; do
	before=$([ "$n" = n1 ] && echo "$reg_n1" || echo "$reg_n2")
	# shellcheck disable=SC2016
	if lib_wait_for "$RECONNECT_LIMIT_S" bash -c '[ "$(grep -c "registered with coordinator" "$1")" -gt "$2" ]' \
		_ "$T/$n.log" "$before"; then
		lib_ok "(f) $n reconnects and registers again ($(($(lib_now_ms) - t0)) ms after the restart)"
	else
		lib_not_ok "(f) $n reconnects and registers again within ${RECONNECT_LIMIT_S} s"
		show_log_tail "$T/$n.log"
	fi
done
now_n1=$(lib_iface_addrs "${NS[n1]}" "$IFACE")
now_n2=$(lib_iface_addrs "${NS[n2]}" "$IFACE")
lib_check "(f) n1's addresses unchanged ($now_n1)" test "$now_n1" = "$addrs_n1"
lib_check "(f) n2's addresses unchanged ($now_n2)" test "$now_n2" = "$addrs_n2"
lib_check "(f) ping n1 → n2 after the restart" lib_wait_for "$PING_LIMIT_S" lib_ping "${NS[n1]}" "${IP[n2]:-192.0.2.254}"
lib_check "(f) ping n2 → n1 after the restart" lib_wait_for "$PING_LIMIT_S" lib_ping "${NS[n2]}" "${IP[n1]:-192.0.2.254}"

# ------------------------------------------------------------------ (g) coordinator down
# n2's connection attempts while the coordinator is down: every SYN to the control port.
ip netns exec "${NS[n2]}" timeout 120 tcpdump -n -tt -l -i eth0 \
	"tcp dst port $CONTROL_PORT and tcp[tcpflags] & (tcp-syn|tcp-ack) = tcp-syn" \
	>"$T/syn-n2.txt" 2>"$T/tcpdump-syn.err" &
syn_pid=$!
lib_track_pid "$syn_pid"
lib_wait_for 5 grep -q 'listening on' "$T/tcpdump-syn.err"
t_down=$(date +%s%N)
nopath_before=$(grep -c 'no path' "$T/n2.log")
lib_stop_pid "$COORD_PID"
COORD_PID=
outage_ping() { # FROM TO OUT
	ip netns exec "${NS[$1]}" ping -n -q -i 0.2 -W 1 -c "$OUTAGE_PINGS" "${IP[$2]:-192.0.2.254}" >"$3" 2>&1
}
outage_ping n1 n2 "$T/outage-12.txt" &
p12=$!
lib_track_pid "$p12"
outage_ping n2 n1 "$T/outage-21.txt"
lib_wait_exit rc "$p12" 15
received() {
	sed -n 's/.* \([0-9]*\) received.*/\1/p' "$1"
}
r12=$(received "$T/outage-12.txt")
r21=$(received "$T/outage-21.txt")
lib_check "(g) coordinator down: n1 → n2 keeps working for 10 s (${r12:-0}/$OUTAGE_PINGS replies)" \
	test "${r12:-0}" -ge $((OUTAGE_PINGS - OUTAGE_MAX_LOST))
lib_check "(g) coordinator down: n2 → n1 keeps working for 10 s (${r21:-0}/$OUTAGE_PINGS replies)" \
	test "${r21:-0}" -ge $((OUTAGE_PINGS - OUTAGE_MAX_LOST))

lib_stop_pid "${PID[n1]}"
rc=$?
lib_check "(g) n1's meshd exits 0 on SIGTERM (exit $rc)" test "$rc" -eq 0
lib_wait_for 3 lib_link_absent "${NS[n1]}" "$IFACE"
node_start n1
if lib_meshd_wait_up "${PID[n1]}" "${NS[n1]}" "$IFACE" &&
	lib_wait_for 5 bash -c "[ \"\$(ip -n ${NS[n1]} -o addr show dev $IFACE scope global | wc -l)\" -ge 1 ]"; then
	lib_ok "(g) n1 restarts while the coordinator is down"
else
	lib_not_ok "(g) n1 restarts while the coordinator is down"
	show_log_tail "$T/n1.log"
fi
# shellcheck disable=SC2016,SC2086 # addrs_n1 is a list
lib_wait_for 5 bash -c '[ "$(ip -n "$1" -o addr show dev "$2" scope global | wc -l)" -ge "$3" ]' \
	_ "${NS[n1]}" "$IFACE" "$(printf '%s\n' $addrs_n1 | wc -l)"
now_n1=$(lib_iface_addrs "${NS[n1]}" "$IFACE")
lib_check "(g) n1 has the same addresses from its state dir ($now_n1)" test "$now_n1" = "$addrs_n1"
t0=$(lib_now_ms)
if lib_wait_for "$PING_LIMIT_S" lib_ping "${NS[n1]}" "${IP[n2]:-192.0.2.254}" &&
	lib_wait_for 5 lib_ping "${NS[n2]}" "${IP[n1]:-192.0.2.254}"; then
	lib_ok "(g) n1 ↔ n2 ping again with the saved peer map, no coordinator ($(($(lib_now_ms) - t0)) ms)"
else
	lib_not_ok "(g) n1 ↔ n2 ping again with the saved peer map, no coordinator (within ${PING_LIMIT_S} s)"
	show_log_tail "$T/n1.log"
fi

# The backoff, from n2's SYNs: the first one 1 s (+ jitter) after the coordinator went away,
# then each gap the next of BACKOFF_GAPS_S (+ jitter). Wait until the last one is due.
total_ms=0
for g in $BACKOFF_GAPS_S; do
	total_ms=$((total_ms + g * 1000 + BACKOFF_JITTER_MS))
done
# shellcheck disable=SC2016
lib_wait_for $((total_ms / 1000 + 3 - ($(date +%s%N) - t_down) / 1000000000)) \
	bash -c '[ "$(wc -l <"$1")" -ge "$2" ]' _ "$T/syn-n2.txt" "$(echo $BACKOFF_GAPS_S | wc -w)"
lib_stop_pid "$syn_pid" 1
backoff_check() {
	local prev=$((t_down / 1000000)) t g i=0 gap lo hi bad=0
	local -a times gaps
	mapfile -t times < <(awk '/Flags \[S\]/ { split($1, a, "."); print a[1] substr(a[2] "000", 1, 3) }' "$T/syn-n2.txt")
	gaps=($BACKOFF_GAPS_S)
	BACKOFF_SEEN=
	for g in "${gaps[@]}"; do
		t=${times[$i]:-}
		if [ -z "$t" ]; then
			BACKOFF_SEEN="$BACKOFF_SEEN (no attempt $((i + 1)))"
			return 1
		fi
		gap=$((t - prev))
		lo=$((g * 1000 - BACKOFF_SLACK_MS))
		hi=$((g * 1000 + BACKOFF_JITTER_MS + BACKOFF_SLACK_MS))
		BACKOFF_SEEN="$BACKOFF_SEEN ${gap}"
		[ "$gap" -ge "$lo" ] && [ "$gap" -le "$hi" ] || bad=1
		prev=$t
		i=$((i + 1))
	done
	return "$bad"
}
if backoff_check; then
	lib_ok "(g) n2's reconnect attempts back off $BACKOFF_GAPS_S s (+ jitter): gaps${BACKOFF_SEEN} ms"
else
	lib_not_ok "(g) n2's reconnect attempts back off $BACKOFF_GAPS_S s (+ up to ${BACKOFF_JITTER_MS} ms): gaps${BACKOFF_SEEN} ms"
	sed 's/^/#   syn: /' "$T/syn-n2.txt" | head -n 10
fi
# All through the outage (~40 s, pings, n1's restart, idle keepalives) traffic went to the
# last direct path, there being no relay to fall back to: that stays the path, without a
# flap to "no path" each time the idle path's trust runs out between keepalives.
nopath=$(($(grep -c 'no path' "$T/n2.log") - nopath_before))
lib_check "(g) coordinator down: n2 never logs 'no path' while its direct path works ($nopath lines)" \
	test "$nopath" -eq 0

# ------------------------------------------------------------------ (h) kill -9 during registrations
if coord_start; then
	lib_ok "(h) meshcoord starts again"
else
	lib_not_ok "(h) meshcoord starts again"
	show_log_tail "$T/coord.log"
fi
ip netns exec "$NS_FAKE" "$FAKENODE" --join "$KEY_REUSABLE" --count "$KILL_NODES" --connect-rate "$KILL_RATE" \
	--max-pending 8 --print-registered --hostname kill9 --timeout 60 --quiet >"$T/kill9.out" 2>"$T/kill9.err" &
fake_pid=$!
lib_track_pid "$fake_pid"
sleep "$KILL_AFTER_S"
acked_at_kill=$(grep -c '^registered ' "$T/kill9.out")
kill -KILL "$COORD_PID"
wait "$COORD_PID" 2>/dev/null
lib_untrack_pid "$COORD_PID"
lib_log "kill -9 of meshcoord after $acked_at_kill acknowledged registrations"
if coord_start; then
	lib_ok "(h) meshcoord starts after kill -9"
else
	lib_not_ok "(h) meshcoord starts after kill -9"
	show_log_tail "$T/coord.log"
fi
rc=
lib_wait_exit rc "$fake_pid" 70
acked=$(grep -c '^registered ' "$T/kill9.out")
lib_log "fakenode: $(grep '^registered=' "$T/kill9.out")"
list=$(nodes_list)
missing=0
while read -r _ name ip _; do
	if ! printf '%s\n' "$list" | grep -E "^${name}[[:space:]]" | grep -q -F -w "$ip"; then
		missing=$((missing + 1))
		[ "$missing" -le 5 ] && lib_log "missing from nodes list: $name $ip"
	fi
done < <(grep '^registered ' "$T/kill9.out")
lib_check "(h) the kill came in the middle ($acked_at_kill of $KILL_NODES acknowledged before it, $acked in all)" \
	test "$acked_at_kill" -ge 1 -a "$acked_at_kill" -lt "$KILL_NODES"
lib_check "(h) every acknowledged registration ($acked) survived the kill -9 ($missing missing from nodes list)" \
	test "$acked" -ge 1 -a "$missing" -eq 0

# ------------------------------------------------------------------ the end
both_alive() {
	lib_pid_alive "${PID[n1]}" && lib_pid_alive "${PID[n2]}"
}
lib_check "n1's and n2's meshd still running" both_alive
lib_check "n1 → n2 still works with the coordinator back" lib_wait_for 10 lib_ping "${NS[n1]}" "${IP[n2]:-192.0.2.254}"
for n in n1 n2; do
	lib_stop_pid "${PID[$n]}"
	rc=$?
	lib_check "$n's meshd exits 0 on SIGTERM (exit $rc)" test "$rc" -eq 0
done
lib_stop_pid "$COORD_PID"
rc=$?
lib_check "meshcoord exits 0 on SIGTERM (exit $rc)" test "$rc" -eq 0

# ------------------------------------------------------------------ (i) the pinned overlay
# A coordinator with the same key but another registry (another network: its own IPv6 ULA
# prefix) stands for a compromised coordinator renumbering its nodes. n1, restarted with a
# valid join key for it, must refuse the addresses (they lie outside the overlay it joined)
# and keep the ones it had.
CONF2=$T/coord2.yaml
lib_coord_write_config "$CONF2" "0.0.0.0:$CONTROL_PORT" "0.0.0.0:$STUN_PORT" "$COORD_IP:$CONTROL_PORT" "$T/coord-state2"
cp -p "$T/coord-state/coord.key" "$T/coord-state2/coord.key"
KEY_OTHER=$(lib_coord_authkey "$CONF2")
lib_coord_start COORD_PID "$NS_COORD" "$CONF2" "$T/coord2.log"
if lib_coord_wait_up "$COORD_PID" "$NS_COORD" "$CONTROL_PORT" && [ -n "$KEY_OTHER" ]; then
	node_start n1 --join "$KEY_OTHER"
	if lib_wait_for 20 grep -q "outside the overlay this node joined" "$T/n1.log"; then
		lib_ok "(i) n1 refuses a registration outside its pinned overlay: '$(grep -m 1 'outside the overlay' "$T/n1.log" | sed 's/.*the coordinator assigned/the coordinator assigned/' | cut -c1-110)'"
	else
		lib_not_ok "(i) n1 refuses a registration outside its pinned overlay (no such line within 20 s)"
		show_log_tail "$T/n1.log"
	fi
	# Exactly the addresses of its saved self line, nothing from the other network.
	want=$(awk '$1 == "self" { print $3; print $4 }' "$T/n1/coordinator.state" | sort | tr '\n' ' ')
	have=$(ip -n "${NS[n1]}" -o addr show dev "$IFACE" scope global 2>/dev/null | awk '{ print $4 }' | sort | tr '\n' ' ')
	lib_check "(i) n1 keeps the addresses it had ($want) and takes none from the other network (has: $have)" \
		test -n "$want" -a "$want" = "$have"
	lib_stop_pid "${PID[n1]}"
else
	lib_not_ok "(i) a second coordinator with the same key starts"
	show_log_tail "$T/coord2.log"
fi
lib_stop_pid "$COORD_PID"

if [ "$LIB_FAILED" -gt 0 ]; then
	for f in coord n1 n2 n3; do
		echo "# ---- last lines of $f.log"
		tail -n 25 "$T/$f.log" 2>/dev/null | sed 's/^/# /'
	done
fi
lib_summary
