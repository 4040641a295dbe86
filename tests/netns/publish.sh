#!/bin/bash
# Publishing a home service on the coordinator's public address (issue 11).
#
#   coordinator 203.0.113.10      publish: {ports: 20000-20099, bind: 203.0.113.10}
#   home  10.1.0.2 behind a symmetric NAT: a web server (127.0.0.1:8080, python3 http.server),
#         a UDP echo (127.0.0.1:9000) and a PROXY-v2 service (127.0.0.1:8081, granted late)
#   inet  198.51.100.80 on the wan: the "internet" clients
#
# Checks: nothing is published before 'meshcoord publish allow' (the port is closed and the
# node logs one line saying how to grant it); after it, inet fetches pages through
# 203.0.113.10:20080; 100 concurrent clients all complete while one deliberately slow client
# holds a large download open; a 100 MiB download arrives with the same sha256; the UDP echo
# answers many clients; a proxy_protocol service sees the client's address in the PROXY v2
# header; 'meshcoord publish list' and 'meshd status' show the service and its
# live connections; killing the node mid-transfer ends the client's download at once (no
# hang) and the service comes back when the node does, and after a coordinator restart;
# a service dropped from the node's config (SIGHUP) closes; max_connections (changed by
# SIGHUP) turns a client away; revoking the grant cuts a download in progress and closes the
# port. Every wait is bounded.
#
# Needs root, /dev/net/tun, nftables, conntrack, curl, python3 (exits 77 = SKIP otherwise).
set -u

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/netns/lib.sh
. "$here/lib.sh"
# shellcheck source=tests/netns/natlab.sh
. "$here/natlab.sh"

natlab_mesh_test_begin \
	curl curl \
	python3 python3 \
	unshare util-linux

CONTROL_PORT=51821
STUN_PORT=3478
WEB_PORT=20080
UDP_PORT=20090
OTHER_PORT=20081
INET_IP=198.51.100.80
CLIENTS=100
WAIT_S=$((10 * LIB_TIME_BOUNDS_SCALE))
# A cut client must see its reset within this (the coordinator acts at once; the rest is
# the client noticing).
CUT_S=$((5 * LIB_TIME_BOUNDS_SCALE))
declare -A NS PID

natlab_init
natlab_site home symmetric NS[home]
NS_INET=$NATLAB_ID-inet
lib_ns_create "$NS_INET"
natlab_attach "$NS_INET" eth0 "$INET_IP/24"
PUB=$NATLAB_COORD_IP

# The home services: a web root with a small page, a 256 KiB file, a 4 MiB file (the slow
# client's) and a 100 MiB file.
mkdir -p "$T/www"
echo "hello from home" >"$T/www/index.txt"
head -c $((256 * 1024)) /dev/urandom >"$T/www/small"
head -c $((4 * 1024 * 1024)) /dev/urandom >"$T/www/medium"
head -c $((100 * 1024 * 1024)) /dev/urandom >"$T/www/big"
SMALL_SUM=$(sha256sum <"$T/www/small" | cut -d' ' -f1)
BIG_SUM=$(sha256sum <"$T/www/big" | cut -d' ' -f1)
ip netns exec "${NS[home]}" ip link set lo up
ip netns exec "${NS[home]}" python3 -m http.server 8080 --bind 127.0.0.1 --directory "$T/www" \
	>"$T/http.log" 2>&1 </dev/null &
HTTP_PID=$!
lib_track_pid "$HTTP_PID"
cat >"$T/udpecho.py" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    data, addr = s.recvfrom(65535)
    s.sendto(b"echo:" + data, addr)
