# The NAT lab: a "wan" with public addresses, a coordinator host on it, and sites behind
# NAT routers of known types (DESIGN.md, "The NAT lab"). Source it after lib.sh:
#
#   . "$here/lib.sh"; . "$here/natlab.sh"
#   lib_require_root; natlab_require; lib_mktemp; lib_trap_cleanup
#   natlab_init
#   natlab_site home cone HOME_NS        # HOME_NS=<host namespace>, NATLAB_*[home] set
#   natlab_site laptop symmetric
#   natlab_selfcheck || lib_die "NAT lab broken"
#   ... ip netns exec "$HOME_NS" meshd ...; natlab_cut_udp home laptop; natlab_restore_udp home laptop
#
#               ┌──────────────── <id>-wan (bridge br0, no addresses) ──────────────┐
#               └──┬──────────────────┬───────────────────┬────────────────┬────────┘
#  ┌ <id>-coord ───┴──┐ ┌ <id>-probe ─┴──────┐ ┌ <id>-<site>-r ─┴─────┐ ┌ <id>-<pub> ─┴──────┐
#  │ eth0             │ │ eth0 203.0.113.2   │ │ wan 203.0.113.<20+i> │ │ eth0 203.0.113.<20+i>│
#  │  203.0.113.10    │ │      198.51.100.2  │ │ nft masquerade       │ │ (public site)      │
#  │  198.51.100.10   │ │      192.0.2.2     │ │ lan 10.<i>.0.1/24    │ └────────────────────┘
#  └──────────────────┘ │ natprobe server    │ └──────────┬───────────┘
#                       └────────────────────┘ ┌ <id>-<site> ┴────────┐
#                                              │ eth0 10.<i>.0.2/24   │
#                                              └──────────────────────┘
# All three public ranges are on-link on the wan (one bridge, no routers in between). The
# probe host exists only for natlab_selfcheck; the coordinator host is yours.
#
# Site types (every NAT router also drops unsolicited packets from the wan to itself: an input
# chain accepting established,related and dropping the rest, as home routers do):
#   public     the host sits on the wan with a public address, no NAT, no filter
#   cone       plain masquerade: endpoint-independent mapping (Linux keeps the source port
#              when it can), address-and-port-dependent filtering
#   symmetric  masquerade fully-random: a new random port for every destination
#   udpblock   masquerade, and every UDP packet forwarded to or from the wan dropped (TCP passes)
#
# Namespaces are named <NATLAB_ID>-..., NATLAB_ID defaulting to nl<pid>, so two labs can run
# at once; lib_cleanup (lib_trap_cleanup) deletes them and ends the probe server.
#
# shellcheck shell=bash

NATLAB_ID=
NATLAB_WAN=
NATLAB_COORD=
NATLAB_PROBE=
NATLAB_COORD_IP=203.0.113.10
NATLAB_COORD_IP2=198.51.100.10
NATLAB_PROBE_IP=203.0.113.2
NATLAB_PROBE_IP2=198.51.100.2
NATLAB_PROBE_IP3=192.0.2.2
NATLAB_PROBE_PORT=3478
NATLAB_PROBE_PORT2=3479
NATLAB_SITES=()
# shellcheck disable=SC2034 # for the scenarios that source this file
declare -gA NATLAB_TYPE=() NATLAB_HOST=() NATLAB_ROUTER=() NATLAB_HOST_IP=() NATLAB_LAN_GW=() NATLAB_WAN_IP=()
NATLAB_PROBE_PID=
NATLAB_N=0
# The public ranges, all on-link on the wan.
NATLAB_PUBLIC_NETS="203.0.113.0/24 198.51.100.0/24 192.0.2.0/24"
# The first site's WAN address is 203.0.113.<NATLAB_WAN_BASE+1>.
NATLAB_WAN_BASE=20
NATLAB_MAX_SITES=200
# Bounds on the self-check's probe runs.
NATLAB_PROBE_TIMEOUT_S=30
NATLAB_PROBE_LIFETIME_S=120

