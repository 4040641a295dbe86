#!/bin/sh
# Installs what meshd needs on Debian or Ubuntu, from the distribution's own archive.
#
#   contrib/install-deps.sh             build, make check, the netns lab and benchmarks
#   contrib/install-deps.sh --minimal   only what ./autogen.sh && ./configure && make need
#   contrib/install-deps.sh --dry-run   show what apt would install; change nothing
set -eu

prog=${0##*/}

# Building: autogen.sh (autoconf, automake; pkg.m4 comes with pkg-config), configure's
# pkg-config checks, scdoc for the man pages (docs/man/*.scd), and git/ca-certificates to
# fetch the source.
build_pkgs="build-essential autoconf automake libtool pkg-config scdoc
	libsodium-dev libb2-dev libssl-dev libmnl-dev libnftables-dev libyaml-dev libsqlite3-dev libsystemd-dev git ca-certificates"
# make check and the network-namespace lab: cmocka for the unit tests, clang for the
# libFuzzer targets, ip/ping/nft/tcpdump to build and watch the namespaces, sha256sum
# (coreutils), unshare/nsenter/setpriv (util-linux), ps/pgrep/sysctl (procps), socat for
# the 100 MiB transfer in the two-node test, stun-client (the "stun" program) and coturn
# (turnutils_stunclient, an RFC 5389 client) to check that meshcoord answers ordinary STUN
# clients, conntrack for the NAT lab's router resets, python3 with python3-nacl for
# tests/tools/check-golden.sh (the unit tests' golden vectors) and for the stand-in systemd
# notify socket of tests/netns/readiness.sh, wireguard-go and wireguard-tools
# (wg) as the stock WireGuard peer of tests/netns/wg-interop.sh (the benchmarks use them too),
# dig (bind9-dnsutils) to ask the mesh DNS service in tests/netns/dns.sh, and dbus-daemon,
# python3-dbus and python3-gi for its stand-in systemd-resolved on a private bus, and
# qrencode for 'meshcoord satellite add --qr' (tests/netns/satellite.sh checks the QR code).
# CI counts a check skipped for a missing tool as a failure, so every tool a test uses belongs here.
test_pkgs="libcmocka-dev clang iproute2 iputils-ping nftables tcpdump procps
	coreutils util-linux socat stun-client coturn conntrack python3 python3-nacl
	wireguard-go wireguard-tools bind9-dnsutils dbus-daemon python3-dbus python3-gi qrencode"
# Benchmarks: the load generator (the userspace VPN we measure against is in test_pkgs). A
# release that lacks one of these gets a warning, not a failure.
bench_pkgs="iperf3"

usage() {
	cat <<EOF
usage: $prog [--minimal] [--dry-run]
Installs meshd's build, test and benchmark dependencies with apt-get (Debian, Ubuntu).
  --minimal   only the packages needed to build meshd
  --dry-run   print the package list and simulate the installation (no root needed)
EOF
}

die() {
	printf '%s: %s\n' "$prog" "$*" >&2
	exit 1
}

warn() {
	printf '%s: warning: %s\n' "$prog" "$*" >&2
}

minimal=no
dry_run=no
for arg in "$@"; do
	case $arg in
	--minimal) minimal=yes ;;
	--dry-run | -n) dry_run=yes ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done

[ -r /etc/os-release ] ||
	die "cannot tell which distribution this is (no /etc/os-release); this script knows Debian and Ubuntu only"
# shellcheck source=/dev/null
distro=$(. /etc/os-release && printf '%s %s' "${ID:-}" "${ID_LIKE:-}")
case " $distro " in
*" debian "* | *" ubuntu "*) ;;
*)
	# shellcheck disable=SC2086 # unquoted to fold the lists onto one line
	die "this is '${distro% }', not Debian or Ubuntu; install the equivalents of:" $build_pkgs $test_pkgs
	;;
esac
command -v apt-get >/dev/null 2>&1 || die "apt-get not found, though /etc/os-release says Debian/Ubuntu"

if [ "$dry_run" = no ] && [ "$(id -u)" -ne 0 ]; then
	die "installing packages needs root: run 'sudo $0${*:+ $*}' (or --dry-run to only look)"
fi

export DEBIAN_FRONTEND=noninteractive

if [ "$dry_run" = no ]; then
	echo "$prog: apt-get update"
	apt-get update
fi

available() {
	apt-cache show --no-all-versions "$1" >/dev/null 2>&1
}

# The list to install, from required and optional groups. Missing required packages stop
# the script before anything is installed; missing optional ones are reported and skipped.
install=
missing=
add_required() {
	for p in "$@"; do
		if available "$p"; then install="$install $p"; else missing="$missing $p"; fi
	done
}
add_optional() {
	for p in "$@"; do
		if available "$p"; then install="$install $p"; else warn "$p is not in this release's archive; skipping it"; fi
	done
}

# shellcheck disable=SC2086 # the lists are meant to split on whitespace
add_required $build_pkgs
if [ "$minimal" = no ]; then
	# shellcheck disable=SC2086
	add_required $test_pkgs
	# shellcheck disable=SC2086
	add_optional $bench_pkgs
	# --no-install-recommends drops clang's sanitizer and libFuzzer runtimes, which
	# Debian 12 and newer Ubuntu ship separately as libclang-rt-<version>-dev.
	clang_version=$(apt-cache depends clang 2>/dev/null |
		sed -n 's/^ *Depends: clang-\([0-9][0-9]*\).*/\1/p' | head -n 1)
	if [ -n "$clang_version" ] && available "libclang-rt-$clang_version-dev"; then
		install="$install libclang-rt-$clang_version-dev"
	fi
fi

[ -z "$missing" ] ||
	die "not available from apt (run apt-get update, or enable the main/universe components):$missing"

echo "$prog: installing:"
for p in $install; do
	echo "  $p"
done

if [ "$dry_run" = yes ]; then
	# shellcheck disable=SC2086
	apt-get install -s -y --no-install-recommends $install
	exit 0
fi
# shellcheck disable=SC2086
apt-get install -y --no-install-recommends $install

# We want coturn's client only: its package also enables a TURN server on the host.
if [ "$minimal" = no ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
	systemctl disable --now coturn.service >/dev/null 2>&1 || true
fi

if [ "$minimal" = no ] && [ ! -c /dev/net/tun ]; then
	warn "/dev/net/tun is missing: meshd and the netns tests need it ('modprobe tun', or pass the device into the container)"
fi
echo "$prog: done"
