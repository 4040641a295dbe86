#!/bin/bash
# meshd against stock wireguard-go (Debian's), static peers, one veth cable:
#
#   ┌──────────── wgiM<n>-<pid> ─────────┐      ┌──────────── wgiW<n>-<pid> ─────────┐
#   │  mesh0  100.64.0.1/10              │      │  wg<n>-<pid>  100.64.0.2/10         │
#   │    │ meshd (udp 51820)             │      │    │ wireguard-go -f (udp 51820)    │
#   │  vethM  192.0.2.1/24  ─────────────┼──────┼─────────────  vethW  192.0.2.2/24  │
#   └────────────────────────────────────┘      └────────────────────────────────────┘
#
# Pair 1 serves every scenario; the rekey scenario adds pair 2 so both roles rekey at once.
# Both daemons are restarted for each scenario (no session survives from one to the next).
# The initiator is chosen by configuration: the side without an endpoint for the other
# cannot start a handshake. Scenarios (SCENARIO_FILTER=regex runs only those whose name matches,
# SCENARIO_SKIP=regex leaves out those whose name matches, e.g. SCENARIO_SKIP=rekey):
#   meshd-initiates  handshake completes (wg latest-handshakes, meshd counters), ping both ways
#   wg-initiates     the same with wireguard-go initiating; meshd learns its endpoint
#   transfer         100 MiB TCP each way, identical sha256, meshd drops nothing
#   psk              same preshared key on both: works; different keys: no handshake, meshd
#                    counts rx_handshake_invalid
#   wrong-key        a wrong public key on either side: no tunnel, meshd counts invalid handshakes
#   cookie           meshd with cookie_threshold: 0, wireguard-go initiating: cookie reply,
#                    retry with mac2 after REKEY_TIMEOUT (5 s), handshake, ping
#   rekey            ~135 s of ping -i 0.2 through both pairs (meshd initiator in one, wireguard-go
#                    in the other): a second handshake at REKEY_AFTER_TIME (120 s), (near) no loss
#
# Needs root and /dev/net/tun (exit 77 = SKIP otherwise); wireguard-go, wg, socat, ping
# and iproute2 missing is a failure (CI installs them: contrib/install-deps.sh).
# KEEP_TMPDIR=1 keeps the logs; MESHD_LOG_LEVEL=debug (default info) raises meshd's.
set -u

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/netns/lib.sh
. "$here/lib.sh"

lib_require_root
lib_require_tun
lib_find_meshd

# A missing tool is a failure, not a skip: CI counts skips as failures anyway, and this
# test exists to run against the real wireguard-go.
missing=
for tool in ip:iproute2 ping:iputils-ping wireguard-go:wireguard-go wg:wireguard-tools socat:socat \
	sha256sum:coreutils ss:iproute2; do
	command -v "${tool%%:*}" >/dev/null 2>&1 || missing="$missing ${tool%%:*} (Debian package ${tool#*:})"
done
if [ -n "$missing" ]; then
	lib_not_ok "tools needed for the wireguard-go interop test are installed; missing:$missing"
	lib_summary
	exit 1
fi

lib_mktemp
T=$LIB_TMPDIR
SCENARIO_FILTER=${SCENARIO_FILTER:-}
SCENARIO_SKIP=${SCENARIO_SKIP:-}
MESHD_LOG_LEVEL=${MESHD_LOG_LEVEL:-info}

UNDERLAY_M=192.0.2.1
UNDERLAY_W=192.0.2.2
OVERLAY_M=100.64.0.1
OVERLAY_W=100.64.0.2
PORT=51820
MTU=1420
IFACE=mesh0
# wireguard-go's control socket is /var/run/wireguard/<interface>.sock, in the file system
# every namespace shares: the interface name carries our PID so parallel runs do not clash.
WG_SOCK_DIR=/var/run/wireguard
HANDSHAKE_LIMIT_S=10
TRANSFER_MIB=100
TRANSFER_LIMIT_S=90
# A refused pair gets this long (more than one retry, 5 s) to prove that nothing gets through.
SILENCE_S=7
# A cookie reply makes wireguard-go wait for its retry (REKEY_TIMEOUT 5 s + jitter) before the
# mac2 initiation; the first try is thrown away, so the ping needs at most two retries.
COOKIE_LIMIT_S=16
COOKIE_MIN_MS=4500
# REKEY_AFTER_TIME is 120 s: pings every 0.2 s for 135 s cover it with margin.
REKEY_PING_COUNT=675
REKEY_PING_INTERVAL=0.2
REKEY_MAX_LOST=2

