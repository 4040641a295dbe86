# Shared helpers for the network-namespace tests, the demo and the benchmarks.
# Source it from bash:  . "$(dirname "$0")/lib.sh"
#
# Rules every user of this file follows:
#  - traffic only inside namespaces made here (lib_ns_create), addressed from the
#    documentation ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24) for the
#    "underlay" and 100.64.0.0/10 for the overlay;
#  - every wait is bounded (lib_wait_for), every process we start is tracked and
#    ended by its PID, every namespace is deleted by lib_cleanup (run it from a trap).
#
# shellcheck shell=bash

# Exit code for "cannot run here": automake's SKIP. The demo and benchmark set it to 1
# before sourcing, because for them a missing prerequisite is an error.
: "${LIB_SKIP_CODE:=77}"

LIB_NAMESPACES=()
LIB_PIDS=()
LIB_TMPDIR=

# Time and CPU bounds of tests that measure them are multiplied by this (CI sets 4 for its
# run with sanitized daemons, which are several times slower); 1 otherwise.
LIB_TIME_BOUNDS_SCALE=${LIB_TIME_BOUNDS_SCALE:-1}
case $LIB_TIME_BOUNDS_SCALE in '' | *[!0-9]*) LIB_TIME_BOUNDS_SCALE=1 ;; esac

lib_log() {
	printf '# %s\n' "$*"
}

lib_die() {
	printf '%s: error: %s\n' "${0##*/}" "$*" >&2
	exit 1
}

# Cannot run here (not root, no TUN, a tool missing): say why and leave. Only for what a
# developer's machine may lack; CI has all of it and counts a skip as a failure. A binary of
# ours that is missing is a broken build, not a reason to skip: the lib_find_* use lib_die.
lib_skip() {
	if [ "$LIB_SKIP_CODE" -eq 77 ]; then
		printf '%s: SKIP: %s\n' "${0##*/}" "$*" >&2
		# Also on stdout so it shows in the automake .log next to the test output.
		printf '# SKIP: %s\n' "$*"
	else
		printf '%s: cannot run: %s\n' "${0##*/}" "$*" >&2
	fi
	exit "$LIB_SKIP_CODE"
}

lib_require_root() {
	[ "$(id -u)" -eq 0 ] || lib_skip "needs root (network namespaces and TUN); run as root or with sudo"
}

lib_require_tun() {
	[ -c /dev/net/tun ] || lib_skip "/dev/net/tun is missing (load the tun module: modprobe tun)"
}

# lib_require_cmd CMD DEBIAN_PACKAGE
lib_require_cmd() {
	command -v "$1" >/dev/null 2>&1 || lib_skip "'$1' not found: install the Debian package $2"
}

# Sets MESHD to the meshd binary: $MESHD, else the build tree ($top_builddir, or two levels
# up from this file, as when run by hand from a built checkout).
lib_find_meshd() {
	local here
	here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
	: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
	: "${top_builddir:=$top_srcdir}"
	: "${MESHD:=$top_builddir/src/meshd/meshd}"
	[ -x "$MESHD" ] || lib_die "meshd binary not found at $MESHD (build it with make, or set MESHD=)"
}

# Sets UDPINJECT: $UDPINJECT, else the one make check built, else compiles the source
# into the temp dir (it needs only libc), so the test also runs after a plain make.
lib_find_udpinject() {
	local here src
	here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
	: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
	: "${top_builddir:=$top_srcdir}"
	if [ -n "${UDPINJECT:-}" ] && [ -x "$UDPINJECT" ]; then
		return 0
	fi
	UDPINJECT=$top_builddir/tests/tools/udpinject
	[ -x "$UDPINJECT" ] && return 0
	src=$top_srcdir/tests/tools/udpinject.c
	[ -f "$src" ] || lib_die "udpinject not built and $src missing"
	UDPINJECT=$LIB_TMPDIR/udpinject
	"${CC:-cc}" -std=c11 -D_GNU_SOURCE -O2 -Wall -o "$UDPINJECT" "$src" ||
		lib_die "could not compile $src"
}

