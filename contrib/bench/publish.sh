#!/bin/bash
# Publishing a home service (issue 11, item 6): meshcoord's published port against an
# OpenSSH reverse tunnel ('ssh -R' from the node to an sshd next to the coordinator: what
# people use when frp is not at hand; frp is not packaged in Debian), in one run, on the same
# lab:
#
#   ┌ <id>-home ─────────────┐  ┌ <id>-home-r ┐   ┌ <id>-wan ┐   ┌ <id>-coord 203.0.113.10 ───┐
#   │ meshd (publish:)       ├──┤ symmetric   ├───┤  bridge  ├───┤ meshcoord (publish: ports) │
#   │ ssh -R 20180.. -> ...  │  │ NAT         │   └────┬─────┘   │ sshd :2222 (GatewayPorts)  │
#   │ services on 127.0.0.1: │  └─────────────┘        │         └────────────────────────────┘
#   │  iperf3 5201, hello    │                   ┌ <id>-inet 198.51.100.80 ┐
#   │  7000, bulk 7001       │                   │ the clients             │
#   └────────────────────────┘                   └─────────────────────────┘
#
# Measured through both (ours on ports 20080-20082, ssh -R on 20180-20182):
#   upload, download   single-stream TCP, iperf3 -t DURATION (client -> service, and -R)
#   setup p50, p99     connect, until the service's first byte ("hi") arrives and it closes,
#                      SETUPS times one after another
#   100 clients        CLIENTS parallel connections each reading 1 MiB from the service: the
#                      wall time until all finished, and the 99th percentile of each one's
#
# sshd is Debian's openssh-server: used from PATH if installed, else its .deb is fetched with
# 'apt-get download' and unpacked into the temp dir (no installation, no system service). It
# runs on a private config with a throwaway host key, in a private mount namespace (its
# privilege-separation user and directory exist only there: a copy of /etc/passwd bound over
# it, /run on a tmpfs). Usage (root, from a built tree):
#   contrib/bench/publish.sh [--duration SECONDS] [--setups N] [--clients N]
# Needs iperf3, python3, nft, conntrack, ssh, ssh-keygen. KEEP_TMPDIR=1 keeps the logs.
# shellcheck disable=SC2154 # UP_ours, UP_ssh and the rest are set by measure (printf -v)
set -u

here=$(cd "$(dirname "$0")" && pwd)
LIB_SKIP_CODE=1
# shellcheck source=tests/netns/lib.sh
. "$here/../../tests/netns/lib.sh"
# shellcheck source=tests/netns/natlab.sh
. "$here/../../tests/netns/natlab.sh"
# shellcheck source=contrib/bench/benchlib.sh
. "$here/benchlib.sh"

DURATION=10
SETUPS=200
CLIENTS=100
BENCH_USAGE="$0 [options]"
bench_opt duration DURATION num 1 120 "seconds of each iperf3 run"
bench_opt setups SETUPS num 10 5000 "connections timed one after another"
bench_opt clients CLIENTS num 1 1000 "parallel clients reading 1 MiB each"
bench_parse_args "$@"

bench_find_builddir
lib_require_root
lib_require_tun
natlab_require
lib_require_cmd iperf3 iperf3
lib_require_cmd python3 python3
lib_require_cmd ssh openssh-client
lib_require_cmd ssh-keygen openssh-client
lib_find_meshd
lib_find_meshcoord
lib_mktemp
lib_trap_cleanup
T=$LIB_TMPDIR

CONTROL_PORT=51821
STUN_PORT=3478
SSH_PORT=2222
# Each service: name, local port, our public port, ssh -R's public port.
SERVICES="iperf:5201:20080:20180 hello:7000:20081:20181 bulk:7001:20082:20182"