# Per pair n: namespaces, wireguard-go interface and the PIDs of the two daemons.
ns_m() { echo "wgiM$1-$$"; }
ns_w() { echo "wgiW$1-$$"; }
wg_if() { echo "wg$1-$$"; }
declare -A MPID=() WPID=()

interop_cleanup() {
	local n
	lib_cleanup
	# wireguard-go removes its socket on SIGTERM; after a SIGKILL it stays behind.
	for n in 1 2; do
		rm -f "$WG_SOCK_DIR/$(wg_if "$n").sock"
	done
}
trap 'interop_cleanup' EXIT
trap 'interop_cleanup; exit 130' INT
trap 'interop_cleanup; exit 143' TERM
trap 'interop_cleanup; exit 129' HUP

SCENARIOS_RUN=0
want() {
	[ -z "$SCENARIO_FILTER" ] || [[ $1 =~ $SCENARIO_FILTER ]] || return 1
	[ -z "$SCENARIO_SKIP" ] || ! [[ $1 =~ $SCENARIO_SKIP ]] || return 1
	SCENARIOS_RUN=$((SCENARIOS_RUN + 1))
}

# ---- keys: meshd's own tools for meshd, wg's for wireguard-go, so the formats cross too.
lib_genkey "$T" m
(umask 077 && wg genkey >"$T/w.key") || lib_die "wg genkey failed"
wg pubkey <"$T/w.key" >"$T/w.pub" || lib_die "wg pubkey failed"
(umask 077 && wg genpsk >"$T/psk1" && wg genpsk >"$T/psk2") || lib_die "wg genpsk failed"
M_PUB=$(cat "$T/m.pub")
W_PUB=$(cat "$T/w.pub")
# wg prints a key as meshd does: the two programs agree on each other's public keys.
if [ "$("$MESHD" pubkey <"$T/w.key")" = "$W_PUB" ] && [ "$(wg pubkey <"$T/m.key")" = "$M_PUB" ]; then
	lib_ok "meshd pubkey and wg pubkey derive the same public keys from each other's private keys"
else
	lib_not_ok "meshd pubkey and wg pubkey derive the same public keys (meshd on wg's key: $("$MESHD" pubkey <"$T/w.key"), wg: $W_PUB)"
fi

pair_create() { # N
	lib_ns_create "$(ns_m "$1")"
	lib_ns_create "$(ns_w "$1")"
	lib_veth "$(ns_m "$1")" vethM "$UNDERLAY_M/24" "$(ns_w "$1")" vethW "$UNDERLAY_W/24"
}

# meshd_config N PEER_PUB ENDPOINT|- PSKFILE|- COOKIE_THRESHOLD|-
meshd_config() {
	local f=$T/m$1.yaml
	{
		echo "interface: $IFACE"
		echo "control_socket: $T/m$1.sock"
		echo "private_key_file: $T/m.key"
		echo "listen_port: $PORT"
		echo "address: $OVERLAY_M/10"
		echo "mtu: $MTU"
		[ "$5" != - ] && echo "cookie_threshold: $5"
		echo "peers:"
		echo "  - name: wg"
		echo "    public_key: $2"
		[ "$3" != - ] && echo "    endpoint: $3"
		[ "$4" != - ] && echo "    preshared_key: $(cat "$4")"
		echo "    allowed_ips: [$OVERLAY_W/32]"
	} >"$f"
	chmod 600 "$f"
}

# meshd_up N: starts meshd of pair N with $T/mN.yaml (write it with meshd_config first).
meshd_up() {
	local meshd_pid # (not "pid": lib_meshd_start has a local of that name)
	lib_meshd_start meshd_pid "$(ns_m "$1")" "$T/m$1.yaml" "$(mlog "$1")" "$MESHD_LOG_LEVEL"
	MPID[$1]=$meshd_pid
	lib_meshd_wait_up "$meshd_pid" "$(ns_m "$1")" "$IFACE"
}