# Sets UDPDELAY (the delay relay, tests/tools/udpdelay.c) like lib_find_udpinject: $UDPDELAY,
# else the one make check built, else compiled into the temp dir (libc only).
lib_find_udpdelay() {
	local here src
	here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
	: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
	: "${top_builddir:=$top_srcdir}"
	if [ -n "${UDPDELAY:-}" ] && [ -x "$UDPDELAY" ]; then
		return 0
	fi
	UDPDELAY=$top_builddir/tests/tools/udpdelay
	[ -x "$UDPDELAY" ] && return 0
	src=$top_srcdir/tests/tools/udpdelay.c
	[ -f "$src" ] || lib_die "udpdelay not built and $src missing"
	UDPDELAY=$LIB_TMPDIR/udpdelay
	"${CC:-cc}" -std=c11 -D_GNU_SOURCE -O2 -Wall -o "$UDPDELAY" "$src" ||
		lib_die "could not compile $src"
}

lib_mktemp() {
	LIB_TMPDIR=$(mktemp -d "${TMPDIR:-/tmp}/meshd-test.XXXXXX") || lib_die "mktemp failed"
}

# Remember a PID we started so lib_cleanup ends it (and only it).
lib_track_pid() {
	LIB_PIDS+=("$1")
}

lib_untrack_pid() {
	local i
	for i in "${!LIB_PIDS[@]}"; do
		[ "${LIB_PIDS[$i]}" = "$1" ] && unset 'LIB_PIDS[i]'
	done
}

