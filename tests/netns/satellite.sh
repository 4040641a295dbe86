#!/bin/bash
# Satellites (issue 13, part B): a stock WireGuard device joins the mesh through a gateway.
#
#   coordinator 203.0.113.10
#   gw     public (203.0.113.x), meshd on UDP 51820: the gateway
#   home   behind a cone NAT: meshd, and a small TCP service on its overlay address
#   phone  behind a cone NAT: wireguard-go only, configured from nothing but the file that
#          'meshcoord satellite add phone --via gw' printed (the wg-quick file's [Interface]
#          Address becomes the interface's addresses, AllowedIPs its routes, the rest goes
#          to 'wg setconf', as wg-quick does)
#
# Checks: the CLI (add, list, config refused for a generated key, refusals, --qr); phone ->
# home ping and TCP, home -> phone ping, through the gateway, and the mesh DNS of the file's
# DNS line answering the phone; the gateway's status lists the
# satellite, home's lists the gateway's route to it; an access rule that allows only home ->
# phone cuts phone -> home (new flows) while home -> phone keeps working; the gateway
# restarted while the coordinator is down serves the phone from its state file; and
# 'satellite remove' cuts the phone off within a second (measured).
#
# Needs root, /dev/net/tun, nftables, conntrack, wireguard-go and wg (exits 77 = SKIP otherwise).
set -u

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/netns/lib.sh
. "$here/lib.sh"
# shellcheck source=tests/netns/natlab.sh
. "$here/natlab.sh"

natlab_mesh_test_begin \
	ping iputils-ping \
	unshare util-linux \
	wireguard-go wireguard-go \
	wg wireguard-tools \
	socat socat \
	qrencode qrencode \
	dig bind9-dnsutils \
	curl curl

CONTROL_PORT=51821
STUN_PORT=3478
SERVICE_PORT=8080
METRICS_PORT=9180
# wireguard-go's control socket is /var/run/wireguard/<interface>.sock, in the file system
# every namespace shares: the interface name carries our PID so parallel runs do not clash.
WG_IF=sat$$
WG_SOCK=/var/run/wireguard/$WG_IF.sock
# Waits: the map reaches a node within a second (deltas); 8 s covers a slow CI machine.
WAIT_S=$((8 * LIB_TIME_BOUNDS_SCALE))
# The issue's bound for 'satellite remove': the coordinator's tick (250 ms) and one message.
CUTOFF_MS=$((1000 * LIB_TIME_BOUNDS_SCALE))
declare -A NS PID

sat_cleanup() {
	lib_cleanup
	rm -f "$WG_SOCK" # wireguard-go removes it on SIGTERM; after a SIGKILL it stays
}
trap 'sat_cleanup' EXIT
trap 'sat_cleanup; exit 130' INT
trap 'sat_cleanup; exit 143' TERM
trap 'sat_cleanup; exit 129' HUP

natlab_init
natlab_site gw public NS[gw]
natlab_site home cone NS[home]
natlab_site phone cone NS[phone]

CONF=$T/coord.yaml
lib_coord_write_config "$CONF" "$NATLAB_COORD_IP:$CONTROL_PORT" "$NATLAB_COORD_IP:$STUN_PORT" \
	"$NATLAB_COORD_IP:$CONTROL_PORT" "$T/coord-state"
printf 'policy_file: %s\nmetrics_listen: 127.0.0.1:%s\n' "$T/policy.yaml" "$METRICS_PORT" >>"$CONF"
allow_all() { printf 'rules:\n  - {from: ["*"], to: ["*:*"]}\n' >"$T/policy.yaml"; }
allow_all
COORD_PID=
lib_coord_start COORD_PID "$NATLAB_COORD" "$CONF" "$T/coord.log" info
lib_coord_wait_up "$COORD_PID" "$NATLAB_COORD" "$CONTROL_PORT" || lib_die "meshcoord did not start (see $T/coord.log)"
KEY=$(lib_coord_authkey "$CONF" --reusable) || lib_die "no join key"

