#!/bin/bash
# Captures a stock wireguard-go's handshake with a cookie round trip, for
# tests/unit/test_wireguard_capture.c: known answers for mac1, mac2, the cookie reply, the
# handshake response and transport data that do not come from meshd's code.
#
#   tests/tools/wg-capture.sh [OUT.json]     (root; default OUT: tests/unit/wireguard-go-capture.json)
#
# For each run (no PSK, then a PSK) it makes two network namespaces joined by a veth pair:
#   wgcap-go-PID  192.0.2.1  wireguard-go (-f) on wgcN, 100.64.0.1/10, configured with `wg set`:
#                            fixed private key, port 51820, one peer (the Python side) at
#                            192.0.2.2:51821 with allowed-ips 100.64.0.2/32 (and the PSK)
#   wgcap-py-PID  192.0.2.2  tests/tools/wg_capture.py respond: the WireGuard peer, in Python,
#                            with fixed static and ephemeral keys, index, cookie secret and nonce
# One `ping -c 1 100.64.0.2` in wireguard-go's namespace starts the handshake: wireguard-go's
# initiation is answered with a cookie reply, its retry (~5 s later, with mac2) with a handshake
# response; then the ping travels the tunnel and Python answers it. wireguard-go's keepalive (it
# sends one when it was sent data and has nothing to say back, or when persistent-keepalive is
# switched on, which we do once the ping is answered) ends the run. Nothing leaves the
# namespaces; every wait is bounded; the trap ends only the processes started here, by PID, and
# deletes the namespaces.
#
# The unit test reads only the committed capture file; this script is how it is remade.
# Needs: root, /dev/net/tun, wireguard-go and wireguard-tools (Debian packages), iproute2,
# iputils-ping, /usr/bin/python3 with python3-nacl.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
OUT=${1:-$TOP/tests/unit/wireguard-go-capture.json}
PYTHON=/usr/bin/python3
HELPER=$HERE/wg_capture.py
LIB_SKIP_CODE=1 # this is a tool: a missing prerequisite is an error
# shellcheck source=../netns/lib.sh
. "$TOP/tests/netns/lib.sh"

WG_GO_ADDR=192.0.2.1
PY_ADDR=192.0.2.2
WG_GO_PORT=51820
PY_PORT=51821
WG_GO_OVERLAY=100.64.0.1/10
PY_OVERLAY=100.64.0.2
RUNS="cookie psk"

lib_require_root
lib_require_tun
lib_require_cmd wireguard-go wireguard-go
lib_require_cmd wg wireguard-tools
lib_require_cmd ping iputils-ping
[ -x "$PYTHON" ] || lib_skip "$PYTHON not found"
"$PYTHON" -c 'import nacl.bindings' 2>/dev/null || lib_skip "python3-nacl is missing (apt-get install python3-nacl)"

lib_mktemp
lib_trap_cleanup

# Everything a run leaves in the temp dir is shown when it fails.
show_logs() {
	local f
	for f in "$LIB_TMPDIR"/*.log; do
		[ -f "$f" ] || continue
		echo "---- ${f##*/}"
		sed 's/^/    /' "$f"
	done
}

fail() {
	echo "wg-capture.sh: $*" >&2
	show_logs >&2
	exit 1
}

wg_socket_ready() {
	[ -S "/var/run/wireguard/$1.sock" ]
}

file_has() {
	grep -q "$2" "$1"
}

