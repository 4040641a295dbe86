#!/bin/bash
# meshcoord's metrics page (metrics_listen), nodes list --json and SIGHUP, with scripted
# nodes (tests/tools/relaynode) on one LAN.
#
#            ┌──────────────── cmH-<pid> (hub: bridge br0) ────────────────┐
#            └────┬──────────────────────┬──────────────────────┬──────────┘
#   ┌─ cmC-<pid> ─┴──────────┐   ┌─ cmA-<pid> ─┴──┐   ┌─ cmB-<pid> ─┴──┐
#   │ meshcoord 192.0.2.10   │   │ relaynode A    │   │ relaynode B    │
#   │ metrics 127.0.0.1:9464 │   │ 192.0.2.21     │   │ 192.0.2.22     │
#   └────────────────────────┘   └────────────────┘   └────────────────┘
#
# Checks: the page is served on loopback only (a bare port) and not on the LAN address; every
# line of it parses as Prometheus text format 0.0.4 (HELP and TYPE once per family and before
# its samples, counters end in _total, every family has a sample); joins, online nodes,
# refusals by reason, relay packets and bytes per direction and transport, STUN answers and
# control frames move when the nodes join, relay and ask STUN; nodes list --json is valid
# JSON naming both nodes; connections that send nothing fill the slots without stalling the
# loop (STUN still answers) and are closed after the timeout; a request with no end is
# answered 431 and a POST 405; SIGHUP with a broken file keeps serving, and a good one
# changes log_level and names a changed listener as needing a restart.
#
# Needs root, iproute2, curl, python3 and built meshcoord and relaynode (exit 77 = SKIP).
# KEEP_TMPDIR=1 keeps the logs.
set -u

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/netns/lib.sh
. "$here/lib.sh"

lib_require_root
lib_require_cmd ip iproute2
lib_require_cmd curl curl
lib_require_cmd python3 python3
lib_find_meshcoord
: "${RELAYNODE:=$top_builddir/tests/tools/relaynode}"
[ -x "$RELAYNODE" ] || lib_skip "relaynode not found at $RELAYNODE (make check builds it; or set RELAYNODE=)"

lib_mktemp
lib_trap_cleanup

NS_HUB=cmH-$$
NS_COORD=cmC-$$
COORD_IP=192.0.2.10
CONTROL_PORT=51821
STUN_PORT=3478
METRICS_PORT=9464
URL=http://127.0.0.1:$METRICS_PORT/metrics
EVENT_LIMIT_S=5
# meshcoord's METRICS_MAX_CONNECTIONS and METRICS_TIMEOUT_MS (metrics_http.c).
METRICS_SLOTS=8
METRICS_TIMEOUT_S=5
T=$LIB_TMPDIR
declare -A NS IP PORT PID FD KEY
NS=([a]=cmA-$$ [b]=cmB-$$ [c]=cmA-$$)
IP=([a]=192.0.2.21 [b]=192.0.2.22 [c]=192.0.2.21)
PORT=([a]=41641 [b]=41642 [c]=41643)

lib_hub_create "$NS_HUB"
lib_ns_create "$NS_COORD"
lib_hub_attach "$NS_HUB" "$NS_COORD" eth0 "$COORD_IP/24"
ip -n "$NS_COORD" link set lo up
for n in a b; do
	lib_ns_create "${NS[$n]}"
	lib_hub_attach "$NS_HUB" "${NS[$n]}" eth0 "${IP[$n]}/24"
done

CONF=$T/coord.yaml
lib_coord_write_config "$CONF" "0.0.0.0:$CONTROL_PORT" "0.0.0.0:$STUN_PORT" "$COORD_IP:$CONTROL_PORT" "$T/coord-state"
echo "metrics_listen: $METRICS_PORT" >>"$CONF"
lib_log "meshcoord: $MESHCOORD"
lib_log "temp dir: $T"

