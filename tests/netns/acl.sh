#!/bin/bash
# Access rules: a policy file on the coordinator, enforced by the receiving node.
#
#            ┌──────────────────── alH-<pid> (hub: bridge br0) ────────────────────┐
#            └────┬───────────────────┬───────────────────┬───────────────────┬────┘
#   ┌─ alC-<pid> ─┴──┐   ┌─ alA-<pid> ┴────┐   ┌─ alB-<pid> ┴────┐   ┌─ alX-<pid> ┴────┐
#   │ meshcoord      │   │ meshd na        │   │ meshd nb        │   │ meshd nc        │
#   │ 192.0.2.10     │   │ 192.0.2.11      │   │ 192.0.2.12      │   │ 192.0.2.13      │
#   └────────────────┘   └─────────────────┘   └─────────────────┘   └─────────────────┘
# nb and na listen on TCP 80 and 22 (socat, answering one line).
#   (a) no policy_file: na reaches nb:22; status says "none (allow all)";
#   (b) policy "na -> nb:80 tcp, ICMP for all" set by SIGHUP: na can no longer reach nb:22
#       (time from SIGHUP printed, at most 2 s), reaches nb:80 (nb's replies pass), nc
#       cannot reach nb:80; nb cannot open a connection to na:22 (na has rules too, and none
#       allows nb), but pings it (the ICMP rule); nb counts and shows its drops;
#   (c) the file edited in place (no signal) to let nb reach na:22: applies within 2 s (printed);
#   (d) a broken file and SIGHUP: the coordinator logs file:line:col, the rules stay;
#   (e) the coordinator stopped and nb restarted: nb enforces its saved rules (fail closed);
#   (f) meshcoord policy check and show (the dry run) on the registry;
#   (g) a rule for tag:ops: 'meshcoord nodes tag nc tag:ops' lets nc reach nb:22 within 2 s
#       (printed), 'untag' takes it away within 2 s; nodes list shows the tag;
#   (h) nb routes its LAN 192.168.77.0/24 with a "NAS" (alN-<pid>, 192.168.77.50, TCP 80):
#       with the route approved and a policy naming the NAS, na reaches it through nb and nc
#       does not (nb enforces rules toward its subnet); the route is then revoked.
#
# Needs root, /dev/net/tun, iproute2, ping, socat, unshare (exit 77 = SKIP otherwise);
# (h) needs nft (meshd's source NAT), else it is skipped.
# KEEP_TMPDIR=1 keeps the logs.
set -u

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/netns/lib.sh
. "$here/lib.sh"

lib_require_root
lib_require_tun
lib_require_cmd ip iproute2
lib_require_cmd ping iputils-ping
lib_require_cmd socat socat
lib_require_cmd unshare util-linux
lib_find_meshd
lib_find_meshcoord

lib_mktemp
lib_trap_cleanup

NS_HUB=alH-$$
NS_COORD=alC-$$
COORD_IP=192.0.2.10
CONTROL_PORT=51821
STUN_PORT=3478
DATA_PORT=51820
IFACE=mesh0
T=$LIB_TMPDIR
NODES="na nb nc"
declare -A NS IP IP6 UNDERLAY PID
NS=([na]=alA-$$ [nb]=alB-$$ [nc]=alX-$$ [nas]=alN-$$)
UNDERLAY=([na]=192.0.2.11 [nb]=192.0.2.12 [nc]=192.0.2.13)
REGISTER_LIMIT_S=15
PING_LIMIT_S=15
# The issue's promise: a rule change reaches the nodes within 2 s.
APPLY_LIMIT_MS=2000
# A connection attempt the rules drop is given this long (the SYN is dropped: no reset).
CONNECT_TIMEOUT_S=1
# While timing a rule change: attempts this short (the lab's round trip is well under 1 ms),
# so the time printed is within a few hundred ms of when the change took effect.
PROBE_TIMEOUT_S=0.2
POLICY=$T/policy.yaml
CONF=$T/coord.yaml
LAN=192.168.77.0/24
LAN_GW=192.168.77.1
IP[nas]=192.168.77.50

lib_hub_create "$NS_HUB"
lib_ns_create "$NS_COORD"
lib_hub_attach "$NS_HUB" "$NS_COORD" eth0 "$COORD_IP/24"
for n in $NODES; do
	lib_ns_create "${NS[$n]}"
	lib_hub_attach "$NS_HUB" "${NS[$n]}" eth0 "${UNDERLAY[$n]}/24"
	mkdir -p "$T/$n" && chmod 700 "$T/$n"
	cat >"$T/$n.yaml" <<-EOF
	interface: $IFACE
	listen_port: $DATA_PORT
	state_dir: $T/$n
	control_socket: $T/$n.sock
	EOF
