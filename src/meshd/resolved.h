/* systemd-resolved integration: with resolved on the system bus (org.freedesktop.resolve1),
 * meshd makes its interface's DNS server the mesh's service address and routes the mesh's
 * domain there ("~mesh.internal": a routing-only domain, so no search suffix is added and no
 * other name is sent to us), and reverts the link on exit. Without resolved nothing changes:
 * meshd never edits /etc/resolv.conf.
 *
 * D-Bus through libsystemd's sd-bus. The bus is opened at start, before the privilege drop:
 * the bus records a connection's credentials when it connects, so resolved's polkit check
 * (org.freedesktop.resolve1.set-dns-servers, set-domains, revert; allowed for root without
 * asking) sees root for every later call on it, even after meshd runs as `user:`. Calls at
 * start and exit wait for their answer (a timeout of RESOLVED_CALL_TIMEOUT_US: start-up and
 * shutdown, not the data path); a domain change while running is sent without waiting, so
 * the loop never blocks on the bus. */
#ifndef MESHD_RESOLVED_H
#define MESHD_RESOLVED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
	RESOLVED_CALL_TIMEOUT_US = 2000000, /* resolved answers in milliseconds; a hung bus costs 2 s once */
	RESOLVED_ROUTING_DOMAIN_MAX = 253 + 1, /* a DNS name and its NUL */
};

struct device;
struct resolved_link;

/* The arguments of resolved's calls for a link, built without a bus (unit-tested). */
struct resolved_args {
	int32_t ifindex;
	int32_t family4;       /* AF_INET, for the IPv4 service address */
	uint8_t addr4[4];
	bool have6;
	uint8_t addr6[16];
	/* The mesh's domain, routing only (resolvectl shows it as "~<domain>"); "" if none yet. */
	char domain[RESOLVED_ROUTING_DOMAIN_MAX];
};
bool resolved_args_build(struct resolved_args *a, int ifindex, const uint8_t *service6, const char *domain);

/* NULL when resolved is not there (logged at debug) or refused (logged as a warning). */
struct resolved_link *resolved_link_open(struct device *dev);
/* The node's addresses or the domain changed (service6 and domain NULL while unknown):
 * SetLinkDNS and SetLinkDomains for what differs from the last call, without waiting. */
void resolved_link_update(struct resolved_link *l, const uint8_t *service6, const char *domain);
/* RevertLink and close. NULL is fine. */
void resolved_link_close(struct resolved_link *l);

#endif
