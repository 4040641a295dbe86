/* rtnetlink requests for the interface meshd owns: one request, one acknowledgement.
 *
 * Every request carries NLM_F_ACK and we read until the kernel's ack (or error) for
 * exactly that sequence number and our port id, so a call returns only once the change
 * is in effect and the caller gets the kernel's own errno. Nothing here logs or exits:
 * the caller knows which interface and which address it was, and says so. */
#include "meshd/netlink.h"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdalign.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

enum {
	/* Requests are a header plus a few small attributes; this leaves generous room
	 * and every attribute goes through an mnl_attr_put_*_check that reports overflow. */
	NETLINK_REQUEST_LEN = 1024,
	/* Replies must fit in one read or the kernel truncates them (recvfrom then fails
	 * with ENOSPC). A link reply without statistics is ~1-2 KB; an error ack echoes
	 * our request. 32 KB is libmnl's own recommendation for receive buffers. */
	NETLINK_RECV_LEN = 32768,
	/* Routes we add carry this protocol number so they can be told apart from the
	 * kernel's and an administrator's (`ip route show proto 77`, or name it in
	 * /etc/iproute2/rt_protos.d/). The kernel does not interpret values above
	 * RTPROT_STATIC; 77 is unassigned in linux/rtnetlink.h and iproute2's list. */
	NETLINK_RTPROT_MESHD = 77,
	IPV4_ADDR_LEN = 4,
	IPV6_ADDR_LEN = 16,
};

int netlink_open(struct netlink *nl)
{
	int err;

	memset(nl, 0, sizeof(*nl));
	/* SOCK_CLOEXEC so the route socket is not inherited by anything we spawn. */
	nl->sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!nl->sock)
		return -errno;
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		mnl_socket_close(nl->sock);
		nl->sock = NULL;
		return err;
	}
	nl->portid = mnl_socket_get_portid(nl->sock);
	/* Any start works; a time-based one keeps sequence numbers of successive runs
	 * apart in `nlmon` captures. */
	nl->seq = (uint32_t)time(NULL);
	return 0;
}

void netlink_close(struct netlink *nl)
{
	if (nl->sock)
		mnl_socket_close(nl->sock);
	nl->sock = NULL;
}

/* Sends one request (the caller has filled in type, flags and payload) and waits for
 * the acknowledgement matching its sequence number and our port id. Data messages
 * before the ack go to cb (may be NULL). Returns 0 or -errno, the kernel's error
 * from the nlmsgerr when it refused the request. */
int netlink_request(struct netlink *nl, struct nlmsghdr *nlh, mnl_cb_t cb, void *data)
{
	alignas(struct nlmsghdr) char buf[NETLINK_RECV_LEN];
	unsigned int seq;
	ssize_t n;
	int ret;

	if (!nl->sock)
		return -EBADF;
	seq = ++nl->seq;
	nlh->nlmsg_seq = seq;
	nlh->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;

	if (mnl_socket_sendto(nl->sock, nlh, nlh->nlmsg_len) < 0)
		return -errno;

	for (;;) {
		n = mnl_socket_recvfrom(nl->sock, buf, sizeof(buf));
		if (n < 0) {
			/* Giving up on EINTR would leave our ack queued, and the next request
			 * would then see a stale sequence number. */
			if (errno == EINTR)
				continue;
			return -errno;
		}
		errno = 0;
		ret = mnl_cb_run(buf, (size_t)n, seq, nl->portid, cb, data);
		if (ret == MNL_CB_STOP)
			return 0; /* the ack with error 0 */
		if (ret < 0)
			return errno ? -errno : -EPROTO;
		/* MNL_CB_OK: a data message came first; the ack is still to come. */
	}
}

/* Starts a request in buf; the caller adds its zeroed family header next. */
struct nlmsghdr *netlink_start(char *buf, uint16_t type, uint16_t flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);

	nlh->nlmsg_type = type;
	nlh->nlmsg_flags = flags;
	return nlh;
}

/* Address length for the prefix's family, or -errno if the prefix is not one we can
 * hand to the kernel. */
