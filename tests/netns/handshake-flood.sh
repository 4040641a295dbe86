#!/bin/bash
# A handshake flood against a node with a working tunnel next to it (issue 8, findings 1 and
# 4). Three hosts on one LAN (a bridge):
#
#   A 192.0.2.1 (meshd) ── ping 100.64.0.2 every 0.1 s ──> B 192.0.2.2 (meshd, the target)
#   C 192.0.2.3: tests/tools/hsflood, FLOOD_S seconds of handshake initiations at B, each
#     well formed with a valid mac1 (anyone who knows B's public key can make them) from an
#     identity B does not know, replayed from FLOOD_SOURCES ports as fast as C can send.
#
# Without defences every one of them costs B its Diffie-Hellman before it is refused. B must
# go "under load" (cookie replies instead of handshakes: core/cookie.h) and answer at most
# COOKIE_REPLIES_PER_SECOND of them, dropping the rest unanswered, so that while the flood lasts the tunnel loses under 1 % of its pings, B's memory stays flat (RSS growth under
# RSS_GROWTH_MAX_KIB) and B keeps running; afterwards a fresh handshake still works.
set -u

here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

lib_require_root
lib_require_tun
lib_require_cmd ip iproute2
lib_require_cmd ping iputils-ping
lib_find_meshd
lib_mktemp
lib_trap_cleanup
: "${HSFLOOD:=$top_builddir/tests/tools/hsflood}"
[ -x "$HSFLOOD" ] || lib_die "hsflood not found at $HSFLOOD (make check builds it; or set HSFLOOD=)"

NS_HUB=hfH-$$
NS_A=hfA-$$
NS_B=hfB-$$
NS_C=hfC-$$
PORT=51820
IFACE=mesh0
T=$LIB_TMPDIR
FLOOD_S=${FLOOD_S:-30}
FLOOD_SOURCES=16
PING_INTERVAL_S=0.1
PING_COUNT=$(awk -v s="$FLOOD_S" -v i="$PING_INTERVAL_S" 'BEGIN { printf "%d", s / i }')
LOSS_MAX_PCT=$((1 * LIB_TIME_BOUNDS_SCALE)) # 1 %; sanitized daemons (CI) get the scale
RSS_GROWTH_MAX_KIB=1024 # flat: the cookie checker and rate table are fixed-size

lib_hub_create "$NS_HUB"
for n in A B C; do
	ns_var=NS_$n
	lib_ns_create "${!ns_var}"
done
lib_hub_attach "$NS_HUB" "$NS_A" eth0 192.0.2.1/24
lib_hub_attach "$NS_HUB" "$NS_B" eth0 192.0.2.2/24
lib_hub_attach "$NS_HUB" "$NS_C" eth0 192.0.2.3/24

lib_genkey "$T" a
lib_genkey "$T" b
lib_write_config "$T/a.yaml" "$IFACE" "$T/a.key" "$PORT" 100.64.0.1/10 b "$(cat "$T/b.pub")" 192.0.2.2:$PORT 100.64.0.2/32
lib_write_config "$T/b.yaml" "$IFACE" "$T/b.key" "$PORT" 100.64.0.2/10 a "$(cat "$T/a.pub")" 192.0.2.1:$PORT 100.64.0.1/32
lib_meshd_start PID_A "$NS_A" "$T/a.yaml" "$T/a.log" info
lib_meshd_start PID_B "$NS_B" "$T/b.yaml" "$T/b.log" info
if ! lib_meshd_wait_up "$PID_A" "$NS_A" "$IFACE" || ! lib_meshd_wait_up "$PID_B" "$NS_B" "$IFACE" ||
	! lib_wait_for 10 lib_ping "$NS_A" 100.64.0.2; then
	lib_not_ok "the tunnel A -> B works before the flood"
	tail -n 20 "$T/a.log" "$T/b.log" | sed 's/^/# /'
	lib_summary
	exit 1
fi
lib_ok "the tunnel A -> B works before the flood"

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk '{ print $12 + $13 }'; }
before=$(lib_meshd_counters "$PID_B" "$T/b.log")
rss0=$(rss_kib "$PID_B")
cpu0=$(cpu_ticks "$PID_B")

