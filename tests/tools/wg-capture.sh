#!/bin/bash
# Captures a stock wireguard-go's handshakes, with cookie round trips both ways, for
# tests/unit/test_wireguard_capture.c: known answers for mac1, mac2, cookie replies, handshake
# messages and transport data that do not come from meshd's code.
#
#   tests/tools/wg-capture.sh [OUT.json]     (root; default OUT: tests/unit/wireguard-go-capture.json)
#
# Each run makes two network namespaces joined by a veth pair:
#   wgcap-go-PID  192.0.2.1  wireguard-go (-f) on wgcPID, 100.64.0.1/10, configured with `wg set`:
#                            fixed private key, port 51820, one peer (the Python side) with
#                            allowed-ips 100.64.0.2/32 (and, in some runs, a PSK)
#   wgcap-py-PID  192.0.2.2  tests/tools/wg_capture.py on port 51821: the WireGuard peer, in
#                            Python, with fixed static and ephemeral keys, indices, cookie secret
#                            and nonce
# Runs "cookie" (no PSK) and "psk": wireguard-go initiates (it has our endpoint). One
#   `ping -c 1 100.64.0.2` in its namespace starts the handshake: its initiation is answered with
#   a cookie reply, its retry (~5 s later, with mac2) with a handshake response; then the ping
#   travels the tunnel and Python answers it. Switching on persistent-keepalive makes wireguard-go
#   send the keepalive that ends the run.
# Run "initiator" (PSK): Python initiates. It floods wireguard-go with at most 4,096 initiations
#   that open for nobody until wireguard-go is under load, so that wireguard-go answers our
#   initiations with cookie replies; then it completes the handshake with mac2 and sends an echo
#   request that wireguard-go's kernel answers through the tunnel (wg_capture.py, initiate()).
# Nothing leaves the namespaces; every wait is bounded; the trap ends only the processes started
# here, by PID, and deletes the namespaces.
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
# shellcheck disable=SC2034 # read by lib.sh: this is a tool, a missing prerequisite is an error
LIB_SKIP_CODE=1
# shellcheck source=tests/netns/lib.sh
. "$TOP/tests/netns/lib.sh"

WG_GO_ADDR=192.0.2.1
PY_ADDR=192.0.2.2
WG_GO_PORT=51820
PY_PORT=51821
WG_GO_OVERLAY=100.64.0.1/10
PY_OVERLAY=100.64.0.2
RUNS="cookie psk initiator"

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

