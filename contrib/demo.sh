#!/bin/bash
# meshd across real NATs, in network namespaces: a coordinator on a "VPS" with a public
# address, a home server behind an ordinary home router that serves a web page, and later a
# laptop behind a symmetric NAT and a phone on a network that blocks UDP. Both fetch the home
# server's page by its overlay address; the demo shows each node's `meshd status`, which path
# each pair of nodes uses (direct, punched or relay) and why, then removes everything.
#
#            ┌──────────────── the "internet": a bridge in demo<pid>-wan ────────────────┐
#            └──┬──────────────────┬────────────────────┬────────────────────┬───────────┘
#   ┌ VPS ──────┴──────┐ ┌ home router ┴──────┐ ┌ laptop's NAT ───┴──┐ ┌ phone's network ┴──┐
#   │ meshcoord        │ │ 203.0.113.21       │ │ 203.0.113.22       │ │ 203.0.113.23       │
#   │ 203.0.113.10     │ │ "cone": keeps the  │ │ "symmetric": a new │ │ NAT that drops     │
#   │ TCP 51821, UDP   │ │ port for every     │ │ port for every     │ │ every UDP packet   │
#   │ 3478/3479 (STUN, │ │ destination        │ │ destination        │ │ (TCP passes)       │
#   │ relay)           │ └─────────┬──────────┘ └─────────┬──────────┘ └─────────┬──────────┘
#   └──────────────────┘ ┌ home ────┴─────────┐ ┌ laptop ───┴────────┐ ┌ phone ────┴────────┐
#                        │ 10.1.0.2           │ │ 10.2.0.2           │ │ 10.3.0.2           │
#                        │ meshd, web :8080   │ │ meshd              │ │ meshd              │
#                        └────────────────────┘ └────────────────────┘ └────────────────────┘
#                   each node's mesh0 gets a 100.64.x.y address from the coordinator
#
# The lab is tests/netns/natlab.sh's (the NAT lab of the integration tests): nftables
# masquerade on each router, which also drops unsolicited packets to itself as home routers
# do. Run it as root from a built tree (after ./configure && make); it builds nothing. Uses
# $MESHD and $MESHCOORD if set, else the binaries of this checkout. It takes well under two
# minutes and removes everything it created (namespaces, processes, temp files) when it
# ends, also on failure and on ctrl-c. tests/netns/demo.sh runs it.
# contrib/demo-static.sh shows two nodes with static peers and no coordinator.
set -u

here=$(cd "$(dirname "$0")" && pwd)
# A missing prerequisite is an error here, not an automake SKIP.
# shellcheck disable=SC2034 # read by lib.sh
LIB_SKIP_CODE=1
# shellcheck source=tests/netns/lib.sh
. "$here/../tests/netns/lib.sh"
# shellcheck source=tests/netns/natlab.sh
. "$here/../tests/netns/natlab.sh"

# Run from the build directory of an out-of-tree build, the binaries are here, not next to
# this script.
if [ -z "${MESHD:-}" ] && [ ! -x "$here/../src/meshd/meshd" ] && [ -x ./src/meshd/meshd ]; then
	MESHD=./src/meshd/meshd
fi
if [ -z "${MESHCOORD:-}" ] && [ ! -x "$here/../coord/meshcoord" ] && [ -x ./coord/meshcoord ]; then
	MESHCOORD=./coord/meshcoord
fi

lib_require_root
lib_require_tun
natlab_require
lib_require_cmd ping iputils-ping
lib_require_cmd unshare util-linux
lib_require_cmd python3 python3
lib_find_meshd
lib_find_meshcoord

STARTED_MS=$(lib_now_ms)
CONTROL_PORT=51821
STUN_PORT=3478
WEB_PORT=8080
# Bounds on every wait. A run takes 10-20 s; whatever is slow, every wait also ends by
# DEADLINE_S (see limit), so the demo ends within two minutes, cleanup included.
DEADLINE_S=100
REGISTER_LIMIT_S=15
FETCH_LIMIT_S=15
PING_LIMIT_S=10
# The laptop's birthday punch toward home: it succeeds within a few seconds nearly always
# (tests/netns/nat-traversal.sh measures it); a miss is only retried after 60 s.
PUNCH_LIMIT_S=25

