/* The router side of subnet routes and exit nodes: forwarding for the interfaces involved
 * and one nftables table of meshd's own, "inet meshd_<ifname>", through libnftables (one
 * buffer of nft commands, applied as one transaction). The table accepts forwarding to and
 * from the mesh and source-NATs mesh traffic leaving for a LAN (snat_routes) or the Internet
 * (an exit node) to the outgoing interface's address. Nothing else is touched: the table is
 * replaced whole on every change (a stale one from a crash included) and deleted on exit. */
#ifndef MESHD_MESHNFT_H
#define MESHD_MESHNFT_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/control.h"
#include "core/ipaddr.h"

enum {
	MESHNFT_TABLE_MAX = 7 + IFNAMSIZ,  /* "meshd_" + interface name */
	MESHNFT_FORWARD_MAX = 8,           /* interfaces whose forwarding we switched on */
	MESHNFT_RULESET_MAX = 8192,        /* 32 routes x 2 rules of ~100 bytes, and the frame */
};

struct meshnft_spec {
	struct ip_prefix overlay4, overlay6; /* traffic from the mesh */
	struct control_routes snat;          /* LAN prefixes to masquerade toward (empty: none) */
	bool exit;                           /* masquerade everything leaving by another interface */
	bool have_overlay6;
};

struct meshnft {
	char ifname[IFNAMSIZ];
	char table[MESHNFT_TABLE_MAX];
	bool active; /* our table exists */
	/* /proc/sys/net/ipv4/conf/<if>/forwarding we set to 1, and what it was */
	char fwd_if[MESHNFT_FORWARD_MAX][IFNAMSIZ];
	char fwd_old[MESHNFT_FORWARD_MAX];
	size_t n_fwd;
};

/* The ruleset text for spec (pure: unit-tested); false if it does not fit cap. */
bool meshnft_format(const char *ifname, const struct meshnft_spec *spec, char *out, size_t cap);

void meshnft_init(struct meshnft *m, const char *ifname);
/* At start: removes the table a crashed run left, if any (asks the kernel first, so a node
 * without routes never loads libnftables). */
void meshnft_remove_stale(struct meshnft *m);
/* Replaces the table with what spec says (spec NULL: removes it). err: one line. */
bool meshnft_apply(struct meshnft *m, const struct meshnft_spec *spec, char *err, size_t err_len);
/* Switches IPv4 forwarding on for ifname (once; the old value is kept for restore). */
bool meshnft_forwarding_on(struct meshnft *m, const char *ifname, char *err, size_t err_len);
/* Deletes the table and puts every forwarding switch back as it was. */
void meshnft_close(struct meshnft *m);

#endif
