/* Subnet routes and exit offers: the pure rules both ends apply to them. A route is a
 * control_route (control.h: canonical prefix, family 4 or 6); the /0 of either family is an
 * exit offer. The coordinator decides which advertised routes take effect (approval, auto
 * approval, collisions); each node checks again what it is told before it routes anything. */
#ifndef MESHD_ROUTES_H
#define MESHD_ROUTES_H

#include <stdbool.h>
#include <stddef.h>

#include "control.h"
#include "ipaddr.h"

enum {
	ROUTE_STR_MAX = IP_PREFIX_STR_MAX,
	/* Names in one auto-approval rule: "*" or a handful of routers. */
	ROUTE_AUTO_NODES_MAX = 8,
};

/* Parses "192.168.1.0/24" or "fd00:1::/64" (the prefix length is required and the host
 * bits must be zero, so a typo such as 192.168.1.1/24 is caught, not silently widened). */
bool route_parse(const char *s, struct control_route *out);
const char *route_format(const struct control_route *r, char *buf, size_t len);
bool route_to_prefix(const struct control_route *r, struct ip_prefix *out);
bool route_from_prefix(const struct ip_prefix *p, struct control_route *out);
bool route_equal(const struct control_route *a, const struct control_route *b);
bool route_is_exit(const struct control_route *r);
/* Same family and one contains the other (equal prefixes overlap). */
bool route_overlaps(const struct control_route *a, const struct control_route *b);
/* Every address of inner lies in outer. */
bool route_within(const struct control_route *inner, const struct control_route *outer);
bool route_list_has(const struct control_routes *rs, const struct control_route *r);

/* An auto-approval rule of the coordinator's config: any advertised route inside prefix, from
 * a node named in nodes ("*": any node), is approved without an administrator. */
struct route_auto_rule {
	struct control_route prefix;
	char nodes[ROUTE_AUTO_NODES_MAX][CONTROL_NAME_MAX + 1];
	size_t n_nodes;
};
bool route_auto_approves(const struct route_auto_rule *rules, size_t n_rules, const char *node_name,
			 const struct control_route *advertised);

enum route_refusal {
	ROUTE_OK = 0,
	ROUTE_OVERLAPS_OVERLAY,  /* would pull mesh addresses away from their nodes */
	ROUTE_TAKEN,             /* another node has an approved route overlapping it */
};
/* Whether cand may be approved for a node while taken[0..n) are other nodes' approved routes
 * and overlay4/overlay6 the mesh's own networks. Exit routes never collide with each other
 * (a client picks one exit) and never with the overlay (the overlay routes are longer). */
enum route_refusal route_check_approval(const struct control_route *cand, const struct control_route *overlay4,
					const struct control_route *overlay6, const struct control_route *taken,
					size_t n_taken);
const char *route_refusal_text(enum route_refusal r);

#endif