# True while PID runs (a zombie, dead but not yet reaped, does not count).
lib_pid_alive() {
	[ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

# Ends one of our processes: SIGTERM, up to $2 seconds (default 5), then SIGKILL.
# Returns the process's exit status (wait works because it is our child).
lib_stop_pid() {
	local pid=$1 limit=${2:-5} i rc
	if lib_pid_alive "$pid"; then
		kill -TERM "$pid" 2>/dev/null
		for ((i = 0; i < limit * 10; i++)); do
			lib_pid_alive "$pid" || break
			sleep 0.1
		done
		if lib_pid_alive "$pid"; then
			lib_log "PID $pid ignored SIGTERM for ${limit}s; sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null
		fi
	fi
	wait "$pid" 2>/dev/null
	rc=$?
	lib_untrack_pid "$pid"
	return "$rc"
}

lib_ns_create() {
	ip netns add "$1" || lib_die "cannot create namespace $1"
	LIB_NAMESPACES+=("$1")
	ip -n "$1" link set lo up
}

lib_ns_delete() {
	local i
	ip netns del "$1" 2>/dev/null
	for i in "${!LIB_NAMESPACES[@]}"; do
		[ "${LIB_NAMESPACES[$i]}" = "$1" ] && unset 'LIB_NAMESPACES[i]'
	done
}

# lib_veth NS_A IF_A ADDR_A/LEN NS_B IF_B ADDR_B/LEN
# The pair is created directly inside the namespaces, so no name ever exists in the
# caller's namespace (no clash with the host's interfaces, nothing left if we die).
lib_veth() {
	ip link add name "$2" netns "$1" type veth peer name "$5" netns "$4" ||
		lib_die "cannot create veth pair $2/$5"
	ip -n "$1" addr add "$3" dev "$2"
	ip -n "$4" addr add "$6" dev "$5"
	ip -n "$1" link set "$2" up
	ip -n "$4" link set "$5" up
}

# lib_wait_for SECONDS CMD...: runs CMD every 0.2 s until it succeeds or time runs out.
lib_wait_for() {
	local limit=$1 deadline
	shift
	deadline=$(($(date +%s%N) + limit * 1000000000))
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		[ "$(date +%s%N)" -ge "$deadline" ] && return 1
		sleep 0.2
	done
}

# Milliseconds on a monotonic-enough clock, for printing how long something took.
lib_now_ms() {
	echo $(($(date +%s%N) / 1000000))
}

# lib_ping NS ADDR: one echo, one second to answer.
lib_ping() {
	ip netns exec "$1" ping -n -q -c 1 -W 1 "$2" >/dev/null 2>&1
}

lib_link_exists() {
	ip -n "$1" link show dev "$2" >/dev/null 2>&1
}

lib_link_absent() {
	! lib_link_exists "$1" "$2"
}

# lib_genkey DIR NAME: writes DIR/NAME.key (0600) and DIR/NAME.pub.
lib_genkey() {
	local key=$1/$2.key
	(umask 077 && "$MESHD" genkey >"$key") || lib_die "meshd genkey failed"
	chmod 600 "$key"
	"$MESHD" pubkey <"$key" >"$1/$2.pub" || lib_die "meshd pubkey failed"
}

# A public key nobody holds: for the wrong-key test.
lib_random_pubkey() {
	"$MESHD" genkey | "$MESHD" pubkey
}

# lib_write_config FILE IFACE KEYFILE PORT ADDRESS/LEN PEER_NAME PEER_PUB ENDPOINT ALLOWED_IP
# The control socket sits next to FILE (FILE without .yaml, plus .sock): namespaces share
# the file system, so two nodes' default /run/meshd/mesh0.sock would collide.
lib_write_config() {
	cat >"$1" <<-EOF
	interface: $2
	control_socket: ${1%.yaml}.sock
	private_key_file: $3
	listen_port: $4
	address: $5
	mtu: 1420
	peers:
	  - name: $6
	    public_key: $7
	    endpoint: $8
	    allowed_ips: [$9]
	EOF
}

# lib_meshd_start VAR NS CONFIG LOG [LEVEL]: starts meshd in NS, appends its stderr to LOG,
# stores the PID in VAR. `ip netns exec` and env exec meshd, so the PID is meshd's own.
lib_meshd_start() {
	local __var=$1 ns=$2 conf=$3 log=$4 level=${5:-info} pid
	# No JOURNAL_STREAM: the log goes to a file, so lines must not get journald prefixes.
	ip netns exec "$ns" env -u JOURNAL_STREAM "$MESHD" up -c "$conf" --log-level "$level" \
		</dev/null >>"$log" 2>&1 &
	pid=$!
	lib_track_pid "$pid"
	printf -v "$__var" '%s' "$pid"
}

# Waits until meshd's interface exists (or it died). Returns non-zero on failure.
lib_meshd_wait_up() {
	local pid=$1 ns=$2 ifname=$3
	lib_wait_for 10 lib_link_exists "$ns" "$ifname" && lib_pid_alive "$pid"
}

# lib_meshd_counters PID LOG: asks meshd for its counters (SIGUSR1) and prints the fresh
# "counters:" line once it appears in LOG. Returns non-zero if none came within 5 s.
lib_meshd_counters() {
	local pid=$1 log=$2 before
	before=$(grep -c 'counters:' "$log" 2>/dev/null)
	kill -USR1 "$pid" 2>/dev/null || return 1
	# shellcheck disable=SC2016
	lib_wait_for 5 bash -c '[ "$(grep -c "counters:" "$1")" -gt "$2" ]' _ "$log" "$before" || return 1
	grep 'counters:' "$log" | tail -n 1
}

# lib_counter LINE NAME: value of NAME=... in a counters line (empty if absent).
lib_counter() {
	printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=\([0-9][0-9]*\)\$/\1/p" | head -n 1
}

# Every counter that means "datagram received and dropped", one of which must count each
# bad datagram exactly once. A new drop counter in meshd must be added here.
LIB_DROP_COUNTERS="rx_invalid_type rx_invalid_size rx_handshake_invalid rx_handshake_replayed \
rx_data_unknown_index rx_data_auth_failed rx_data_replayed rx_data_bad_source rx_data_malformed rx_disco_invalid \
rx_cookie_invalid rx_handshake_ratelimited rx_handshake_shed rx_acl_dropped"

lib_counter_sum() {
	local line=$1 name v sum=0
	for name in $LIB_DROP_COUNTERS; do
		v=$(lib_counter "$line" "$name")
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
}

# Prints "name +delta" for every counter that changed between two counters lines.
lib_counter_deltas() {
	local before=$1 after=$2 pair name a b out=
	for pair in $(printf '%s\n' "$after" | tr ' ' '\n' | grep '^[a-z_]*=[0-9]*$'); do
		name=${pair%%=*}
		a=${pair#*=}
		b=$(lib_counter "$before" "$name")
		[ "$a" != "${b:-0}" ] && out="$out $name+$((a - ${b:-0}))"
	done
	echo "${out# }"
}

# ---- TCP transfer for the hash check: socat (preferred), else python3.
lib_have_tcp_tool() {
	command -v socat >/dev/null 2>&1 || command -v python3 >/dev/null 2>&1
}

# lib_tcp_recv VAR NS ADDR PORT FILE: background receiver, writes one connection to FILE.
# ADDR may be IPv4 or IPv6.
lib_tcp_recv() {
	local __var=$1 ns=$2 addr=$3 port=$4 file=$5 pid
	if command -v socat >/dev/null 2>&1; then
		case $addr in
		*:*) ip netns exec "$ns" timeout 150 socat -u "TCP6-LISTEN:$port,bind=[$addr],reuseaddr" \
			"OPEN:$file,creat,trunc" </dev/null & ;;
		*) ip netns exec "$ns" timeout 150 socat -u "TCP-LISTEN:$port,bind=$addr,reuseaddr" \
			"OPEN:$file,creat,trunc" </dev/null & ;;
		esac
	else
		ip netns exec "$ns" timeout 150 python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1)
c, _ = s.accept()
with open(sys.argv[3], "wb") as f:
    while True:
        b = c.recv(1 << 16)
        if not b: break
        f.write(b)
' "$addr" "$port" "$file" </dev/null &
	fi
	pid=$!
	lib_track_pid "$pid"
	printf -v "$__var" '%s' "$pid"
}

