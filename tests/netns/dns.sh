#!/bin/bash
# The mesh's names: every node answers DNS on 100.100.100.100 (and <overlay /48>::6464:6464)
# from the coordinator's map and forwards other names to its resolv.conf's servers.
#
#            ┌────────────────────────── mdH-<pid> (hub: bridge br0) ──────────────────────────┐
#            └────┬─────────────────────────┬───────────────────┬───────────────────┬─────────┘
#   ┌─ mdC-<pid> ─┴─────────────┐   ┌─ mda-<pid> ─┴───┐   ┌─ mdb-<pid> ─┴───┐   ┌─ mdc-<pid> ─┴───┐
#   │ meshcoord 192.0.2.10      │   │ meshd a         │   │ meshd b         │   │ meshd c (later) │
#   │ updns.py  192.0.2.53 :53  │   │ 192.0.2.11      │   │ 192.0.2.12      │   │ 192.0.2.13      │
#   └───────────────────────────┘   └─────────────────┘   └─────────────────┘   └─────────────────┘
#
# a's resolv.conf (ip netns exec's /etc/netns/mda-<pid>/resolv.conf, so the host's is never
# touched) names 192.0.2.53, where a tiny upstream (tests/tools/updns.py) answers
# www.example.org and NXDOMAIN for the rest, logging what it was asked.
# Checks, all with dig from a's namespace: b.mesh.internal A and AAAA give b's addresses (also
# in upper case, over IPv6 to the IPv6 service address, ANY, without EDNS0); a's own name; a
# query over TCP is refused at once and both service addresses answer ping; an unknown name in
# the domain is NXDOMAIN and never reaches the upstream; a foreign name is forwarded and
# answered, one the upstream ignores is SERVFAIL after 4 s, and a rewritten resolv.conf is
# followed within 3 s; c, joining later, is resolvable within 5 s; after dns_domain changes
# on the coordinator (SIGHUP), b.home.arpa answers within 5 s and the state file keeps the
# domain: a restarted while the coordinator is down still answers it.
# systemd-resolved: a's meshd talks to a stand-in (tests/tools/fake-resolved.py) on a private
# dbus-daemon (DBUS_SYSTEM_BUS_ADDRESS), which logs the calls: the link's DNS servers (both
# service addresses), ~mesh.internal as a routing domain, not the default route, the new
# domain after the change, and RevertLink when meshd stops.
#
# Needs root, /dev/net/tun, iproute2, dig, python3, dbus-daemon and python3's dbus and gi
# modules (exit 77 = SKIP). KEEP_TMPDIR=1 keeps the logs.
set -u

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/netns/lib.sh
. "$here/lib.sh"

lib_require_root
lib_require_tun
lib_require_cmd ip iproute2
lib_require_cmd dig bind9-dnsutils
lib_require_cmd python3 python3
lib_require_cmd unshare util-linux
lib_require_cmd dbus-daemon dbus-daemon
# python3 with dbus and gi: Debian's own (a pyenv or venv python3 first on PATH lacks them)
PY_DBUS=
for py in python3 /usr/bin/python3; do
	command -v "$py" >/dev/null 2>&1 && "$py" -c 'import dbus, gi' 2>/dev/null && { PY_DBUS=$py; break; }
done
[ -n "$PY_DBUS" ] || lib_skip "python3 cannot import dbus and gi: install the Debian packages python3-dbus python3-gi"
lib_find_meshd
lib_find_meshcoord

lib_mktemp

NS_HUB=mdH-$$
NS_COORD=mdC-$$
COORD_IP=192.0.2.10
UPSTREAM_IP=192.0.2.53
UPSTREAM2_IP=192.0.2.54 # the second upstream, named when resolv.conf changes
CONTROL_PORT=51821
STUN_PORT=3478
DATA_PORT=51820
IFACE=mesh0
SERVICE4=100.100.100.100
T=$LIB_TMPDIR
declare -A NS UNDERLAY PID IP6
UNDERLAY=([a]=192.0.2.11 [b]=192.0.2.12 [c]=192.0.2.13)
for n in a b c; do NS[$n]=md$n-$$; done
# Registration, then a map push: a few seconds; a later joiner within the issue's "few seconds".
REGISTER_LIMIT_S=15
NEW_NAME_LIMIT_S=5
DOMAIN_CHANGE_LIMIT_S=5