node_start() { # NODE
	local n=$1
	printf 'interface: mesh0\nstate_dir: %s\ncontrol_socket: %s\n' "$T/$n-state" "$T/$n.sock" >"$T/$n.yaml"
	lib_meshd_start_args "PID[$n]" "${NS[$n]}" "$n" "$T/$n.yaml" "$T/$n.log" info --join "$KEY"
}
status() { "$MESHD" status "$@" 2>/dev/null; }
sees_peers() { # NODE PEER...
	local n=$1 out p
	out=$(status -s "$T/$n.sock") || return 1
	shift
	for p in "$@"; do grep -q "^$p " <<<"$out" || return 1; done
}
sat() { "$MESHCOORD" satellite "$@" -c "$CONF"; }
no_ping() { ! ip netns exec "$1" ping -n -q -c 2 -i 0.2 -W 1 "$2" >/dev/null 2>&1; }
overlay_ip() { lib_iface_ipv4 "${NS[$1]}" mesh0; }
gw_endpoint_known() { "$MESHCOORD" nodes list --json -c "$CONF" 2>/dev/null | grep -q "${NATLAB_WAN_IP[gw]}"; }

node_start gw
node_start home
for n in gw home; do
	lib_wait_for 10 test -S "$T/$n.sock" || lib_die "meshd $n did not start (see $T/$n.log)"
done
lib_check "home sees gw" lib_wait_for "$WAIT_S" sees_peers home gw
lib_wait_for "$WAIT_S" gw_endpoint_known || lib_die "the gateway's public endpoint never reached the registry"
HOME_IP=$(overlay_ip home)

# ---- the CLI
sat add phone -c "$CONF" >/dev/null 2>"$T/err" # no --via
lib_check "add without --via is a usage error, one line" [ "$?" = 2 ] && [ "$(wc -l <"$T/err")" = 1 ]
lib_check "add via a node that does not exist is refused" bash -c "! '$MESHCOORD' satellite add phone --via nobody -c '$CONF' 2>/dev/null"
lib_check "add with a name taken by a node is refused" bash -c "! '$MESHCOORD' satellite add home --via gw -c '$CONF' 2>/dev/null"
sat add phone --via gw >"$T/phone.conf" 2>"$T/add.err"
lib_check "satellite add phone --via gw" [ "$?" = 0 ]
lib_check "the file has a private key, addresses, the gateway's endpoint and the overlay" \
	bash -c "grep -q '^PrivateKey = ' '$T/phone.conf' && grep -q '^Address = 100\.' '$T/phone.conf' &&
		 grep -qx 'Endpoint = ${NATLAB_WAN_IP[gw]}:51820' '$T/phone.conf' &&
		 grep -q '^AllowedIPs = 100.64.0.0/10, fd' '$T/phone.conf' && grep -qx 'PersistentKeepalive = 25' '$T/phone.conf'"
lib_check "... and says the private key is shown once" grep -q "shown this once" "$T/add.err"
lib_check "satellite list shows phone via gw" bash -c "'$MESHCOORD' satellite list -c '$CONF' | grep -Eq '^phone +gw +100\.'"
lib_check "satellite config refuses a generated key" bash -c "! '$MESHCOORD' satellite config phone -c '$CONF' 2>&1 | grep -q PrivateKey"
lib_check "a second satellite with the same name is refused" bash -c "! '$MESHCOORD' satellite add phone --via gw -c '$CONF' 2>/dev/null"
(umask 077 && wg genkey >"$T/tab.key")
TAB_PUB=$(wg pubkey <"$T/tab.key")
sat add tablet --via gw --public-key "$TAB_PUB" --qr >"$T/tablet.out" 2>/dev/null
lib_check "add --public-key --qr: a placeholder for the private key, and a QR code" \
	bash -c "grep -q '^# PrivateKey' '$T/tablet.out' && ! grep -q '^PrivateKey' '$T/tablet.out' && grep -q '█' '$T/tablet.out'"
lib_check "satellite config tablet prints it again" bash -c "'$MESHCOORD' satellite config tablet -c '$CONF' | grep -q '^PublicKey = '"
metric() { ip netns exec "$NATLAB_COORD" curl -sf --max-time 3 "http://127.0.0.1:$METRICS_PORT/metrics" | grep -qx "$1"; }
lib_check "the metrics say two satellites" lib_wait_for "$WAIT_S" metric 'meshcoord_satellites 2'
lib_check "satellite remove tablet" bash -c "'$MESHCOORD' satellite remove tablet -c '$CONF' 2>/dev/null"