# wg_up N PEER_PUB ENDPOINT|- PSKFILE|-: wireguard-go in pair N's wg namespace, configured
# with wg set and ip like wg-quick would.
wg_up() {
	local n=$1 ns if pid args
	ns=$(ns_w "$n")
	if=$(wg_if "$n")
	ip netns exec "$ns" env LOG_LEVEL=debug wireguard-go -f "$if" </dev/null >>"$(wlog "$n")" 2>&1 &
	pid=$!
	lib_track_pid "$pid"
	WPID[$n]=$pid
	lib_wait_for 10 test -S "$WG_SOCK_DIR/$if.sock" || return 1
	args=(peer "$2" allowed-ips "$OVERLAY_M/32")
	[ "$3" != - ] && args+=(endpoint "$3")
	[ "$4" != - ] && args+=(preshared-key "$4")
	ip netns exec "$ns" wg set "$if" listen-port "$PORT" private-key "$T/w.key" "${args[@]}" || return 1
	ip -n "$ns" addr add "$OVERLAY_W/10" dev "$if" || return 1
	ip -n "$ns" link set "$if" mtu "$MTU" up || return 1
	lib_pid_alive "$pid"
}

pair_down() { # N
	[ -n "${MPID[$1]:-}" ] && lib_stop_pid "${MPID[$1]}"
	[ -n "${WPID[$1]:-}" ] && lib_stop_pid "${WPID[$1]}"
	MPID[$1]=
	WPID[$1]=
}

# Seconds since the epoch of wireguard-go's latest handshake with its peer (0: none).
wg_latest() { # N
	local v
	v=$(ip netns exec "$(ns_w "$1")" wg show "$(wg_if "$1")" latest-handshakes 2>/dev/null | awk '{ print $2; exit }')
	echo "${v:-0}"
}
wg_has_handshake() { [ "$(wg_latest "$1")" -gt 0 ]; }

counters() { # N: meshd's counters line
	lib_meshd_counters "${MPID[$1]}" "$(mlog "$1")"
}
ctr() { # LINE NAME (0 when absent)
	local v
	v=$(lib_counter "$1" "$2")
	echo "${v:-0}"
}

# meshd status's last_handshake_unix for its one peer: a number, or "null" (never).
meshd_status_handshake() { # N
	ip netns exec "$(ns_m "$1")" "$MESHD" status --json -s "$T/m$1.sock" 2>/dev/null |
		grep -o '"last_handshake_unix": [a-z0-9]*' | sed 's/.*: //'
}

ping_m2w() { lib_ping "$(ns_m "$1")" "$OVERLAY_W"; }
ping_w2m() { lib_ping "$(ns_w "$1")" "$OVERLAY_M"; }

# check_ping_both N LABEL [wg-first]: each direction must answer within HANDSHAKE_LIMIT_S,
# meshd→wireguard-go first unless told (a side without the other's endpoint cannot start).
check_ping_one() { # N LABEL m2w|w2m
	local t0 desc
	desc="$2: ping $([ "$3" = m2w ] && echo "meshd→wireguard-go" || echo "wireguard-go→meshd")"
	t0=$(lib_now_ms)
	if lib_wait_for "$HANDSHAKE_LIMIT_S" "ping_$3" "$1"; then
		lib_ok "$desc ($(($(lib_now_ms) - t0)) ms)"
	else
		lib_not_ok "$desc (no reply within ${HANDSHAKE_LIMIT_S} s)"
	fi
}
check_ping_both() {
	if [ "${3:-}" = wg-first ]; then
		check_ping_one "$1" "$2" w2m
		check_ping_one "$1" "$2" m2w
	else
		check_ping_one "$1" "$2" m2w
		check_ping_one "$1" "$2" w2m
	fi
}

# start_pair N LABEL: after meshd_config, the wireguard-go side is started by the caller's
# wg_up arguments ($3...), then meshd. wireguard-go goes first so that meshd's start-up
# initiation finds it listening.
start_pair() {
	local n=$1 label=$2
	shift 2
	if wg_up "$n" "$@" && meshd_up "$n"; then
		return 0
	fi
	lib_not_ok "$label: wireguard-go and meshd start (wireguard-go alive: $(lib_pid_alive "${WPID[$n]:-0}" && echo yes || echo no), meshd alive: $(lib_pid_alive "${MPID[$n]:-0}" && echo yes || echo no))"
	return 1
}

