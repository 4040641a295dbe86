/* rtnetlink through libmnl: what meshd needs to configure its interface.
 * Every call returns 0 or -errno and never exits or logs. */
#ifndef MESHD_NETLINK_H
#define MESHD_NETLINK_H

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

#endif