NODES="home laptop phone"
declare -A SITE_TYPE=([home]=cone [laptop]=symmetric [phone]=udpblock)
# shellcheck disable=SC2034 # PID is set through lib_meshd_start_args's printf -v
declare -A NS=() PID=() IP=() NAME=()
INTERRUPTED=

say() {
	printf '\n== %s\n' "$*"
}

indent() {
	sed 's/^/   /; s/^ *$//'
}

# show_logs: the last lines of every daemon's log, for a failed run (the logs go to files
# so that a working run stays readable).
# shellcheck disable=SC2317 # called from demo_exit (a trap)
show_logs() {
	local f
	for f in "$T"/coord.log "$T"/home.log "$T"/laptop.log "$T"/phone.log "$T"/web.log; do
		[ -s "$f" ] || continue
		printf '   --- last lines of %s\n' "${f##*/}"
		tail -n 12 "$f" | indent
	done
}

# On any exit: a failure shows the daemons' logs, then everything is removed (lib_cleanup
# ends our processes by PID, deletes the namespaces and the temp dir).
# shellcheck disable=SC2317 # a trap
demo_exit() {
	local rc=$?
	trap - EXIT
	if [ "$rc" -ne 0 ] && [ -z "$INTERRUPTED" ] && [ -n "$LIB_TMPDIR" ]; then
		printf '\n== demo FAILED (exit %d); the daemons logged:\n' "$rc" >&2
		show_logs >&2
	fi
	lib_cleanup
	if [ -n "$INTERRUPTED" ]; then
		printf '\n== interrupted: namespaces, processes and temp files removed (%s)\n' "$(elapsed)" >&2
	elif [ "$rc" -eq 0 ]; then
		printf '   removed: namespaces, processes, temp files. Total time %s.\n' "$(elapsed)"
	fi
	exit "$rc"
}
trap demo_exit EXIT
trap 'INTERRUPTED=1; exit 130' INT
trap 'INTERRUPTED=1; exit 143' TERM
trap 'INTERRUPTED=1; exit 129' HUP
# After the traps, so that nothing is left even if we are interrupted right away.
lib_mktemp
T=$LIB_TMPDIR

fail() {
	printf '   FAILED: %s\n' "$*" >&2
	exit 1
}

elapsed() {
	local ms=$(($(lib_now_ms) - STARTED_MS))
	printf '%d.%d s' $((ms / 1000)) $((ms % 1000 / 100))
}

# limit SECONDS: SECONDS, or what is left until DEADLINE_S if that is less (1 at least).
limit() {
	local left=$((DEADLINE_S - ($(lib_now_ms) - STARTED_MS) / 1000))
	[ "$left" -lt 1 ] && left=1
	if [ "$left" -lt "$1" ]; then echo "$left"; else echo "$1"; fi
}

# ------------------------------------------------------------------ the lab
printf 'meshd demo: a home server behind NAT, reached from a laptop behind a symmetric NAT and\n'
printf 'a phone whose network blocks UDP. Everything runs in network namespaces of this machine.\n'

say "building the internet, the VPS and three NAT routers (network namespaces)"
# shellcheck disable=SC2034 # read by natlab_init: the namespaces are demo<pid>-...
NATLAB_ID=demo$$
# natlab's own progress lines ("# site ...") would repeat what this says.
natlab_init >/dev/null
for n in $NODES; do
	natlab_site "$n" "${SITE_TYPE[$n]}" >/dev/null
	NS[$n]=${NATLAB_HOST[$n]}
done
printf '   %-8s %-16s %s\n' VPS "$NATLAB_COORD_IP" "public address, runs meshcoord"
printf '   %-8s %-16s %s\n' home "${NATLAB_HOST_IP[home]}" "behind ${NATLAB_WAN_IP[home]}: a cone NAT (keeps its port for every destination)"
printf '   %-8s %-16s %s\n' laptop "${NATLAB_HOST_IP[laptop]}" "behind ${NATLAB_WAN_IP[laptop]}: a symmetric NAT (a new port for every destination)"
printf '   %-8s %-16s %s\n' phone "${NATLAB_HOST_IP[phone]}" "behind ${NATLAB_WAN_IP[phone]}: a network that drops all UDP (TCP only)"
echo "   (namespaces $NATLAB_ID-*: 'ip netns list' shows them while the demo runs)"

