# Shared by the benchmarks in contrib/bench: option parsing, the build tree, iperf3 and ping
# results, a process's CPU time and RSS, and a saved peer map (coordinator.state) of N peers.
# Source it after tests/netns/lib.sh:  . "$here/benchlib.sh"
#
# shellcheck shell=bash

# ---------------------------------------------------------------- options
# Each script declares its options, then parses:
#   bench_opt NAME VAR KIND [MIN MAX] HELP
# KIND: num (a whole number in MIN..MAX), str (any value; str:WORD names it WORD in the
# usage), flag
#   bench_parse_args "$@"
# --NAME VALUE and --NAME=VALUE both work; a flag sets VAR to "yes"; -h/--help prints the
# usage (BENCH_USAGE, then one line per option) and exits 0; anything else exits 2.
BENCH_OPTS=()
BENCH_USAGE=
bench_opt() {
	local name=$1 var=$2 kind=$3 min='' max='' help
	if [ "$kind" = num ]; then
		min=$4 max=$5 help=$6
	else
		help=$4
	fi
	BENCH_OPTS+=("$name|$var|$kind|$min|$max|$help")
}

bench_usage() {
	local spec name var kind min max help arg
	echo "usage: ${BENCH_USAGE:-$0 [options]}"
	for spec in "${BENCH_OPTS[@]}"; do
		IFS='|' read -r name var kind min max help <<<"$spec"
		case $kind in
		num) arg=" N" help="$help ($min-$max, default ${!var})" ;;
		str:*) arg=" ${kind#str:}" ;;
		str) arg=" VALUE" ;;
		*) arg= ;;
		esac
		printf '  %-24s %s\n' "--$name$arg" "$help"
	done
}

# bench_num_arg NAME VALUE MIN MAX: VALUE is a whole number in MIN..MAX, else exit 2.
bench_num_arg() {
	case $2 in
	'' | *[!0-9]*) echo "$1: '$2' is not a whole number" >&2; exit 2 ;;
	esac
	if [ "${#2}" -gt 9 ] || [ "$2" -lt "$3" ] || [ "$2" -gt "$4" ]; then
		echo "$1: $2 is outside $3..$4" >&2
		exit 2
	fi
}