# natlab_require: skips the test (lib_skip) unless nft and conntrack are there.
natlab_require() {
	lib_require_cmd ip iproute2
	lib_require_cmd nft nftables
	lib_require_cmd conntrack conntrack
	lib_require_cmd timeout coreutils
}

# The start of a test that runs meshd and meshcoord in the lab: root, a TUN, the lab's tools
# and the extra COMMAND PACKAGE pairs (a SKIP without any of them), both programs, and T: a
# temp dir that goes on exit with every namespace and process the test started.
natlab_mesh_test_begin() { # [COMMAND PACKAGE]...
	lib_require_root
	lib_require_tun
	natlab_require
	while [ "$#" -ge 2 ]; do
		lib_require_cmd "$1" "$2"
		shift 2
	done
	lib_find_meshd
	lib_find_meshcoord
	lib_mktemp
	lib_trap_cleanup
	T=$LIB_TMPDIR
}

# Sets NATPROBE: $NATPROBE, else the one make check built, else compiles the source into the
# temp dir (libc only), like lib_find_udpinject.
natlab_find_natprobe() {
	local here src
	here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
	: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
	: "${top_builddir:=$top_srcdir}"
	if [ -n "${NATPROBE:-}" ] && [ -x "$NATPROBE" ]; then
		return 0
	fi
	NATPROBE=$top_builddir/tests/tools/natprobe
	[ -x "$NATPROBE" ] && return 0
	src=$top_srcdir/tests/tools/natprobe.c
	[ -f "$src" ] || lib_die "natprobe not built and $src missing"
	[ -n "$LIB_TMPDIR" ] || lib_die "natlab_find_natprobe: call lib_mktemp first"
	NATPROBE=$LIB_TMPDIR/natprobe
	"${CC:-cc}" -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -o "$NATPROBE" "$src" ||
		lib_die "could not compile $src"
}