# wg_up RUN: namespaces, veth, and wireguard-go configured for RUN (the initiator run gives it no
# endpoint: it learns ours from our initiation). Sets NS_GO, NS_PY, IFNAME, GO_PID, PY_PUBLIC.
wg_up() {
	local run=$1 WG_GO_PRIVATE PSK endpoint=() psk=()
	NS_GO="wgcap-go-$$" NS_PY="wgcap-py-$$" IFNAME="wgc$$"
	eval "$("$PYTHON" "$HELPER" keys "$run")" || fail "wg_capture.py keys failed"
	[ ${#IFNAME} -le 15 ] || IFNAME=wgc0 # an interface name has at most 15 characters

	lib_log "run $run: namespaces $NS_GO, $NS_PY"
	lib_ns_create "$NS_GO"
	lib_ns_create "$NS_PY"
	lib_veth "$NS_GO" veth0 "$WG_GO_ADDR/24" "$NS_PY" veth0 "$PY_ADDR/24"

	# wireguard-go's UAPI socket is in the file system that all namespaces share: the PID in the
	# interface name keeps two captures apart.
	ip netns exec "$NS_GO" wireguard-go -f "$IFNAME" </dev/null >"$LIB_TMPDIR/$run-wireguard-go.log" 2>&1 &
	GO_PID=$!
	lib_track_pid "$GO_PID"
	lib_wait_for 10 wg_socket_ready "$IFNAME" || fail "run $run: wireguard-go did not start"

	(umask 077 && printf '%s\n' "$WG_GO_PRIVATE" >"$LIB_TMPDIR/wg-go.key" &&
		printf '%s\n' "$PSK" >"$LIB_TMPDIR/psk")
	[ -n "$PSK" ] && psk=(preshared-key "$LIB_TMPDIR/psk")
	[ "$run" != initiator ] && endpoint=(endpoint "$PY_ADDR:$PY_PORT")
	ip netns exec "$NS_GO" wg set "$IFNAME" private-key "$LIB_TMPDIR/wg-go.key" listen-port "$WG_GO_PORT" \
		peer "$PY_PUBLIC" "${psk[@]}" "${endpoint[@]}" allowed-ips "$PY_OVERLAY/32" ||
		fail "run $run: wg set failed"
	ip -n "$NS_GO" addr add "$WG_GO_OVERLAY" dev "$IFNAME"
	ip -n "$NS_GO" link set "$IFNAME" up || fail "run $run: cannot bring $IFNAME up"
}

# py_start RUN ARGS...: the Python side in its namespace; waits until its socket is bound.
py_start() {
	local run=$1
	shift
	ip netns exec "$NS_PY" "$PYTHON" -u "$HELPER" "$@" </dev/null >"$LIB_TMPDIR/$run-python.log" 2>&1 &
	PY_PID=$!
	lib_track_pid "$PY_PID"
	lib_wait_for 10 file_has "$LIB_TMPDIR/$run-python.log" '^ready' || fail "run $run: the Python side did not start"
}

# wg_down RUN: waits (bounded) for the Python side to finish, then ends wireguard-go and the namespaces.
wg_down() {
	local run=$1
	# shellcheck disable=SC2016 # $1 is the inner shell's
	lib_wait_for 45 bash -c '! [ -r "/proc/$1/status" ] || grep -q "^State:[[:space:]]*Z" "/proc/$1/status"' _ "$PY_PID" ||
		fail "run $run: the Python side did not finish"
	lib_stop_pid "$PY_PID" 1 || fail "run $run: the Python side failed"
	lib_stop_pid "$GO_PID" 5
	lib_ns_delete "$NS_GO"
	lib_ns_delete "$NS_PY"
	cat "$LIB_TMPDIR/$run-python.log"
	rm -f "$LIB_TMPDIR/$run-python.log" "$LIB_TMPDIR/$run-wireguard-go.log" "$LIB_TMPDIR/$run-ping.log"
}

# capture_run RUN: wireguard-go initiates (RUN cookie or psk) or responds (RUN initiator); writes
# $LIB_TMPDIR/RUN.json.
capture_run() {
	local run=$1
	wg_up "$run"
	if [ "$run" = initiator ]; then
		py_start "$run" initiate "$LIB_TMPDIR/$run.json"
		wg_down "$run"
		return
	fi
	py_start "$run" respond "$run" "$LIB_TMPDIR/$run.json"
	# The handshake takes ~5 s (the retry after the cookie reply); the echo crosses after it.
	if ! ip netns exec "$NS_GO" ping -n -c 1 -W 20 "$PY_OVERLAY" >"$LIB_TMPDIR/$run-ping.log" 2>&1; then
		fail "run $run: the ping through the tunnel got no answer"
	fi
	# Ask for the keepalive that ends the run now, not after wireguard-go's 10 s idle timer.
	ip netns exec "$NS_GO" wg set "$IFNAME" peer "$PY_PUBLIC" persistent-keepalive 25 ||
		fail "run $run: wg set persistent-keepalive failed"
	wg_down "$run"
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
In runs, wireguard-go initiated: the initiations, the retry's mac2 and data_from_wireguard_go are its bytes; \
the cookie reply, the response and data_to_wireguard_go were built by tests/tools/wg_capture.py (Python, noise_ref.py) \
and accepted by wireguard-go: it answered the cookie reply with mac2, the response with data, and our echo reply reached ping. \
In wireguard_go_responds, Python initiated to wireguard-go under load: the cookie replies, the response and \
data_from_wireguard_go are wireguard-go's bytes; it answered our second initiation with the wrong mac2 with a cookie reply \
and the one with the right mac2 with its response, and our echo request with the echo reply."
"$PYTHON" "$HELPER" merge "$source" "$OUT" "${parts[@]}" || fail "merging the runs failed"
lib_log "wrote $OUT"