# ---------------------------------------------------------------- sshd
SSHD=$(command -v sshd || true)
if [ -z "$SSHD" ]; then
	lib_log "sshd not installed: fetching Debian's openssh-server package (apt-get download) into $T"
	(cd "$T" && apt-get download openssh-server >"$T/apt.log" 2>&1) || lib_die "apt-get download openssh-server failed (see $T/apt.log)"
	mkdir -p "$T/sshx"
	dpkg-deb -x "$T"/openssh-server_*.deb "$T/sshx" || lib_die "cannot unpack openssh-server"
	SSHD=$T/sshx/usr/sbin/sshd
	[ -x "$SSHD" ] || lib_die "no sshd in the openssh-server package"
fi

natlab_init
natlab_site home symmetric HOME_NS
NS_INET=$NATLAB_ID-inet
lib_ns_create "$NS_INET"
natlab_attach "$NS_INET" eth0 198.51.100.80/24
PUB=$NATLAB_COORD_IP
ip -n "$HOME_NS" link set lo up

# ---------------------------------------------------------------- the services at home
cat >"$T/services.py" <<'EOF'
# hello: writes "hi" and closes; bulk: writes 1 MiB and closes (asyncio: many at once).
import asyncio, sys
BULK = b"x" * (1024 * 1024)
async def hello(r, w):
    w.write(b"hi"); await w.drain(); w.close()
async def bulk(r, w):
    w.write(BULK); await w.drain(); w.close()
async def main():
    a = await asyncio.start_server(hello, "127.0.0.1", int(sys.argv[1]), backlog=1024)
    b = await asyncio.start_server(bulk, "127.0.0.1", int(sys.argv[2]), backlog=1024)
    await asyncio.gather(a.serve_forever(), b.serve_forever())
asyncio.run(main())
EOF
ip netns exec "$HOME_NS" python3 "$T/services.py" 7000 7001 >"$T/services.log" 2>&1 </dev/null &
lib_track_pid $!
ip netns exec "$HOME_NS" iperf3 -s -B 127.0.0.1 -p 5201 >"$T/iperf-server.log" 2>&1 </dev/null &
lib_track_pid $!

# ---------------------------------------------------------------- meshcoord and meshd
CONF=$T/coord.yaml
lib_coord_write_config "$CONF" "$PUB:$CONTROL_PORT" "$PUB:$STUN_PORT" "$PUB:$CONTROL_PORT" "$T/coord-state"
printf 'publish: {ports: 20000-20099, bind: %s, max_connections: 1024}\n' "$PUB" >>"$CONF"
COORD_PID=
lib_coord_start COORD_PID "$NATLAB_COORD" "$CONF" "$T/coord.log" info
lib_coord_wait_up "$COORD_PID" "$NATLAB_COORD" "$CONTROL_PORT" || lib_die "meshcoord did not start (see $T/coord.log)"
KEY=$(lib_coord_authkey "$CONF") || lib_die "no join key"
{
	printf 'interface: mesh0\nstate_dir: %s\ncontrol_socket: %s\npublish:\n' "$T/home-state" "$T/home.sock"
	for s in $SERVICES; do
		IFS=: read -r name local ours _ <<<"$s"
		printf '  - {name: %s, local: 127.0.0.1:%s, public_port: %s}\n' "$name" "$local" "$ours"
	done
} >"$T/home.yaml"
# shellcheck disable=SC2034 # lib_cleanup ends it
HOME_PID=
lib_meshd_start_args HOME_PID "$HOME_NS" home "$T/home.yaml" "$T/home.log" info --join "$KEY"
lib_wait_for 20 grep -q "registered with coordinator" "$T/home.log" || lib_die "home did not register (see $T/home.log)"
for s in $SERVICES; do
	IFS=: read -r _ _ ours _ <<<"$s"
	"$MESHCOORD" publish allow home "$ours" -c "$CONF" 2>>"$T/admin.log" || lib_die "publish allow $ours failed"
done