# natlab_attach NS IFNAME ADDR/LEN...: plugs NS into the wan bridge with these addresses and
# on-link routes to every public range.
natlab_attach() {
	local ns=$1 ifname=$2 net
	shift 2
	lib_hub_attach "$NATLAB_WAN" "$ns" "$ifname" "$1"
	shift
	while [ $# -gt 0 ]; do
		ip -n "$ns" addr add "$1" dev "$ifname" || lib_die "cannot add $1 in $ns"
		shift
	done
	for net in $NATLAB_PUBLIC_NETS; do
		# A range with an address here has its connected route (and source) already.
		[ -n "$(ip -n "$ns" route show "$net")" ] && continue
		ip -n "$ns" route add "$net" dev "$ifname" || lib_die "cannot route $net in $ns"
	done
}

# natlab_init: the wan, the coordinator host and the probe host. Needs lib_mktemp and
# lib_trap_cleanup first. Sets NATLAB_ID, NATLAB_WAN, NATLAB_COORD (the coordinator host's
# namespace; its eth0 has NATLAB_COORD_IP and NATLAB_COORD_IP2) and NATLAB_PROBE.
natlab_init() {
	[ -n "$LIB_TMPDIR" ] || lib_die "natlab_init: call lib_mktemp (and lib_trap_cleanup) first"
	[ -z "$NATLAB_WAN" ] || lib_die "natlab_init: called twice"
	: "${NATLAB_ID:=nl$$}"
	NATLAB_WAN=$NATLAB_ID-wan
	NATLAB_COORD=$NATLAB_ID-coord
	NATLAB_PROBE=$NATLAB_ID-probe
	lib_hub_create "$NATLAB_WAN"
	# Cuts between two public addresses: a set of (source . destination) pairs whose UDP
	# the bridge drops (bridge family: the wan forwards frames, it does not route).
	ip netns exec "$NATLAB_WAN" nft -f - <<-'NFT' || lib_die "nft rules failed in the wan"
	table bridge natlab {
		set udpcut {
			type ipv4_addr . ipv4_addr
		}
		chain forward {
			type filter hook forward priority filter; policy accept;
			ip saddr . ip daddr @udpcut meta l4proto udp counter drop
		}
	}
	NFT
	lib_ns_create "$NATLAB_COORD"
	natlab_attach "$NATLAB_COORD" eth0 "$NATLAB_COORD_IP/24" "$NATLAB_COORD_IP2/24"
	lib_ns_create "$NATLAB_PROBE"
	natlab_attach "$NATLAB_PROBE" eth0 "$NATLAB_PROBE_IP/24" "$NATLAB_PROBE_IP2/24" "$NATLAB_PROBE_IP3/24"
	lib_log "NAT lab $NATLAB_ID: wan $NATLAB_WAN, coordinator $NATLAB_COORD ($NATLAB_COORD_IP, $NATLAB_COORD_IP2)"
}

# natlab_router_rules NS TYPE: the router's nftables ruleset for its type.
natlab_router_rules() {
	local ns=$1 type=$2 flags=
	[ "$type" = symmetric ] && flags=fully-random
	ip netns exec "$ns" sysctl -q -w net.ipv4.ip_forward=1 || lib_die "cannot enable forwarding in $ns"
	ip netns exec "$ns" nft -f - <<-NFT || lib_die "nft rules failed in $ns"
	table ip natlab {
		chain postrouting {
			type nat hook postrouting priority srcnat; policy accept;
			oifname "wan" masquerade $flags
		}
		chain input {
			type filter hook input priority filter; policy accept;
			iifname "wan" ct state established,related accept
			iifname "wan" drop
		}
	}
	NFT
	if [ "$type" = udpblock ]; then
		ip netns exec "$ns" nft -f - <<-'NFT' || lib_die "nft rules failed in $ns"
		table ip natlab_udpblock {
			chain forward {
				type filter hook forward priority filter; policy accept;
				iifname "wan" meta l4proto udp drop
				oifname "wan" meta l4proto udp drop
			}
		}
		NFT
	fi
}

# natlab_site NAME TYPE [VAR]: a site of TYPE (public, cone, symmetric, udpblock). The host
# runs in namespace NATLAB_HOST[NAME] (also stored in VAR if given), interface eth0, address
# NATLAB_HOST_IP[NAME]; NATLAB_WAN_IP[NAME] is its public address (the router's, or the
# host's own for public). NAT sites: router namespace NATLAB_ROUTER[NAME] (interfaces wan,
# lan), the host's gateway NATLAB_LAN_GW[NAME]; the host's LAN is 10.<n>.0.0/24.
natlab_site() {
	local name=$1 type=$2 var=${3:-} n host router wan
	[ -n "$NATLAB_WAN" ] || lib_die "natlab_site: call natlab_init first"
	[[ $name =~ ^[a-z][a-z0-9_]{0,15}$ ]] || lib_die "natlab_site: bad site name '$name' (a-z, 0-9, _)"
	case $name in coord | probe | wan) lib_die "natlab_site: '$name' is reserved" ;; esac
	[ -z "${NATLAB_TYPE[$name]:-}" ] || lib_die "natlab_site: site '$name' exists"
	case $type in public | cone | symmetric | udpblock) ;; *) lib_die "natlab_site: unknown type '$type'" ;; esac
	NATLAB_N=$((NATLAB_N + 1))
	n=$NATLAB_N
	[ "$n" -le "$NATLAB_MAX_SITES" ] || lib_die "natlab_site: at most $NATLAB_MAX_SITES sites"
	wan=203.0.113.$((NATLAB_WAN_BASE + n))
	host=$NATLAB_ID-$name
	lib_ns_create "$host"
	if [ "$type" = public ]; then
		natlab_attach "$host" eth0 "$wan/24"
		NATLAB_HOST_IP[$name]=$wan
		NATLAB_ROUTER[$name]=
		NATLAB_LAN_GW[$name]=
	else
		router=$NATLAB_ID-$name-r
		lib_ns_create "$router"
		natlab_attach "$router" wan "$wan/24"
		lib_veth "$router" lan "10.$n.0.1/24" "$host" eth0 "10.$n.0.2/24"
		ip -n "$host" route add default via "10.$n.0.1" || lib_die "cannot add the default route in $host"
		natlab_router_rules "$router" "$type"
		NATLAB_HOST_IP[$name]=10.$n.0.2
		NATLAB_ROUTER[$name]=$router
		# shellcheck disable=SC2034 # for the scenarios
		NATLAB_LAN_GW[$name]=10.$n.0.1
	fi
	NATLAB_TYPE[$name]=$type
	NATLAB_HOST[$name]=$host
	NATLAB_WAN_IP[$name]=$wan
	NATLAB_SITES+=("$name")
	[ -n "$var" ] && printf -v "$var" '%s' "$host"
	lib_log "site $name: $type, host $host ${NATLAB_HOST_IP[$name]}, public $wan${router:+, router $router}"
}