say "the coordinator on the VPS"
CONF=$T/coord.yaml
lib_coord_write_config "$CONF" "$NATLAB_COORD_IP:$CONTROL_PORT" "$NATLAB_COORD_IP:$STUN_PORT" \
	"$NATLAB_COORD_IP:$CONTROL_PORT" "$T/coord-state"
lib_coord_start COORD_PID "$NATLAB_COORD" "$CONF" "$T/coord.log"
lib_coord_wait_up "$COORD_PID" "$NATLAB_COORD" "$CONTROL_PORT" || fail "meshcoord did not start"
echo "   meshcoord serve: control and relay on TCP $NATLAB_COORD_IP:$CONTROL_PORT, STUN and relay on UDP $STUN_PORT"
KEY=$(lib_coord_authkey "$CONF" --reusable)
[ -n "$KEY" ] || fail "meshcoord authkey create gave no key"
echo "   meshcoord authkey create --reusable: ${KEY:0:20}... (one key for all three nodes)"

# node_start NODE: meshd up --join on the node's host; its host name (a UTS namespace) is
# the name the coordinator gives it. The config is all a node needs.
node_start() {
	local n=$1
	mkdir -p "$T/$n-state" && chmod 700 "$T/$n-state"
	printf 'interface: mesh0\nstate_dir: %s\ncontrol_socket: %s\n' "$T/$n-state" "$T/$n.sock" >"$T/$n.yaml"
	lib_meshd_start_args "PID[$n]" "${NS[$n]}" "$n" "$T/$n.yaml" "$T/$n.log" info --join "$KEY"
}

# node_wait NODE: registered and given its overlay address; sets IP and NAME.
node_wait() {
	local n=$1
	lib_wait_for "$(limit "$REGISTER_LIMIT_S")" grep -q 'registered with coordinator' "$T/$n.log" ||
		fail "$n did not register with the coordinator within ${REGISTER_LIMIT_S} s"
	lib_wait_for 5 bash -c "ip -n '${NS[$n]}' -4 -o addr show dev mesh0 | grep -q inet" ||
		fail "$n has no overlay address"
	IP[$n]=$(lib_iface_ipv4 "${NS[$n]}" mesh0)
	NAME[$n]=$(grep 'registered with coordinator' "$T/$n.log" | tail -n 1 | sed -n 's/.* as \([^ ]*\) (.*/\1/p')
	printf '   %-8s registered as %s, overlay address %s (at %s)\n' "$n" "${NAME[$n]:-?}" "${IP[$n]}" "$(elapsed)"
}