# silence_ping NS ADDR FILE: one ping per second for SILENCE_S; true if none was answered.
silence_ping() {
	! ip netns exec "$1" ping -n -q -c "$SILENCE_S" -i 1 -W 1 "$2" >"$3" 2>&1 && grep -q ' 0 received' "$3"
}

# check_silence N LABEL [m2w|w2m]: pings for SILENCE_S, both ways at once unless one direction
# is given; none may be answered. A side that has data to send keeps initiating, so a
# scenario that wants one initiator pings from that side only.
check_silence() {
	local n=$1 label=$2 dir=${3:-both} pid ok=yes what rc
	if [ "$dir" = both ]; then
		silence_ping "$(ns_m "$n")" "$OVERLAY_W" "$T/ping-mw.txt" &
		pid=$!
		lib_track_pid "$pid"
		silence_ping "$(ns_w "$n")" "$OVERLAY_M" "$T/ping-wm.txt" || ok=
		lib_wait_exit rc "$pid" 5 && [ "$rc" = 0 ] || ok=
		what="either way"
	elif [ "$dir" = m2w ]; then
		: >"$T/ping-wm.txt"
		silence_ping "$(ns_m "$n")" "$OVERLAY_W" "$T/ping-mw.txt" || ok=
		what="meshd→wireguard-go"
	else
		: >"$T/ping-mw.txt"
		silence_ping "$(ns_w "$n")" "$OVERLAY_M" "$T/ping-wm.txt" || ok=
		what="wireguard-go→meshd"
	fi
	if [ -n "$ok" ]; then
		lib_ok "$label: no ping gets through $what for ${SILENCE_S} s"
	else
		lib_not_ok "$label: no ping gets through $what for ${SILENCE_S} s (meshd→wg: $(grep received "$T/ping-mw.txt"); wg→meshd: $(grep received "$T/ping-wm.txt"))"
	fi
}

show_logs() { # SCENARIO N: the logs of every part of the scenario
	local f
	for f in "$T/$1"*-m"$2".log "$T/$1"*-w"$2".log; do
		[ -f "$f" ] || continue
		echo "# ---- last lines of ${f##*/}"
		tail -n 25 "$f" | sed 's/^/#   /'
	done
}

# Each scenario (or part of one) has its own logs: $T/<TAG>-m<pair>.log (meshd) and
# $T/<TAG>-w<pair>.log (wireguard-go, with its debug lines: what it sent and received).
TAG=setup
mlog() { echo "$T/$TAG-m$1.log"; }
wlog() { echo "$T/$TAG-w$1.log"; }
wg_said() { # N ERE: how many lines of pair N's wireguard-go log match
	lib_log_count "$(wlog "$1")" "$2"
}
FAILED_BEFORE=0
scenario_begin() { # NAME
	TAG=$1
	lib_log "---- scenario $1"
	FAILED_BEFORE=$LIB_FAILED
	SCENARIO_T0=$(lib_now_ms)
}
scenario_end() { # NAME N...
	local name=$1 n
	shift
	if [ "$LIB_FAILED" -gt "$FAILED_BEFORE" ]; then
		for n in "$@"; do show_logs "$name" "$n"; done
	fi
	for n in "$@"; do pair_down "$n"; done
	lib_log "scenario $name took $(($(lib_now_ms) - SCENARIO_T0)) ms"
}

lib_log "meshd: $MESHD"
lib_log "wireguard-go: $(wireguard-go --version 2>&1 | head -n 1)"
lib_log "temp dir: $T"
pair_create 1