EOF
ip netns exec "${NS[home]}" python3 "$T/udpecho.py" 9000 >"$T/udp.log" 2>&1 </dev/null &
UDP_PID=$!
lib_track_pid "$UDP_PID"
# A service behind proxy_protocol: reads the PROXY v2 header and answers with the client's
# address and port it names, as an HTTP response.
cat >"$T/proxyv2.py" <<'EOF'
import socket, struct, sys
sig = b"\r\n\r\n\x00\r\nQUIT\n"
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(16)
while True:
    c, _ = srv.accept()
    c.settimeout(5)
    try:
        hdr = b""
        while len(hdr) < 16:
            hdr += c.recv(16 - len(hdr))
        body_len = struct.unpack(">H", hdr[14:16])[0]
        body = b""
        while len(body) < body_len:
            body += c.recv(body_len - len(body))
        req = b""  # the whole request first: closing with unread bytes would reset
        while b"\r\n\r\n" not in req:
            more = c.recv(4096)
            if not more:
                break
            req += more
        ok = hdr[:12] == sig and hdr[12] == 0x21 and hdr[13] == 0x11 and body_len == 12
        src = socket.inet_ntoa(body[0:4]) if ok else "bad"
        port = struct.unpack(">H", body[8:10])[0] if ok else 0
        text = ("%s:%d" % (src, port)).encode()
        c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(text) + text)
    except Exception:
        pass
    c.close()
EOF
ip netns exec "${NS[home]}" python3 "$T/proxyv2.py" 8081 >"$T/proxy.log" 2>&1 </dev/null &
PROXY_PID=$!
lib_track_pid "$PROXY_PID"

CONF=$T/coord.yaml
lib_coord_write_config "$CONF" "$PUB:$CONTROL_PORT" "$PUB:$STUN_PORT" "$PUB:$CONTROL_PORT" "$T/coord-state"
cat >>"$CONF" <<EOF
publish:
  ports: 20000-20099
  bind: $PUB
  max_connections: 200
  idle_timeout: 60
  udp_timeout: 20
EOF
COORD_PID=
lib_coord_start COORD_PID "$NATLAB_COORD" "$CONF" "$T/coord.log" debug
lib_coord_wait_up "$COORD_PID" "$NATLAB_COORD" "$CONTROL_PORT" || lib_die "meshcoord did not start (see $T/coord.log)"
KEY=$(lib_coord_authkey "$CONF" --reusable) || lib_die "no join key"

cat >"$T/home.yaml" <<EOF
interface: mesh0
state_dir: $T/home-state
control_socket: $T/home.sock
publish:
  - {name: web, local: 127.0.0.1:8080, public_port: $WEB_PORT}
  - {name: echo, local: 127.0.0.1:9000, public_port: $UDP_PORT, protocol: udp}
  - {name: other, local: 127.0.0.1:8081, public_port: $OTHER_PORT, proxy_protocol: true}
EOF
home_start() { lib_meshd_start_args "PID[home]" "${NS[home]}" home "$T/home.yaml" "$T/home.log" debug "$@"; }
home_kill9() {
	kill -KILL "${PID[home]}"
	wait "${PID[home]}" 2>/dev/null
	lib_untrack_pid "${PID[home]}"
}
home_start --join "$KEY"
lib_wait_for "$WAIT_S" grep -q "registered with coordinator" "$T/home.log" || lib_die "home did not register (see $T/home.log)"

# A slow, deterministic HTTP client (curl's --limit-rate lets a burst through and then sleeps
# through a reset): reads CHUNK bytes every PAUSE seconds; exits 0 on the whole body, 2 on a
# reset, 3 on a body cut short, 4 after LIMIT seconds.
cat >"$T/slowget.py" <<'EOF'
import socket, sys, time
host, port, path, chunk, pause, limit = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
s = socket.create_connection((host, port), timeout=10)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
s.sendall(("GET /%s HTTP/1.0\r\n\r\n" % path).encode())
data, end = b"", time.time() + limit
try:
    while time.time() < end:
        b = s.recv(chunk)
        if not b:
            head, _, body = data.partition(b"\r\n\r\n")
            length = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
            sys.exit(0 if length and len(body) == length[0] else 3)
        data += b
        time.sleep(pause)
except (ConnectionResetError, BrokenPipeError):
    sys.exit(2)
