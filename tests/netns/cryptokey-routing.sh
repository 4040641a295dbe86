#!/bin/bash
# Cryptokey routing in the running daemon: a packet that arrives on a peer's session but
# whose inner source is not one of that peer's addresses never reaches the receiver's stack.
#
#   ┌──────────── ckA-<pid> ─────────────┐      ┌──────────── ckB-<pid> ─────────────┐
#   │  mesh0  100.64.0.1/10 (its own)    │      │  mesh0  100.64.0.2/10              │
#   │         100.64.0.9/32 (nobody's)   │      │  peers: a owns 100.64.0.1/32       │
#   │         100.64.0.3/32 (c's, per B) │      │         c owns 100.64.0.3/32       │
#   │  vethA  192.0.2.1/24  ─────────────┼──────┼─────────────  vethB  192.0.2.2/24  │
#   └────────────────────────────────────┘      └────────────────────────────────────┘
#
# A's host pings B from 100.64.0.9 (an address no peer owns) and from 100.64.0.3 (an address
# B gives to a third peer, c, that has no endpoint): meshd A routes by destination only, so
# both go to B on A's session. Checks: B's rx_data_bad_source grows by exactly the number
# sent each time, B's mesh0 sees none of them (tcpdump) and B's stack answers no echo
# (Icmp InEchos); pings from A's own address, before and after, get through and are seen
# by the same tcpdump, so the capture is shown to work.
#
# Needs root, /dev/net/tun, iproute2, tcpdump (exits 77 = SKIP otherwise) and a built meshd.
set -u

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/netns/lib.sh
. "$here/lib.sh"

lib_require_root
lib_require_tun
lib_require_cmd ip iproute2
lib_require_cmd ping iputils-ping
lib_require_cmd tcpdump tcpdump
lib_find_meshd

lib_mktemp
lib_trap_cleanup

NS_A=ckA-$$
NS_B=ckB-$$
UNDERLAY_A=192.0.2.1
UNDERLAY_B=192.0.2.2
OVERLAY_A=100.64.0.1
OVERLAY_B=100.64.0.2
SPOOF_NOBODY=100.64.0.9
SPOOF_OTHER=100.64.0.3
PORT=51820
IFACE=mesh0
T=$LIB_TMPDIR
SPOOFED=5 # echo requests per spoofed source

lib_ns_create "$NS_A"
lib_ns_create "$NS_B"
lib_veth "$NS_A" vethA "$UNDERLAY_A/24" "$NS_B" vethB "$UNDERLAY_B/24"
lib_genkey "$T" a
lib_genkey "$T" b
lib_write_config "$T/a.yaml" "$IFACE" "$T/a.key" "$PORT" "$OVERLAY_A/10" \
	b "$(cat "$T/b.pub")" "$UNDERLAY_B:$PORT" "$OVERLAY_B/32"
lib_write_config "$T/b.yaml" "$IFACE" "$T/b.key" "$PORT" "$OVERLAY_B/10" \
	a "$(cat "$T/a.pub")" "$UNDERLAY_A:$PORT" "$OVERLAY_A/32"
# A third peer on B's side only: it owns SPOOF_OTHER and has no endpoint.
cat >>"$T/b.yaml" <<EOF
  - name: c
    public_key: $(lib_random_pubkey)
    allowed_ips: [$SPOOF_OTHER/32]
EOF

PID_A=
PID_B=
lib_meshd_start PID_A "$NS_A" "$T/a.yaml" "$T/a.log"
lib_meshd_start PID_B "$NS_B" "$T/b.yaml" "$T/b.log"
if lib_meshd_wait_up "$PID_A" "$NS_A" "$IFACE" && lib_meshd_wait_up "$PID_B" "$NS_B" "$IFACE"; then
	lib_ok "meshd A and B start (B with a third peer c owning $SPOOF_OTHER)"
else
	lib_not_ok "meshd A and B start: $(tail -n 3 "$T/a.log" "$T/b.log")"
	lib_summary
	exit 1
fi
ip -n "$NS_A" addr add "$SPOOF_NOBODY/32" dev "$IFACE"
ip -n "$NS_A" addr add "$SPOOF_OTHER/32" dev "$IFACE"

lib_check "ping A→B from A's own address" lib_wait_for 10 lib_ping "$NS_A" "$OVERLAY_B"

