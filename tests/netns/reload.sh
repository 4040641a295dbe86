#!/bin/bash
# SIGHUP in meshd: the configuration is read again while the node runs.
#
#   ┌──────────── mrA-<pid> ─────────────┐      ┌──────────── mrB-<pid> ─────────────┐
#   │  mesh0  100.64.0.1/10  meshd A     │      │  mesh0  100.64.0.2/10  meshd B     │
#   │  vethA  192.0.2.1/24  ─────────────┼──────┼─────────────  vethB  192.0.2.2/24  │
#   └────────────────────────────────────┘      └────────────────────────────────────┘
#
# Checks: 40 handshakes that do not authenticate are logged 5 times, then summed up in one
# line naming their kind; A starts with peer b owning the wrong address (no ping); after SIGHUP with b's
# right allowed_ips, log_level debug, a persistent keepalive and another listen_port, the
# ping works and each change is logged (listen_port as needing a restart); a file with a
# mistake logs the parser's error and changes nothing (ping still works, A still runs);
# removing b stops traffic to it and log_level returns to info; adding it back with
# log_level debug brings it back, and its new handshake shows debug lines.
#
# Needs root, /dev/net/tun, iproute2, ping, python3 and a built meshd (exit 77 = SKIP).
# KEEP_TMPDIR=1 keeps the logs.
set -u

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/netns/lib.sh
. "$here/lib.sh"

lib_require_root
lib_require_tun
lib_require_cmd ip iproute2
lib_require_cmd ping iputils-ping
lib_require_cmd python3 python3
lib_find_meshd
lib_find_udpinject

lib_mktemp
lib_trap_cleanup

NS_A=mrA-$$
NS_B=mrB-$$
UNDERLAY_A=192.0.2.1
UNDERLAY_B=192.0.2.2
OVERLAY_A=100.64.0.1
OVERLAY_B=100.64.0.2
PORT=51820
IFACE=mesh0
T=$LIB_TMPDIR
CONF=$T/a.yaml
SOCK_A=$T/a.sock
# How long a ping or a log line may take to appear after a SIGHUP.
LIMIT_S=10

lib_ns_create "$NS_A"
lib_ns_create "$NS_B"
lib_veth "$NS_A" vethA "$UNDERLAY_A/24" "$NS_B" vethB "$UNDERLAY_B/24"
lib_genkey "$T" a
lib_genkey "$T" b
lib_write_config "$T/b.yaml" "$IFACE" "$T/b.key" "$PORT" "$OVERLAY_B/10" \
	a "$(cat "$T/a.pub")" "$UNDERLAY_A:$PORT" "$OVERLAY_A/32"

# a_config [EXTRA_TOP_LEVEL_LINES] [PEERS_BLOCK]: A's file; the peer block is YAML text.
a_config() {
	cat >"$CONF" <<-EOF
	interface: $IFACE
	control_socket: $SOCK_A
	private_key_file: $T/a.key
	address: $OVERLAY_A/10
	mtu: 1420
	$1
	$2
	EOF
}
peer_b() { # ALLOWED_IP [EXTRA_PEER_LINE]
	printf 'peers:\n  - name: b\n    public_key: %s\n    endpoint: %s:%s\n    allowed_ips: [%s]\n    %s\n' \
		"$(cat "$T/b.pub")" "$UNDERLAY_B" "$PORT" "$1" "${2:-}"
}

a_config "listen_port: $PORT" "$(peer_b 100.64.0.99/32)"

PID_B=
lib_meshd_start PID_B "$NS_B" "$T/b.yaml" "$T/b.log"
# A without --log-level: the file's log_level applies, at start and on SIGHUP.
ip netns exec "$NS_A" env -u JOURNAL_STREAM "$MESHD" up -c "$CONF" </dev/null >>"$T/a.log" 2>&1 &
PID_A=$!
lib_track_pid "$PID_A"
lib_meshd_wait_up "$PID_A" "$NS_A" "$IFACE" || lib_die "meshd A did not come up: $(tail -n 5 "$T/a.log")"
lib_meshd_wait_up "$PID_B" "$NS_B" "$IFACE" || lib_die "meshd B did not come up: $(tail -n 5 "$T/b.log")"