sys.exit(4)
EOF
# slow_get PATH: starts a slow client (~640 KB/s) from inet; its PID in SLOW.
slow_get() {
	ip netns exec "$NS_INET" python3 "$T/slowget.py" "$PUB" "$WEB_PORT" "$1" 65536 0.1 120 &
	SLOW=$!
	lib_track_pid "$SLOW"
}

# inet_get PATH [CURL ARGS...]: fetches http://PUB:WEB_PORT/PATH from the internet host.
inet_get() {
	local path=$1
	shift
	ip netns exec "$NS_INET" curl -sS --max-time 30 "$@" "http://$PUB:$WEB_PORT/$path"
}
port_open() { ip netns exec "$NS_INET" curl -s -o /dev/null --max-time 2 "http://$PUB:$1/index.txt"; }
port_closed() { ! port_open "$1"; }

# ---------------------------------------------------------------- not granted
lib_wait_for "$WAIT_S" grep -q "publish web: the coordinator did not grant tcp port $WEB_PORT" "$T/home.log"
lib_check "an ungranted service is not published, and the node says how to grant it" \
	port_closed "$WEB_PORT"
lib_check "the node's log names the grant command" \
	grep -q "meshcoord publish allow home $WEB_PORT" "$T/home.log"

"$MESHCOORD" publish allow home "$WEB_PORT" -c "$CONF" 2>>"$T/admin.log" || lib_die "publish allow failed"
"$MESHCOORD" publish allow home "$UDP_PORT" --protocol udp -c "$CONF" 2>>"$T/admin.log" || lib_die "publish allow udp failed"
lib_check "a granted service is published within seconds" lib_wait_for "$WAIT_S" port_open "$WEB_PORT"
lib_check "the ungranted port stays closed" port_closed "$OTHER_PORT"
lib_check "a port outside 'publish: ports' cannot be granted" \
	bash -c "! '$MESHCOORD' publish allow home 20100 -c '$CONF' 2>/dev/null"

# ---------------------------------------------------------------- a page, through symmetric NAT
lib_check "inet reads the home page through the coordinator" \
	bash -c "[ \"\$(ip netns exec $NS_INET curl -sS --max-time 10 http://$PUB:$WEB_PORT/index.txt)\" = 'hello from home' ]"

# ---------------------------------------------------------------- 100 clients, one slow
# The slow client reads the 4 MiB file at ~160 KB/s (~26 s); meanwhile every other client
# fetches the 256 KiB file. All must finish, with the right bytes, while the slow one is
# still reading; then the slow one must finish too, with the whole file.
ip netns exec "$NS_INET" python3 "$T/slowget.py" "$PUB" "$WEB_PORT" medium 16384 0.1 120 &
SLOW_PID=$!
lib_track_pid "$SLOW_PID"
sleep 1
start=$(lib_now_ms)
pids=()
for i in $(seq 1 "$CLIENTS"); do
	ip netns exec "$NS_INET" curl -sS --max-time 60 -o "$T/c$i.out" "http://$PUB:$WEB_PORT/small" 2>"$T/c$i.err" &
	pids+=($!)
done
fails=0
for p in "${pids[@]}"; do wait "$p" || fails=$((fails + 1)); done
took=$(($(lib_now_ms) - start))
good=0
for i in $(seq 1 "$CLIENTS"); do
	[ "$(sha256sum <"$T/c$i.out" 2>/dev/null | cut -d' ' -f1)" = "$SMALL_SUM" ] && good=$((good + 1))
done
lib_log "$CLIENTS clients: $good right, $fails failed, in $took ms"
lib_check "$CLIENTS concurrent clients all complete with the right bytes" [ "$good" -eq "$CLIENTS" ]
lib_check "the slow client is still being served meanwhile" lib_pid_alive "$SLOW_PID"
lib_check "'meshcoord publish list' shows the service published with live connections" \
	bash -c "'$MESHCOORD' publish list -c '$CONF' | awk '\$1 == \"home\" && \$3 == $WEB_PORT && \$5 == \"published\" && \$6 >= 1' | grep -q ."
