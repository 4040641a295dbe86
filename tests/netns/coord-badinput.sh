#!/bin/bash
# Bad input against meshcoord: every kind is refused, counted, logged only a few times
# (rate-limited), and the coordinator keeps serving: a real registration works after each.
#
#   ┌──────────── cbiC-<pid> ─────────────┐      ┌──────────── cbiA-<pid> ─────────────┐
#   │ meshcoord  TCP 51821, STUN UDP 3478 │      │ fakenode, udpinject, stun           │
#   │ eth0  192.0.2.10/24  ───────────────┼──────┼───────────────  eth0  192.0.2.20/24 │
#   └─────────────────────────────────────┘      └─────────────────────────────────────┘
#
# Kinds, each on fresh connections from the client namespace:
#   random bytes on TCP; a hello-sized frame with a wrong magic; an oversized frame header
#   (0xffff); 50 half-open connections (connect, send nothing: closed after ~10 s, while a
#   registration still succeeds); a hello to the wrong coordinator key; a hello replayed
#   (captured with fakenode --dump-hello, sent again on fresh connections); a forged frame
#   after the handshake; REGISTER without a join secret and with a wrong one (unauthenticated
#   registers); random datagrams on the STUN port.
# Counters come from SIGUSR1 ("counters:" line in the log). Random inputs use /dev/urandom;
# KEEP_TMPDIR=1 keeps them and the log.
#
# Needs root and iproute2 (exit 77 = SKIP otherwise), and a built meshcoord and fakenode (exit 1
# otherwise: a missing binary is a broken build).
set -u

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/netns/lib.sh
. "$here/lib.sh"

lib_require_root
lib_require_cmd ip iproute2
lib_require_cmd ss iproute2
lib_find_meshcoord
lib_find_fakenode

lib_mktemp
lib_trap_cleanup
lib_find_udpinject

NS_COORD=cbiC-$$
NS_CLIENT=cbiA-$$
COORD_IP=192.0.2.10
CLIENT_IP=192.0.2.20
CONTROL_PORT=51821
STUN_PORT=3478
T=$LIB_TMPDIR
# How many connections of each bad kind: enough that an unlimited log would show it.
BAD_CONNS=50
HALF_OPEN_CONNS=50
UDP_GARBAGE=1000
# meshcoord closes a connection that has not completed its hello after this long.
HALF_OPEN_LIMIT_S=10
# ...give or take scheduling: the window in which the half-open ones must be closed.
HALF_OPEN_MIN_MS=8000
HALF_OPEN_MAX_MS=15000
# How long a raw connection may stay open before we call it "not closed".
RAW_WAIT_S=$((HALF_OPEN_LIMIT_S + 6))
# log.h allows 5 lines per 5 s per limiter (plus a "suppressed" line); a phase can straddle
# two windows. More than this for one flood means the log is not rate-limited.
LOG_LINES_MAX=14
# meshcoord may share one limiter between kinds of bad input, so a phase starts after the
# window of the previous one has passed: then each kind must show up in the log.
LOG_WINDOW_S=5.5

lib_ns_create "$NS_COORD"
lib_ns_create "$NS_CLIENT"
lib_veth "$NS_COORD" eth0 "$COORD_IP/24" "$NS_CLIENT" eth0 "$CLIENT_IP/24"

lib_coord_write_config "$T/coord.yaml" "0.0.0.0:$CONTROL_PORT" "0.0.0.0:$STUN_PORT" \
	"$COORD_IP:$CONTROL_PORT" "$T/coord-state"
lib_log "meshcoord: $MESHCOORD"
lib_log "fakenode: $FAKENODE"
lib_log "temp dir: $T"

COORD_PID=
lib_coord_start COORD_PID "$NS_COORD" "$T/coord.yaml" "$T/coord.log"
if ! lib_coord_wait_up "$COORD_PID" "$NS_COORD" "$CONTROL_PORT"; then
	lib_not_ok "meshcoord starts and listens on TCP $CONTROL_PORT"
	tail -n 20 "$T/coord.log" | sed 's/^/# /'
	lib_summary
	exit 1