# ------------------------------------------------------------------ 1. meshd initiates
if want meshd-initiates; then
	scenario_begin meshd-initiates
	S=meshd-initiates
	meshd_config 1 "$W_PUB" "$UNDERLAY_W:$PORT" - -
	if start_pair 1 "$S" "$M_PUB" - -; then
		lib_check "$S: wireguard-go reports a handshake with meshd (wg show latest-handshakes)" \
			lib_wait_for "$HANDSHAKE_LIMIT_S" wg_has_handshake 1
		check_ping_both 1 "$S"
		lib_check "$S: meshd started it (wireguard-go received $(wg_said 1 'Received handshake initiation') initiations, sent $(wg_said 1 'Sending handshake initiation'))" \
			test "$(wg_said 1 'Received handshake initiation')" -ge 1 -a "$(wg_said 1 'Sending handshake initiation')" -eq 0
		c=$(counters 1)
		lib_check "$S: meshd completed a handshake, refused nothing and dropped nothing (handshakes_completed=$(ctr "$c" handshakes_completed), drops=$(lib_counter_sum "$c"))" \
			test "$(ctr "$c" handshakes_completed)" -ge 1 -a "$(lib_counter_sum "$c")" -eq 0
	fi
	scenario_end "$S" 1
fi

# ------------------------------------------------------------------ 2. wireguard-go initiates
if want wg-initiates; then
	scenario_begin wg-initiates
	S=wg-initiates
	meshd_config 1 "$W_PUB" - - -
	if start_pair 1 "$S" "$M_PUB" "$UNDERLAY_M:$PORT" -; then
		# meshd has no endpoint for wireguard-go: wireguard-go's ping starts the handshake.
		check_ping_both 1 "$S" wg-first
		lib_check "$S: wireguard-go reports a handshake with meshd" wg_has_handshake 1
		lib_check "$S: wireguard-go started it (sent $(wg_said 1 'Sending handshake initiation') initiations, received $(wg_said 1 'Received handshake initiation'))" \
			test "$(wg_said 1 'Sending handshake initiation')" -ge 1 -a "$(wg_said 1 'Received handshake initiation')" -eq 0
		c=$(counters 1)
		lib_check "$S: meshd answered the handshake and dropped nothing (handshakes_completed=$(ctr "$c" handshakes_completed), drops=$(lib_counter_sum "$c"))" \
			test "$(ctr "$c" handshakes_completed)" -ge 1 -a "$(lib_counter_sum "$c")" -eq 0
		hs=$(meshd_status_handshake 1)
		lib_check "$S: meshd status reports the handshake (last_handshake_unix: ${hs:-no answer})" \
			test -n "$hs" -a "$hs" != null
		lib_check "$S: meshd learned wireguard-go's endpoint from its handshake" \
			grep -q "endpoint none -> $UNDERLAY_W:$PORT" "$(mlog 1)"
	fi
	scenario_end "$S" 1
fi

# ------------------------------------------------------------------ 3. 100 MiB each way
# transfer FROM_NS TO_NS TO_ADDR LABEL
transfer() {
	local from=$1 to=$2 addr=$3 desc="$4: $TRANSFER_MIB MiB TCP arrives with the same sha256" recv t0 ms rc sum
	rm -f "$T/recv.bin"
	lib_tcp_recv recv "$to" "$addr" 5001 "$T/recv.bin"
	if ! lib_wait_for 5 lib_tcp_listening "$to" 5001; then
		lib_not_ok "$desc (receiver did not start listening)"
		lib_stop_pid "$recv" 1
		return
	fi
	t0=$(lib_now_ms)
	lib_tcp_send "$from" "$addr" 5001 "$T/send.bin" "$TRANSFER_LIMIT_S"
	rc=$?
	ms=$(($(lib_now_ms) - t0))
	# The receiver ends once it has read the sender's EOF.
	lib_wait_exit ignored_rc "$recv" 10 || lib_stop_pid "$recv" 1
	sum=$(sha256sum <"$T/recv.bin" 2>/dev/null | cut -d' ' -f1)
	ms=$((ms > 0 ? ms : 1))
	if [ "$rc" -eq 0 ] && [ "$sum" = "$SEND_SUM" ]; then
		lib_ok "$desc (${ms} ms, ~$((TRANSFER_MIB * 8 * 1048576 / 1000 / ms)) Mbit/s)"
	else
		lib_not_ok "$desc (sender exit $rc after ${ms} ms; received $(stat -c %s "$T/recv.bin" 2>/dev/null || echo 0) bytes; sha256 ${sum:-none}, sent $SEND_SUM)"
	fi
	rm -f "$T/recv.bin"
}
if want transfer; then
	scenario_begin transfer
	S=transfer
	meshd_config 1 "$W_PUB" "$UNDERLAY_W:$PORT" - -
	if start_pair 1 "$S" "$M_PUB" "$UNDERLAY_M:$PORT" - && lib_wait_for "$HANDSHAKE_LIMIT_S" ping_m2w 1; then
		head -c "${TRANSFER_MIB}M" /dev/urandom >"$T/send.bin"
		SEND_SUM=$(sha256sum <"$T/send.bin" | cut -d' ' -f1)
		transfer "$(ns_m 1)" "$(ns_w 1)" "$OVERLAY_W" "$S meshd→wireguard-go"
		transfer "$(ns_w 1)" "$(ns_m 1)" "$OVERLAY_M" "$S wireguard-go→meshd"
		rm -f "$T/send.bin"
		c=$(counters 1)
		lib_check "$S: meshd dropped nothing from wireguard-go (drops $(lib_counter_sum "$c"): $(lib_counter_deltas "" "$c"))" \
			test "$(lib_counter_sum "$c")" -eq 0
	else
		lib_not_ok "$S: no tunnel to transfer through"
	fi
	scenario_end "$S" 1