bench_parse_args() {
	local arg want spec name var kind min max help val found
	while [ $# -gt 0 ]; do
		arg=$1
		case $arg in
		-h | --help) bench_usage; exit 0 ;;
		--*) ;;
		*) bench_usage >&2; exit 2 ;;
		esac
		want=${arg%%=*}
		want=${want#--}
		found=
		for spec in "${BENCH_OPTS[@]}"; do
			IFS='|' read -r name var kind min max help <<<"$spec"
			[ "$name" = "$want" ] || continue
			found=yes
			if [ "$kind" = flag ]; then
				[ "$arg" = "--$name" ] || { echo "--$name takes no value" >&2; exit 2; }
				printf -v "$var" yes
				shift
				break
			fi
			if [ "$arg" != "--$name" ]; then
				val=${arg#*=}
				shift
			else
				[ $# -ge 2 ] || { echo "--$name needs a value" >&2; bench_usage >&2; exit 2; }
				val=$2
				shift 2
			fi
			[ "$kind" = num ] && bench_num_arg "--$name" "$val" "$min" "$max"
			printf -v "$var" '%s' "$val"
			break
		done
		[ -n "$found" ] || { echo "unknown option: $arg" >&2; bench_usage >&2; exit 2; }
	done
}

# ---------------------------------------------------------------- the build tree
# Run from a build directory (in or out of tree) or from the source tree: if the binaries are
# not next to the sources but in the current directory, that is the build tree.
bench_find_builddir() {
	local here
	here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
	: "${top_srcdir:=$(cd "$here/../.." && pwd)}"
	if [ -z "${top_builddir:-}" ] && [ ! -x "$top_srcdir/src/meshd/meshd" ] && [ -x ./src/meshd/meshd ]; then
		top_builddir=$(pwd)
	fi
	: "${top_builddir:=$top_srcdir}"
}

# One line each: when, the machine, the tools.
bench_header() {
	echo "$(date -u +%Y-%m-%dT%H:%MZ), kernel $(uname -r), $(nproc) CPU(s): $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "meshd: $("$MESHD" --version 2>/dev/null | head -n 1); $(iperf3 --version | head -n 1)"
}

# ---------------------------------------------------------------- iperf3, ping
# bench_iperf_mbit FILE: the receiver's view of a TCP test (iperf3 -J), in Mbit/s.
bench_iperf_mbit() {
	awk -F: '/"sum_received"/ { f = 1 }
		f && /"bits_per_second"/ { v = $2; gsub(/[^0-9.eE+-]/, "", v); printf "%.0f\n", v / 1e6; exit }' "$1"
}

# bench_iperf_field FILE FIELD: a number from the receiver's summary (end.sum_received) of an
# iperf3 -J test: bytes, seconds, packets, lost_packets...; empty if the test failed.
bench_iperf_field() {
	awk -F: -v want="\"$2\"" '/"sum_received"/ { f = 1 }
		f { k = $1; gsub(/[[:space:]]/, "", k) }
		f && k == want { v = $2; gsub(/[^0-9.eE+-]/, "", v); print v; exit }' "$1"
}

# bench_ping_avg NS ADDR COUNT: the average RTT in ms of COUNT pings 0.2 s apart, or empty.
bench_ping_avg() {
	ip netns exec "$1" ping -n -q -c "$3" -i 0.2 -W 1 "$2" 2>/dev/null |
		sed -n 's|^rtt [^=]*= [0-9.]*/\([0-9.]*\)/.*|\1|p'
}

# ---------------------------------------------------------------- processes
bench_rss_kb() { # PID: VmRSS in KiB
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null
}

# bench_cpu_ticks PID...: utime + stime of the processes (all their threads), in clock ticks.
bench_cpu_ticks() {
	local pid sum=0 t
	for pid in "$@"; do
		# The command name may hold spaces: the fields start after the last ')'.
		t=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{ print $12 + $13 }')
		sum=$((sum + ${t:-0}))
	done
	echo "$sum"
}

# bench_steady_rss PID SETTLE MAX_WAIT STEADY_KIB: sets BENCH_RSS to PID's RSS in KiB once it
# is steady: SETTLE seconds after now, then until two samples a second apart agree within
# STEADY_KIB, at most MAX_WAIT seconds longer (BENCH_RSS_WAITED: the seconds it took). A slow
# start with a large map would otherwise be caught half way. BENCH_RSS is "-" if PID died.
bench_steady_rss() {
	local pid=$1 prev cur waited=0
	sleep "$2"
	cur=$(bench_rss_kb "$pid")
	while [ -n "$cur" ] && [ "$waited" -lt "$3" ]; do
		prev=$cur
		sleep 1
		waited=$((waited + 1))
		cur=$(bench_rss_kb "$pid")
		[ -n "$cur" ] && [ $((cur > prev ? cur - prev : prev - cur)) -le "$4" ] && break
	done
	BENCH_RSS=${cur:--}
	BENCH_RSS_WAITED=$(($2 + waited))
}

# ---------------------------------------------------------------- a saved peer map
# bench_write_state DIR N SELF_NAME SELF_V4/LEN SELF_V6/LEN [PEER_LINE...]: DIR/coordinator.state,
# the map a node keeps across restarts, registered as SELF with the given PEER_LINEs ("peer KEY
# NAME V4 V6 ENDPOINT", e.g. the real other node) and N more peers: random keys, overlay
# addresses from 100.64.1.0 and fd7a:115c:a1e0::1:0 up, one TEST-NET-3 endpoint each
# (203.0.113.x:51820, nothing answers). The coordinator is 127.0.0.1:1: nothing listens there,
# so the node keeps retrying and the map stays as saved.
bench_write_state() {
	local dir=$1 n=$2 name=$3 v4=$4 v6=$5
	shift 5
	mkdir -p "$dir" && chmod 700 "$dir" || return 1
	python3 - "$dir" "$n" "$name" "$v4" "$v6" "$@" <<-'EOF'
	import base64, ipaddress, os, sys
	d, n, name, v4self, v6self = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
	k = lambda: base64.b64encode(os.urandom(32)).decode()
	v4 = int(ipaddress.IPv4Address("100.64.1.0"))
	v6 = int(ipaddress.IPv6Address("fd7a:115c:a1e0::1:0"))
	path = os.path.join(d, "coordinator.state")
	with open(path, "w") as f:
	    f.write("meshd-state 1\n")
	    f.write("coordinator 127.0.0.1:1 %s\n" % k())
	    f.write("self %s %s %s\n" % (name, v4self, v6self))
	    for line in sys.argv[6:]:
	        f.write(line + "\n")
	    for i in range(n):
	        f.write("peer %s p%d %s %s 203.0.113.%d:51820\n" % (k(), i, ipaddress.IPv4Address(v4 + i),
	                ipaddress.IPv6Address(v6 + i), i % 250 + 1))
	os.chmod(path, 0o600)
	EOF
}

# bench_state_node_config FILE IFACE PORT STATE_DIR: a config for a node that lives on its saved
# map (its key is STATE_DIR/node.key).
bench_state_node_config() {
	cat >"$1" <<-EOF
	interface: $2
	listen_port: $3
	state_dir: $4
	control_socket: ${1%.yaml}.sock
	EOF
}

# bench_idle_rss N: starts 'meshd up' in a namespace of its own (only lo) from a saved map of N
# peers and sets BENCH_RSS to its steady RSS in KiB ("-" if it could not be measured). Uses
# T (a temp dir) and BENCH_SETTLE_S, BENCH_MAX_WAIT_S, BENCH_STEADY_KIB. Not in a $(...)
# subshell: the PIDs and namespaces it makes must stay known to the cleanup.
BENCH_SETTLE_S=5
BENCH_MAX_WAIT_S=60
BENCH_STEADY_KIB=256
bench_idle_rss() {
	local n=$1 dir=$T/idle$1 ns=bidle$1-$$ mpid
	BENCH_RSS=-
	bench_write_state "$dir/state" "$n" bench 100.64.0.1/10 fd7a:115c:a1e0::1/48 || return 1
	bench_state_node_config "$dir/node.yaml" bench0 0 "$dir/state"
	lib_ns_create "$ns"
	lib_meshd_start mpid "$ns" "$dir/node.yaml" "$dir/meshd.log" warn
	if ! lib_meshd_wait_up "$mpid" "$ns" bench0; then
		lib_log "N=$n: meshd did not come up:"
		tail -n 5 "$dir/meshd.log" | sed 's/^/#   /' >&2
		lib_stop_pid "$mpid"
		lib_ns_delete "$ns"
		return 1
	fi
	bench_steady_rss "$mpid" "$BENCH_SETTLE_S" "$BENCH_MAX_WAIT_S" "$BENCH_STEADY_KIB"
	[ "$BENCH_RSS" = - ] || lib_log "N=$n: RSS $BENCH_RSS KiB, steady after $BENCH_RSS_WAITED s"
	# Where the RSS is (per mapping), for the one who has to shrink it.
	[ -z "${BENCH_SMAPS_DIR:-}" ] || cp "/proc/$mpid/smaps" "$BENCH_SMAPS_DIR/smaps.$n" 2>/dev/null || true
	lib_pid_alive "$mpid" || {
		lib_log "N=$n: meshd died:"
		tail -n 5 "$dir/meshd.log" | sed 's/^/#   /' >&2
		BENCH_RSS=-
	}
	lib_stop_pid "$mpid" 10
	lib_ns_delete "$ns"
}