lib_tcp_listening() {
	ip netns exec "$1" ss -Hltn "sport = :$2" 2>/dev/null | grep -q LISTEN
}

# lib_tcp_send NS ADDR PORT FILE TIMEOUT
lib_tcp_send() {
	local ns=$1 addr=$2 port=$3 file=$4 limit=$5
	if command -v socat >/dev/null 2>&1; then
		case $addr in
		*:*) ip netns exec "$ns" timeout "$limit" socat -u "OPEN:$file" "TCP6:[$addr]:$port" ;;
		*) ip netns exec "$ns" timeout "$limit" socat -u "OPEN:$file" "TCP:$addr:$port" ;;
		esac
	else
		ip netns exec "$ns" timeout "$limit" python3 -c '
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])))
with open(sys.argv[3], "rb") as f:
    while True:
        b = f.read(1 << 16)
        if not b: break
        c.sendall(b)
c.shutdown(socket.SHUT_WR)
' "$addr" "$port" "$file"
	fi
}

# ---- TAP-ish results.
LIB_TEST_N=0
LIB_PASSED=0
LIB_FAILED=0

lib_ok() {
	LIB_TEST_N=$((LIB_TEST_N + 1))
	LIB_PASSED=$((LIB_PASSED + 1))
	echo "ok $LIB_TEST_N - $*"
}

lib_not_ok() {
	LIB_TEST_N=$((LIB_TEST_N + 1))
	LIB_FAILED=$((LIB_FAILED + 1))
	echo "not ok $LIB_TEST_N - $*"
}

# lib_check DESCRIPTION CMD...: ok if CMD succeeds.
lib_check() {
	local desc=$1
	shift
	if "$@"; then lib_ok "$desc"; else lib_not_ok "$desc"; fi
}

lib_summary() {
	echo "# $LIB_PASSED passed, $LIB_FAILED failed"
	[ "$LIB_FAILED" -eq 0 ]
}

# ---- cleanup: our processes first (a live process keeps a namespace alive), then the
# namespaces, then the temp dir. Safe to call twice.
lib_cleanup() {
	local pid ns
	for pid in "${LIB_PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${LIB_PIDS[@]}"; do
		# Bounded: anything still there after ~2 s gets SIGKILL.
		for _ in 1 2 3 4 5 6 7 8 9 10; do
			lib_pid_alive "$pid" || break
			sleep 0.2
		done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	LIB_PIDS=()
	for ns in "${LIB_NAMESPACES[@]}"; do
		ip netns del "$ns" 2>/dev/null
	done
	LIB_NAMESPACES=()
	if [ -n "$LIB_TMPDIR" ] && [ -d "$LIB_TMPDIR" ] && [ -z "${KEEP_TMPDIR:-}" ]; then
		rm -rf "$LIB_TMPDIR"
	elif [ -n "$LIB_TMPDIR" ] && [ -d "$LIB_TMPDIR" ]; then
		lib_log "kept $LIB_TMPDIR (KEEP_TMPDIR set)"
	fi
	LIB_TMPDIR=
}