lib_check "'meshd status' shows the published service" \
	bash -c "'$MESHD' status -s '$T/home.sock' | grep -E '^ *web +tcp .*published' >/dev/null"
lib_check "'meshd status --json' lists the services with their state and live connections" \
	bash -c "'$MESHD' status --json -s '$T/home.sock' | python3 -c 'import json, sys; p = {s[\"name\"]: s for s in json.load(sys.stdin)[\"node\"][\"publish\"]}; sys.exit(0 if p[\"web\"][\"state\"] == \"published\" and p[\"web\"][\"connections\"] >= 1 and p[\"other\"][\"state\"] == \"not-granted\" else 1)'"
lib_check "'meshcoord publish list --json' is JSON with the live connections" \
	bash -c "'$MESHCOORD' publish list --json -c '$CONF' | python3 -c 'import json, sys; g = [x for x in json.load(sys.stdin)[\"grants\"] if x[\"port\"] == $WEB_PORT]; sys.exit(0 if g and g[0][\"published\"] and g[0][\"connections\"] >= 1 else 1)'"
wait "$SLOW_PID"
slow_rc=$?
lib_untrack_pid "$SLOW_PID"
lib_check "... and the slow client completes too, with the whole 4 MiB (exit $slow_rc)" [ "$slow_rc" -eq 0 ]
lib_untrack_pid "$SLOW_PID"

# ---------------------------------------------------------------- PROXY protocol v2
"$MESHCOORD" publish allow home "$OTHER_PORT" -c "$CONF" 2>>"$T/admin.log" || lib_die "publish allow failed"
lib_wait_for "$WAIT_S" port_open "$OTHER_PORT"
seen=$(ip netns exec "$NS_INET" curl -sS --max-time 10 --local-port 41000 "http://$PUB:$OTHER_PORT/" 2>>"$T/proxy.err")
lib_log "the PROXY-protocol service saw the client as '$seen'"
lib_check "proxy_protocol: the service learns the internet client's address and port" [ "$seen" = "$INET_IP:41000" ]

# ---------------------------------------------------------------- 100 MiB, sha256
start=$(lib_now_ms)
inet_get big -o "$T/big.out" --max-time 120
took=$(($(lib_now_ms) - start))
got=$(sha256sum <"$T/big.out" | cut -d' ' -f1)
lib_log "100 MiB in $took ms"
lib_check "a 100 MiB download arrives with the same sha256" [ "$got" = "$BIG_SUM" ]

# ---------------------------------------------------------------- UDP echo, many clients
cat >"$T/udpclients.py" <<'EOF'
import socket, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
socks = []
for i in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    socks.append(s)
ok = 0
for i, s in enumerate(socks):
    msg = b"client %d" % i
    for attempt in range(6):
        s.sendto(msg, (host, port))
        try:
            data, _ = s.recvfrom(65535)
        except socket.timeout:
            continue
        if data == b"echo:" + msg:
            ok += 1
            break
print(ok)
EOF
udp_ok=$(ip netns exec "$NS_INET" timeout 120 python3 "$T/udpclients.py" "$PUB" "$UDP_PORT" 50)
lib_log "UDP echo: ${udp_ok:-0} of 50 clients answered"
lib_check "the UDP echo answers 50 clients, each on its own flow" [ "${udp_ok:-0}" -eq 50 ]

# ---------------------------------------------------------------- the node dies mid-transfer
slow_get big
CUT_PID=$SLOW
sleep 2
home_kill9
cut_rc=
lib_check "killing the node ends the client's transfer within seconds (no hang)" \
	lib_wait_exit cut_rc "$CUT_PID" "$CUT_S"