# ---- the phone, configured from the file alone
PHONE_ADDRS=$(sed -n 's/^Address = //p' "$T/phone.conf" | tr -d ' ' | tr ',' ' ')
PHONE_ROUTES=$(sed -n 's/^AllowedIPs = //p' "$T/phone.conf" | tr -d ' ' | tr ',' ' ')
PHONE_IP=${PHONE_ADDRS%%/*}
PHONE_MTU=$(sed -n 's/^MTU = //p' "$T/phone.conf")
lib_check "the file sets the mesh's MTU ($PHONE_MTU)" [ "$PHONE_MTU" = 1384 ]
grep -Ev '^(Address|DNS|MTU|Table|PreUp|PostUp|PreDown|PostDown|SaveConfig) *=' "$T/phone.conf" >"$T/phone.wg"
ip netns exec "${NS[phone]}" wireguard-go -f "$WG_IF" </dev/null >>"$T/wireguard-go.log" 2>&1 &
PID[phone]=$!
lib_track_pid "${PID[phone]}"
lib_wait_for 10 test -S "$WG_SOCK" || lib_die "wireguard-go did not start (see $T/wireguard-go.log)"
ip netns exec "${NS[phone]}" wg setconf "$WG_IF" "$T/phone.wg" || lib_die "wg setconf refused the printed file"
for a in $PHONE_ADDRS; do ip -n "${NS[phone]}" addr add "$a" dev "$WG_IF" || lib_die "address $a"; done
ip -n "${NS[phone]}" link set "$WG_IF" mtu "$PHONE_MTU" up || lib_die "link up"
for r in $PHONE_ROUTES; do ip -n "${NS[phone]}" route add "$r" dev "$WG_IF" || lib_die "route $r"; done

ip netns exec "${NS[home]}" socat "TCP-LISTEN:$SERVICE_PORT,bind=$HOME_IP,reuseaddr,fork" \
	SYSTEM:'echo hello-from-home' </dev/null >/dev/null 2>&1 &
lib_track_pid $!
lib_check "the phone pings home ($HOME_IP) through the gateway" lib_wait_for "$WAIT_S" lib_ping "${NS[phone]}" "$HOME_IP"
got=$(ip netns exec "${NS[phone]}" timeout 5 socat -T 3 - "TCP:$HOME_IP:$SERVICE_PORT" </dev/null 2>/dev/null)
lib_check "the phone reaches home's TCP service ($got)" [ "$got" = hello-from-home ]
lib_check "home pings the phone ($PHONE_IP)" lib_wait_for "$WAIT_S" lib_ping "${NS[home]}" "$PHONE_IP"
# A full-size packet (the file's MTU, don't fragment) crosses phone -> gateway -> home whole.
lib_check "a ${PHONE_MTU}-byte packet, unfragmented, from the phone to home" \
	ip netns exec "${NS[phone]}" ping -n -q -c 2 -W 2 -M do -s $((PHONE_MTU - 28)) "$HOME_IP"
DNS_LINE=$(sed -n 's/^DNS = //p' "$T/phone.conf")
DOMAIN=${DNS_LINE#*, }
got=$(ip netns exec "${NS[phone]}" dig +short +time=2 +tries=2 @"${DNS_LINE%%,*}" "home.$DOMAIN" A 2>/dev/null)
lib_check "the file's DNS ($DNS_LINE) answers home.$DOMAIN for the phone ($got)" [ "$got" = "$HOME_IP" ]
got=$(ip netns exec "${NS[phone]}" dig +short +time=2 +tries=2 @"${DNS_LINE%%,*}" "phone.$DOMAIN" A 2>/dev/null)
lib_check "... and its own name, phone.$DOMAIN ($got)" [ "$got" = "$PHONE_IP" ]
lib_check "the gateway's status lists phone as its satellite" \
	bash -c "'$MESHD' status -s '$T/gw.sock' | grep -A1 '^phone ' | grep -q 'satellite:'"
lib_check "home's status: the phone, $PHONE_IP/32, is a satellite via gw (used)" \
	bash -c "'$MESHD' status -s '$T/home.sock' | grep -A2 '^gw ' | grep -q 'satellites (via it) phone $PHONE_IP/32 (used)'"
got=$(ip netns exec "${NS[home]}" dig +short +time=2 +tries=2 @100.100.100.100 "phone.mesh.internal" A 2>/dev/null)
lib_check "home's mesh DNS answers phone.mesh.internal ($got)" [ "$got" = "$PHONE_IP" ]

# ---- access rules: home may reach the phone, nobody may reach home
# (the coordinator reads a changed policy file at its next tick)
printf 'rules:\n  - {from: [home], to: ["phone:*"]}\n' >"$T/policy.yaml"
lib_check "with home -> phone only, the phone no longer reaches home" lib_wait_for "$WAIT_S" no_ping "${NS[phone]}" "$HOME_IP"
lib_check "... while home still reaches the phone" lib_wait_for "$WAIT_S" lib_ping "${NS[home]}" "$PHONE_IP"
lib_check "policy check knows the satellite's name (no warning)" \
	bash -c "'$MESHCOORD' policy check -c '$CONF' 2>&1 | grep -q valid && ! '$MESHCOORD' policy check -c '$CONF' 2>&1 | grep -q warning"
lib_check "policy show phone: home may reach it" bash -c "'$MESHCOORD' policy show phone -c '$CONF' | grep -q '^  home '"
printf 'rules:\n  - {from: [phone], to: ["home:%s"], proto: tcp}\n' "$SERVICE_PORT" >"$T/policy.yaml"
lib_check "with phone -> home:$SERVICE_PORT/tcp only, home no longer pings the phone" \
	lib_wait_for "$WAIT_S" no_ping "${NS[home]}" "$PHONE_IP"
got=$(ip netns exec "${NS[phone]}" timeout 5 socat -T 3 - "TCP:$HOME_IP:$SERVICE_PORT" </dev/null 2>/dev/null)
lib_check "... the phone still reaches the service ($got)" [ "$got" = hello-from-home ]
lib_check "... but not with a ping" no_ping "${NS[phone]}" "$HOME_IP"
allow_all
lib_check "allowing all again, the phone reaches home" lib_wait_for "$WAIT_S" lib_ping "${NS[phone]}" "$HOME_IP"

# ---- the gateway restarted while the coordinator is down serves the phone from its state
lib_stop_pid "$COORD_PID"
lib_stop_pid "${PID[gw]}"
node_start gw
lib_wait_for 10 test -S "$T/gw.sock" || lib_not_ok "meshd gw restarted"
lib_check "restarted without the coordinator, the gateway restores the phone" \
	lib_wait_for "$WAIT_S" grep -q 'satellites: 1 restored' "$T/gw.log"
# The phone notices a restarted peer as WireGuard does: data unanswered for 15 s (keepalive
# 10 s + rekey timeout 5 s) makes it handshake again.
lib_check "... and the phone reaches home through it again" lib_wait_for "$((30 * LIB_TIME_BOUNDS_SCALE))" \
	lib_ping "${NS[phone]}" "$HOME_IP"
lib_coord_start COORD_PID "$NATLAB_COORD" "$CONF" "$T/coord.log" info
lib_coord_wait_up "$COORD_PID" "$NATLAB_COORD" "$CONTROL_PORT" || lib_die "meshcoord did not restart (see $T/coord.log)"
# (both reconnect with their backoff: at most 30 s between tries)
lib_check "the gateway and home reconnect to the coordinator" lib_wait_for 45 bash -c \
	"'$MESHD' status -s '$T/gw.sock' --json | grep -q '\"coordinator\": \"connected\"' &&
	 '$MESHD' status -s '$T/home.sock' --json | grep -q '\"coordinator\": \"connected\"'"
lib_check "the phone still reaches home" lib_wait_for "$WAIT_S" lib_ping "${NS[phone]}" "$HOME_IP"

# ---- remove: cut off within a second
# The cut happened before the first ping that fails was sent: its start bounds it.
t0=$(lib_now_ms)
sat remove phone 2>/dev/null || lib_not_ok "satellite remove phone"
cut=
for _ in $(seq 1 40); do # bounded: 40 pings of at most 0.25 s
	start=$(lib_now_ms)
	if ! ip netns exec "${NS[phone]}" ping -n -q -c 1 -W 0.25 "$HOME_IP" >/dev/null 2>&1; then
		cut=$((start - t0))
		break
	fi
done
lib_check "satellite remove cuts the phone off (after ${cut:-never} ms, bound $CUTOFF_MS ms)" \
	[ -n "$cut" ] && [ "$cut" -le "$CUTOFF_MS" ]
lib_check "... for good" no_ping "${NS[phone]}" "$HOME_IP"
lib_check "... and home no longer reaches it" no_ping "${NS[home]}" "$PHONE_IP"
lib_check "the gateway logged the removal" grep -q 'satellite phone: removed by the coordinator' "$T/gw.log"
no_name() { [ -z "$(ip netns exec "${NS[home]}" dig +short +time=1 +tries=1 @100.100.100.100 phone.mesh.internal A 2>/dev/null)" ]; }
lib_check "home's mesh DNS forgets the phone's name" lib_wait_for "$WAIT_S" no_name
lib_check "satellite list is empty" bash -c "! '$MESHCOORD' satellite list -c '$CONF' | grep -q '^phone '"

lib_summary