# ------------------------------------------------------------------ home, first
say "the home server joins first and serves a page on its overlay address only"
echo "   config: interface: mesh0, state_dir, control_socket (no addresses, no peers); meshd up --join KEY"
node_start home
node_wait home
mkdir -p "$T/www"
cat >"$T/www/index.html" <<EOF
<html><head><title>Hello from the home server</title></head>
<body>Served by python3 -m http.server on ${IP[home]} (home's overlay address), through meshd.</body></html>
EOF
# Bound to the overlay address: the page cannot be reached from the home LAN or the
# internet, only through the mesh. timeout bounds it even if this script were killed -9.
ip netns exec "${NS[home]}" timeout 150 python3 -m http.server --bind "${IP[home]}" \
	--directory "$T/www" "$WEB_PORT" </dev/null >>"$T/web.log" 2>&1 &
WEB_PID=$!
lib_track_pid "$WEB_PID"
lib_wait_for 10 lib_tcp_listening "${NS[home]}" "$WEB_PORT" || fail "the web server did not start"
URL=http://${IP[home]}:$WEB_PORT/
echo "   web server: $URL"

# ------------------------------------------------------------------ laptop and phone, later
say "later, the laptop and the phone join"
node_start laptop
node_start phone
node_wait laptop
node_wait phone

# ------------------------------------------------------------------ netcheck
# netcheck_field NODE FIELD: one field of `meshd netcheck --json` (STUN against the
# coordinator's two ports: does the mapping depend on the destination?).
netcheck_json() {
	"$MESHD" netcheck --json -s "$T/$1.sock" 2>/dev/null
}
say "what each node finds out about its network (meshd netcheck)"
declare -A NAT=()
for n in $NODES; do
	netcheck_json "$n" >"$T/$n.netcheck"
	NAT[$n]=$(python3 -c 'import json,sys; print(json.load(sys.stdin).get("nat_type") or "unknown")' <"$T/$n.netcheck" 2>/dev/null)
	printf '   %-8s NAT %-8s %s\n' "$n" "${NAT[$n]:-unknown}" \
		"$(python3 -c 'import json,sys; print(json.load(sys.stdin).get("nat") or "")' <"$T/$n.netcheck" 2>/dev/null)"
done

# ------------------------------------------------------------------ the page
# fetch NODE: GETs the home page from NODE by the overlay address; prints status, time, title.
fetch() {
	# shellcheck disable=SC2016
	local s
	s=$(limit "$FETCH_LIMIT_S")
	ip netns exec "${NS[$1]}" timeout "$((s + 2))" python3 -c '
import re, sys, time, urllib.request
t = time.monotonic()
with urllib.request.urlopen(sys.argv[1], timeout=int(sys.argv[2])) as r:
    body = r.read().decode()
    status = r.status
m = re.search("<title>(.*)</title>", body)
print("HTTP %d in %d ms: \"%s\"" % (status, (time.monotonic() - t) * 1000, m.group(1) if m else "?"))
' "$URL" "$s" 2>"$T/fetch-$1.err"
}

say "the laptop and the phone fetch the home server's page by its overlay address"
for n in laptop phone; do
	if out=$(fetch "$n"); then
		printf '   %-8s fetched %s  %s\n' "$n" "$URL" "$out"
	else
		sed 's/^/   /' "$T/fetch-$n.err" >&2
		fail "$n could not fetch $URL"
	fi
done
# The third pair, so that every pair has talked.
if lib_wait_for "$(limit "$PING_LIMIT_S")" lib_ping "${NS[laptop]}" "${IP[phone]}"; then
	printf '   %-8s pinged   %s (phone)\n' laptop "${IP[phone]}"
else
	fail "the laptop could not ping the phone"
fi

# ------------------------------------------------------------------ paths
# paths NODE: "relay WORD" (how this node reaches the relay), then "peer NAME PATH ENDPOINT"
# for each peer, from `meshd status --json`.
paths() {
	"$MESHD" status --json -s "$T/$1.sock" 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin)
print("relay", d["node"]["relay"])
for p in d["peers"]:
    print("peer", p["name"], p["path"], p["endpoint"] or "-")
'
}
paths_all() {
	local n
	for n in $NODES; do
		paths "$n" >"$T/$n.paths" || return 1
	done
}
peer_path() { # NODE PEER: direct, relay or none
	awk -v p="${NAME[$2]}" '$1 == "peer" && $2 == p { print $3 }' "$T/$1.paths"
}
peer_endpoint() {
	awk -v p="${NAME[$2]}" '$1 == "peer" && $2 == p { print $4 }' "$T/$1.paths"
}
relay_of() { # NODE: udp or tcp
	awk '$1 == "relay" { print $2 }' "$T/$1.paths"
}

# Both sides on the direct path now (it can flap while the punch settles, so the status,
# not a log line).
# shellcheck disable=SC2317 # run by lib_wait_for
both_direct() {
	paths_all && [ "$(peer_path home laptop)" = direct ] && [ "$(peer_path laptop home)" = direct ]
}
say "waiting for home and the laptop to punch a direct path (up to ${PUNCH_LIMIT_S} s)"
if lib_wait_for "$(limit "$PUNCH_LIMIT_S")" both_direct; then
	echo "   direct at $(elapsed); their first packets went through the relay while the punch ran"
else
	echo "   no direct path after ${PUNCH_LIMIT_S} s: they stay on the relay (see below)"
fi

for n in $NODES; do
	say "meshd status on $n"
	"$MESHD" status -s "$T/$n.sock" 2>&1 | indent