# ip netns exec bind-mounts /etc/netns/NS/resolv.conf over /etc/resolv.conf for what it runs.
NETNS_ETC=/etc/netns/${NS[a]}
MADE_ETC_NETNS=
[ -d /etc/netns ] || MADE_ETC_NETNS=yes
cleanup() {
	lib_cleanup
	rm -f "$NETNS_ETC/resolv.conf"
	rmdir "$NETNS_ETC" 2>/dev/null
	[ -n "$MADE_ETC_NETNS" ] && rmdir /etc/netns 2>/dev/null # only if we made it and it is empty
}
trap 'cleanup' EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap 'cleanup; exit 129' HUP

lib_hub_create "$NS_HUB"
lib_ns_create "$NS_COORD"
lib_hub_attach "$NS_HUB" "$NS_COORD" eth0 "$COORD_IP/24"
ip -n "$NS_COORD" addr add "$UPSTREAM_IP/24" dev eth0
ip -n "$NS_COORD" addr add "$UPSTREAM2_IP/24" dev eth0
for n in a b c; do
	lib_ns_create "${NS[$n]}"
	lib_hub_attach "$NS_HUB" "${NS[$n]}" eth0 "${UNDERLAY[$n]}/24"
	mkdir -p "$T/$n" && chmod 700 "$T/$n"
	printf 'interface: %s\nlisten_port: %s\nstate_dir: %s\ncontrol_socket: %s\n' \
		"$IFACE" "$DATA_PORT" "$T/$n" "$T/$n.sock" >"$T/$n.yaml"
done
mkdir -p "$NETNS_ETC" || lib_die "cannot create $NETNS_ETC"
printf 'nameserver %s\n' "$UPSTREAM_IP" >"$NETNS_ETC/resolv.conf"

ip netns exec "$NS_COORD" python3 "$top_srcdir/tests/tools/updns.py" "$UPSTREAM_IP" "$T/upstream.log" \
	</dev/null >>"$T/upstream.err" 2>&1 &
lib_track_pid $!
ip netns exec "$NS_COORD" python3 "$top_srcdir/tests/tools/updns.py" "$UPSTREAM2_IP" "$T/upstream2.log" 192.0.2.98 \
	</dev/null >>"$T/upstream.err" 2>&1 &
lib_track_pid $!

# A private system bus with the resolved stand-in on it.
cat >"$T/bus.conf" <<-EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=$T/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
    <allow own="*"/>
  </policy>
</busconfig>
EOF
dbus-daemon --config-file="$T/bus.conf" --nofork --nopidfile </dev/null >>"$T/bus.log" 2>&1 &
lib_track_pid $!
lib_wait_for 5 test -S "$T/bus" || lib_die "dbus-daemon did not start: $(tail -n 3 "$T/bus.log")"
DBUS_SYSTEM_BUS_ADDRESS=unix:path=$T/bus "$PY_DBUS" "$top_srcdir/tests/tools/fake-resolved.py" "$T/resolved.log" \
	</dev/null >>"$T/resolved.err" 2>&1 &
lib_track_pid $!
lib_wait_for 5 grep -q '^ready$' "$T/resolved.log" 2>/dev/null ||
	lib_die "the resolved stand-in did not start: $(tail -n 3 "$T/resolved.err")"

CONF=$T/coord.yaml
lib_coord_write_config "$CONF" "0.0.0.0:$CONTROL_PORT" "0.0.0.0:$STUN_PORT" "$COORD_IP:$CONTROL_PORT" "$T/coord-state"
COORD_PID=
lib_coord_start COORD_PID "$NS_COORD" "$CONF" "$T/coord.log"
lib_coord_wait_up "$COORD_PID" "$NS_COORD" "$CONTROL_PORT" || lib_die "meshcoord did not start: $(tail -n 5 "$T/coord.log")"
KEY=$(lib_coord_authkey "$CONF" --reusable)
[ -n "$KEY" ] || lib_die "no join key"