# capture_run RUN: one wireguard-go, one Python responder, one handshake; writes $LIB_TMPDIR/RUN.json.
capture_run() {
	local run=$1 ns_go="wgcap-go-$$" ns_py="wgcap-py-$$" ifname="wgc$$" go_pid py_pid
	local WG_GO_PRIVATE PY_PUBLIC PSK
	eval "$("$PYTHON" "$HELPER" keys "$run")" || fail "wg_capture.py keys failed"
	[ ${#ifname} -le 15 ] || ifname=wgc0 # an interface name has at most 15 characters

	lib_log "run $run: namespaces $ns_go, $ns_py"
	lib_ns_create "$ns_go"
	lib_ns_create "$ns_py"
	lib_veth "$ns_go" veth0 "$WG_GO_ADDR/24" "$ns_py" veth0 "$PY_ADDR/24"

	# wireguard-go's UAPI socket is in the file system that all namespaces share: the PID in the
	# interface name keeps two captures apart.
	ip netns exec "$ns_go" wireguard-go -f "$ifname" </dev/null >"$LIB_TMPDIR/$run-wireguard-go.log" 2>&1 &
	go_pid=$!
	lib_track_pid "$go_pid"
	lib_wait_for 10 wg_socket_ready "$ifname" || fail "run $run: wireguard-go did not start"

	(umask 077 && printf '%s\n' "$WG_GO_PRIVATE" >"$LIB_TMPDIR/wg-go.key" &&
		printf '%s\n' "$PSK" >"$LIB_TMPDIR/psk")
	if [ -n "$PSK" ]; then
		ip netns exec "$ns_go" wg set "$ifname" private-key "$LIB_TMPDIR/wg-go.key" listen-port "$WG_GO_PORT" \
			peer "$PY_PUBLIC" preshared-key "$LIB_TMPDIR/psk" endpoint "$PY_ADDR:$PY_PORT" \
			allowed-ips "$PY_OVERLAY/32" || fail "run $run: wg set failed"
	else
		ip netns exec "$ns_go" wg set "$ifname" private-key "$LIB_TMPDIR/wg-go.key" listen-port "$WG_GO_PORT" \
			peer "$PY_PUBLIC" endpoint "$PY_ADDR:$PY_PORT" allowed-ips "$PY_OVERLAY/32" ||
			fail "run $run: wg set failed"
	fi
	ip -n "$ns_go" addr add "$WG_GO_OVERLAY" dev "$ifname"
	ip -n "$ns_go" link set "$ifname" up || fail "run $run: cannot bring $ifname up"

	ip netns exec "$ns_py" "$PYTHON" -u "$HELPER" respond "$run" "$LIB_TMPDIR/$run.json" \
		</dev/null >"$LIB_TMPDIR/$run-responder.log" 2>&1 &
	py_pid=$!
	lib_track_pid "$py_pid"
	lib_wait_for 10 file_has "$LIB_TMPDIR/$run-responder.log" '^ready' || fail "run $run: responder did not start"

	# The handshake takes ~5 s (the retry after the cookie reply); the echo crosses after it.
	if ! ip netns exec "$ns_go" ping -n -c 1 -W 20 "$PY_OVERLAY" >"$LIB_TMPDIR/$run-ping.log" 2>&1; then
		fail "run $run: the ping through the tunnel got no answer"
	fi
	# Ask for the keepalive that ends the run now, not after wireguard-go's 10 s idle timer.
	ip netns exec "$ns_go" wg set "$ifname" peer "$PY_PUBLIC" persistent-keepalive 25 ||
		fail "run $run: wg set persistent-keepalive failed"

	lib_wait_for 20 bash -c '! [ -r "/proc/$1/status" ] || grep -q "^State:[[:space:]]*Z" "/proc/$1/status"' _ "$py_pid" ||
		fail "run $run: the responder did not finish"
	lib_stop_pid "$py_pid" 1 || fail "run $run: the responder failed"
	lib_stop_pid "$go_pid" 5
	lib_ns_delete "$ns_go"
	lib_ns_delete "$ns_py"
	cat "$LIB_TMPDIR/$run-responder.log"
	mv "$LIB_TMPDIR/$run-responder.log" "$LIB_TMPDIR/$run-responder.done"
	rm -f "$LIB_TMPDIR/$run-wireguard-go.log" "$LIB_TMPDIR/$run-ping.log"
}

parts=()
for run in $RUNS; do
	capture_run "$run"
	parts+=("$LIB_TMPDIR/$run.json")
done

version=$(wireguard-go --version 2>/dev/null | head -n 1)
package=$(dpkg-query -W -f '${Package} ${Version}' wireguard-go 2>/dev/null || echo "version unknown")
source="Captured by tests/tools/wg-capture.sh on $(date -u +%Y-%m-%d) from ${version:-wireguard-go} (Debian package $package) \
in network namespaces, configured with wg set (wireguard-tools $(wg --version 2>/dev/null | awk '{print $2}')). \
The initiations, the retry's mac2 and the data messages from_wireguard_go are wireguard-go's bytes; \
the cookie reply, the response and data_to_wireguard_go were built by tests/tools/wg_capture.py (Python, noise_ref.py) \
and accepted by wireguard-go: it answered the cookie reply with mac2, the response with data, and our echo reply reached ping."
"$PYTHON" "$HELPER" merge "$source" "$OUT" "${parts[@]}" || fail "merging the runs failed"
lib_log "wrote $OUT"