# Started without --log-level, so the file's log_level applies (and SIGHUP can change it).
ip netns exec "$NS_COORD" env -u JOURNAL_STREAM "$MESHCOORD" serve -c "$CONF" </dev/null >>"$T/coord.log" 2>&1 &
COORD_PID=$!
lib_track_pid "$COORD_PID"
lib_coord_wait_up "$COORD_PID" "$NS_COORD" "$CONTROL_PORT" || lib_die "meshcoord did not start (see $T/coord.log)"
lib_wait_for 5 lib_tcp_listening "$NS_COORD" "$METRICS_PORT" || lib_die "no metrics listener (see $T/coord.log)"

scrape() { # FILE: the page, or non-zero
	ip netns exec "$NS_COORD" curl -sf --max-time 3 -o "$1" "$URL"
}

# Prints "ok" or the first problem: every line is a HELP, a TYPE or a sample of 0.0.4.
check_format() {
	python3 - "$1" <<'PY'
import re, sys
name = r'[a-zA-Z_:][a-zA-Z0-9_:]*'
label = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
sample = re.compile(r'^(' + name + r')(\{' + label + r'(?:,' + label + r')*\})? (-?[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?|NaN|[+-]Inf)$')
helps, types, seen = {}, {}, set()
text = open(sys.argv[1], encoding='utf-8').read()
if not text.endswith('\n'):
    print('the page does not end with a newline'); sys.exit()
for i, line in enumerate(text.split('\n')[:-1], 1):
    m = re.match(r'^# (HELP|TYPE) (' + name + r') (.*)$', line)
    if m:
        kind, n, rest = m.groups()
        d = helps if kind == 'HELP' else types
        if n in d or n in seen:
            print(f'line {i}: {kind} for {n} again or after its samples'); sys.exit()
        if kind == 'TYPE' and rest not in ('counter', 'gauge', 'histogram', 'summary', 'untyped'):
            print(f'line {i}: bad type {rest}'); sys.exit()
        if kind == 'TYPE' and rest == 'counter' and not n.endswith('_total'):
            print(f'line {i}: counter {n} does not end in _total'); sys.exit()
        d[n] = rest
        continue
    m = sample.match(line)
    if not m:
        print(f'line {i}: not a sample: {line!r}'); sys.exit()
    n = m.group(1)
    if n not in helps or n not in types:
        print(f'line {i}: sample of {n} without HELP and TYPE before it'); sys.exit()
    seen.add(n)
missing = set(types) - seen
if missing or set(helps) != set(types):
    print(f'families without samples or HELP/TYPE mismatch: {sorted(missing)}'); sys.exit()
print('ok')
PY
}

val() { # FILE SAMPLE: the value of the sample line "SAMPLE value" (0 if absent)
	local v
	v=$(grep -F "$2 " "$1" | grep -v '^#' | head -n 1 | awk '{print $NF}')
	echo "${v:-0}"
}

# rn_start NODE JOINKEY: a relaynode reading commands from a FIFO we keep open on FD[NODE].
rn_start() {
	local n=$1 fd
	mkfifo "$T/$n.in" || lib_die "mkfifo failed"
	ip netns exec "${NS[$n]}" "$RELAYNODE" --join "$2" --udp-port "${PORT[$n]}" --hostname "metrics-$n" \
		--timeout 120 <"$T/$n.in" >"$T/$n.out" 2>"$T/$n.err" &
	PID[$n]=$!
	lib_track_pid "${PID[$n]}"
	exec {fd}>"$T/$n.in"
	FD[$n]=$fd
}
rn() { printf '%s\n' "$2" >&"${FD[$1]}"; }
wait_count() { # NODE ERE N
	# shellcheck disable=SC2016
	lib_wait_for "$EVENT_LIMIT_S" bash -c '[ "$(grep -c -E -e "$2" "$1")" -ge "$3" ]' _ "$T/$1.out" "$2" "$3"
}

# ---------------------------------------------------------------- before any node
lib_check "the page is served on 127.0.0.1:$METRICS_PORT" scrape "$T/m0.txt"
lib_check "a bare port is loopback only: nothing answers on $COORD_IP:$METRICS_PORT" \
	bash -c "! ip netns exec '${NS[a]}' curl -s --max-time 2 -o /dev/null http://$COORD_IP:$METRICS_PORT/metrics"