# ---------------------------------------------------------------- sshd and ssh -R
mkdir -p "$T/ssh" && chmod 700 "$T/ssh"
ssh-keygen -q -t ed25519 -N '' -f "$T/ssh/host_key" || lib_die "ssh-keygen failed"
ssh-keygen -q -t ed25519 -N '' -f "$T/ssh/client_key" || lib_die "ssh-keygen failed"
cp "$T/ssh/client_key.pub" "$T/ssh/authorized_keys"
cat >"$T/ssh/sshd_config" <<EOF
Port $SSH_PORT
ListenAddress $PUB
HostKey $T/ssh/host_key
PidFile $T/ssh/sshd.pid
AuthorizedKeysFile $T/ssh/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
GatewayPorts yes
AllowTcpForwarding yes
X11Forwarding no
MaxSessions 10
EOF
# sshd wants its privilege-separation user and directory: both exist only inside its own
# mount namespace (a copy of /etc/passwd with an "sshd" line bound over it, /run on a tmpfs).
cp /etc/passwd "$T/ssh/passwd"
grep -q '^sshd:' "$T/ssh/passwd" || echo 'sshd:x:65534:65534:sshd privsep:/run/sshd:/usr/sbin/nologin' >>"$T/ssh/passwd"
# shellcheck disable=SC2016
ip netns exec "$NATLAB_COORD" unshare -m --propagation private sh -c \
	'mount --bind "$2" /etc/passwd && mount -t tmpfs tmpfs /run && mkdir -m 755 /run/sshd && exec "$0" -D -e -f "$1"' \
	"$SSHD" "$T/ssh/sshd_config" "$T/ssh/passwd" >"$T/sshd.log" 2>&1 </dev/null &
SSHD_PID=$!
lib_track_pid "$SSHD_PID"
lib_wait_for 10 lib_tcp_listening "$NATLAB_COORD" "$SSH_PORT" || lib_die "sshd did not start (see $T/sshd.log)"
forwards=()
for s in $SERVICES; do
	IFS=: read -r _ local _ theirs <<<"$s"
	forwards+=(-R "$PUB:$theirs:127.0.0.1:$local")
done
ip netns exec "$HOME_NS" ssh -N -F /dev/null -i "$T/ssh/client_key" -p "$SSH_PORT" -o StrictHostKeyChecking=no \
	-o UserKnownHostsFile=/dev/null -o ExitOnForwardFailure=yes -o ServerAliveInterval=15 -o BatchMode=yes \
	"${forwards[@]}" "root@$PUB" >"$T/ssh.log" 2>&1 </dev/null &
SSH_PID=$!
lib_track_pid "$SSH_PID"

hello_answers() { [ "$(ip netns exec "$NS_INET" python3 -c "import socket; s = socket.create_connection(('$PUB', $1), 2); print(s.recv(2).decode())" 2>/dev/null)" = hi ]; }
lib_wait_for 20 hello_answers 20081 || lib_die "the published hello service does not answer (see $T/coord.log, $T/home.log)"
lib_wait_for 20 hello_answers 20181 || lib_die "ssh -R's hello service does not answer (see $T/ssh.log, $T/sshd.log)"

# ---------------------------------------------------------------- the measurements
cat >"$T/clients.py" <<'EOF'
# setup HOST PORT N: N connections one after another, each until "hi" and the close: p50 p99 ms
# many HOST PORT N: N parallel connections reading 1 MiB each: wall s, p99 s, MB/s, failures
import asyncio, socket, sys, time
def pct(v, p):
    v = sorted(v); return v[min(len(v) - 1, int(len(v) * p))]
mode, host, port, n = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
if mode == "setup":
    t = []
    for _ in range(n):
        t0 = time.perf_counter()
        s = socket.create_connection((host, port), 5)
        got = b""
        while True:
            b = s.recv(16)
            if not b:
                break
            got += b
        s.close()
        if got == b"hi":
            t.append((time.perf_counter() - t0) * 1000)
    print("%.2f %.2f %d" % (pct(t, 0.5), pct(t, 0.99), n - len(t)))