# Installs the cleanup for normal exit and for the signals make/ctrl-c send.
lib_trap_cleanup() {
	trap 'lib_cleanup' EXIT
	trap 'lib_cleanup; exit 130' INT
	trap 'lib_cleanup; exit 143' TERM
	trap 'lib_cleanup; exit 129' HUP
}

# ---------------------------------------------------------------- coordinator tests
# Used by coord-stun.sh, coord-join.sh, coord-badinput.sh and contrib/bench/coord-scale.sh.

# Sets MESHCOORD: $MESHCOORD, else the build tree's coord/meshcoord.
lib_find_meshcoord() {
	local here
	here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
	: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
	: "${top_builddir:=$top_srcdir}"
	: "${MESHCOORD:=$top_builddir/coord/meshcoord}"
	[ -x "$MESHCOORD" ] || lib_die "meshcoord binary not found at $MESHCOORD (build it with make, or set MESHCOORD=)"
}

# Sets FAKENODE: $FAKENODE, else the one make check built (it links the core library, so
# unlike udpinject it is not compiled here).
lib_find_fakenode() {
	local here
	here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
	: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
	: "${top_builddir:=$top_srcdir}"
	: "${FAKENODE:=$top_builddir/tests/tools/fakenode}"
	[ -x "$FAKENODE" ] || lib_die "fakenode not found at $FAKENODE (make check builds it; or set FAKENODE=)"
}

# lib_hub_create NS: a namespace holding one bridge (br0), the "switch" of a lab LAN.
lib_hub_create() {
	lib_ns_create "$1"
	ip -n "$1" link add name br0 type bridge || lib_die "cannot create a bridge in $1"
	ip -n "$1" link set br0 up
}

# lib_hub_attach HUB NS IFNAME ADDR/LEN: plugs NS into the hub's bridge through a veth
# pair; IFNAME in NS gets ADDR. The hub's end is named after the interface count, so names
# only need to be unique inside the hub.
LIB_HUB_PORTS=0
lib_hub_attach() {
	local hub=$1 ns=$2 ifname=$3 addr=$4 port
	LIB_HUB_PORTS=$((LIB_HUB_PORTS + 1))
	port=port$LIB_HUB_PORTS
	ip link add name "$port" netns "$hub" type veth peer name "$ifname" netns "$ns" ||
		lib_die "cannot plug $ns into hub $hub"
	ip -n "$hub" link set "$port" master br0
	ip -n "$hub" link set "$port" up
	[ -n "$addr" ] && ip -n "$ns" addr add "$addr" dev "$ifname"
	ip -n "$ns" link set "$ifname" up
}

# lib_nat_masquerade NS WAN_IF [fully-random]: NS forwards and masquerades what leaves
# through WAN_IF (nftables), and drops unsolicited packets to itself from that side, as a
# home router does (see the NAT lab in DESIGN.md).
lib_nat_masquerade() {
	local ns=$1 wan=$2 flags=${3:-}
	ip netns exec "$ns" sysctl -q -w net.ipv4.ip_forward=1 || lib_die "cannot enable forwarding in $ns"
	ip netns exec "$ns" nft -f - <<-NFT || lib_die "nft rules failed in $ns"
	table ip labnat {
		chain post {
			type nat hook postrouting priority srcnat; policy accept;
			oifname "$wan" masquerade $flags
		}
		chain input {
			type filter hook input priority filter; policy accept;
			iifname "$wan" ct state established,related accept
			iifname "$wan" drop
		}
	}
	NFT
}

# lib_coord_write_config FILE LISTEN STUN_LISTEN PUBLIC_ADDRESS STATE_DIR
lib_coord_write_config() {
	mkdir -p "$5" && chmod 700 "$5"
	cat >"$1" <<-EOF2
	listen: $2
	stun_listen: $3
	public_address: $4
	state_dir: $5
	EOF2
}