fi

# ------------------------------------------------------------------ 4. preshared keys
if want psk; then
	scenario_begin psk
	S=psk
	TAG=psk-same
	meshd_config 1 "$W_PUB" "$UNDERLAY_W:$PORT" "$T/psk1" -
	if start_pair 1 "$S" "$M_PUB" - "$T/psk1"; then
		lib_check "$S: with the same preshared key, wireguard-go reports a handshake" \
			lib_wait_for "$HANDSHAKE_LIMIT_S" wg_has_handshake 1
		check_ping_both 1 "$S (same key)"
	fi
	pair_down 1
	# Different keys. The PSK does not enter the initiation, only the response: the responder
	# answers, the initiator refuses the answer. One initiator at a time: the other side has no
	# endpoint and nothing to send (it learns the endpoint from the initiation, and would start
	# its own handshakes for data; wireguard-go not within 5 s of an answer, so when would
	# depend on timing).
	TAG=psk-different-meshd-initiates
	meshd_config 1 "$W_PUB" "$UNDERLAY_W:$PORT" "$T/psk1" -
	if start_pair 1 "$S" "$M_PUB" - "$T/psk2"; then
		check_silence 1 "$S (different keys, meshd initiates)" m2w
		c=$(counters 1)
		hs=$(meshd_status_handshake 1)
		lib_check "$S (different keys, meshd initiates): meshd refused wireguard-go's responses, has no session and status shows no handshake (rx_handshake_invalid=$(ctr "$c" rx_handshake_invalid), handshakes_completed=$(ctr "$c" handshakes_completed), last_handshake_unix: ${hs:-no answer})" \
			test "$(ctr "$c" rx_handshake_invalid)" -ge 1 -a "$(ctr "$c" handshakes_completed)" -eq 0 -a "$hs" = null
		lib_check "$S (different keys, meshd initiates): wireguard-go answered $(wg_said 1 'Sending handshake response') initiations and reports no handshake" \
			test "$(wg_latest 1)" -eq 0 -a "$(wg_said 1 'Sending handshake response')" -ge 1
	fi
	pair_down 1
	TAG=psk-different-wg-initiates
	meshd_config 1 "$W_PUB" - "$T/psk1" -
	if start_pair 1 "$S" "$M_PUB" "$UNDERLAY_M:$PORT" "$T/psk2"; then
		check_silence 1 "$S (different keys, wireguard-go initiates)" w2m
		lib_check "$S (different keys, wireguard-go initiates): wireguard-go refused meshd's responses ($(wg_said 1 'invalid response') refused) and reports no handshake" \
			test "$(wg_latest 1)" -eq 0 -a "$(wg_said 1 'invalid response')" -ge 1
		c=$(counters 1)
		hs=$(meshd_status_handshake 1)
		# meshd made a session when it answered (handshakes_completed counts it) but, as
		# wireguard-go, calls it a handshake only once the initiator's data confirms it.
		lib_check "$S (different keys, wireguard-go initiates): meshd status shows no handshake (last_handshake_unix: ${hs:-no answer}; handshakes_completed=$(ctr "$c" handshakes_completed))" \
			test "$hs" = null
	fi
	scenario_end "$S" 1
fi