fi
lib_ok "meshcoord starts and listens on TCP $CONTROL_PORT"
JOIN_KEY=$(lib_coord_authkey "$T/coord.yaml" --reusable)
lib_check "a reusable join key is created" test -n "$JOIN_KEY"

fakenode() { # runs fakenode in the client namespace
	ip netns exec "$NS_CLIENT" "$FAKENODE" --join "$JOIN_KEY" --quiet "$@"
}

LEGIT_N=0
legit_registration() { # one real registration, 10 s at most
	LEGIT_N=$((LEGIT_N + 1))
	fakenode --count 1 --hostname "legit$LEGIT_N" --timeout 10 >"$T/legit.out" 2>&1
}

counters() {
	lib_meshd_counters "$COORD_PID" "$T/coord.log"
}

# sum_delta BEFORE AFTER NAME...: the sum of the named counters' changes.
sum_delta() {
	local before=$1 after=$2 name a b sum=0
	shift 2
	for name in "$@"; do
		a=$(lib_counter "$after" "$name")
		b=$(lib_counter "$before" "$name")
		sum=$((sum + ${a:-0} - ${b:-0}))
	done
	echo "$sum"
}

# Warnings and errors in the log after line $1 (counters lines are info, so not counted).
log_lines_since() {
	tail -n +"$(($1 + 1))" "$T/coord.log" | grep -c -E '^meshcoord: (warn|error):'
}

log_mark() {
	wc -l <"$T/coord.log"
}

# phase DESC EXPECT COUNTERS CMD...: runs CMD (a fakenode or udpinject that exits 0 when
# every input was refused), then checks the refusal, the counters (their summed change must
# be EXPECT), the number of log lines (1..LOG_LINES_MAX; MIN_LOG_LINES=0 allows none) and
# that a real registration still works.
MIN_LOG_LINES=1
phase() {
	local desc=$1 expect=$2 names=$3 c0 c1 mark rc delta lines out
	shift 3
	sleep "$LOG_WINDOW_S"
	c0=$(counters)
	mark=$(log_mark)
	out=$("$@" 2>&1)
	rc=$?
	# let the coordinator finish with the last of them before reading its counters
	sleep 0.5
	c1=$(counters)
	# shellcheck disable=SC2086 # a list of counter names
	delta=$(sum_delta "$c0" "$c1" $names)
	lines=$(log_lines_since "$mark")
	if [ "$rc" -eq 0 ]; then
		lib_ok "$desc: every one refused ($(printf '%s\n' "$out" | grep -E '^(raw_|registered=|bad_key|refused|udpinject)' | tr '\n' ' '))"
	else
		lib_not_ok "$desc: every one refused (exit $rc)"
		printf '%s\n' "$out" | tail -n 8 | sed 's/^/#   /'
	fi
	if [ "$delta" -eq "$expect" ]; then
		lib_ok "$desc: counted ($names: +$delta)"
	else
		lib_not_ok "$desc: counted ($names: +$delta, expected +$expect; all changes: $(lib_counter_deltas "$c0" "$c1"))"
	fi
	if [ "$lines" -ge "$MIN_LOG_LINES" ] && [ "$lines" -le "$LOG_LINES_MAX" ]; then
		lib_ok "$desc: logged $lines warning line(s) (rate-limited: $MIN_LOG_LINES..$LOG_LINES_MAX)"
	else
		lib_not_ok "$desc: logged $lines warning line(s), expected $MIN_LOG_LINES..$LOG_LINES_MAX"
		tail -n +"$((mark + 1))" "$T/coord.log" | head -n 20 | sed 's/^/#   /'
	fi
	if lib_pid_alive "$COORD_PID" && legit_registration; then
		lib_ok "$desc: meshcoord still serves (a registration works after it)"
	else
		lib_not_ok "$desc: meshcoord still serves (alive: $(lib_pid_alive "$COORD_PID" && echo yes || echo no))"
		sed 's/^/#   /' "$T/legit.out"
	fi
}

lib_check "a registration works before any bad input" legit_registration

# ------------------------------------------------------------------ garbage on TCP
# Random bytes: the first two read as a frame length; above 4096 (most of them) the
# connection is closed at once as an oversized frame, else as a bad hello, or as half-open
# if the claimed length never arrives.
for i in $(seq 1 "$BAD_CONNS"); do
	head -c 1000 /dev/urandom >"$T/garbage-$i.bin"