done
# nb advertises its LAN from the start; it takes effect only when approved in (h).
echo "advertise_routes: [$LAN]" >>"$T/nb.yaml"
lib_ns_create "${NS[nas]}"
lib_veth "${NS[nb]}" lan0 "$LAN_GW/24" "${NS[nas]}" eth0 "${IP[nas]}/24"
lib_coord_write_config "$CONF" "0.0.0.0:$CONTROL_PORT" "0.0.0.0:$STUN_PORT" "$COORD_IP:$CONTROL_PORT" "$T/coord-state"

COORD_PID=
coord_start() {
	lib_coord_start COORD_PID "$NS_COORD" "$CONF" "$T/coord.log"
	lib_coord_wait_up "$COORD_PID" "$NS_COORD" "$CONTROL_PORT"
}

node_start() { # NODE [--join KEY]
	local n=$1
	shift
	lib_meshd_start_args "PID[$n]" "${NS[$n]}" "$n" "$T/$n.yaml" "$T/$n.log" info "$@"
}

# listen NODE PORT: answers every connection with "ok-NODE-PORT" (bounded by timeout).
listen() {
	ip netns exec "${NS[$1]}" timeout 300 socat "TCP6-LISTEN:$2,fork,reuseaddr,ipv6only=0" "SYSTEM:echo ok-$1-$2" \
		</dev/null >/dev/null 2>&1 &
	lib_track_pid $!
}

# reaches FROM TO PORT [SECONDS]: a TCP connection from FROM to TO's overlay address gets
# TO's answer (connect timeout CONNECT_TIMEOUT_S, or SECONDS).
reaches() {
	local got
	got=$(ip netns exec "${NS[$1]}" timeout 3 socat -T 1 - \
		"TCP:${IP[$2]}:$3,connect-timeout=${4:-$CONNECT_TIMEOUT_S}" </dev/null 2>/dev/null)
	[ "$got" = "ok-$2-$3" ]
}
blocked() { ! reaches "$@"; }
# reaches6 FROM TO PORT: the same over the overlay's IPv6 addresses.
reaches6() {
	local got
	got=$(ip netns exec "${NS[$1]}" timeout 3 socat -T 1 - \
		"TCP6:[${IP6[$2]}]:$3,connect-timeout=$CONNECT_TIMEOUT_S" </dev/null 2>/dev/null)
	[ "$got" = "ok-$2-$3" ]
}

status() { # NODE [--json]
	"$MESHD" status -s "$T/$1.sock" "${@:2}" 2>&1
}

# wait_ms VAR LIMIT_MS CMD...: polls CMD every 50 ms; VAR gets the milliseconds it took.
wait_ms() {
	local __var=$1 limit=$2 start now
	shift 2
	start=$(lib_now_ms)
	while :; do
		if "$@" >/dev/null 2>&1; then
			now=$(lib_now_ms)
			printf -v "$__var" '%s' $((now - start))
			return 0
		fi
		now=$(lib_now_ms)
		[ $((now - start)) -gt $((limit + 3000)) ] && { printf -v "$__var" '%s' $((now - start)); return 1; }
		sleep 0.05
	done
}

show_log_tail() { tail -n "${2:-12}" "$1" 2>/dev/null | sed "s|^|#   ${1##*/}: |"; }

if ! coord_start; then
	lib_not_ok "meshcoord starts"
	show_log_tail "$T/coord.log"
	lib_summary
	exit 1
fi
KEY=$(lib_coord_authkey "$CONF" --reusable)
# nc joins later, while a policy is in force (b): a new node gets its own rules at once.
join() { # NODE...
	local n
	for n in "$@"; do
		node_start "$n" --join "$KEY"
	done
	for n in "$@"; do
		if ! wait_joined "$n"; then
			lib_not_ok "$n registers"
			show_log_tail "$T/$n.log"
			lib_summary
			exit 1
		fi
	done
}
wait_joined() {
	local n=$1
	if lib_wait_for "$REGISTER_LIMIT_S" bash -c "ip -n ${NS[$n]} -4 -o addr show dev $IFACE | grep -q inet"; then
		IP[$n]=$(lib_iface_ipv4 "${NS[$n]}" "$IFACE")
		IP6[$n]=$(ip -n "${NS[$n]}" -6 -o addr show dev "$IFACE" scope global | awk '{ split($4, a, "/"); print a[1]; exit }')
	else
		return 1
	fi
}
join na nb
lib_ok "na ${IP[na]} and nb ${IP[nb]} registered"
for n in na nb; do
	listen "$n" 80
	listen "$n" 22
