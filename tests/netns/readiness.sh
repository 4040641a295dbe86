#!/bin/bash
# systemd readiness without systemd (CI runs none): meshd and meshcoord under a stand-in
# notify socket (tests/tools/notifylisten.py), which runs a check at the moment READY=1
# arrives, as a unit ordered After= them would see the world.
#   (a) meshd joining with a key while the coordinator is down says STATUS=...registering
#       and no READY=1; (b) meshcoord, on an abstract socket (@name), says READY=1 when its
#       control port accepts connections, then WATCHDOG=1 every half of WATCHDOG_USEC;
#   (c) the node registers and says READY=1 with its overlay address on the interface;
#   (d) both say STOPPING=1 at SIGTERM; (e) the node restarted while the coordinator is down
#       says READY=1 at once, its address restored from state_dir; (f) a static node that
#       drops to `user: nobody` still reaches a notify socket only root may open (READY=1
#       with its interface up, WATCHDOG=1, STOPPING=1): meshd connects it before the drop.
set -u

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/netns/lib.sh
. "$here/lib.sh"

lib_require_root
lib_require_tun
lib_require_cmd ip iproute2
lib_require_cmd python3 python3
lib_find_meshd
lib_find_meshcoord
lib_mktemp
lib_trap_cleanup

NS_C=rdC-$$
NS_A=rdA-$$
COORD_IP=192.0.2.1
NODE_IP=192.0.2.2
CONTROL_PORT=51821
IFACE=mesh0
T=$LIB_TMPDIR
LISTEN=$top_srcdir/tests/tools/notifylisten.py
DROP_USER=nobody

lib_ns_create "$NS_C"
lib_ns_create "$NS_A"
lib_veth "$NS_C" vethC "$COORD_IP/24" "$NS_A" vethA "$NODE_IP/24"

# listen VAR NS SOCKET LOG CHECK...: a stand-in notify socket in NS, PID in VAR; returns
# once it is bound.
listen() {
	local __var=$1 ns=$2 sock=$3 log=$4 pid
	shift 4
	ip netns exec "$ns" timeout 120 python3 "$LISTEN" "$sock" "$log" "$@" </dev/null >>"$T/listeners.log" 2>&1 &
	pid=$!
	lib_track_pid "$pid"
	printf -v "$__var" '%s' "$pid"
	lib_wait_for 10 grep -q '^listening$' "$log" || lib_die "the notify listener did not start (see $T/listeners.log)"
}
# has LOG WORD: a message holding WORD (READY=1, STOPPING=1, ...) arrived.
has() { grep -q -e "[ |]$2\(|\|\$\)" "$1"; }
count() { grep -c -e "[ |]$2\(|\|\$\)" "$1"; }
status_line() { grep -o 'STATUS=[^|]*' "$1" | tail -n 1; }

# ---------------------------------------------------------------- (a) join, coordinator down
CONF=$T/coord.yaml
lib_coord_write_config "$CONF" "$COORD_IP:$CONTROL_PORT" "$COORD_IP:3478" "$COORD_IP:$CONTROL_PORT" "$T/coord-state"
KEY=$(lib_coord_authkey "$CONF") || lib_die "meshcoord authkey create failed"
mkdir -p "$T/node-state" && chmod 700 "$T/node-state"
printf 'interface: %s\nlisten_port: 0\nstate_dir: %s\ncontrol_socket: %s\n' "$IFACE" "$T/node-state" "$T/node.sock" >"$T/node.yaml"
# At READY=1 the interface must carry its overlay address: the node is usable.
has_overlay_address=(sh -c "ip -4 -o addr show dev $IFACE | grep -q ' inet 100\\.'")
listen L_NODE "$NS_A" "$T/node.notify" "$T/node.msgs" "${has_overlay_address[@]}"
export NOTIFY_SOCKET=$T/node.notify
lib_meshd_start_args PID_NODE "$NS_A" node "$T/node.yaml" "$T/node.log" info --join "$KEY"
unset NOTIFY_SOCKET
lib_wait_for 10 grep -q 'STATUS=.*registering with the coordinator' "$T/node.msgs"
lib_check "(a) the joining node says what it waits for: '$(status_line "$T/node.msgs")'" \
	grep -q 'STATUS=.*registering with the coordinator' "$T/node.msgs"
sleep 2
lib_check "(a) and no READY=1 while the coordinator is down" bash -c "! grep -q READY=1 '$T/node.msgs'"