static int prefix_addr_len(const struct ip_prefix *p)
{
	switch (p->family) {
	case AF_INET:
		return p->bits <= IPV4_ADDR_LEN * 8 ? IPV4_ADDR_LEN : -EINVAL;
	case AF_INET6:
		return p->bits <= IPV6_ADDR_LEN * 8 ? IPV6_ADDR_LEN : -EINVAL;
	default:
		return -EAFNOSUPPORT;
	}
}

/* The prefix's address with the host bits cleared: IPv4 refuses a route whose
 * destination has host bits set (EINVAL), and a masked one is what we mean anyway. */
static void prefix_network(const struct ip_prefix *p, size_t addr_len, uint8_t *out)
{
	size_t i;

	memcpy(out, p->addr, addr_len);
	for (i = 0; i < addr_len; i++) {
		size_t kept = p->bits > i * 8 ? p->bits - i * 8 : 0;

		if (kept < 8)
			out[i] &= (uint8_t)(0xff00u >> kept);
	}
}

static int link_index_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct ifinfomsg *ifi;
	int *index = data;

	if (nlh->nlmsg_type != RTM_NEWLINK)
		return MNL_CB_OK;
	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifi)) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	ifi = mnl_nlmsg_get_payload(nlh);
	if (ifi->ifi_index <= 0) {
		errno = EBADMSG;
		return MNL_CB_ERROR;
	}
	*index = ifi->ifi_index;
	return MNL_CB_OK;
}

/* RTM_GETLINK by name rather than if_nametoindex(): it goes through the same socket,
 * so it answers for the same network namespace as every other call here, and the
 * kernel's -ENODEV comes back unchanged. */
int netlink_link_index(struct netlink *nl, const char *ifname)
{
	alignas(struct nlmsghdr) char buf[NETLINK_REQUEST_LEN];
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;
	int index = 0, err;

	if (strnlen(ifname, IFNAMSIZ) >= IFNAMSIZ || ifname[0] == '\0')
		return -EINVAL;
	nlh = netlink_start(buf, RTM_GETLINK, 0);
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	if (!mnl_attr_put_strz_check(nlh, sizeof(buf), IFLA_IFNAME, ifname) ||
	    /* We only want the index: skip the statistics, the bulk of a link reply. */
	    !mnl_attr_put_u32_check(nlh, sizeof(buf), IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS))
		return -EMSGSIZE;

	err = netlink_request(nl, nlh, link_index_cb, &index);
	if (err < 0)
		return err;
	return index > 0 ? index : -EPROTO; /* acked without a link reply */
}

/* A RTM_SETLINK for ifindex with no attributes yet. RTM_SETLINK rather than
 * RTM_NEWLINK: it can only modify, never create, which is all we mean. */
static struct nlmsghdr *link_set_start(char *buf, int ifindex, struct ifinfomsg **ifi)
{
	struct nlmsghdr *nlh = netlink_start(buf, RTM_SETLINK, 0);

	*ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(**ifi));
	(*ifi)->ifi_family = AF_UNSPEC;
	(*ifi)->ifi_index = ifindex;
	return nlh;
}

int netlink_set_mtu(struct netlink *nl, int ifindex, unsigned int mtu)
{
	alignas(struct nlmsghdr) char buf[NETLINK_REQUEST_LEN];
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;

	if (ifindex <= 0)
		return -EINVAL;
	/* The range check is the kernel's (tun takes 68..65535); it answers -EINVAL. Note
	 * that below 1280 it also removes IPv6 from the interface. */
	nlh = link_set_start(buf, ifindex, &ifi);
	if (!mnl_attr_put_u32_check(nlh, sizeof(buf), IFLA_MTU, mtu))
		return -EMSGSIZE;
	return netlink_request(nl, nlh, NULL, NULL);
}

int netlink_set_up(struct netlink *nl, int ifindex)
{
	alignas(struct nlmsghdr) char buf[NETLINK_REQUEST_LEN];
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;

	if (ifindex <= 0)
		return -EINVAL;
	nlh = link_set_start(buf, ifindex, &ifi);
	/* ifi_change limits the update to IFF_UP; every other flag keeps its value. */
	ifi->ifi_flags = IFF_UP;
	ifi->ifi_change = IFF_UP;
	return netlink_request(nl, nlh, NULL, NULL);
}

