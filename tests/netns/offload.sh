#!/bin/bash
# meshd's offloads between two namespaces: TUN TSO/USO and coalesced TUN writes, UDP GSO
# and GRO, over IPv4 and IPv6 in the tunnel, and the clean fallback when GSO is refused.
#
#   ┌──────────── offA-<pid> ─────────────┐      ┌──────────── offB-<pid> ─────────────┐
#   │  mesh0  100.64.0.1/10 fd00:6::1/64  │      │  mesh0  100.64.0.2/10 fd00:6::2/64  │
#   │    │ meshd A (udp 51820)            │      │    │ meshd B (udp 51820)            │
#   │  vethA  192.0.2.1/24  ──────────────┼──────┼──────────────  vethB  192.0.2.2/24  │
#   └─────────────────────────────────────┘      └─────────────────────────────────────┘
#
# Checks: (a) 64 MiB TCP A→B over IPv4 and B→A over IPv6 arrive with the same sha256, and the
# counters show what the kernel granted at work (super-packets split on the sender,
# packets coalesced on the receiver, GSO sends, GRO receives); (b) with an underlay MTU
# too small for the tunnel's datagrams the kernel refuses GSO sends (EINVAL): meshd says
# so once, goes on one datagram per message (the IP layer fragments), and a transfer still
# arrives intact.
#
# Needs root, /dev/net/tun, iproute2, socat or python3 (exits 77 = SKIP otherwise) and a
# built meshd. KEEP_TMPDIR=1 keeps the logs.
set -u

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/netns/lib.sh
. "$here/lib.sh"

lib_require_root
lib_require_tun
lib_require_cmd ip iproute2
lib_require_cmd sha256sum coreutils
lib_have_tcp_tool || lib_skip "neither socat nor python3 installed (Debian package socat)"
lib_find_meshd

lib_mktemp
lib_trap_cleanup

NS_A=offA-$$
NS_B=offB-$$
T=$LIB_TMPDIR
TRANSFER_MIB=${TRANSFER_MIB:-64}
TRANSFER_TIMEOUT=${TRANSFER_TIMEOUT:-120}
# Below the 1420-byte tunnel MTU plus WireGuard's 32 bytes and the outer headers: the
# datagrams no longer fit the veth, so a GSO send (which may not fragment) is refused.
SMALL_UNDERLAY_MTU=1400

lib_ns_create "$NS_A"
lib_ns_create "$NS_B"
lib_veth "$NS_A" vethA 192.0.2.1/24 "$NS_B" vethB 192.0.2.2/24

# write_config FILE KEY ADDR4 ADDR6 PEER PEER_PUB ENDPOINT PEER4 PEER6
write_config() {
	cat >"$1" <<-EOF
	interface: mesh0
	control_socket: ${1%.yaml}.sock
	private_key_file: $2
	listen_port: 51820
	address: [$3, $4]
	mtu: 1420
	peers:
	  - name: $5
	    public_key: $6
	    endpoint: $7
	    allowed_ips: [$8, $9]
	EOF
}
lib_genkey "$T" a
lib_genkey "$T" b
write_config "$T/a.yaml" "$T/a.key" 100.64.0.1/10 fd00:6::1/64 b "$(cat "$T/b.pub")" 192.0.2.2:51820 \
	100.64.0.2/32 fd00:6::2/128
write_config "$T/b.yaml" "$T/b.key" 100.64.0.2/10 fd00:6::2/64 a "$(cat "$T/a.pub")" 192.0.2.1:51820 \
	100.64.0.1/32 fd00:6::1/128

start_pair() {
	: >"$T/a.log"
	: >"$T/b.log"
	lib_meshd_start PID_A "$NS_A" "$T/a.yaml" "$T/a.log"
	lib_meshd_start PID_B "$NS_B" "$T/b.yaml" "$T/b.log"
	lib_meshd_wait_up "$PID_A" "$NS_A" mesh0 && lib_meshd_wait_up "$PID_B" "$NS_B" mesh0 &&
		lib_wait_for 10 lib_ping "$NS_A" 100.64.0.2 &&
		lib_wait_for 10 ip netns exec "$NS_A" ping -6 -n -c 1 -W 1 fd00:6::2
}

stop_pair() {
	lib_stop_pid "$PID_A"
	lib_stop_pid "$PID_B"
	lib_wait_for 5 lib_link_absent "$NS_A" mesh0
	lib_wait_for 5 lib_link_absent "$NS_B" mesh0
}