done
lib_wait_for 5 lib_tcp_listening "${NS[nb]}" 22
lib_wait_for 5 lib_tcp_listening "${NS[na]}" 22

# ------------------------------------------------------------------ (a) no policy
lib_wait_for "$PING_LIMIT_S" lib_ping "${NS[na]}" "${IP[nb]}"
lib_check "(a) no policy: na reaches nb:22" reaches na nb 22
lib_check "(a) no policy: nb reaches na:22" reaches nb na 22
status nb >"$T/nb-status0.txt"
lib_check "(a) nb's status says 'access rules: none (allow all)'" grep -q 'access rules: none (allow all)' "$T/nb-status0.txt"

# ------------------------------------------------------------------ (b) a policy by SIGHUP
cat >"$POLICY" <<EOF
# na may reach nb's web server; everyone may ping everyone
hosts:
  web: nb
rules:
  - {from: [na], to: ["web:80"], proto: tcp}
  - {from: ["*"], to: ["*:*"], proto: icmp}
EOF
echo "policy_file: $POLICY" >>"$CONF"
kill -HUP "$COORD_PID"
took=
if wait_ms took "$APPLY_LIMIT_MS" blocked na nb 22 "$PROBE_TIMEOUT_S" && [ "$took" -le "$APPLY_LIMIT_MS" ]; then
	lib_ok "(b) policy set by SIGHUP: na can no longer reach nb:22 after $took ms (limit $APPLY_LIMIT_MS)"
else
	lib_not_ok "(b) policy set by SIGHUP: na can no longer reach nb:22 within $APPLY_LIMIT_MS ms (took $took ms)"
	show_log_tail "$T/coord.log"
	show_log_tail "$T/nb.log"
fi
join nc
status nc --json >"$T/nc-status.json"
# shellcheck disable=SC2016
lib_check "(b) nc, joining now, is sent its own rules (ICMP from anyone to its addresses)" python3 -c '
import json, sys
a = json.load(open(sys.argv[1]))["access_rules"]
assert a["active"] and sorted(r["to"] for r in a["rules"]) == sorted([sys.argv[2] + "/32", sys.argv[3] + "/128"]), a
assert all(r["proto"] == "icmp" for r in a["rules"]), a
' "$T/nc-status.json" "${IP[nc]}" "${IP6[nc]}"
lib_wait_for "$PING_LIMIT_S" lib_ping "${NS[nc]}" "${IP[nb]}"
lib_check "(b) na reaches nb:80 (the rule; nb's replies pass)" reaches na nb 80
lib_check "(b) na still cannot reach nb:22" blocked na nb 22
lib_check "(b) over IPv6 too: na reaches [nb]:80, not [nb]:22" bash -c "$(declare -f reaches6); $(declare -p NS IP6); CONNECT_TIMEOUT_S=$CONNECT_TIMEOUT_S; reaches6 na nb 80 && ! reaches6 na nb 22"
lib_check "(b) nc cannot reach nb:80 (no rule for nc)" blocked nc nb 80
lib_check "(b) nb cannot open a connection to na:22 (na has rules, none for nb)" blocked nb na 22
lib_check "(b) nb pings na (the ICMP rule)" lib_ping "${NS[nb]}" "${IP[na]}"
status nb >"$T/nb-status.txt"
status nb --json >"$T/nb-status.json"
lib_check "(b) nb's status: 'access rules: 4 (from coordinator)'" grep -q 'access rules: 4 (from coordinator)' "$T/nb-status.txt"
# shellcheck disable=SC2016
if python3 -c '
import json, sys
s = json.load(open(sys.argv[1]))
a = s["access_rules"]
assert a["active"] and a["from"] == "coordinator", a
assert {"from": sys.argv[2] + "/32", "to": sys.argv[3] + "/32", "proto": "tcp", "ports": [80, 80]} in a["rules"], a
assert s["counters"]["rx_acl_dropped"] >= 2, s["counters"]
' "$T/nb-status.json" "${IP[na]}" "${IP[nb]}" 2>"$T/json.err"; then
	lib_ok "(b) nb's status --json lists the rule na -> nb tcp 80 and counts its drops (rx_acl_dropped $(grep -o '"rx_acl_dropped": [0-9]*' "$T/nb-status.json" | cut -d' ' -f2))"
