#!/bin/bash
# The control socket and CLI on two static nodes, one veth cable between two namespaces.
#
#   ┌──────────── mcA-<pid> ─────────────┐      ┌──────────── mcB-<pid> ─────────────┐
#   │  mesh0  100.64.0.1/10              │      │  mesh0  100.64.0.2/10              │
#   │  meshd A, control socket $T/a.sock │      │  meshd B, control socket $T/b.sock │
#   │  vethA  192.0.2.1/24  ─────────────┼──────┼─────────────  vethB  192.0.2.2/24  │
#   └────────────────────────────────────┘      └────────────────────────────────────┘
#
# Checks: the socket is 0600; `meshd status --json` shows peer b on "direct 192.0.2.2:51820"
# with a recent handshake and rx/tx bytes that grow after a ping, and every counter SIGUSR1
# logs under "counters"; the plain table says the
# same; `meshd ping` answers (for a static peer: a clear refusal) and names an unknown peer;
# a second `meshd up` on the same interface fails with one clear line; a CLI of another
# protocol version is refused with the daemon's version; no daemon gives the one-line hint;
# after kill -9 the stale socket is replaced on restart; after SIGTERM the socket is gone.
#
# Needs root, /dev/net/tun, iproute2, python3 and a built meshd (exits 77 = SKIP otherwise).
set -u

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/netns/lib.sh
. "$here/lib.sh"

lib_require_root
lib_require_tun
lib_require_cmd ip iproute2
lib_require_cmd ping iputils-ping
lib_require_cmd python3 python3
lib_find_meshd

lib_mktemp
lib_trap_cleanup

NS_A=mcA-$$
NS_B=mcB-$$
UNDERLAY_A=192.0.2.1
UNDERLAY_B=192.0.2.2
OVERLAY_A=100.64.0.1
OVERLAY_B=100.64.0.2
PORT=51820
IFACE=mesh0
T=$LIB_TMPDIR
SOCK_A=$T/a.sock
PINGS=5

lib_ns_create "$NS_A"
lib_ns_create "$NS_B"
lib_veth "$NS_A" vethA "$UNDERLAY_A/24" "$NS_B" vethB "$UNDERLAY_B/24"
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
lib_meshd_wait_up "$PID_A" "$NS_A" "$IFACE" || lib_die "meshd A did not come up: $(tail -n 5 "$T/a.log")"
lib_meshd_wait_up "$PID_B" "$NS_B" "$IFACE" || lib_die "meshd B did not come up: $(tail -n 5 "$T/b.log")"
lib_wait_for 10 test -S "$SOCK_A" || lib_die "meshd A made no control socket at $SOCK_A"
lib_wait_for 10 lib_ping "$NS_A" "$OVERLAY_B" || lib_die "no overlay ping from A to B"

cli() { ip netns exec "$NS_A" "$MESHD" "$@"; }

# jget JSON-FILE PYTHON-EXPR: evaluates EXPR with the parsed document as `d` and peer b as `b`.
jget() {
	python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
b = [p for p in d["peers"] if p["name"] == "b"][0]
print(eval(sys.argv[2]))' "$1" "$2"
}

lib_check "the control socket is mode 0600" test "$(stat -c %a "$SOCK_A")" = 600

cli status --json -s "$SOCK_A" >"$T/s1.json" 2>"$T/s1.err"
lib_check "meshd status --json exits 0 and prints JSON" python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$T/s1.json"
lib_check "status: peer b is on path direct 192.0.2.2:51820" \
	test "$(jget "$T/s1.json" 'b["path"] + " " + str(b["endpoint"])')" = "direct $UNDERLAY_B:$PORT"
lib_check "status: peer b's addresses and a handshake within 30 s" \
	test "$(jget "$T/s1.json" '",".join(b["addresses"]) + " " + str(b["last_handshake_ago_s"] is not None and b["last_handshake_ago_s"] < 30)')" = "$OVERLAY_B/32 True"
lib_check "status: this node's address, key and no coordinator" \
	test "$(jget "$T/s1.json" '" ".join(d["node"]["addresses"]) + " " + d["node"]["public_key"] + " " + d["node"]["coordinator"]')" = "$OVERLAY_A/10 $(cat "$T/a.pub") none"

ip netns exec "$NS_A" ping -n -q -c "$PINGS" -i 0.2 -W 1 "$OVERLAY_B" >/dev/null 2>&1
cli status --json -s "$SOCK_A" >"$T/s2.json"
grew() { [ "$(jget "$T/s2.json" "b[\"$1\"]")" -ge $(($(jget "$T/s1.json" "b[\"$1\"]") + PINGS * 84)) ]; }
lib_check "status: rx_bytes grew by at least $PINGS pings" grew rx_bytes
lib_check "status: tx_bytes grew by at least $PINGS pings" grew tx_bytes
# Every counter SIGUSR1 logs is in status --json, with the same name.
CTR=$(lib_meshd_counters "$PID_A" "$T/a.log")
names=$(printf '%s\n' "$CTR" | tr ' ' '\n' | sed -n 's/^\([a-z_]*\)=[0-9]*$/\1/p' | sort | tr '\n' ' ')
jnames=$(jget "$T/s2.json" '" ".join(sorted(d["counters"])) + " "')
lib_check "status --json carries every device counter ($(echo "$names" | wc -w) of them)" \
	test -n "$names" -a "$names" = "$jnames"