# lib_coord_start VAR NS CONFIG LOG [LEVEL]: meshcoord serve in NS (or in the caller's
# namespace when NS is "-"), stderr appended to LOG, PID (meshcoord's own) in VAR.
lib_coord_start() {
	local __var=$1 ns=$2 conf=$3 log=$4 level=${5:-info} pid
	if [ "$ns" = - ]; then
		env -u JOURNAL_STREAM "$MESHCOORD" serve -c "$conf" --log-level "$level" </dev/null >>"$log" 2>&1 &
	else
		ip netns exec "$ns" env -u JOURNAL_STREAM "$MESHCOORD" serve -c "$conf" --log-level "$level" \
			</dev/null >>"$log" 2>&1 &
	fi
	pid=$!
	lib_track_pid "$pid"
	printf -v "$__var" '%s' "$pid"
}

# lib_coord_wait_up PID NS PORT: meshcoord runs and listens on TCP PORT (10 s at most).
lib_coord_wait_up() {
	local pid=$1 ns=$2 port=$3
	if [ "$ns" = - ]; then
		lib_wait_for 10 bash -c "ss -Hltn 'sport = :$port' | grep -q LISTEN" && lib_pid_alive "$pid"
	else
		lib_wait_for 10 lib_tcp_listening "$ns" "$port" && lib_pid_alive "$pid"
	fi
}

# lib_coord_authkey CONFIG [ARGS...]: prints a new join key (the admin command needs no
# network: it only opens the registry).
lib_coord_authkey() {
	local conf=$1
	shift
	"$MESHCOORD" authkey create "$@" -c "$conf" 2>/dev/null | grep -m 1 '^mshjoin1_'
}

# lib_meshd_start_args VAR NS HOSTNAME CONFIG LOG LEVEL [MESHD_ARGS...]: like lib_meshd_start,
# with extra arguments for 'meshd up' (e.g. --join KEY) and its own host name (a UTS
# namespace: the coordinator names nodes after their host names). HOSTNAME "-" keeps the
# machine's. unshare and sh exec, so the PID is still meshd's own.
lib_meshd_start_args() {
	local __var=$1 ns=$2 host=$3 conf=$4 log=$5 level=$6 pid
	shift 6
	if [ "$host" = - ]; then
		ip netns exec "$ns" env -u JOURNAL_STREAM "$MESHD" up -c "$conf" --log-level "$level" "$@" \
			</dev/null >>"$log" 2>&1 &
	else
		# shellcheck disable=SC2016
		ip netns exec "$ns" unshare --uts sh -c 'hostname "$0" && exec env -u JOURNAL_STREAM "$@"' "$host" \
			"$MESHD" up -c "$conf" --log-level "$level" "$@" </dev/null >>"$log" 2>&1 &
	fi
	pid=$!
	lib_track_pid "$pid"
	printf -v "$__var" '%s' "$pid"
}

# lib_iface_ipv4 NS IFACE: the first IPv4 address of IFACE, without the prefix length.
lib_iface_ipv4() {
	ip -n "$1" -4 -o addr show dev "$2" 2>/dev/null | awk '{ split($4, a, "/"); print a[1]; exit }'
}

# lib_iface_addrs NS IFACE: every global address of IFACE with its length, sorted, one line.
lib_iface_addrs() {
	ip -n "$1" -o addr show dev "$2" scope global 2>/dev/null | awk '{ print $4 }' | sort | tr '\n' ' '
}

# lib_log_count FILE ERE: how many lines of FILE match (0 if none or no file).
lib_log_count() {
	local n
	n=$(grep -c -E -e "$2" "$1" 2>/dev/null)
	echo "${n:-0}"
}

# lib_wait_exit VAR PID SECONDS: waits for our child PID to end and stores its exit status
# in VAR. Returns non-zero (VAR untouched) if it is still running after SECONDS. Not from a
# $(...) subshell: only the shell that started PID can collect its status.
lib_wait_exit() {
	# (__ names: a local called like the caller's VAR would hide it from printf -v)
	local __var=$1 __pid=$2 __rc
	lib_wait_for "$3" bash -c "! [ -r /proc/$__pid/status ] || grep -q '^State:[[:space:]]*Z' /proc/$__pid/status" ||
		return 1
	wait "$__pid" 2>/dev/null
	__rc=$?
	lib_untrack_pid "$__pid"
	printf -v "$__var" '%s' "$__rc"
}