else
	lib_not_ok "(b) nb's status --json lists its rules and drops: $(tail -n 1 "$T/json.err")"
fi
lib_check "(b) nb logs a dropped packet" grep -q "no access rule allows" "$T/nb.log"

# ------------------------------------------------------------------ (c) the file edited
echo '  - {from: [nb], to: ["na:22"], proto: tcp}' >>"$POLICY"
if wait_ms took "$APPLY_LIMIT_MS" reaches nb na 22 "$PROBE_TIMEOUT_S" && [ "$took" -le "$APPLY_LIMIT_MS" ]; then
	lib_ok "(c) the file edited (no signal): nb reaches na:22 after $took ms (limit $APPLY_LIMIT_MS)"
else
	lib_not_ok "(c) the file edited (no signal): nb reaches na:22 within $APPLY_LIMIT_MS ms (took $took ms)"
	show_log_tail "$T/coord.log"
fi

# ------------------------------------------------------------------ (d) a broken file
cp "$POLICY" "$T/policy.good"
printf 'rules:\n  - {from: [na], to: ["nb:99999"]}\n' >"$POLICY"
kill -HUP "$COORD_PID"
lib_wait_for 3 grep -q "access rules not changed: $POLICY:2:" "$T/coord.log"
lib_check "(d) a broken policy on SIGHUP is logged with its position, once" grep -q "SIGHUP: access rules not changed: $POLICY:2:23: ports" "$T/coord.log"
sleep 0.5
lib_check "(d) ... once (the file watch does not repeat it)" test "$(lib_log_count "$T/coord.log" 'access rules not changed')" -eq 1
lib_check "(d) the previous rules stay: na reaches nb:80" reaches na nb 80
lib_check "(d) the previous rules stay: na cannot reach nb:22" blocked na nb 22
lib_check "(d) the previous rules stay: nb reaches na:22" reaches nb na 22
cp "$T/policy.good" "$POLICY"

# ------------------------------------------------------------------ (f) the dry run
"$MESHCOORD" policy check -c "$CONF" >"$T/check.out" 2>&1
lib_check "(f) meshcoord policy check: valid" grep -q "$POLICY: valid (1 hosts, 0 groups, 3 rules; compiled for every node" "$T/check.out"
"$MESHCOORD" policy show nb -c "$CONF" >"$T/show.out" 2>&1
lib_check "(f) meshcoord policy show nb: na on tcp 80, anyone on icmp" \
	bash -c "grep -E -q '^  na +${IP[na]}/32 +tcp +80 +to ${IP[nb]}\$' '$T/show.out' && grep -E -q '^  anyone +0.0.0.0/0 +icmp +\\* +to ${IP[nb]}\$' '$T/show.out'"
printf 'rules:\n  - {from: [ghost], to: ["nb:1"]}\n' >"$T/ghost.yaml"
"$MESHCOORD" policy check -c "$CONF" --file "$T/ghost.yaml" >"$T/ghost.out" 2>&1
lib_check "(f) policy check warns about a name no node has" grep -q "ghost.yaml:2:13: warning: no node named 'ghost'" "$T/ghost.out"
sed 's/^/#   /' "$T/show.out"

# ------------------------------------------------------------------ (g) tags
echo '  - {from: [tag:ops], to: ["nb:22"], proto: tcp}' >>"$POLICY"
lib_wait_for 3 grep -q "policy file changed: access rules .* read again (4 rules)" "$T/coord.log"
lib_check "(g) before the tag: nc cannot reach nb:22" blocked nc nb 22
"$MESHCOORD" nodes tag nc tag:ops -c "$CONF" 2>"$T/tag.err"
if wait_ms took "$APPLY_LIMIT_MS" reaches nc nb 22 "$PROBE_TIMEOUT_S" && [ "$took" -le "$APPLY_LIMIT_MS" ]; then
	lib_ok "(g) 'meshcoord nodes tag nc tag:ops': nc reaches nb:22 after $took ms (limit $APPLY_LIMIT_MS)"
else
	lib_not_ok "(g) 'meshcoord nodes tag nc tag:ops': nc reaches nb:22 within $APPLY_LIMIT_MS ms (took $took ms)"
	show_log_tail "$T/tag.err" 2
	show_log_tail "$T/coord.log"