# ------------------------------------------------------------------ 5. wrong public keys
if want wrong-key; then
	scenario_begin wrong-key
	S=wrong-key
	# meshd has a stranger's key for wireguard-go. Both have endpoints: meshd's initiations
	# fail wireguard-go's mac1 (made for the wrong key), and wireguard-go's ones are from a
	# key meshd does not know.
	TAG=wrong-key-meshd
	meshd_config 1 "$(lib_random_pubkey)" "$UNDERLAY_W:$PORT" - -
	if start_pair 1 "$S" "$M_PUB" "$UNDERLAY_M:$PORT" -; then
		check_silence 1 "$S (meshd has a wrong key for wireguard-go)"
		c=$(counters 1)
		lib_check "$S (meshd has a wrong key): meshd refused wireguard-go's handshakes (rx_handshake_invalid=$(ctr "$c" rx_handshake_invalid), handshakes_completed=$(ctr "$c" handshakes_completed))" \
			test "$(ctr "$c" rx_handshake_invalid)" -ge 1 -a "$(ctr "$c" handshakes_completed)" -eq 0
		lib_check "$S (meshd has a wrong key): wireguard-go reports no handshake" test "$(wg_latest 1)" -eq 0
	fi
	pair_down 1
	# wireguard-go has a stranger's key for meshd.
	TAG=wrong-key-wg
	meshd_config 1 "$W_PUB" "$UNDERLAY_W:$PORT" - -
	if start_pair 1 "$S" "$(lib_random_pubkey)" "$UNDERLAY_M:$PORT" -; then
		check_silence 1 "$S (wireguard-go has a wrong key for meshd)"
		c=$(counters 1)
		lib_check "$S (wireguard-go has a wrong key): meshd refused wireguard-go's handshakes (rx_handshake_invalid=$(ctr "$c" rx_handshake_invalid), handshakes_completed=$(ctr "$c" handshakes_completed))" \
			test "$(ctr "$c" rx_handshake_invalid)" -ge 1 -a "$(ctr "$c" handshakes_completed)" -eq 0
		lib_check "$S (wireguard-go has a wrong key): wireguard-go reports no handshake" test "$(wg_latest 1)" -eq 0
	fi
	scenario_end "$S" 1
fi

# ------------------------------------------------------------------ 6. cookies
if want cookie; then
	scenario_begin cookie
	S=cookie
	# meshd always "under load", no endpoint (only wireguard-go initiates).
	meshd_config 1 "$W_PUB" - - 0
	if start_pair 1 "$S" "$M_PUB" "$UNDERLAY_M:$PORT" -; then
		t0=$(lib_now_ms)
		if lib_wait_for "$COOKIE_LIMIT_S" ping_w2m 1; then
			ms=$(($(lib_now_ms) - t0))
			lib_ok "$S: ping wireguard-go→meshd works after the cookie round (${ms} ms)"
			lib_check "$S: it took a retry (${ms} ms ≥ ${COOKIE_MIN_MS} ms: the first initiation got a cookie, not a session)" \
				test "$ms" -ge "$COOKIE_MIN_MS"
		else
			lib_not_ok "$S: ping wireguard-go→meshd works after the cookie round (no reply within ${COOKIE_LIMIT_S} s)"
		fi
		lib_check "$S: ping meshd→wireguard-go" lib_wait_for 5 ping_m2w 1
		# The second initiation (with mac2) is the retry timer's or the next ping's, whichever
		# comes first once 5 s have passed since the first.
		lib_check "$S: wireguard-go took meshd's cookie and tried again ($(wg_said 1 'Receiving cookie response') cookie replies received, $(wg_said 1 'invalid cookie') refused, $(wg_said 1 'Sending handshake initiation') initiations sent)" \
			test "$(wg_said 1 'Receiving cookie response')" -ge 1 -a "$(wg_said 1 'invalid cookie')" -eq 0 \
			-a "$(wg_said 1 'Sending handshake initiation')" -ge 2
		c=$(counters 1)
		lib_check "$S: meshd sent cookie replies and then completed a handshake (tx_cookie_replies=$(ctr "$c" tx_cookie_replies), handshakes_completed=$(ctr "$c" handshakes_completed), rx_handshake_invalid=$(ctr "$c" rx_handshake_invalid))" \
			test "$(ctr "$c" tx_cookie_replies)" -ge 1 -a "$(ctr "$c" handshakes_completed)" -ge 1 \
			-a "$(ctr "$c" rx_handshake_invalid)" -eq 0
	fi
	scenario_end "$S" 1