node_start() { # NODE: joins with the host name NODE (the coordinator names it so)
	lib_meshd_start_args "PID[$1]" "${NS[$1]}" "$1" "$T/$1.yaml" "$T/$1.log" info --join "$KEY"
}
registered() { # NODE: registered, with its IPv6 on the interface (sets IP6[NODE])
	lib_wait_for "$REGISTER_LIMIT_S" grep -q 'registered with coordinator' "$T/$1.log" || return 1
	lib_wait_for 5 bash -c "ip -n ${NS[$1]} -6 -o addr show dev $IFACE scope global | grep -q inet6" || return 1
	IP6[$1]=$(ip -n "${NS[$1]}" -6 -o addr show dev "$IFACE" scope global | awk '{ split($4, a, "/"); print a[1]; exit }')
}
ipv4_of() { lib_iface_ipv4 "${NS[$1]}" "$IFACE"; }
ask() { # SERVER [DIG_OPTION] NAME [TYPE]: dig's short answer from a's namespace
	local server=$1 opt=+short
	shift
	case $1 in +*) opt=$1; shift ;; esac
	ip netns exec "${NS[a]}" dig +short "$opt" +time=2 +tries=2 "@$server" "$1" "${2:-A}" 2>/dev/null
}
status_of() { # SERVER NAME [TYPE]: the answer's status (NOERROR, NXDOMAIN, ...)
	ip netns exec "${NS[a]}" dig +time=2 +tries=2 "@$1" "$2" "${3:-A}" 2>/dev/null |
		sed -n 's/.*status: \([A-Z]*\),.*/\1/p'
}
answers() { # EXPECTED SERVER NAME [TYPE]
	[ "$(ask "$2" "$3" "${4:-A}")" = "$1" ]
}

# Only a talks to the stand-in; b and c find no resolved (no bus at that address).
DBUS_SYSTEM_BUS_ADDRESS=unix:path=$T/bus
export DBUS_SYSTEM_BUS_ADDRESS
node_start a
DBUS_SYSTEM_BUS_ADDRESS=unix:path=$T/no-bus
node_start b
registered a || lib_die "a did not register: $(tail -n 5 "$T/a.log")"
registered b || lib_die "b did not register: $(tail -n 5 "$T/b.log")"
IPV4_B=$(ipv4_of b)
IPV4_A=$(ipv4_of a)
lib_log "a $IPV4_A ${IP6[a]}, b $IPV4_B ${IP6[b]}"
# The IPv6 service address: a's overlay /48 with ::6464:6464 at the end.
SERVICE6=$(python3 -c 'import ipaddress,sys; n=ipaddress.ip_network(sys.argv[1]+"/48",strict=False); print(n.network_address+0x64646464)' "${IP6[a]}")

lib_check "b.mesh.internal A is b's IPv4 ($IPV4_B)" lib_wait_for 5 answers "$IPV4_B" "$SERVICE4" b.mesh.internal A
lib_check "b.mesh.internal AAAA is b's IPv6 (${IP6[b]})" answers "${IP6[b]}" "$SERVICE4" b.mesh.internal AAAA
lib_check "B.Mesh.Internal (case-insensitive) is b's IPv4" answers "$IPV4_B" "$SERVICE4" B.Mesh.Internal A
lib_check "over IPv6, at $SERVICE6, too" answers "$IPV4_B" "$SERVICE6" b.mesh.internal A
lib_check "a's own name is its own IPv4" answers "$IPV4_A" "$SERVICE4" a.mesh.internal A
lib_check "an unknown name in the domain is NXDOMAIN" test "$(status_of "$SERVICE4" nobody.mesh.internal)" = NXDOMAIN
lib_check "a known name with another type (TXT) is NOERROR without data" \
	test "$(status_of "$SERVICE4" b.mesh.internal TXT)" = NOERROR
lib_check "a foreign name is forwarded to the upstream and answered" \
	answers 192.0.2.99 "$SERVICE4" www.example.org A
lib_check "a foreign name the upstream does not know is its NXDOMAIN" \
	test "$(status_of "$SERVICE4" nothing.example.org)" = NXDOMAIN
# (dig asks ANY over TCP unless told otherwise)
lib_check "ANY for b gives both its addresses" test "$(ask "$SERVICE4" "+notcp" b.mesh.internal ANY | wc -l)" = 2
lib_check "without EDNS0 too" test "$(ask "$SERVICE4" +noedns b.mesh.internal A)" = "$IPV4_B"
lib_check "a query over TCP is refused at once (ICMP port unreachable), not left to time out" \
	bash -c "! timeout 3 ip netns exec '${NS[a]}' dig +tcp +time=2 +tries=1 @$SERVICE4 b.mesh.internal >/dev/null"