# transfer DESC FROM_NS TO_NS TO_ADDR PORT: one sha256-checked TCP transfer, reported.
transfer() {
	local desc=$1 from=$2 to=$3 addr=$4 port=$5 recv_pid send_rc sum_sent sum_recv t0 t1 ms
	head -c "${TRANSFER_MIB}M" /dev/urandom >"$T/send.bin"
	lib_tcp_recv recv_pid "$to" "$addr" "$port" "$T/recv.bin"
	if ! lib_wait_for 5 lib_tcp_listening "$to" "$port"; then
		lib_not_ok "$desc (receiver did not start listening)"
		return
	fi
	t0=$(lib_now_ms)
	lib_tcp_send "$from" "$addr" "$port" "$T/send.bin" "$TRANSFER_TIMEOUT"
	send_rc=$?
	t1=$(lib_now_ms)
	lib_wait_for 10 bash -c "! [ -d /proc/$recv_pid ] || grep -q '^State:.*Z' /proc/$recv_pid/status"
	lib_stop_pid "$recv_pid" 1
	sum_sent=$(sha256sum <"$T/send.bin" | cut -d' ' -f1)
	sum_recv=$(sha256sum <"$T/recv.bin" 2>/dev/null | cut -d' ' -f1)
	ms=$((t1 - t0 > 0 ? t1 - t0 : 1))
	if [ "$send_rc" -eq 0 ] && [ "$sum_sent" = "$sum_recv" ]; then
		lib_ok "$desc (${ms} ms, ~$((TRANSFER_MIB * 8 * 1048576 / 1000 / ms)) Mbit/s)"
	else
		lib_not_ok "$desc (sender exit $send_rc; sha256 sent $sum_sent, received ${sum_recv:-none})"
	fi
	rm -f "$T/send.bin" "$T/recv.bin"
}

# udp_stream DESC FROM_NS TO_NS TO_ADDR PORT: UDP_DATAGRAMS datagrams in bursts of
# UDP_BURST (a burst reaches the receiver's meshd in one batch, so its TUN writes can
# group them); every 7th is short (the kernel must end a group with it). Each one's bytes
# follow from its sequence number, so the receiver knows every length and byte it should
# get. Passes when none arrived changed and at least UDP_MIN_PERCENT arrived (UDP may drop).
UDP_DATAGRAMS=20000
UDP_BURST=32
UDP_MIN_PERCENT=90
cat >"$T/udpcheck.py" <<'EOF'
import socket, struct, sys, time
mode, addr, port, count, burst = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
def datagram(seq):
    return struct.pack("!I", seq) * (175 if seq % 7 == 6 else 300)  # 700 or 1200 bytes
s = socket.socket(fam, socket.SOCK_DGRAM)
if mode == "recv":
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.bind((addr, port))
    open(sys.argv[6], "w").close()  # listening
    good = bad = 0
    s.settimeout(30)  # the sender starts within seconds
    try:
        while good + bad < count:
            d = s.recv(2048)
            s.settimeout(2)  # then quiet for 2 s means it is over
            seq = struct.unpack("!I", d[:4])[0] if len(d) >= 4 else count
            if seq < count and d == datagram(seq):
                good += 1
            else:
                bad += 1
    except socket.timeout:
        pass
    print(good, bad)
else:
    for seq in range(count):
        s.sendto(datagram(seq), (addr, port))
        if seq % burst == burst - 1:
            time.sleep(0.002)
EOF
udp_stream() {
	local desc=$1 from=$2 to=$3 addr=$4 port=$5 pid result good bad
	rm -f "$T/udp.ready" "$T/udp.result"
	ip netns exec "$to" timeout 60 python3 "$T/udpcheck.py" recv "$addr" "$port" "$UDP_DATAGRAMS" "$UDP_BURST" \
		"$T/udp.ready" >"$T/udp.result" 2>&1 &
	pid=$!
	lib_track_pid "$pid"
	if ! lib_wait_for 5 test -e "$T/udp.ready"; then
		lib_not_ok "$desc (receiver did not start)"
		return
	fi
	ip netns exec "$from" timeout 60 python3 "$T/udpcheck.py" send "$addr" "$port" "$UDP_DATAGRAMS" "$UDP_BURST"
	wait "$pid"
	lib_untrack_pid "$pid"
	result=$(cat "$T/udp.result")
	read -r good bad <<<"$result"
	if [ "${bad:-1}" = 0 ] && [ "${good:-0}" -ge $((UDP_DATAGRAMS * UDP_MIN_PERCENT / 100)) ]; then
		lib_ok "$desc ($good of $UDP_DATAGRAMS arrived, none changed)"
	else
		lib_not_ok "$desc (receiver: ${result:-nothing}; want 0 changed and >= $UDP_MIN_PERCENT %)"
	fi
}

# counter_positive LINE NAME: the counter is there and above zero.
counter_positive() {
	local v
	v=$(lib_counter "$1" "$2")
	[ -n "$v" ] && [ "$v" -gt 0 ]
}