lib_untrack_pid "$CUT_PID"
lib_check "the cut transfer is reported as failed, not complete" [ "${cut_rc:-0}" -ne 0 ]
lib_check "while the node is away the port is closed" lib_wait_for "$WAIT_S" port_closed "$WEB_PORT"
home_start
lib_check "the service comes back when the node does" lib_wait_for "$WAIT_S" port_open "$WEB_PORT"
lib_check "and serves pages again" \
	bash -c "[ \"\$(ip netns exec $NS_INET curl -sS --max-time 10 http://$PUB:$WEB_PORT/index.txt)\" = 'hello from home' ]"

# ---------------------------------------------------------------- the coordinator restarts
lib_stop_pid "$COORD_PID"
lib_check "a stopped coordinator leaves no status file behind" \
	bash -c "[ ! -e '$T/coord-state/publish-status' ]"
lib_coord_start COORD_PID "$NATLAB_COORD" "$CONF" "$T/coord.log" debug
lib_coord_wait_up "$COORD_PID" "$NATLAB_COORD" "$CONTROL_PORT" || lib_die "meshcoord did not restart (see $T/coord.log)"
lib_check "after a coordinator restart the node's services are published again (grants kept)" \
	lib_wait_for "$((3 * WAIT_S))" port_open "$WEB_PORT"

# ---------------------------------------------------------------- SIGHUP: the node's list
lib_check "the PROXY-protocol service is back too" lib_wait_for "$WAIT_S" port_open "$OTHER_PORT"
sed -i '/name: other/d' "$T/home.yaml"
kill -HUP "${PID[home]}"
lib_check "a service taken out of the node's config (SIGHUP) closes its port" \
	lib_wait_for "$WAIT_S" port_closed "$OTHER_PORT"
lib_check "the others stay published" port_open "$WEB_PORT"

# ---------------------------------------------------------------- max_connections (SIGHUP)
sed -i 's/max_connections: 200/max_connections: 3/' "$CONF"
kill -HUP "$COORD_PID"
lib_wait_for "$WAIT_S" grep -q "SIGHUP: 'publish' changed" "$T/coord.log"
holders=()
for i in 1 2 3; do
	slow_get big
	holders+=("$SLOW")
done
live() { "$MESHCOORD" publish list -c "$CONF" 2>/dev/null | awk -v p="$WEB_PORT" '$1 == "home" && $3 == p { print $6 }'; }
live_is() { [ "$(live)" = "$1" ]; }
lib_wait_for "$WAIT_S" live_is 3
lib_log "live connections on the web service: $(live)"
lib_check "a client beyond max_connections is turned away" \
	bash -c "! ip netns exec $NS_INET curl -sS --max-time 5 -o /dev/null http://$PUB:$WEB_PORT/index.txt 2>/dev/null"
for p in "${holders[@]}"; do
	kill "$p" 2>/dev/null
	wait "$p" 2>/dev/null
	lib_untrack_pid "$p"
done
sed -i 's/max_connections: 3/max_connections: 200/' "$CONF"
kill -HUP "$COORD_PID"
lib_check "below the limit again, clients are served" lib_wait_for "$WAIT_S" port_open "$WEB_PORT"

# ---------------------------------------------------------------- revoke cuts
slow_get big
REV_PID=$SLOW
sleep 2
"$MESHCOORD" publish revoke home "$WEB_PORT" -c "$CONF" 2>>"$T/admin.log" || lib_die "publish revoke failed"
rev_rc=
lib_check "revoking the grant ends a download in progress within seconds" lib_wait_exit rev_rc "$REV_PID" "$CUT_S"
lib_untrack_pid "$REV_PID"
lib_check "the revoked download is reported as failed" [ "${rev_rc:-0}" -ne 0 ]
lib_check "the revoked port is closed" lib_wait_for "$WAIT_S" port_closed "$WEB_PORT"
lib_check "the node hears it is no longer granted" \
	lib_wait_for "$WAIT_S" bash -c "[ \$(grep -c 'publish web: the coordinator did not grant' '$T/home.log') -ge 2 ]"
lib_check "meshcoord stayed up throughout" lib_pid_alive "$COORD_PID"

lib_summary