done

# punch_detail CONE SYM: what the birthday punch logged on the cone side ("after N probes,
# M ms"), if it ran.
punch_detail() {
	grep -h "peer ${NAME[$2]}: birthday punch: its port .* answered" "$T/$1.log" 2>/dev/null | tail -n 1 |
		sed -n 's/.* answered \(after [0-9]* probes, [0-9]* ms\).*/\1/p'
}

# why A B WORD: the reason for the pair's path, from the NAT types the lab built and meshd
# netcheck found (and for a birthday punch, what the nodes logged).
why() {
	local a=$1 b=$2 word=$3 ta=${SITE_TYPE[$1]} tb=${SITE_TYPE[$2]} blocked='' cone='' sym='' detail
	[ "$ta" = udpblock ] && blocked=$a
	[ "$tb" = udpblock ] && blocked=$b
	[ "$ta" = cone ] && cone=$a
	[ "$tb" = cone ] && cone=$b
	[ "$ta" = symmetric ] && sym=$a
	[ "$tb" = symmetric ] && sym=$b
	case $word in
	punched)
		if [ -n "$cone" ] && [ -n "$sym" ]; then
			detail=$(punch_detail "$cone" "$sym")
			echo "$cone's NAT keeps its port for every destination (netcheck: ${NAT[$cone]}), $sym's picks a"
			echo "new port per destination (netcheck: ${NAT[$sym]}), so $cone cannot know which port to"
			echo "send to. Birthday punch: $sym opened 256 ports toward $cone, and $cone probed"
			echo "the ports of $sym's NAT until one answered${detail:+ ($detail)}."
		else
			echo "both NATs drop unsolicited packets: both sides sent to each other's public address"
			echo "at once (the coordinator told each the other's), so each NAT let the other's in."
		fi
		;;
	direct)
		echo "one side has a public address and the other can send UDP: no punch needed."
		;;
	relay)
		if [ -n "$blocked" ]; then
			echo "$blocked's network drops all UDP (netcheck: ${NAT[$blocked]}), and WireGuard packets are"
			echo "UDP, so no direct path can exist: the coordinator relays them, over TCP to $blocked."
			echo "It only ever sees ciphertext."
		elif [ "$ta" = symmetric ] && [ "$tb" = symmetric ]; then
			echo "both NATs pick a new port per destination: no punch can meet; the coordinator relays."
		else
			echo "the punch did not find a path in time this run (it nearly always does; meshd tries"
			echo "again after 60 s). Meanwhile the coordinator relays, and everything works."
		fi
		;;
	*)
		echo "the two sides disagree: a path is still changing."
		;;
	esac
}

paths_all || fail "meshd status --json failed"
say "which path each pair uses, and why"
rc=0
for pair in home:laptop home:phone laptop:phone; do
	a=${pair%%:*}
	b=${pair#*:}
	pa=$(peer_path "$a" "$b")
	pb=$(peer_path "$b" "$a")
	if [ "$pa" = direct ] && [ "$pb" = direct ]; then
		# A direct path between two NATed nodes exists only because both punched it.
		if [ "${SITE_TYPE[$a]}" = public ] || [ "${SITE_TYPE[$b]}" = public ]; then word=direct; else word=punched; fi
		detail="$a sends to $(peer_endpoint "$a" "$b"), $b to $(peer_endpoint "$b" "$a")"
	elif [ "$pa" = relay ] && [ "$pb" = relay ]; then
		word=relay
		detail="$a reaches the relay over $(relay_of "$a" | tr '[:lower:]' '[:upper:]'), $b over $(relay_of "$b" | tr '[:lower:]' '[:upper:]')"
	else
		word=mixed
		detail="$a says ${pa:-none}, $b says ${pb:-none} (still changing)"
	fi
	printf '   %-17s %-8s %s\n' "$a <-> $b" "$word" "$detail"
	why "$a" "$b" "$word" | sed 's/^/                              /'
	[ "$word" = mixed ] && rc=1
done
[ "$rc" -eq 0 ] || fail "two sides of a pair disagree on their path"

say "done in $(elapsed): the laptop and the phone fetched the page; removing the lab"
exit 0