done
garbage_tcp() {
	local i pid pids=() fail=0
	# in parallel: the few that claim a length they never send wait out the half-open limit
	for i in $(seq 1 "$BAD_CONNS"); do
		fakenode --raw "$T/garbage-$i.bin" --raw-wait "$RAW_WAIT_S" >"$T/garbage-$i.out" 2>&1 &
		pids+=($!)
	done
	for pid in "${pids[@]}"; do
		wait "$pid" || fail=1
	done
	cat "$T"/garbage-*.out | grep '^raw_' >"$T/garbage.out"
	awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^closed_by_server=/) { split($i, a, "="); c += a[2] } }
		END { print "raw_connections=" NR " closed_by_server=" c }' "$T/garbage.out"
	return "$fail"
}
phase "$BAD_CONNS TCP connections of 1000 random bytes" "$BAD_CONNS" \
	"frames_bad_length hello_invalid handshake_timeouts" garbage_tcp

# A complete first frame of the hello's size whose contents are random (wrong magic).
{ printf '\000\163'; head -c 115 /dev/urandom; } >"$T/badmagic.bin"
phase "$BAD_CONNS hello-sized frames of random bytes" "$BAD_CONNS" "hello_invalid" \
	fakenode --raw "$T/badmagic.bin" --count "$BAD_CONNS" --raw-wait "$RAW_WAIT_S"

# ------------------------------------------------------------------ oversized frame
{ printf '\377\377'; head -c 200 /dev/urandom; } >"$T/oversized.bin"
phase "$BAD_CONNS frame headers of 0xffff bytes" "$BAD_CONNS" "frames_bad_length" \
	fakenode --raw "$T/oversized.bin" --count "$BAD_CONNS" --raw-wait "$RAW_WAIT_S"

# ------------------------------------------------------------------ half-open
sleep "$LOG_WINDOW_S"
c0=$(counters)
mark=$(log_mark)
fakenode --half-open --count "$HALF_OPEN_CONNS" --raw-wait "$RAW_WAIT_S" >"$T/halfopen.out" 2>&1 &
half_pid=$!
lib_track_pid "$half_pid"
open_now() {
	[ "$(ip netns exec "$NS_CLIENT" ss -Htn state established "dport = :$CONTROL_PORT" | wc -l)" -ge "$HALF_OPEN_CONNS" ]
}
lib_wait_for 5 open_now
if lib_pid_alive "$half_pid" && legit_registration && lib_pid_alive "$half_pid"; then
	lib_ok "while $HALF_OPEN_CONNS half-open connections are open, a registration succeeds"
else
	lib_not_ok "while $HALF_OPEN_CONNS half-open connections are open, a registration succeeds"
	sed 's/^/#   /' "$T/legit.out"
fi
rc=
lib_wait_exit rc "$half_pid" $((RAW_WAIT_S + 5))
sleep 0.5
c1=$(counters)
res=$(grep '^raw_connections=' "$T/halfopen.out")
first=$(printf '%s\n' "$res" | tr ' ' '\n' | sed -n 's/^first_close_ms=//p')
last=$(printf '%s\n' "$res" | tr ' ' '\n' | sed -n 's/^last_close_ms=//p')
if [ "${rc:-1}" -eq 0 ] && [ "${first:-0}" -ge "$HALF_OPEN_MIN_MS" ] && [ "${last:-0}" -le "$HALF_OPEN_MAX_MS" ]; then
	lib_ok "$HALF_OPEN_CONNS half-open connections closed by meshcoord after ~${HALF_OPEN_LIMIT_S} s ($res)"
else
	lib_not_ok "$HALF_OPEN_CONNS half-open connections closed by meshcoord after ${HALF_OPEN_MIN_MS}..${HALF_OPEN_MAX_MS} ms (exit ${rc:-still running}; $res)"
fi
delta=$(sum_delta "$c0" "$c1" handshake_timeouts)
lib_check "half-open connections counted (handshake_timeouts +$delta, expected +$HALF_OPEN_CONNS)" \
	test "$delta" -eq "$HALF_OPEN_CONNS"