# natlab_public_ips NAME: the public addresses of a site, or of coord or probe.
natlab_public_ips() {
	case $1 in
	coord) echo "$NATLAB_COORD_IP $NATLAB_COORD_IP2" ;;
	probe) echo "$NATLAB_PROBE_IP $NATLAB_PROBE_IP2 $NATLAB_PROBE_IP3" ;;
	*)
		[ -n "${NATLAB_WAN_IP[$1]:-}" ] || lib_die "no site '$1'"
		echo "${NATLAB_WAN_IP[$1]}"
		;;
	esac
}

# natlab_udpcut_elements A B: the set elements for both directions between A and B.
natlab_udpcut_elements() {
	local a b out=
	for a in $(natlab_public_ips "$1"); do
		for b in $(natlab_public_ips "$2"); do
			out="$out${out:+, }$a . $b, $b . $a"
		done
	done
	echo "$out"
}

# natlab_cut_udp A B: drops every UDP packet between the public addresses of A and B (sites,
# or coord), both ways, on the wan. TCP and everything else still pass. Idempotent.
natlab_cut_udp() {
	local el
	el=$(natlab_udpcut_elements "$1" "$2") || exit 1
	ip netns exec "$NATLAB_WAN" nft add element bridge natlab udpcut "{ $el }" ||
		lib_die "natlab_cut_udp $1 $2 failed"
}

# natlab_restore_udp A B: undoes natlab_cut_udp A B (an error if that pair was not cut).
natlab_restore_udp() {
	local el
	el=$(natlab_udpcut_elements "$1" "$2") || exit 1
	ip netns exec "$NATLAB_WAN" nft delete element bridge natlab udpcut "{ $el }" ||
		lib_die "natlab_restore_udp $1 $2 failed (was it cut?)"
}

# natlab_conntrack_flush NAME: forgets every NAT mapping and connection on NAME's router
# (conntrack -F), as a router reboot or a mapping timeout would.
natlab_conntrack_flush() {
	local r=${NATLAB_ROUTER[$1]:-}
	[ -n "$r" ] || lib_die "natlab_conntrack_flush: '$1' is not a NAT site"
	ip netns exec "$r" conntrack -F >/dev/null 2>&1 || lib_die "conntrack -F failed in $r"
}

# natlab_exec NAME CMD...: runs CMD in the site's host namespace.
natlab_exec() {
	local ns=${NATLAB_HOST[$1]:-}
	[ -n "$ns" ] || lib_die "natlab_exec: no site '$1'"
	shift
	ip netns exec "$ns" "$@"
}

# ---------------------------------------------------------------- self-check

natlab_probe_bound() {
	ip netns exec "$NATLAB_PROBE" ss -Hlun "sport = :$NATLAB_PROBE_PORT2" | grep -q . &&
		ip netns exec "$NATLAB_PROBE" ss -Hltn "sport = :$NATLAB_PROBE_PORT" | grep -q LISTEN
}