else:
    async def one():
        t0 = time.perf_counter()
        try:
            r, w = await asyncio.wait_for(asyncio.open_connection(host, port), 30)
            total = 0
            while True:
                b = await asyncio.wait_for(r.read(65536), 60)
                if not b:
                    break
                total += len(b)
            w.close()
        except Exception:
            total = -1
        return total, time.perf_counter() - t0
    async def main():
        t0 = time.perf_counter()
        res = await asyncio.gather(*[one() for _ in range(n)])
        wall = time.perf_counter() - t0
        ok = [d for b, d in res if b == 1024 * 1024]
        print("%.2f %.2f %.0f %d" % (wall, pct(ok, 0.99) if ok else 0, len(ok) * 1.048576 / wall, n - len(ok)))
    asyncio.run(main())
EOF
# iperf FILE PORT [ARGS...]: one iperf3 run; the server may still be closing the last one
# ("busy"): retried a few times, a second apart.
iperf() {
	local f=$1 port=$2
	shift 2
	for _ in 1 2 3 4 5; do
		ip netns exec "$NS_INET" iperf3 -c "$PUB" -p "$port" -t "$DURATION" -J "$@" >"$f" 2>&1
		grep -q '"error"' "$f" || return 0
		sleep 1
	done
}
measure() { # LABEL PORT_BASE: sets UP_, DOWN_, SET50_, ... with the LABEL suffix
	local label=$1 base=$2 f
	f=$T/iperf-$label-up.json
	iperf "$f" "$base"
	printf -v "UP_$label" '%s' "$(bench_iperf_mbit "$f")"
	f=$T/iperf-$label-down.json
	iperf "$f" "$base" -R
	printf -v "DOWN_$label" '%s' "$(bench_iperf_mbit "$f")"
	read -r a b c < <(ip netns exec "$NS_INET" timeout 300 python3 "$T/clients.py" setup "$PUB" $((base + 1)) "$SETUPS")
	printf -v "SET50_$label" '%s' "${a:-}"
	printf -v "SET99_$label" '%s' "${b:-}"
	printf -v "SETFAIL_$label" '%s' "${c:-}"
	read -r a b c d < <(ip netns exec "$NS_INET" timeout 300 python3 "$T/clients.py" many "$PUB" $((base + 2)) "$CLIENTS")
	printf -v "WALL_$label" '%s' "${a:-}"
	printf -v "P99_$label" '%s' "${b:-}"
	printf -v "AGG_$label" '%s' "${c:-}"
	printf -v "MANYFAIL_$label" '%s' "${d:-}"
}
lib_log "measuring meshcoord publish (ports 20080-20082)"
measure ours 20080
lib_log "measuring ssh -R (ports 20180-20182)"
measure ssh 20180

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2f", a / b }'; }
row() { printf '%-34s %16s %12s %8s\n' "$1" "${2:--}" "${3:--}" "$(ratio "$2" "$3")"; }
echo
bench_header
echo "sshd: $("$SSHD" -V 2>&1 | head -n 1); the home node behind a symmetric NAT; $DURATION s iperf3 runs"
echo
printf '%-34s %16s %12s %8s\n' "" "meshcoord publish" "ssh -R" "ratio"
row "upload, Mbit/s (client -> home)" "$UP_ours" "$UP_ssh"
row "download, Mbit/s (home -> client)" "$DOWN_ours" "$DOWN_ssh"
row "connection setup p50, ms" "$SET50_ours" "$SET50_ssh"
row "connection setup p99, ms" "$SET99_ours" "$SET99_ssh"
row "$CLIENTS clients x 1 MiB: all done, s" "$WALL_ours" "$WALL_ssh"
row "$CLIENTS clients: p99 of one, s" "$P99_ours" "$P99_ssh"
row "$CLIENTS clients: aggregate, MB/s" "$AGG_ours" "$AGG_ssh"
echo "(failures: setup ${SETFAIL_ours:-?} / ${SETFAIL_ssh:-?} of $SETUPS, parallel ${MANYFAIL_ours:-?} / ${MANYFAIL_ssh:-?} of $CLIENTS;"
echo " ratio = ours / ssh -R: above 1 is better for Mbit/s and MB/s, below 1 for times)"
