#!/bin/bash
# A live mesh in network namespaces: a coordinator and three nodes that join it with one
# join key, learn each other from the coordinator, and ping each other's overlay addresses
# over end-to-end encrypted tunnels. No node is told about any other.
#
#                      ┌──── demoC-<pid> ────┐
#                      │ meshcoord            │
#                      │ eth0 192.0.2.10      │
#                      └─────────┬────────────┘
#          ┌─────────────────────┴───── bridge (demoH-<pid>) ─────────┐
#   ┌──────┴──────┐           ┌──────┴──────┐           ┌──────┴──────┐
#   │ alice       │           │ bob         │           │ carol       │
#   │ 192.0.2.11  │           │ 192.0.2.12  │           │ 192.0.2.13  │
#   │ mesh0 100.64.x.y (assigned by the coordinator)                    │
#
# Run it as root from a built tree (after ./configure && make); it builds nothing. Uses
# $MESHD and $MESHCOORD if set, else the binaries of this checkout. Everything it creates
# (namespaces, processes, temp files) is removed when it ends, also on ctrl-c.
# contrib/demo-static.sh shows two nodes with static peers and no coordinator.
set -u

here=$(cd "$(dirname "$0")" && pwd)
# A missing prerequisite is an error here, not an automake SKIP.
LIB_SKIP_CODE=1
# shellcheck source=tests/netns/lib.sh
. "$here/../tests/netns/lib.sh"
: "${MESHCOORD:=$here/../coord/meshcoord}"

lib_require_root
lib_require_tun
lib_require_cmd ip iproute2
lib_require_cmd ping iputils-ping
lib_require_cmd unshare util-linux
lib_find_meshd
lib_find_meshcoord

lib_mktemp
lib_trap_cleanup

T=$LIB_TMPDIR
HUB=demoH-$$
COORD_NS=demoC-$$
NODES="alice bob carol"
declare -A NS UNDERLAY PID OVERLAY
UNDERLAY=([alice]=192.0.2.11 [bob]=192.0.2.12 [carol]=192.0.2.13)

echo "== a lab LAN (a bridge in $HUB) with the coordinator at 192.0.2.10"
lib_hub_create "$HUB"
lib_ns_create "$COORD_NS"
lib_hub_attach "$HUB" "$COORD_NS" eth0 192.0.2.10/24
lib_coord_write_config "$T/coord.yaml" 192.0.2.10:51821 192.0.2.10:3478 192.0.2.10:51821 "$T/coord"
sed 's/^/   | /' "$T/coord.yaml"
lib_coord_start COORD_PID "$COORD_NS" "$T/coord.yaml" "$T/coord.log"
lib_coord_wait_up "$COORD_PID" "$COORD_NS" 51821 || { cat "$T/coord.log" >&2; exit 1; }

echo "== meshcoord authkey create --reusable   (one key for all three nodes)"
KEY=$(lib_coord_authkey "$T/coord.yaml" --reusable)
[ -n "$KEY" ] || { echo "could not create a join key" >&2; exit 1; }
echo "   $KEY"

for n in $NODES; do
	NS[$n]=demo-$n-$$
	lib_ns_create "${NS[$n]}"
	lib_hub_attach "$HUB" "${NS[$n]}" eth0 "${UNDERLAY[$n]}/24"
	printf 'interface: mesh0\nlisten_port: 51820\nstate_dir: %s\ncontrol_socket: %s.sock\n' "$T/$n" "$T/$n" >"$T/$n.yaml"
done
echo "== each node's whole config (no addresses, no peers):"
sed 's/^/   | /' "$T/alice.yaml"

echo "== starting meshd up --join KEY on alice, bob and carol"
for n in $NODES; do
	lib_meshd_start_args "PID[$n]" "${NS[$n]}" "$n" "$T/$n.yaml" "$T/$n.log" info --join "$KEY"
done
for n in $NODES; do
	if ! lib_wait_for 15 grep -q 'registered with coordinator' "$T/$n.log"; then
		echo "$n did not register; its log:" >&2
		sed 's/^/   /' "$T/$n.log" >&2
		exit 1
	fi
	OVERLAY[$n]=$(lib_iface_ipv4 "${NS[$n]}" mesh0)
done

echo "== meshcoord nodes list"
"$MESHCOORD" nodes list -c "$T/coord.yaml" 2>&1 | sed 's/^/   /'

rc=0
echo "== every node pings every other by its overlay address"
for a in $NODES; do
	for b in $NODES; do
		[ "$a" = "$b" ] && continue
		if lib_wait_for 10 lib_ping "${NS[$a]}" "${OVERLAY[$b]}"; then
			rtt=$(ip netns exec "${NS[$a]}" ping -n -c 1 -W 1 "${OVERLAY[$b]}" | sed -n 's/.*time=\([0-9.]*\) ms.*/\1/p')
			printf '   %-5s -> %-5s %-15s ok  %s ms\n' "$a" "$b" "${OVERLAY[$b]}" "${rtt:-?}"
		else
			printf '   %-5s -> %-5s %-15s FAILED\n' "$a" "$b" "${OVERLAY[$b]}"
			rc=1
		fi
	done
done

echo "== alice's log:"
sed 's/^/   /' "$T/alice.log"
if [ "$rc" -ne 0 ]; then
	echo "demo FAILED; coordinator log:" >&2
	sed 's/^/   /' "$T/coord.log" >&2
	exit 1
fi
echo "== done: three nodes joined with one key and reached each other through encrypted tunnels."
echo "   Cleaning up the namespaces."
exit 0