lines=$(log_lines_since "$mark")
lib_check "half-open connections logged $lines warning line(s) (rate-limited: 1..$LOG_LINES_MAX)" \
	test "$lines" -ge 1 -a "$lines" -le "$LOG_LINES_MAX"

# ------------------------------------------------------------------ wrong coordinator key
phase "$BAD_CONNS hellos to the wrong coordinator key" "$BAD_CONNS" "hello_invalid" \
	fakenode --bad-key --count "$BAD_CONNS" --timeout "$RAW_WAIT_S"

# ------------------------------------------------------------------ replayed hello
# A real node's hello, used once (the node registers), then sent again: the timestamp is
# not newer than the last one accepted for that key.
if fakenode --count 1 --hostname replayed --dump-hello "$T/hello.bin" >"$T/dump.out" 2>&1 && [ -s "$T/hello.bin" ]; then
	lib_ok "captured a hello ($(stat -c %s "$T/hello.bin") bytes) of a node that registered with it"
	phase "the captured hello replayed on $BAD_CONNS fresh connections" "$BAD_CONNS" "hello_replayed" \
		fakenode --raw "$T/hello.bin" --count "$BAD_CONNS" --raw-wait "$RAW_WAIT_S"
else
	lib_not_ok "captured a hello of a node that registered with it"
	sed 's/^/#   /' "$T/dump.out"
fi

# ------------------------------------------------------------------ forged frame after the handshake
phase "$BAD_CONNS sessions sending a forged frame after the handshake" "$BAD_CONNS" "frames_forged" \
	fakenode --forge --count "$BAD_CONNS" --timeout "$RAW_WAIT_S"

# ------------------------------------------------------------------ unauthenticated registers
nodes_before=$(counters)
phase "$BAD_CONNS REGISTERs without a join secret" "$BAD_CONNS" "registrations_refused" \
	fakenode --secret none --count "$BAD_CONNS" --timeout "$RAW_WAIT_S"
phase "$BAD_CONNS REGISTERs with a wrong join secret" "$BAD_CONNS" "registrations_refused" \
	fakenode --secret wrong --count "$BAD_CONNS" --timeout "$RAW_WAIT_S"
nodes_after=$(counters)
# Only the legit registrations (one per phase) may have created nodes.
created=$(sum_delta "$nodes_before" "$nodes_after" nodes_created)
lib_check "refused registers created no node (nodes_created +$created = the 2 legit ones)" test "$created" -eq 2

# ------------------------------------------------------------------ garbage on the STUN port
MIN_LOG_LINES=0
# (the STUN port is also the relay's: garbage that starts like a relay frame is counted there)
phase "$UDP_GARBAGE random datagrams on the STUN port" "$UDP_GARBAGE" "stun_dropped relay_malformed" \
	ip netns exec "$NS_CLIENT" "$UDPINJECT" --quiet --to "$COORD_IP:$STUN_PORT" --random "$UDP_GARBAGE" \
	--max-len 1400 --interval-ms 1
if command -v stun >/dev/null 2>&1; then
	got=$(ip netns exec "$NS_CLIENT" timeout 10 stun "$COORD_IP" 1 -v -p 40040 2>&1 |
		sed -n 's/^MappedAddress = \([0-9.]*:[0-9]*\).*/\1/p' | head -n 1)
	lib_check "STUN still answers after the garbage (mapped ${got:-nothing})" test "$got" = "$CLIENT_IP:40040"
else
	lib_ok "STUN still answers after the garbage # SKIP 'stun' not installed (Debian package stun-client)"
fi

# ------------------------------------------------------------------ the end
final=$(counters)
lib_log "final counters: ${final#*counters: }"
lib_check "meshcoord still running after all of it" lib_pid_alive "$COORD_PID"
lib_stop_pid "$COORD_PID"
rc=$?
lib_check "meshcoord exits 0 on SIGTERM (exit $rc)" test "$rc" -eq 0

if [ "$LIB_FAILED" -gt 0 ]; then
	echo "# ---- last lines of meshcoord's log"
	tail -n 40 "$T/coord.log" | sed 's/^/# /'
fi
lib_summary
