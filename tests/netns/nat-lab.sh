#!/bin/bash
# The NAT lab checks itself (tests/netns/natlab.sh): one site of each type, and natprobe shows
# each router behaving as the NAT type it claims; then the lab's own controls work:
# natlab_cut_udp stops UDP (not TCP) between two sites and natlab_restore_udp brings it back,
# natlab_conntrack_flush empties a router's table; and nothing is left behind.
#
#   pub   public     host on the wan, 203.0.113.21
#   cone  cone       10.2.0.2 behind 203.0.113.22 (masquerade)
#   sym   symmetric  10.3.0.2 behind 203.0.113.23 (masquerade fully-random)
#   blk   udpblock   10.4.0.2 behind 203.0.113.24 (masquerade, UDP dropped)
#
# Needs root, iproute2, nftables, conntrack and a C compiler or a built natprobe (exit 77 =
# SKIP otherwise). No meshd: this tests the lab, the scenarios come on top of it.
# KEEP_TMPDIR=1 keeps the probe outputs.
set -u

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/netns/lib.sh
. "$here/lib.sh"
# shellcheck source=tests/netns/natlab.sh
. "$here/natlab.sh"

lib_require_root
natlab_require
lib_require_cmd ss iproute2

# Interfaces of the caller's namespace before: the lab must create none there.
links_before=$(ip -o link show | awk -F': ' '{ print $2 }' | sed 's/@.*//' | sort)

lib_mktemp
lib_trap_cleanup
natlab_find_natprobe

started=$(lib_now_ms)
natlab_init
natlab_site pub public
natlab_site cone cone
natlab_site sym symmetric
natlab_site blk udpblock

# shellcheck disable=SC2119 # no arguments: every site
natlab_selfcheck || lib_log "the self-check failed: the lab is broken (see the not ok lines above)"

# ---- natlab_cut_udp / natlab_restore_udp: a natprobe server on the public host, the client
# behind the cone router. UDP between the two public addresses stops, TCP does not.
PUB=${NATLAB_HOST[pub]}
PUB_IP=${NATLAB_HOST_IP[pub]}
SRV_PID=
ip netns exec "$PUB" "$NATPROBE" server --lifetime 60 "$PUB_IP:5000" "$PUB_IP:5001" "$PUB_IP:5002" "$PUB_IP:5003" \
	</dev/null >>"$LIB_TMPDIR/pub-server.log" 2>&1 &
SRV_PID=$!
lib_track_pid "$SRV_PID"
pub_bound() {
	ip netns exec "$PUB" ss -Hltn "sport = :5000" | grep -q LISTEN
}
lib_wait_for 5 pub_bound || lib_die "natprobe server on $PUB did not start"

# probe_pub FILE: natprobe from the cone host to the public host.
probe_pub() {
	natlab_exec cone timeout 20 "$NATPROBE" client --tcp --tries 2 "$PUB_IP:5000" "$PUB_IP:5001" >"$1" 2>&1
}

udp_tcp() {
	echo "udp=$(natlab_probe_field "$1" mapped_primary) tcp=$(natlab_probe_field "$1" tcp)"
}

probe_pub "$LIB_TMPDIR/before-cut.out"
CONE_WAN=${NATLAB_WAN_IP[cone]}
if [ "$(natlab_probe_field "$LIB_TMPDIR/before-cut.out" mapped_primary | cut -d: -f1)" = "$CONE_WAN" ]; then
	lib_ok "cone -> pub: UDP works before the cut ($(udp_tcp "$LIB_TMPDIR/before-cut.out"))"
else
	lib_not_ok "cone -> pub: UDP works before the cut ($(udp_tcp "$LIB_TMPDIR/before-cut.out"))"
fi

natlab_cut_udp cone pub
natlab_cut_udp cone pub # idempotent
probe_pub "$LIB_TMPDIR/cut.out"
if [ "$(natlab_probe_field "$LIB_TMPDIR/cut.out" mapped_primary)" = none ] &&
	[ "$(natlab_probe_field "$LIB_TMPDIR/cut.out" tcp | cut -d: -f1)" = "$CONE_WAN" ]; then
	lib_ok "natlab_cut_udp cone pub: UDP dropped, TCP still passes ($(udp_tcp "$LIB_TMPDIR/cut.out"))"
else
	lib_not_ok "natlab_cut_udp cone pub: UDP dropped, TCP still passes ($(udp_tcp "$LIB_TMPDIR/cut.out"))"
fi
# Other pairs are untouched: the symmetric site still reaches the public host.
natlab_exec sym timeout 20 "$NATPROBE" client --tries 2 "$PUB_IP:5000" "$PUB_IP:5001" >"$LIB_TMPDIR/cut-other.out" 2>&1
lib_check "natlab_cut_udp cone pub leaves sym -> pub alone" \
	[ "$(natlab_probe_field "$LIB_TMPDIR/cut-other.out" mapped_primary | cut -d: -f1)" = "${NATLAB_WAN_IP[sym]}" ]

natlab_restore_udp cone pub
probe_pub "$LIB_TMPDIR/restored.out"
lib_check "natlab_restore_udp cone pub: UDP works again ($(udp_tcp "$LIB_TMPDIR/restored.out"))" \
	[ "$(natlab_probe_field "$LIB_TMPDIR/restored.out" mapped_primary | cut -d: -f1)" = "$CONE_WAN" ]

# ---- natlab_conntrack_flush: the cone router's table held the flows above; empty after.
ct_count() {
	ip netns exec "${NATLAB_ROUTER[$1]}" conntrack -C 2>/dev/null
}
n_before=$(ct_count cone)
natlab_conntrack_flush cone
n_after=$(ct_count cone)
lib_check "natlab_conntrack_flush cone: $n_before -> $n_after conntrack entries" \
	[ "${n_before:-0}" -gt 0 -a "${n_after:-1}" -eq 0 ]
lib_stop_pid "$SRV_PID" 2

lib_log "lab built, checked and exercised in $(($(lib_now_ms) - started)) ms"

# ---- Nothing left behind: clean up now (the trap would do it at exit) and look.
lab_id=$NATLAB_ID
lib_cleanup
left=$(ip netns list | awk '{ print $1 }' | grep -c "^$lab_id-")
lib_check "no namespace of this lab is left ($left)" [ "$left" -eq 0 ]
links_after=$(ip -o link show | awk -F': ' '{ print $2 }' | sed 's/@.*//' | sort)
new_links=$(comm -13 <(echo "$links_before") <(echo "$links_after") | tr '\n' ' ')
lib_check "no interface created in the caller's namespace (${new_links:-none})" [ -z "$new_links" ]

lib_summary