ip netns exec "$NS_A" ping -n -q -c "$PING_COUNT" -i "$PING_INTERVAL_S" -W 1 100.64.0.2 >"$T/ping.txt" 2>&1 &
ping_pid=$!
lib_track_pid "$ping_pid"
ip netns exec "$NS_C" "$HSFLOOD" --to 192.0.2.2:$PORT --key "$(cat "$T/b.pub")" --seconds "$FLOOD_S" \
	--sources "$FLOOD_SOURCES" >"$T/flood.txt" 2>&1
flood_rc=$?
rss_peak=$(rss_kib "$PID_B")
cpu1=$(cpu_ticks "$PID_B")
rc=
lib_wait_exit rc "$ping_pid" 30
after=$(lib_meshd_counters "$PID_B" "$T/b.log")

lib_log "flood: $(cat "$T/flood.txt")"
lib_log "ping during the flood: $(grep -E 'packets transmitted|rtt' "$T/ping.txt" | tr '\n' ' ')"
lib_log "B's counters changed: $(lib_counter_deltas "$before" "$after")"
hz=$(getconf CLK_TCK)
lib_log "B's CPU over the flood: $(awk -v t=$((cpu1 - cpu0)) -v hz="$hz" -v s="$FLOOD_S" 'BEGIN { printf "%.1f s (%.0f %% of one CPU)", t / hz, 100 * t / hz / s }'); RSS ${rss0} -> ${rss_peak} KiB"

sent=$(sed -n 's/^sent=\([0-9]*\).*/\1/p' "$T/flood.txt")
lib_check "hsflood ran for ${FLOOD_S} s (exit $flood_rc, ${sent:-0} initiations sent)" test "$flood_rc" -eq 0 -a "${sent:-0}" -gt 0
loss=$(sed -n 's/.* \([0-9.]*\)% packet loss.*/\1/p' "$T/ping.txt")
lib_check "the tunnel next to the flood lost ${loss:-?} % of $PING_COUNT pings (at most $LOSS_MAX_PCT %)" \
	awk -v l="${loss:-100}" -v m="$LOSS_MAX_PCT" 'BEGIN { exit !(l <= m) }'
lib_check "B's RSS stayed flat: ${rss0} -> ${rss_peak} KiB (growth at most $RSS_GROWTH_MAX_KIB KiB)" \
	test -n "$rss_peak" -a "$((rss_peak - rss0))" -le "$RSS_GROWTH_MAX_KIB"
replies=$(( $(lib_counter "$after" tx_cookie_replies) - $(lib_counter "$before" tx_cookie_replies) ))
invalid=$(( $(lib_counter "$after" rx_handshake_invalid) - $(lib_counter "$before" rx_handshake_invalid) ))
shed=$(( $(lib_counter "$after" rx_handshake_shed) - $(lib_counter "$before" rx_handshake_shed) ))
lib_check "B went under load: $replies cookie replies instead of handshakes, $shed dropped unanswered over the reply budget, $invalid Diffie-Hellman refusals" \
	test "$replies" -gt 0 -a "$shed" -gt 0
lib_check "B did a Diffie-Hellman for under 10 % of the flood ($invalid of ${sent:-0})" \
	test "$((invalid * 10))" -lt "${sent:-1}"
lib_check "B is still running" lib_pid_alive "$PID_B"
# A fresh handshake after the flood: restart A (its sessions go), then ping.
lib_stop_pid "$PID_A"
lib_meshd_start PID_A "$NS_A" "$T/a.yaml" "$T/a.log" info
fresh_handshake() { lib_meshd_wait_up "$PID_A" "$NS_A" "$IFACE" && lib_wait_for 10 lib_ping "$NS_A" 100.64.0.2; }
lib_check "after the flood a new handshake works (A restarted, ping within 10 s)" fresh_handshake

if [ "$LIB_FAILED" -gt 0 ]; then
	tail -n 20 "$T/b.log" | sed 's/^/# b.log: /'
fi
lib_summary