# ---------------------------------------------------------------- (b) meshcoord
# The abstract name lives in NS_C's network namespace, where both ends are.
COORD_SOCK=@meshd-readiness-$$
control_accepts=(bash -c "exec 3<>/dev/tcp/$COORD_IP/$CONTROL_PORT")
listen L_COORD "$NS_C" "$COORD_SOCK" "$T/coord.msgs" "${control_accepts[@]}"
export NOTIFY_SOCKET=$COORD_SOCK WATCHDOG_USEC=600000
lib_coord_start PID_COORD "$NS_C" "$CONF" "$T/coord.log"
unset NOTIFY_SOCKET WATCHDOG_USEC
lib_wait_for 10 has "$T/coord.msgs" READY=1
lib_check "(b) meshcoord says READY=1 ('$(status_line "$T/coord.msgs")')" has "$T/coord.msgs" READY=1
lib_check "(b) with its control port accepting connections then" grep -q '^CHECK ok$' "$T/coord.msgs"
sleep 1.5
n=$(count "$T/coord.msgs" WATCHDOG=1)
# (its 250 ms tick sends it: every 500 ms here, the first at once)
lib_check "(b) WATCHDOG=1 every half of WATCHDOG_USEC=600000 ($n in ~1.5 s, at least 2)" test "$n" -ge 2

# ---------------------------------------------------------------- (c) the node registers
# meshd retries after 1, 2, 4 s (+ jitter): within 15 s of the coordinator coming up.
lib_check "(c) the node says READY=1 once registered ('$(lib_wait_for 15 has "$T/node.msgs" READY=1; status_line "$T/node.msgs")')" \
	has "$T/node.msgs" READY=1
lib_check "(c) with its overlay address on $IFACE then" grep -q '^CHECK ok$' "$T/node.msgs"
lib_check "(c) READY=1 came once" test "$(count "$T/node.msgs" READY=1)" -eq 1

# ---------------------------------------------------------------- (d) stopping
lib_stop_pid "$PID_NODE"
lib_check "(d) the node says STOPPING=1 at SIGTERM" has "$T/node.msgs" STOPPING=1
lib_stop_pid "$PID_COORD"
lib_check "(d) meshcoord says STOPPING=1 at SIGTERM" has "$T/coord.msgs" STOPPING=1

# ---------------------------------------------------------------- (e) restored from state
: >"$T/node.msgs"
export NOTIFY_SOCKET=$T/node.notify
lib_meshd_start_args PID_NODE "$NS_A" node "$T/node.yaml" "$T/node.log" info
unset NOTIFY_SOCKET
lib_check "(e) restarted with the coordinator down, the node says READY=1 within 5 s ('$(lib_wait_for 5 has "$T/node.msgs" READY=1; status_line "$T/node.msgs")')" \
	has "$T/node.msgs" READY=1
lib_check "(e) with the overlay address from its state_dir on $IFACE then" grep -q '^CHECK ok$' "$T/node.msgs"
lib_stop_pid "$PID_NODE"
lib_stop_pid "$L_NODE"

# ---------------------------------------------------------------- (f) privilege drop
id "$DROP_USER" >/dev/null 2>&1 || lib_die "user $DROP_USER missing (Debian has it)"
lib_genkey "$T" s
lib_genkey "$T" peer
lib_write_config "$T/s.yaml" "$IFACE" "$T/s.key" 51820 100.64.0.1/10 peer "$(cat "$T/peer.pub")" "$COORD_IP:51820" 100.64.0.2/32
echo "user: $DROP_USER" >>"$T/s.yaml"
# Root's alone, as /run/systemd/notify's directory is: after the drop, meshd could not
# connect to it any more.
mkdir -m 0700 "$T/root-only"
interface_up=(ip link show dev "$IFACE")
listen L_S "$NS_A" "$T/root-only/notify" "$T/s.msgs" "${interface_up[@]}"
export NOTIFY_SOCKET=$T/root-only/notify WATCHDOG_USEC=1000000
lib_meshd_start PID_S "$NS_A" "$T/s.yaml" "$T/s.log"
unset NOTIFY_SOCKET WATCHDOG_USEC
lib_check "(f) a node that drops to $DROP_USER says READY=1 ('$(lib_wait_for 10 has "$T/s.msgs" READY=1; status_line "$T/s.msgs")')" \
	has "$T/s.msgs" READY=1
lib_check "(f) after the drop ('running as user $DROP_USER' logged), with $IFACE up then" \
	bash -c "grep -q 'running as user $DROP_USER' '$T/s.log' && grep -q '^CHECK ok$' '$T/s.msgs'"
sleep 1.2
n=$(count "$T/s.msgs" WATCHDOG=1)
lib_check "(f) WATCHDOG=1 as $DROP_USER every half of WATCHDOG_USEC=1000000 ($n in ~1.2 s, at least 2)" test "$n" -ge 2
lib_stop_pid "$PID_S"
lib_check "(f) and STOPPING=1 at SIGTERM" has "$T/s.msgs" STOPPING=1

if [ "$LIB_FAILED" -ne 0 ]; then
	for f in node coord s; do
		sed "s/^/# $f.msgs: /" "$T/$f.msgs" 2>/dev/null | tail -n 8
		tail -n 8 "$T/$f.log" 2>/dev/null | sed "s/^/# $f.log: /"
	done
fi
lib_summary
