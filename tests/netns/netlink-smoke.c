/* Manual check of tun.c and netlink.c against a real kernel. Not built by make: it needs
 * root and creates an interface, so run it only inside a network namespace made for it.
 *
 * Build (from the top of the tree):
 *   gcc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
 *       -Wmissing-prototypes -Wformat=2 -Wno-unused-parameter -Isrc \
 *       -o /tmp/netlink-smoke tests/netns/netlink-smoke.c src/meshd/tun.c \
 *       src/meshd/netlink.c $(pkg-config --cflags --libs libmnl)
 *
 * Run (as root). The program configures mshtest0, prints "ready", keeps the TUN open
 * until its stdin reaches EOF (so `ip` can look), then deletes the link:
 *   ns=mshsmoke$$; dir=$(mktemp -d)
 *   trap 'exec 3>&-; ip netns del $ns 2>/dev/null; rm -rf "$dir"' EXIT
 *   ip netns add $ns && mkfifo "$dir/ctl"
 *   ip netns exec $ns /tmp/netlink-smoke <"$dir/ctl" >"$dir/out" 2>&1 & pid=$!
 *   exec 3>"$dir/ctl"
 *   until grep -q '^ready' "$dir/out" || ! kill -0 $pid 2>/dev/null; do sleep 0.1; done
 *   ip -n $ns addr show dev mshtest0; ip -n $ns route; ip -n $ns -6 route
 *   exec 3>&-; wait $pid; echo "exit $?"; cat "$dir/out"
 *
 * Error paths of tun_open, each printing "tun_open: <errno name>":
 *   without CAP_NET_ADMIN (expect EPERM):
 *     ip netns exec $ns setpriv --bounding-set=-net_admin /tmp/netlink-smoke tun-only
 *   without /dev/net/tun (expect ENOENT), in a private mount namespace:
 *     ip netns exec $ns unshare -m sh -c \
 *       'mount -t tmpfs none /dev/net && exec /tmp/netlink-smoke tun-only'
 *
 * Addresses are from 100.64.0.0/10 and a ULA prefix only. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "meshd/netlink.h"
#include "meshd/tun.h"

static const char smoke_ifname[] = "mshtest0";
static int failures;

static const char *err_name(int rc)
{
	const char *name;

	if (rc >= 0)
		return "ok";
	name = strerrorname_np(-rc);
	return name ? name : "unknown errno";
}

static void check(const char *what, int rc, int want)
{
	bool ok = want == 0 ? rc >= 0 : rc == want;

	printf("%s %s: %d (%s)\n", ok ? "ok  " : "FAIL", what, rc, err_name(rc));
	if (!ok)
		failures++;
}

/* Builds a prefix from a literal; the smoke test has no use for ipaddr.c's parser. */
static struct ip_prefix prefix(const char *addr, unsigned int bits)
{
	struct ip_prefix p;

	memset(&p, 0, sizeof(p));
	p.family = strchr(addr, ':') ? AF_INET6 : AF_INET;
	p.bits = (uint8_t)bits;
	if (inet_pton(p.family, addr, p.addr) != 1) {
		fprintf(stderr, "bad literal %s\n", addr);
		p.family = AF_UNSPEC;
	}
	return p;
}

static int tun_only(void)
{
	char name[IFNAMSIZ] = "mshtest0";
	int fd = tun_open(name);

	printf("tun_open: %s\n", err_name(fd));
	if (fd >= 0)
		close(fd);
	return fd >= 0 ? 0 : 1;
}

static void check_tun_names(void)
{
	char too_long[IFNAMSIZ + 4];
	char name[IFNAMSIZ];
	int fd;

	memset(too_long, 'x', sizeof(too_long) - 1);
	too_long[sizeof(too_long) - 1] = '\0';
	check("tun_open name longer than IFNAMSIZ-1", tun_open(too_long), -EINVAL);

	/* The kernel fills in the template; closing the fd removes the interface. */
	snprintf(name, sizeof(name), "mshtmp%%d");
	fd = tun_open(name);
	check("tun_open template mshtmp%d", fd, 0);
	check("kernel chose mshtmp0", strcmp(name, "mshtmp0") == 0 ? 0 : -EPROTO, 0);
	if (fd >= 0)
		close(fd);
}