r=$(check_format "$T/m0.txt")
lib_check "every line parses as text format 0.0.4 ($r, $(wc -l <"$T/m0.txt") lines)" [ "$r" = ok ]
lib_check "Content-Type says version 0.0.4" bash -c \
	"ip netns exec '$NS_COORD' curl -s -D - -o /dev/null '$URL' | grep -qi '^Content-Type: text/plain; version=0.0.4'"
lib_check "no nodes yet" [ "$(val "$T/m0.txt" meshcoord_nodes_registered)" = 0 ]

# ---------------------------------------------------------------- nodes join, relay, ask STUN
ONCE=$(lib_coord_authkey "$CONF") || lib_die "no join key"
MANY=$(lib_coord_authkey "$CONF" --reusable) || lib_die "no join key"
rn_start a "$ONCE"
rn_start b "$MANY"
for n in a b; do
	wait_count "$n" '^relayinfo ' 1 || lib_die "relaynode $n did not register (see $T/$n.out, $T/$n.err)"
	KEY[$n]=$(grep '^registered ' "$T/$n.out" | head -n 1 | cut -d' ' -f3)
done
# The one-time key again, from a third node: refused as used.
rn_start c "$ONCE"
lib_wait_for "$EVENT_LIMIT_S" grep -q -E '^(closed|error)' "$T/c.out"
rn a "bind"
rn b "bind"
wait_count a '^bound ' 1 && wait_count b '^bound ' 1 || lib_die "the nodes did not bind"
rn a "send ${KEY[b]} 1000 3"
wait_count b "^rx udp " 3 || lib_not_ok "B received A's 3 frames over UDP"
rn b "tcpsend ${KEY[a]} 500 2"
wait_count a "^rx " 2 || lib_not_ok "A received B's 2 frames"
rn a "stun $STUN_PORT"
wait_count a '^stun ' 1 || lib_not_ok "A got a STUN answer"

scrape "$T/m1.txt" || lib_die "second scrape failed"
r=$(check_format "$T/m1.txt")
lib_check "the page still parses with nodes and traffic ($r)" [ "$r" = ok ]
lib_check "2 nodes registered and online, 2 joins" \
	[ "$(val "$T/m1.txt" meshcoord_nodes_registered)$(val "$T/m1.txt" meshcoord_nodes_online)$(val "$T/m1.txt" meshcoord_joins_total)" = 222 ]
lib_check "the reused one-time key counted as a refusal for join_key_used" \
	[ "$(val "$T/m1.txt" 'meshcoord_registrations_refused_total{reason="join_key_used"}')" = 1 ]
rx_udp=$(val "$T/m1.txt" 'meshcoord_relay_packets_total{direction="received",transport="udp"}')
rx_tcp=$(val "$T/m1.txt" 'meshcoord_relay_packets_total{direction="received",transport="tcp"}')
fw=$(($(val "$T/m1.txt" 'meshcoord_relay_packets_total{direction="forwarded",transport="udp"}') + \
	$(val "$T/m1.txt" 'meshcoord_relay_packets_total{direction="forwarded",transport="tcp"}')))
lib_check "relay packets: 3 received over UDP, 2 over TCP, 5 forwarded (got $rx_udp, $rx_tcp, $fw)" \
	[ "$rx_udp/$rx_tcp/$fw" = 3/2/5 ]
lib_check "relay bytes: 4000 received and forwarded" \
	[ "$(val "$T/m1.txt" 'meshcoord_relay_bytes_total{direction="received"}')/$(val "$T/m1.txt" 'meshcoord_relay_bytes_total{direction="forwarded"}')" = 4000/4000 ]
lib_check "a STUN answer on the main port" [ "$(val "$T/m1.txt" 'meshcoord_stun_answers_total{port="main"}')" -ge 1 ]
cf_rx=$(val "$T/m1.txt" 'meshcoord_control_frames_total{direction="received"}')
cf_tx=$(val "$T/m1.txt" 'meshcoord_control_frames_total{direction="sent"}')
lib_check "control frames moved both ways ($cf_rx received, $cf_tx sent)" [ "$cf_rx" -gt 0 -a "$cf_tx" -gt 0 ]