hup() { # waits for the "read again" line (or the error) this SIGHUP produces
	local before
	before=$(grep -c 'SIGHUP: ' "$T/a.log")
	kill -HUP "$PID_A"
	# shellcheck disable=SC2016
	lib_wait_for "$LIMIT_S" bash -c '[ "$(grep -c -E "SIGHUP: .*(read again|the running configuration stays)" "$1")" -gt 0 ] &&
		[ "$(grep -c "SIGHUP: " "$1")" -gt "$2" ]' _ "$T/a.log" "$before"
}
logged() { grep -q -F -- "$1" "$T/a.log"; }
ping_b() { lib_wait_for "$LIMIT_S" lib_ping "$NS_A" "$OVERLAY_B"; }
no_ping_b() { ! ip netns exec "$NS_A" ping -n -q -c 2 -i 0.3 -W 1 "$OVERLAY_B" >/dev/null 2>&1; }

lib_check "before SIGHUP: b owns the wrong address, no ping" no_ping_b

# ---------------------------------------------------------------- per-packet logs are limited
# 40 initiations that do not authenticate: the first LOG_RATELIMIT_BURST (5) are logged, the
# rest summed up in one line when the 5 s window ends.
BAD=40
ip netns exec "$NS_B" "$UDPINJECT" --quiet --to "$UNDERLAY_A:$PORT" --count "$BAD" --interval-ms 1 \
	--hex "01000000$(od -An -tx1 -N144 /dev/urandom | tr -d ' \n')"
lib_check "$BAD bad handshakes: the rest summed up in one line within 7 s" \
	lib_wait_for 7 grep -q "($((BAD - 5)) more handshakes that did not authenticate in 5 s were not logged)" "$T/a.log"
lib_check "and only 5 of them logged one by one" \
	test "$(grep -c 'did not authenticate: it was made for a different public key' "$T/a.log")" = 5

# ---------------------------------------------------------------- live changes
a_config "listen_port: 51999
log_level: debug" "$(peer_b "$OVERLAY_B/32" "persistent_keepalive: 5")"
hup || lib_not_ok "SIGHUP was answered"
lib_check "b's allowed_ips change at once" logged "SIGHUP: peer b: allowed_ips 100.64.0.99/32 -> $OVERLAY_B/32"
lib_check "and the ping works" ping_b
lib_check "log_level changes at once" logged "SIGHUP: log_level info -> debug"
lib_check "persistent_keepalive changes at once" logged "SIGHUP: peer b: persistent_keepalive 0 -> 5 s (0: off)"
lib_check "listen_port is named as needing a restart" logged "SIGHUP: 'listen_port' changed; it takes effect when meshd restarts"
lib_check "A still listens on its old port" bash -c "ip netns exec '$NS_A' ss -Hlun 'sport = :$PORT' | grep -q ."

# ---------------------------------------------------------------- a broken file
cp "$CONF" "$T/a.good"
printf 'peers: [\n' >>"$CONF"
hup || lib_not_ok "SIGHUP with a broken file was answered"
lib_check "a broken file logs the parser's error and keeps the running configuration" \
	grep -q "SIGHUP: $CONF:[0-9]*:[0-9]*: .*; the running configuration stays" "$T/a.log"
lib_check "A still runs and the ping still works" bash -c "kill -0 $PID_A && ip netns exec '$NS_A' ping -n -q -c 1 -W 2 '$OVERLAY_B' >/dev/null"

# ---------------------------------------------------------------- peers removed and added
a_config "listen_port: $PORT" ""
hup || lib_not_ok "SIGHUP without peers was answered"
lib_check "removing b is logged" logged "SIGHUP: peer b removed"
lib_check "and traffic to it stops" no_ping_b
lib_check "status lists no peer" bash -c \
	"ip netns exec '$NS_A' '$MESHD' status --json -s '$SOCK_A' | python3 -c 'import json,sys; sys.exit(len(json.load(sys.stdin)[\"peers\"]))'"
lib_check "log_level went back to info (the file no longer sets it)" logged "SIGHUP: log_level debug -> info"
a_config "listen_port: $PORT
log_level: debug" "$(peer_b "$OVERLAY_B/32")"
hup || lib_not_ok "SIGHUP with b again was answered"
lib_check "adding b back is logged" logged "SIGHUP: peer b added"
lib_check "and the ping works again" ping_b
lib_check "at debug level, its new handshake shows debug lines" \
	bash -c "sed -n '/SIGHUP: peer b added/,\$p' '$T/a.log' | grep -q ': debug: peer b: handshake initiation sent'"

lib_summary
