#!/bin/bash
# Two meshd nodes with static peers (no coordinator) in network namespaces, and a ping
# through the encrypted tunnel.
#
#   ┌──────── demoA-<pid> ────────┐          ┌──────── demoB-<pid> ────────┐
#   │ mesh0 100.64.0.1  (meshd A) │          │ mesh0 100.64.0.2  (meshd B) │
#   │ vethA 192.0.2.1  ───────────┼──────────┼───────────  vethB 192.0.2.2 │
#   └─────────────────────────────┘          └─────────────────────────────┘
#
# Run it as root from a built tree (after ./configure && make); it builds nothing.
# Uses $MESHD if set, else src/meshd/meshd of this checkout. Everything it creates
# (namespaces, processes, temp files) is removed when it ends, also on ctrl-c.
set -u

here=$(cd "$(dirname "$0")" && pwd)
# A missing prerequisite is an error here, not an automake SKIP.
LIB_SKIP_CODE=1
# shellcheck source=tests/netns/lib.sh
. "$here/../tests/netns/lib.sh"

if [ -z "${MESHD:-}" ] && [ ! -x "$here/../src/meshd/meshd" ] && [ -x ./src/meshd/meshd ]; then
	MESHD=./src/meshd/meshd
fi
lib_require_root
lib_require_tun
lib_require_cmd ip iproute2
lib_require_cmd ping iputils-ping
lib_find_meshd

lib_mktemp
lib_trap_cleanup

NS_A=demoA-$$
NS_B=demoB-$$
T=$LIB_TMPDIR

echo "== creating namespaces $NS_A and $NS_B, joined by a veth pair (192.0.2.1 <-> 192.0.2.2)"
lib_ns_create "$NS_A"
lib_ns_create "$NS_B"
lib_veth "$NS_A" vethA 192.0.2.1/24 "$NS_B" vethB 192.0.2.2/24

echo "== generating a key pair for each node"
lib_genkey "$T" a
lib_genkey "$T" b
echo "   A public key: $(cat "$T/a.pub")"
echo "   B public key: $(cat "$T/b.pub")"
lib_write_config "$T/a.yaml" mesh0 "$T/a.key" 51820 100.64.0.1/10 \
	b "$(cat "$T/b.pub")" 192.0.2.2:51820 100.64.0.2/32
lib_write_config "$T/b.yaml" mesh0 "$T/b.key" 51820 100.64.0.2/10 \
	a "$(cat "$T/a.pub")" 192.0.2.1:51820 100.64.0.1/32

echo "== node A's config ($T/a.yaml):"
sed 's/^/   | /' "$T/a.yaml"
echo "== node B's config is the mirror image:"
sed 's/^/   | /' "$T/b.yaml"

echo "== starting meshd in both namespaces"
lib_meshd_start PID_A "$NS_A" "$T/a.yaml" "$T/a.log"
lib_meshd_start PID_B "$NS_B" "$T/b.yaml" "$T/b.log"
if ! lib_meshd_wait_up "$PID_A" "$NS_A" mesh0 || ! lib_meshd_wait_up "$PID_B" "$NS_B" mesh0; then
	echo "meshd did not come up; its logs:" >&2
	sed 's/^/   A: /' "$T/a.log" >&2
	sed 's/^/   B: /' "$T/b.log" >&2
	exit 1
fi
ip -n "$NS_A" -brief addr show dev mesh0 | sed 's/^/   A: /'
ip -n "$NS_B" -brief addr show dev mesh0 | sed 's/^/   B: /'

# Both nodes started at once, so their first handshakes may cross; meshd then retries
# (every 5 s). Wait for the tunnel rather than show a ping that raced it.
echo "== waiting for the handshake (up to 15 s)"
t0=$(lib_now_ms)
if lib_wait_for 15 lib_ping "$NS_A" 100.64.0.2; then
	echo "   tunnel up after $(($(lib_now_ms) - t0)) ms"
fi
echo "== ping 100.64.0.2 from A, through the encrypted tunnel:"
ip netns exec "$NS_A" ping -n -c 3 -W 2 100.64.0.2 | sed 's/^/   /'
rc=${PIPESTATUS[0]}

echo "== meshd A's log:"
sed 's/^/   /' "$T/a.log"
if [ "$rc" -ne 0 ]; then
	echo "== the ping failed; meshd B's log:" >&2
	sed 's/^/   /' "$T/b.log" >&2
	echo "demo FAILED" >&2
	exit 1
fi
echo "== done: the ping went A -> mesh0 -> meshd A -> UDP 192.0.2.1:51820 -> 192.0.2.2:51820 -> meshd B -> mesh0 and back."
echo "   Cleaning up the namespaces."
exit 0