static void check_routes(struct netlink *nl, int ifindex)
{
	struct ip_prefix p;

	p = prefix("100.100.0.0", 16);
	check("route 100.100.0.0/16", netlink_add_route(nl, ifindex, &p), 0);
	check("same route again (EEXIST is success)", netlink_add_route(nl, ifindex, &p), 0);
	p = prefix("100.64.0.1", 10);
	check("route 100.64.0.1/10 = kernel prefix route", netlink_add_route(nl, ifindex, &p), 0);
	p = prefix("100.101.2.3", 16);
	check("route 100.101.2.3/16 (host bits cleared)", netlink_add_route(nl, ifindex, &p), 0);
	p = prefix("100.102.7.9", 32);
	check("route 100.102.7.9/32", netlink_add_route(nl, ifindex, &p), 0);
	p = prefix("fd7a:115c:a1e0:1::5", 64);
	check("route fd7a:115c:a1e0:1::5/64 (host bits cleared)",
	      netlink_add_route(nl, ifindex, &p), 0);
	/* Prefix lengths that end inside a byte: expect 100.103.128.0/17 and
	 * fd7a:115c:a1e0:200::/55 in the routing table. */
	p = prefix("100.103.255.1", 17);
	check("route 100.103.255.1/17 (mask inside a byte)", netlink_add_route(nl, ifindex, &p), 0);
	p = prefix("fd7a:115c:a1e0:3ff::1", 55);
	check("route fd7a:115c:a1e0:3ff::1/55 (mask inside a byte)",
	      netlink_add_route(nl, ifindex, &p), 0);

	p = prefix("100.100.0.0", 33);
	check("route /33 refused", netlink_add_route(nl, ifindex, &p), -EINVAL);
	p.family = AF_UNIX;
	check("route of a bad family refused", netlink_add_route(nl, ifindex, &p), -EAFNOSUPPORT);
	p = prefix("100.100.0.0", 16);
	check("route via ifindex 0 refused", netlink_add_route(nl, 0, &p), -EINVAL);
}

static int wait_for_eof(void)
{
	char line[64];

	printf("ready\n");
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin))
		;
	return 0;
}

int main(int argc, char **argv)
{
	char name[IFNAMSIZ];
	struct netlink nl;
	struct ip_prefix p;
	int fd, ifindex, rc;

	if (argc == 2 && strcmp(argv[1], "tun-only") == 0)
		return tun_only();
	if (argc != 1) {
		fprintf(stderr, "usage: %s [tun-only]\n", argv[0]);
		return 2;
	}

	check_tun_names();

	snprintf(name, sizeof(name), "%s", smoke_ifname);
	fd = tun_open(name);
	check("tun_open mshtest0", fd, 0);
	if (fd < 0)
		return 1;
	check("kernel kept the name", strcmp(name, smoke_ifname) == 0 ? 0 : -EPROTO, 0);

	rc = netlink_open(&nl);
	check("netlink_open", rc, 0);
	if (rc < 0)
		return 1;

	ifindex = netlink_link_index(&nl, name);
	check("link index of mshtest0", ifindex, 0);
	if (ifindex < 0)
		return 1;
	check("link index of a missing link", netlink_link_index(&nl, "mshnone0"), -ENODEV);
	check("link index of an over-long name",
	      netlink_link_index(&nl, "mshtoolongname0123"), -EINVAL);

	check("mtu 1420", netlink_set_mtu(&nl, ifindex, 1420), 0);
	check("mtu 20 refused by the kernel", netlink_set_mtu(&nl, ifindex, 20), -EINVAL);

	p = prefix("100.64.0.1", 10);
	check("address 100.64.0.1/10", netlink_add_address(&nl, ifindex, &p), 0);
	check("same address again (replace)", netlink_add_address(&nl, ifindex, &p), 0);
	p = prefix("fd7a:115c:a1e0::1", 64);
	check("address fd7a:115c:a1e0::1/64", netlink_add_address(&nl, ifindex, &p), 0);
	p.bits = 129;
	check("address /129 refused", netlink_add_address(&nl, ifindex, &p), -EINVAL);

	p = prefix("100.100.0.0", 16);
	check("route while the link is down", netlink_add_route(&nl, ifindex, &p), -ENETDOWN);

	check("link up", netlink_set_up(&nl, ifindex), 0);
	check("link up again", netlink_set_up(&nl, ifindex), 0);
	check_routes(&nl, ifindex);

	printf("failures before inspection: %d\n", failures);
	wait_for_eof();

	check("delete link", netlink_delete_link(&nl, ifindex), 0);
	check("link gone", netlink_link_index(&nl, name), -ENODEV);
	check("delete the gone link", netlink_delete_link(&nl, ifindex), -ENODEV);
	close(fd);
	netlink_close(&nl);
	check("request on a closed socket", netlink_set_up(&nl, ifindex), -EBADF);

	printf("failures: %d\n", failures);
	return failures ? 1 : 0;
}