fi
"$MESHCOORD" nodes list -c "$CONF" >"$T/nodes.out" 2>&1
"$MESHCOORD" nodes list --json -c "$CONF" >"$T/nodes.json" 2>&1
lib_check "(g) nodes list shows nc's tag" grep -E -q '^nc .* tag:ops$' "$T/nodes.out"
lib_check "(g) nodes list --json too" grep -q '"tags": \["tag:ops"\]' "$T/nodes.json"
"$MESHCOORD" nodes untag nc tag:ops -c "$CONF" 2>>"$T/tag.err"
if wait_ms took "$APPLY_LIMIT_MS" blocked nc nb 22 "$PROBE_TIMEOUT_S" && [ "$took" -le "$APPLY_LIMIT_MS" ]; then
	lib_ok "(g) 'meshcoord nodes untag nc tag:ops': nc cannot reach nb:22 after $took ms (limit $APPLY_LIMIT_MS)"
else
	lib_not_ok "(g) 'meshcoord nodes untag': nc blocked from nb:22 within $APPLY_LIMIT_MS ms (took $took ms)"
fi

# ------------------------------------------------------------------ (h) a subnet route
if command -v nft >/dev/null 2>&1; then
	ip netns exec "${NS[nas]}" timeout 300 socat TCP-LISTEN:80,fork,reuseaddr SYSTEM:"echo ok-nas-80" \
		</dev/null >/dev/null 2>&1 &
	lib_track_pid $!
	lib_wait_for 5 lib_tcp_listening "${NS[nas]}" 80
	cat >"$POLICY" <<EOF
hosts:
  web: nb
  nas: ${IP[nas]}/32
rules:
  - {from: [na], to: ["web:80", "nas:80"], proto: tcp}
  - {from: ["*"], to: ["*:*"], proto: icmp}
  - {from: [nb], to: ["na:22"], proto: tcp}
EOF
	"$MESHCOORD" routes approve nb "$LAN" -c "$CONF" >/dev/null 2>&1
	lib_wait_for 5 bash -c "ip -n ${NS[nc]} route show $LAN | grep -q $IFACE && ip -n ${NS[na]} route show $LAN | grep -q $IFACE"
	if wait_ms took "$APPLY_LIMIT_MS" reaches na nas 80 "$PROBE_TIMEOUT_S"; then
		lib_ok "(h) with the route approved and a rule for the NAS: na reaches ${IP[nas]}:80 through nb ($took ms)"
	else
		lib_not_ok "(h) na reaches the NAS ${IP[nas]}:80 through nb (rule 'na -> nas:80')"
		show_log_tail "$T/coord.log"
		show_log_tail "$T/nb.log"
	fi
	lib_check "(h) nc, with a route to the LAN but no rule, cannot reach the NAS" blocked nc nas 80
	"$MESHCOORD" policy show nb -c "$CONF" >"$T/show-nb.out" 2>&1
	lib_check "(h) policy show nb: na to the NAS behind it" \
		grep -E -q "^  na +${IP[na]}/32 +tcp +80 +to ${IP[nas]}/32\$" "$T/show-nb.out"
	"$MESHCOORD" routes revoke nb "$LAN" -c "$CONF" >/dev/null 2>&1
	cp "$T/policy.good" "$POLICY"
	lib_check "(h) after the revoke na drops its route to the LAN" \
		lib_wait_for 5 bash -c "! ip -n ${NS[na]} route show $LAN | grep -q $IFACE"
else
	lib_ok "# SKIP (h) a subnet route under a policy: no nft"
fi
# (e) below needs nb's saved rules to be the good policy's again
cp "$T/policy.good" "$POLICY"
lib_wait_for 5 bash -c "[ \$(grep -c '^rule ' '$T/nb/coordinator.state') = 4 ]"

# ------------------------------------------------------------------ (e) fail closed
# nb's state file is written within a few seconds of a change.
lib_wait_for 10 grep -q "^rule .* tcp 80\$" "$T/nb/coordinator.state"
lib_stop_pid "$COORD_PID" 5
lib_stop_pid "${PID[nb]}" 5
node_start nb
lib_wait_for 10 lib_link_exists "${NS[nb]}" "$IFACE"
lib_wait_for "$PING_LIMIT_S" lib_ping "${NS[na]}" "${IP[nb]}"
lib_check "(e) nb restarted without the coordinator logs its restored rules" grep -q "access rules: 4 restored" "$T/nb.log"
lib_check "(e) ... and enforces them: na cannot reach nb:22" blocked na nb 22
lib_check "(e) ... na reaches nb:80" reaches na nb 80
status nb >"$T/nb-status2.txt"
lib_check "(e) nb's status says the rules come from its saved state" grep -q 'access rules: 4 (from saved state)' "$T/nb-status2.txt"

lib_summary