lib_check "status --json counters: handshakes completed, datagrams sent and received" \
	test "$(jget "$T/s2.json" 'str(min(d["counters"]["handshakes_completed"], d["counters"]["tx_datagrams"], d["counters"]["rx_datagrams"]) > 0)')" = True

cli status -s "$SOCK_A" >"$T/table.txt"
lib_check "plain status shows the same path in its table" grep -q "^b .*direct $UNDERLAY_B:$PORT" "$T/table.txt"
sed 's/^/#   /' "$T/table.txt"

# Another way to find the socket (-i IFNAME) reaches the default path, where nobody is.
out=$(cli status -i nosuch0 2>&1); rc=$?
lib_check "no daemon: one line with the hint, exit 1" \
	test "$rc:$out" = "1:meshd status: no daemon on /run/meshd/nosuch0.sock (is \`meshd up\` running? pass -i IFNAME or -s PATH)"

out=$(cli ping -s "$SOCK_A" b 2>&1); rc=$?
lib_check "ping of a static peer answers with a clear refusal" \
	bash -c '[ "$1" = 1 ] && [[ "$2" == "meshd ping: b is a static peer: "* ]]' _ "$rc" "$out"
echo "#   $out"
out=$(cli ping -s "$SOCK_A" 100.64.9.9 2>&1); rc=$?
lib_check "ping of an unknown address says there is no such peer" \
	bash -c '[ "$1" = 1 ] && [[ "$2" == *"no peer is named or has the address '"'"'100.64.9.9'"'"'"* ]]' _ "$rc" "$out"
out=$(cli ping -s "$SOCK_A" "$OVERLAY_B" 2>&1)
lib_check "ping finds the peer by overlay address" bash -c '[[ "$1" == *"b is a static peer"* ]]' _ "$out"
lib_check "netcheck without a coordinator says so" bash -c \
	'"$@" | grep -q "unknown: no coordinator configured"' _ ip netns exec "$NS_A" "$MESHD" netcheck -s "$SOCK_A"
lib_check "status --help exits 0 and names --json" bash -c '"$1" status --help | grep -q -- --json' _ "$MESHD"

# A CLI of another protocol version: request version 2.
python3 - "$SOCK_A" >"$T/oldcli.txt" 2>&1 <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(b"MSHQ" + struct.pack(">HHHH", 2, 1, 0, 0))
data = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
magic, version, status, length = data[:4], *struct.unpack(">HHI", data[4:12])
print(magic.decode(), version, status, length, data[12:12 + length].decode())
PY
lib_check "a CLI of protocol version 2 is refused with status 3 and the daemon's version" \
	grep -q '^MSHR 1 3 [0-9]* meshd ' "$T/oldcli.txt"
sed 's/^/#   /' "$T/oldcli.txt"
lib_check "the daemon logged the refused client's version" grep -q 'control protocol 2 (we speak 1)' "$T/a.log"

# A second daemon for the same interface (same config): one clear line, exit 1, fast.
ip netns exec "$NS_A" "$MESHD" up -c "$T/a.yaml" </dev/null >"$T/second.log" 2>&1 &
second=$!
lib_track_pid "$second"
if lib_wait_exit second_rc "$second" 10; then
	lib_check "a second meshd up on the same interface exits 1" test "$second_rc" = 1
	lib_check "and says another meshd is running on the socket" \
		grep -q "another meshd is already running on control socket $SOCK_A" "$T/second.log"
	sed 's/^/#   /' "$T/second.log"
else
	lib_not_ok "a second meshd up on the same interface exits (still running after 10 s)"
	lib_stop_pid "$second"
fi
lib_check "the first daemon still answers" bash -c '"$@" >/dev/null' _ ip netns exec "$NS_A" "$MESHD" status -s "$SOCK_A"

# kill -9 leaves the socket behind; a restart replaces it.
kill -KILL "$PID_A"
wait "$PID_A" 2>/dev/null
lib_untrack_pid "$PID_A"
lib_check "after kill -9 the socket file is left behind" test -S "$SOCK_A"
lib_wait_for 10 lib_link_absent "$NS_A" "$IFACE"
lib_meshd_start PID_A "$NS_A" "$T/a.yaml" "$T/a.log"
lib_meshd_wait_up "$PID_A" "$NS_A" "$IFACE"
lib_check "a restarted meshd replaces the stale socket and answers" \
	lib_wait_for 10 bash -c '"$@" >/dev/null' _ ip netns exec "$NS_A" "$MESHD" status -s "$SOCK_A"
lib_check "and logs that it removed a stale socket" grep -q 'removed stale control socket' "$T/a.log"

lib_stop_pid "$PID_A"
lib_check "after SIGTERM the socket file is gone" test ! -e "$SOCK_A"

if [ "$LIB_FAILED" -gt 0 ]; then
	for n in a b; do
		echo "# ---- last lines of meshd $n's log"
		tail -n 30 "$T/$n.log" | sed 's/^/# /'
	done
fi
lib_summary