# Everything ICMP that reaches B's stack through mesh0.
ip netns exec "$NS_B" timeout 120 tcpdump -n -l -i "$IFACE" icmp >"$T/b-mesh0.txt" 2>"$T/tcpdump.err" &
TCPDUMP_PID=$!
lib_track_pid "$TCPDUMP_PID"
lib_wait_for 5 grep -q 'listening on' "$T/tcpdump.err" || lib_not_ok "tcpdump on B's $IFACE did not start"

in_echos() { # Icmp InEchos of NS_B's stack
	ip netns exec "$NS_B" awk '/^Icmp:/ { if (!h) { for (i = 1; i <= NF; i++) col[$i] = i; h = 1 } else print $col["InEchos"] }' \
		/proc/net/snmp
}

# spoof_check SRC WHAT: SPOOFED echo requests from SRC; B must drop each as a bad source.
spoof_check() {
	local src=$1 what=$2 before after echos_before echos_after sent
	before=$(lib_meshd_counters "$PID_B" "$T/b.log") || { lib_not_ok "B's counters ($what)"; return; }
	echos_before=$(in_echos)
	ip netns exec "$NS_A" ping -n -q -c "$SPOOFED" -i 0.2 -W 1 -I "$src" "$OVERLAY_B" >"$T/ping-$src.txt" 2>&1
	sent=$(sed -n 's/^\([0-9][0-9]*\) packets transmitted.*/\1/p' "$T/ping-$src.txt")
	# B handles each datagram as it arrives; give the last one a moment.
	sleep 0.5
	after=$(lib_meshd_counters "$PID_B" "$T/b.log") || { lib_not_ok "B's counters ($what)"; return; }
	echos_after=$(in_echos)
	local d=$(($(lib_counter "$after" rx_data_bad_source) - $(lib_counter "$before" rx_data_bad_source)))
	if [ "${sent:-0}" -eq "$SPOOFED" ] && [ "$d" -eq "$SPOOFED" ]; then
		lib_ok "$what: $SPOOFED sent, rx_data_bad_source +$d on B"
	else
		lib_not_ok "$what: ping sent ${sent:-?} of $SPOOFED, rx_data_bad_source +$d on B (want +$SPOOFED)"
	fi
	if [ "$echos_after" -eq "$echos_before" ]; then
		lib_ok "$what: B's stack got no echo request (InEchos $echos_before → $echos_after)"
	else
		lib_not_ok "$what: B's stack got $((echos_after - echos_before)) echo requests"
	fi
}

spoof_check "$SPOOF_NOBODY" "inner source $SPOOF_NOBODY (no peer's)"
spoof_check "$SPOOF_OTHER" "inner source $SPOOF_OTHER (peer c's, sent on a's session)"

lib_check "ping A→B from A's own address still works" lib_ping "$NS_A" "$OVERLAY_B"
sleep 0.5
lib_stop_pid "$TCPDUMP_PID" 2
spoofed_seen=$(grep -c -E "IP ($SPOOF_NOBODY|$SPOOF_OTHER) > " "$T/b-mesh0.txt")
own_seen=$(grep -c -E "IP $OVERLAY_A > $OVERLAY_B: ICMP echo request" "$T/b-mesh0.txt")
if [ "$spoofed_seen" -eq 0 ] && [ "$own_seen" -ge 1 ]; then
	lib_ok "tcpdump on B's $IFACE: no spoofed packet, $own_seen echo requests from $OVERLAY_A"
else
	lib_not_ok "tcpdump on B's $IFACE: $spoofed_seen spoofed packets (want 0), $own_seen from $OVERLAY_A (want >= 1)"
	sed 's/^/#   /' "$T/b-mesh0.txt" | head -n 20
fi
if grep -q 'inner source is not one of its addresses' "$T/b.log"; then
	lib_ok "B's log names the drop"
else
	lib_not_ok "B's log does not mention the bad inner source"
fi

for who in A B; do
	pid_var=PID_$who
	if lib_stop_pid "${!pid_var}"; then
		lib_ok "meshd $who exits 0 on SIGTERM"
	else
		lib_not_ok "meshd $who exit status on SIGTERM: $?; log: $(tail -n 5 "$T/${who,,}.log")"
	fi
done

lib_summary