lib_check "ping $SERVICE4 is answered" lib_ping "${NS[a]}" "$SERVICE4"
lib_check "ping $SERVICE6 is answered" lib_ping "${NS[a]}" "$SERVICE6"
lib_check "an upstream that does not answer: SERVFAIL after meshd's 4 s" \
	test "$(ip netns exec "${NS[a]}" dig +time=6 +tries=1 "@$SERVICE4" slow.example.org |
		sed -n 's/.*status: \([A-Z]*\),.*/\1/p')" = SERVFAIL
printf 'nameserver %s\n' "$UPSTREAM2_IP" >"$NETNS_ETC/resolv.conf" # in place: the bind mount stays
lib_check "resolv.conf changed: the new upstream answers within 3 s" \
	lib_wait_for 3 answers 192.0.2.98 "$SERVICE4" www.example.org A
lib_check "names in the mesh's domain never reach the upstream (no loop)" \
	bash -c "! grep -q 'mesh.internal' '$T/upstream.log' '$T/upstream2.log'"

node_start c
registered c || lib_not_ok "c registered"
IPV4_C=$(ipv4_of c)
lib_check "c, joining later, is resolvable within ${NEW_NAME_LIMIT_S} s" \
	lib_wait_for "$NEW_NAME_LIMIT_S" answers "$IPV4_C" "$SERVICE4" c.mesh.internal A

printf 'dns_domain: home.arpa\n' >>"$CONF"
kill -HUP "$COORD_PID"
lib_check "after dns_domain: home.arpa and SIGHUP, b.home.arpa answers within ${DOMAIN_CHANGE_LIMIT_S} s" \
	lib_wait_for "$DOMAIN_CHANGE_LIMIT_S" answers "$IPV4_B" "$SERVICE4" b.home.arpa A
lib_check "and b.mesh.internal is an outside name now (forwarded: NXDOMAIN upstream)" \
	test "$(status_of "$SERVICE4" b.mesh.internal)" = NXDOMAIN
lib_check "a logged the new domain" grep -q 'mesh DNS domain is now home.arpa (was mesh.internal)' "$T/a.log"
lib_check "a's state file keeps it within 5 s" lib_wait_for 5 grep -q '^dns home.arpa$' "$T/a/coordinator.state"
lib_check "meshd a still runs" lib_pid_alive "${PID[a]}"

IFINDEX_A=$(ip -n "${NS[a]}" -o link show dev "$IFACE" | cut -d: -f1)
lib_check "resolved: a set its link's DNS to both service addresses" \
	grep -q -x "SetLinkDNS $IFINDEX_A 2:$SERVICE4 10:$SERVICE6" "$T/resolved.log"
lib_check "resolved: not as the default route" grep -q -x "SetLinkDefaultRoute $IFINDEX_A false" "$T/resolved.log"
lib_check "resolved: ~mesh.internal as the routing domain" \
	grep -q -x "SetLinkDomains $IFINDEX_A mesh.internal:routing" "$T/resolved.log"
lib_check "resolved: ~home.arpa after the change" \
	lib_wait_for 3 grep -q -x "SetLinkDomains $IFINDEX_A home.arpa:routing" "$T/resolved.log"
# libsystemd is loaded for each conversation with resolved and unloaded after (resolved.c).
lib_check "a's meshd does not keep libsystemd mapped" eval '[ -r "/proc/${PID[a]}/maps" ] && ! grep -q libsystemd "/proc/${PID[a]}/maps"'
lib_stop_pid "${PID[a]}"
lib_check "resolved: RevertLink when a stops" grep -q -x "RevertLink $IFINDEX_A" "$T/resolved.log"
lib_check "b found no resolved and said nothing about it above debug" bash -c "! grep -qi resolved '$T/b.log'"

# A node restarted while the coordinator is down answers from its state: peers and domain.
lib_stop_pid "$COORD_PID"
lib_meshd_start_args "PID[a]" "${NS[a]}" a "$T/a.yaml" "$T/a2.log" info
lib_meshd_wait_up "${PID[a]}" "${NS[a]}" "$IFACE" || lib_not_ok "a restarted"
lib_check "a restarted without its coordinator still answers b.home.arpa" \
	lib_wait_for 5 answers "$IPV4_B" "$SERVICE4" b.home.arpa A

lib_summary