# ------------------------------------------------------------------ (a) offloads at work
if start_pair; then
	lib_ok "meshd A and B up, ping over IPv4 and IPv6 in the tunnel"
	transfer "${TRANSFER_MIB} MiB TCP A→B over IPv4 in the tunnel arrives with the same sha256" \
		"$NS_A" "$NS_B" 100.64.0.2 5001
	transfer "${TRANSFER_MIB} MiB TCP B→A over IPv6 in the tunnel arrives with the same sha256" \
		"$NS_B" "$NS_A" fd00:6::1 5002
	udp_stream "$UDP_DATAGRAMS UDP datagrams A→B over IPv4 in the tunnel arrive unchanged" \
		"$NS_A" "$NS_B" 100.64.0.2 5003
	udp_stream "$UDP_DATAGRAMS UDP datagrams B→A over IPv6 in the tunnel arrive unchanged" \
		"$NS_B" "$NS_A" fd00:6::1 5004
	ca=$(lib_meshd_counters "$PID_A" "$T/a.log")
	cb=$(lib_meshd_counters "$PID_B" "$T/b.log")
	echo "# A: $(grep -m1 'TUN offloads' "$T/a.log" | sed 's/.*meshd: //'); $(grep -m1 'UDP offloads' "$T/a.log" | sed 's/.*meshd: //')"
	echo "# A counters:$(printf '%s\n' "$ca" | sed 's/.*counters://')"
	echo "# B counters:$(printf '%s\n' "$cb" | sed 's/.*counters://')"
	if grep -q 'TUN offloads: TSO' "$T/a.log"; then
		lib_check "TSO: both split super-packets from their TUN and wrote coalesced ones (tx_segmented, rx_coalesced > 0)" \
			bash -c "$(declare -f counter_positive lib_counter); counter_positive '$ca' tx_segmented &&
				counter_positive '$cb' tx_segmented && counter_positive '$ca' rx_coalesced &&
				counter_positive '$cb' rx_coalesced"
	else
		lib_ok "TSO: the kernel granted no TUN offloads # SKIP plain TUN path only"
	fi
	if grep -q 'TUN offloads: TSO USO' "$T/a.log"; then
		lib_check "USO: both wrote UDP datagrams to their TUN grouped (rx_coalesced_udp > 0)" \
			bash -c "$(declare -f counter_positive lib_counter); counter_positive '$ca' rx_coalesced_udp &&
				counter_positive '$cb' rx_coalesced_udp"
	else
		lib_ok "USO: the kernel did not grant it # SKIP UDP datagrams written one by one"
	fi
	if grep -q 'UDP offloads: GSO on, GRO on' "$T/a.log"; then
		lib_check "UDP GSO and GRO: sends of several datagrams and receives of several (tx_gso_sends, rx_gro_receives > 0)" \
			bash -c "$(declare -f counter_positive lib_counter); counter_positive '$ca' tx_gso_sends &&
				counter_positive '$cb' rx_gro_receives && counter_positive '$cb' tx_gso_sends &&
				counter_positive '$ca' rx_gro_receives"
	else
		lib_ok "UDP GSO and GRO: refused by this kernel # SKIP one datagram per message only"
	fi
	lib_check "no packet was refused as malformed or bad-sourced on either side" \
		bash -c "! printf '%s\n%s\n' '$ca' '$cb' | grep -Eq '(rx_data_malformed|rx_data_bad_source|tx_offload_invalid)=[1-9]'"
else
	lib_not_ok "meshd A and B up, ping over IPv4 and IPv6 in the tunnel"
	cat "$T/a.log" "$T/b.log" | sed 's/^/#   /'
fi
stop_pair

# ------------------------------------------------------------------ (b) GSO refused
ip -n "$NS_A" link set vethA mtu "$SMALL_UNDERLAY_MTU"
ip -n "$NS_B" link set vethB mtu "$SMALL_UNDERLAY_MTU"
if start_pair; then
	transfer "with an underlay MTU of $SMALL_UNDERLAY_MTU: ${TRANSFER_MIB} MiB TCP A→B still arrives with the same sha256" \
		"$NS_A" "$NS_B" 100.64.0.2 5003
	echo "# A counters:$(lib_meshd_counters "$PID_A" "$T/a.log" | sed 's/.*counters://')"
	echo "# B counters:$(lib_meshd_counters "$PID_B" "$T/b.log" | sed 's/.*counters://')"
	if grep -q 'UDP offloads: GSO on' "$T/a.log"; then
		n=$(grep -c 'UDP GSO refused on send' "$T/a.log")
		lib_check "A said once that GSO was refused and went on without it (said $n times)" [ "$n" -eq 1 ]
	else
		lib_ok "GSO refusal # SKIP this kernel has no UDP GSO"
	fi
else
	lib_not_ok "meshd A and B up with an underlay MTU of $SMALL_UNDERLAY_MTU"
	cat "$T/a.log" "$T/b.log" | sed 's/^/#   /'
fi
stop_pair

lib_summary