fi

# ------------------------------------------------------------------ 7. rekey under traffic
if want rekey; then
	scenario_begin rekey
	S=rekey
	pair_create 2
	# Pair 1: meshd initiates (and so rekeys); pair 2: wireguard-go does.
	meshd_config 1 "$W_PUB" "$UNDERLAY_W:$PORT" - -
	meshd_config 2 "$W_PUB" - - -
	if start_pair 1 "$S" "$M_PUB" - - && start_pair 2 "$S" "$M_PUB" "$UNDERLAY_M:$PORT" - &&
		lib_wait_for "$HANDSHAKE_LIMIT_S" ping_m2w 1 && lib_wait_for "$HANDSHAKE_LIMIT_S" ping_w2m 2; then
		declare -A first=() pingpid=()
		for n in 1 2; do
			first[$n]=$(wg_latest "$n")
		done
		lib_log "$S: pinging for $((REKEY_PING_COUNT / 5)) s through both pairs"
		for n in 1 2; do
			# Bounded: the count ends it; timeout is the backstop.
			ip netns exec "$(ns_m "$n")" timeout 200 ping -n -q -c "$REKEY_PING_COUNT" -i "$REKEY_PING_INTERVAL" \
				-W 2 "$OVERLAY_W" >"$T/rekey-ping$n.txt" 2>&1 &
			pingpid[$n]=$!
			lib_track_pid "${pingpid[$n]}"
		done
		for n in 1 2; do
			lib_wait_exit ignored_rc "${pingpid[$n]}" 210 || lib_stop_pid "${pingpid[$n]}" 1
		done
		for n in 1 2; do
			who=$([ "$n" = 1 ] && echo "meshd initiating" || echo "wireguard-go initiating")
			rx=$(sed -n 's/.* \([0-9][0-9]*\) received.*/\1/p' "$T/rekey-ping$n.txt")
			lost=$((REKEY_PING_COUNT - ${rx:-0}))
			lib_check "$S ($who): at most $REKEY_MAX_LOST of $REKEY_PING_COUNT pings lost over the rekey ($(grep received "$T/rekey-ping$n.txt"))" \
				test "$lost" -le "$REKEY_MAX_LOST"
			last=$(wg_latest "$n")
			c=$(counters "$n")
			lib_check "$S ($who): a second handshake happened (wg latest-handshakes ${first[$n]} -> $last, +$((last - first[$n])) s; meshd handshakes_completed=$(ctr "$c" handshakes_completed))" \
				test "$last" -gt "${first[$n]}" -a "$(ctr "$c" handshakes_completed)" -ge 2
			if [ "$n" = 1 ]; then
				lib_check "$S ($who): meshd started both handshakes (wireguard-go received $(wg_said 1 'Received handshake initiation') initiations, sent $(wg_said 1 'Sending handshake initiation'))" \
					test "$(wg_said 1 'Received handshake initiation')" -ge 2 -a "$(wg_said 1 'Sending handshake initiation')" -eq 0
			else
				lib_check "$S ($who): wireguard-go started both handshakes (sent $(wg_said 2 'Sending handshake initiation') initiations, received $(wg_said 2 'Received handshake initiation'))" \
					test "$(wg_said 2 'Sending handshake initiation')" -ge 2 -a "$(wg_said 2 'Received handshake initiation')" -eq 0
			fi
			lib_check "$S ($who): meshd dropped nothing (drops $(lib_counter_sum "$c"): $(lib_counter_deltas "" "$c"))" \
				test "$(lib_counter_sum "$c")" -eq 0
		done
	else
		lib_not_ok "$S: both pairs have a tunnel before the ping flow"
	fi
	scenario_end "$S" 1 2
fi

# A filter that leaves nothing to run is a mistake, not a pass.
[ "$SCENARIOS_RUN" -gt 0 ] ||
	lib_not_ok "SCENARIO_FILTER='$SCENARIO_FILTER' SCENARIO_SKIP='$SCENARIO_SKIP' leave no scenario to run"
lib_summary