# natlab_probe_start: the natprobe server on the probe host (bounded lifetime).
natlab_probe_start() {
	[ -n "$NATLAB_PROBE_PID" ] && lib_pid_alive "$NATLAB_PROBE_PID" && return 0
	natlab_find_natprobe
	ip netns exec "$NATLAB_PROBE" "$NATPROBE" server --lifetime "$NATLAB_PROBE_LIFETIME_S" \
		"$NATLAB_PROBE_IP:$NATLAB_PROBE_PORT" "$NATLAB_PROBE_IP2:$NATLAB_PROBE_PORT" \
		"$NATLAB_PROBE_IP:$NATLAB_PROBE_PORT2" "$NATLAB_PROBE_IP3:$NATLAB_PROBE_PORT" \
		</dev/null >>"$LIB_TMPDIR/natprobe-server.log" 2>&1 &
	NATLAB_PROBE_PID=$!
	lib_track_pid "$NATLAB_PROBE_PID"
	if ! lib_wait_for 5 natlab_probe_bound || ! lib_pid_alive "$NATLAB_PROBE_PID"; then
		lib_die "natprobe server did not start (see $LIB_TMPDIR/natprobe-server.log)"
	fi
}

natlab_probe_stop() {
	[ -n "$NATLAB_PROBE_PID" ] && lib_stop_pid "$NATLAB_PROBE_PID" 2
	NATLAB_PROBE_PID=
}

# natlab_probe_field FILE KEY: the value of KEY=... in a natprobe client's output.
natlab_probe_field() {
	sed -n "s/^$2=//p" "$1" | head -n 1
}

# natlab_self_drop NAME: true if NAME's router keeps no conntrack entry for unsolicited UDP
# sent to its own WAN address (the input chain dropped it before conntrack confirmed it).
natlab_self_drop() {
	local r=${NATLAB_ROUTER[$1]} wan=${NATLAB_WAN_IP[$1]} port n
	for port in 40001 40002 40003; do
		# bash's /dev/udp: one datagram from the probe host's first address.
		ip netns exec "$NATLAB_PROBE" timeout 2 bash -c "printf natlab >/dev/udp/$wan/$port" 2>/dev/null
	done
	n=$(ip netns exec "$r" conntrack -L -p udp --orig-src "$NATLAB_PROBE_IP" --orig-dst "$wan" 2>/dev/null |
		grep -c .)
	[ "${n:-0}" -eq 0 ]
}

# natlab_check DESCRIPTION CONDITION-RESULT: lib_ok/lib_not_ok, and remembers a failure.
NATLAB_BROKEN=0
natlab_check() {
	local desc=$1
	shift
	if "$@"; then
		lib_ok "$desc"
	else
		lib_not_ok "$desc"
		NATLAB_BROKEN=$((NATLAB_BROKEN + 1))
	fi
}