"$MESHCOORD" nodes list --json -c "$CONF" >"$T/nodes.json" 2>"$T/nodes.err"
r=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(" ".join(sorted(n["name"] for n in d["nodes"] if n["online"] and n["public_key"])))' "$T/nodes.json" 2>&1)
lib_check "nodes list --json is valid JSON naming both nodes online ($r)" [ "$r" = "metrics-a metrics-b" ]

# ---------------------------------------------------------------- slow clients, bad requests
printf 'GET /metrics HTTP/1.1\r\nX: %05000d' 0 >"$T/big.req"
big=$(ip netns exec "$NS_COORD" curl -s --max-time 3 -o /dev/null -w '%{http_code}' -X POST "$URL")
lib_check "a POST is answered 405 (got $big)" [ "$big" = 405 ]
big=$(ip netns exec "$NS_COORD" python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3)
s.sendall(open(sys.argv[2], "rb").read())
print(s.recv(64).split(b" ")[1].decode())' "$METRICS_PORT" "$T/big.req" 2>&1)
lib_check "a request without an end within 4 KiB is answered 431 (got $big)" [ "$big" = 431 ]

# Every slot held by a connection that sends nothing, plus one more.
ip netns exec "$NS_COORD" python3 -c '
import socket, sys, time
held = [socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=3) for _ in range(int(sys.argv[2]) + 1)]
open(sys.argv[4], "w").close()
time.sleep(int(sys.argv[3]) + 2)' "$METRICS_PORT" "$METRICS_SLOTS" "$METRICS_TIMEOUT_S" "$T/held" &
HOLD=$!
lib_track_pid "$HOLD"
lib_wait_for 5 test -e "$T/held" || lib_not_ok "the connections that send nothing were made"
# meshcoord accepts them at its next wake-up: the one past the slots is closed then.
lib_wait_for 3 grep -q "metrics: $METRICS_SLOTS connections open already" "$T/coord.log"
rn a "stun $STUN_PORT"
lib_check "with every metrics slot held, the loop still answers STUN" wait_count a '^stun ' 2
lib_check "and a scrape now is refused, not queued" bash -c "! ip netns exec '$NS_COORD' curl -sf --max-time 2 -o /dev/null '$URL'"
lib_wait_for $((METRICS_TIMEOUT_S + 3)) scrape "$T/m2.txt"
lib_check "after ${METRICS_TIMEOUT_S} s the silent connections are closed and scraping works again" \
	[ "$(val "$T/m2.txt" meshcoord_metrics_timeouts_total)" -ge "$METRICS_SLOTS" ]
lib_check "refused connections were counted" [ "$(val "$T/m2.txt" meshcoord_metrics_refused_total)" -ge 1 ]
wait "$HOLD" 2>/dev/null
lib_untrack_pid "$HOLD"

# ---------------------------------------------------------------- SIGHUP
cp "$CONF" "$T/coord.yaml.good"
echo "log_level: [" >>"$CONF"
kill -HUP "$COORD_PID"
lib_check "SIGHUP with a broken file logs the parser's error" \
	lib_wait_for 3 grep -q "SIGHUP: $CONF:.*the running configuration stays" "$T/coord.log"
lib_check "and meshcoord keeps serving" scrape "$T/m3.txt"
cp "$T/coord.yaml.good" "$CONF"
printf 'log_level: debug\n' >>"$CONF"
sed -i "s/^stun_listen: .*/stun_listen: 0.0.0.0:3480/" "$CONF"
kill -HUP "$COORD_PID"
lib_check "SIGHUP applies log_level" lib_wait_for 3 grep -q "SIGHUP: log_level info -> debug" "$T/coord.log"
lib_check "and names stun_listen as needing a restart" \
	grep -q "SIGHUP: 'stun_listen' changed; it takes effect when meshcoord restarts" "$T/coord.log"
lib_check "meshcoord still runs" lib_pid_alive "$COORD_PID"

lib_summary
