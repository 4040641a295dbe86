/* rtnetlink through libmnl: what meshd needs to configure its interface.
 * Every call returns 0 or -errno and never exits or logs. */
#ifndef MESHD_NETLINK_H
#define MESHD_NETLINK_H

#include <stdbool.h>
#include <stdint.h>

#include "core/ipaddr.h"

struct mnl_socket;

struct netlink {
	struct mnl_socket *sock;
	unsigned int portid;
	uint32_t seq;
};

int netlink_open(struct netlink *nl);
void netlink_close(struct netlink *nl);

int netlink_link_index(struct netlink *nl, const char *ifname); /* ifindex or -errno */
int netlink_set_mtu(struct netlink *nl, int ifindex, unsigned int mtu);
int netlink_set_up(struct netlink *nl, int ifindex);
int netlink_add_address(struct netlink *nl, int ifindex, const struct ip_prefix *addr);
/* Adds a route for the prefix (host bits ignored) via the interface. EEXIST counts as success. */
int netlink_add_route(struct netlink *nl, int ifindex, const struct ip_prefix *dst);
int netlink_delete_link(struct netlink *nl, int ifindex);

/* Routes of meshd's own (protocol NETLINK_RTPROT_MESHD) in a table (RT_TABLE_MAIN = 254)
 * via the interface: add (an existing one is success) or delete (an absent one too). */
int netlink_route_change(struct netlink *nl, bool add, int ifindex, const struct ip_prefix *dst, uint32_t table);
/* A policy rule at priority: "[not] fwmark MARK lookup TABLE" (fwmark 0: no mark match) or,
 * with suppress_prefixlen0, "lookup TABLE suppress_prefixlength 0". Delete of an absent rule
 * is success. */
struct netlink_rule {
	int family;
	uint32_t priority;
	uint32_t table;
	uint32_t fwmark;
	bool invert;
	bool suppress_prefixlen0;
};
int netlink_rule_change(struct netlink *nl, bool add, const struct netlink_rule *r);
/* The interface of the main table's default route of the family, or -errno (-ENOENT: none). */
int netlink_default_oif(struct netlink *nl, int family);
/* The interface the kernel would send to dst's address by, or -errno. */
int netlink_route_oif(struct netlink *nl, const struct ip_prefix *dst);

/* For netlink_*.c: starts a request in buf, and runs one request to its ack. */
struct nlmsghdr;
struct nlmsghdr *netlink_start(char *buf, uint16_t type, uint16_t flags);
int netlink_request(struct netlink *nl, struct nlmsghdr *nlh, int (*cb)(const struct nlmsghdr *, void *), void *data);

#endif