# natlab_all CMD... -- CMD...: true if every CMD (separated by --) succeeds.
natlab_all() {
	local cmd=()
	while [ $# -gt 0 ]; do
		if [ "$1" = -- ]; then
			"${cmd[@]}" || return 1
			cmd=()
		else
			cmd+=("$1")
		fi
		shift
	done
	[ ${#cmd[@]} -eq 0 ] || "${cmd[@]}"
}

# natlab_selfcheck [NAME...]: proves that every site (or the named ones) behaves as its type
# claims, with natprobe from the site's host to the probe host. Prints one TAP line per
# check (lib_ok/lib_not_ok) and returns non-zero, saying "NAT lab broken", if any failed.
natlab_selfcheck() {
	local name type out pid rc laddr mp ms mapping up ua us tcp wan sites=("$@") before=$NATLAB_BROKEN
	[ ${#sites[@]} -gt 0 ] || sites=("${NATLAB_SITES[@]}")
	natlab_probe_start
	for name in "${sites[@]}"; do
		type=${NATLAB_TYPE[$name]:-}
		[ -n "$type" ] || lib_die "natlab_selfcheck: no site '$name'"
		wan=${NATLAB_WAN_IP[$name]}
		out=$LIB_TMPDIR/natprobe-$name.out
		# In the background and waited for: bash runs a signal trap (the cleanup) during
		# wait at once, but only after a foreground command ends.
		ip netns exec "${NATLAB_HOST[$name]}" timeout "$NATLAB_PROBE_TIMEOUT_S" "$NATPROBE" client --tcp \
			"$NATLAB_PROBE_IP:$NATLAB_PROBE_PORT" "$NATLAB_PROBE_IP2:$NATLAB_PROBE_PORT" >"$out" 2>&1 &
		pid=$!
		lib_track_pid "$pid"
		wait "$pid"
		rc=$?
		lib_untrack_pid "$pid"
		if [ "$rc" -ne 0 ]; then
			sed 's/^/#   /' "$out"
			natlab_check "natlab $name ($type): natprobe client ran" false
			continue
		fi
		laddr=$(natlab_probe_field "$out" local)
		mp=$(natlab_probe_field "$out" mapped_primary)
		ms=$(natlab_probe_field "$out" mapped_secondary)
		mapping=$(natlab_probe_field "$out" mapping)
		up=$(natlab_probe_field "$out" unsol_port)
		ua=$(natlab_probe_field "$out" unsol_addr)
		us=$(natlab_probe_field "$out" unsol_secondary)
		tcp=$(natlab_probe_field "$out" tcp)
		lib_log "natlab $name ($type): local $laddr, seen $mp by $NATLAB_PROBE_IP and $ms by" \
			"$NATLAB_PROBE_IP2 ($mapping); unsolicited from another port: $up, another address: $ua," \
			"the second server: $us; TCP seen as $tcp"
		case $type in
		public)
			natlab_check "natlab $name (public): both servers see the host's own address and port ($laddr)" \
				natlab_all [ "$mp" = "$laddr" ] -- [ "$ms" = "$laddr" ]
			natlab_check "natlab $name (public): unsolicited UDP arrives (the probe can see it)" \
				natlab_all [ "$up" = arrived ] -- [ "$ua" = arrived ] -- [ "$us" = arrived ]
			;;
		cone | symmetric)
			natlab_check "natlab $name ($type): UDP mapped to the router's address $wan" \
				natlab_all [ "${mp%:*}" = "$wan" ] -- [ "${ms%:*}" = "$wan" ]
			if [ "$type" = cone ]; then
				natlab_check "natlab $name (cone): the mapping does not depend on the destination" \
					[ "$mapping" = independent ]
			else
				natlab_check "natlab $name (symmetric): the mapping depends on the destination" \
					[ "$mapping" = dependent ]
			fi
			natlab_check "natlab $name ($type): unsolicited UDP (other port, other address) is dropped" \
				natlab_all [ "$up" = blocked ] -- [ "$ua" = blocked ] -- [ "$us" = blocked ]
			;;
		udpblock)
			natlab_check "natlab $name (udpblock): no UDP gets through" \
				natlab_all [ "$mp" = none ] -- [ "$ms" = none ] -- [ "$up" != arrived ] -- \
				[ "$ua" != arrived ] -- [ "$us" != arrived ]
			;;
		esac
		if [ "$type" = public ]; then
			natlab_check "natlab $name (public): TCP works, seen from the host's own address" \
				[ "${tcp%:*}" = "${laddr%:*}" ]
		else
			natlab_check "natlab $name ($type): TCP works through the router, seen from $wan" \
				[ "${tcp%:*}" = "$wan" ]
			natlab_check "natlab $name ($type): the router drops unsolicited UDP to itself (no conntrack entry)" \
				natlab_self_drop "$name"
		fi
	done
	natlab_probe_stop
	if [ "$NATLAB_BROKEN" -gt "$before" ]; then
		printf '%s: NAT lab broken: %d self-check(s) failed; scenarios on this lab would prove nothing\n' \
			"${0##*/}" $((NATLAB_BROKEN - before)) >&2
		lib_log "NAT lab broken: $((NATLAB_BROKEN - before)) self-check(s) failed"
		return 1
	fi
	return 0
}