int netlink_add_address(struct netlink *nl, int ifindex, const struct ip_prefix *addr)
{
	alignas(struct nlmsghdr) char buf[NETLINK_REQUEST_LEN];
	struct nlmsghdr *nlh;
	struct ifaddrmsg *ifa;
	int alen;

	if (ifindex <= 0)
		return -EINVAL;
	alen = prefix_addr_len(addr);
	if (alen < 0)
		return alen;

	/* NLM_F_REPLACE: adding an address the interface already has succeeds (as with
	 * `ip addr replace`), so a restart or a repeated call is not an error. */
	nlh = netlink_start(buf, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE);
	ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	ifa->ifa_family = (uint8_t)addr->family;
	ifa->ifa_prefixlen = addr->bits;
	ifa->ifa_scope = RT_SCOPE_UNIVERSE;
	ifa->ifa_index = (uint32_t)ifindex;
	/* Duplicate address detection would hold a new IPv6 address "tentative" (unusable
	 * as a source) for a second or more, and there is no one to collide with on a
	 * point-to-point TUN. The kernel skips DAD on IFF_NOARP devices such as TUN today;
	 * saying so explicitly keeps that true whatever the device flags become. */
	if (addr->family == AF_INET6)
		ifa->ifa_flags = IFA_F_NODAD;

	/* IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer address on
	 * point-to-point links, and equal to IFA_LOCAL means "no peer": the kernel then
	 * installs the prefix route for addr/bits. */
	if (!mnl_attr_put_check(nlh, sizeof(buf), IFA_LOCAL, (size_t)alen, addr->addr) ||
	    !mnl_attr_put_check(nlh, sizeof(buf), IFA_ADDRESS, (size_t)alen, addr->addr))
		return -EMSGSIZE;
	return netlink_request(nl, nlh, NULL, NULL);
}

/* The link must be up: IPv4 refuses a device route through a down link (-ENETDOWN). */
int netlink_add_route(struct netlink *nl, int ifindex, const struct ip_prefix *dst)
{
	alignas(struct nlmsghdr) char buf[NETLINK_REQUEST_LEN];
	uint8_t network[IP_ADDR_MAX_LEN];
	struct nlmsghdr *nlh;
	struct rtmsg *rtm;
	int alen, err;

	if (ifindex <= 0)
		return -EINVAL;
	alen = prefix_addr_len(dst);
	if (alen < 0)
		return alen;
	prefix_network(dst, (size_t)alen, network);

	/* NLM_F_EXCL so an existing route is reported rather than replaced: it may be the
	 * kernel's prefix route for our own address (100.64.0.1/10 gives 100.64.0.0/10),
	 * or another program's, and either way traffic already goes where we want or it
	 * is not ours to change. EEXIST is then success. */
	nlh = netlink_start(buf, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
	rtm = mnl_nlmsg_put_extra_header(nlh, sizeof(*rtm));
	rtm->rtm_family = (uint8_t)dst->family;
	rtm->rtm_dst_len = dst->bits;
	rtm->rtm_table = RT_TABLE_MAIN;
	rtm->rtm_protocol = NETLINK_RTPROT_MESHD;
	rtm->rtm_type = RTN_UNICAST;
	/* No gateway: the destination is directly on the link. IPv6 does not use the
	 * scope of a route; iproute2 sends "universe" there, and so do we. */
	rtm->rtm_scope = dst->family == AF_INET ? RT_SCOPE_LINK : RT_SCOPE_UNIVERSE;

	/* A zero-length destination is the default route, which carries no RTA_DST. */
	if (dst->bits > 0 &&
	    !mnl_attr_put_check(nlh, sizeof(buf), RTA_DST, (size_t)alen, network))
		return -EMSGSIZE;
	if (!mnl_attr_put_u32_check(nlh, sizeof(buf), RTA_OIF, (uint32_t)ifindex))
		return -EMSGSIZE;

	err = netlink_request(nl, nlh, NULL, NULL);
	return err == -EEXIST ? 0 : err;
}

int netlink_delete_link(struct netlink *nl, int ifindex)
{
	alignas(struct nlmsghdr) char buf[NETLINK_REQUEST_LEN];
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifi;

	if (ifindex <= 0)
		return -EINVAL;
	nlh = netlink_start(buf, RTM_DELLINK, 0);
	ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));
	ifi->ifi_family = AF_UNSPEC;
	ifi->ifi_index = ifindex;
	return netlink_request(nl, nlh, NULL, NULL);
}
