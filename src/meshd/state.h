/* What a coordinator-managed node remembers across restarts, in <state_dir>/coordinator.state:
 * the coordinator (address and key), the name and addresses it assigned, and the last peer
 * map, so that a node restarted while the coordinator is down keeps its addresses and its
 * tunnels. A small line format, written atomically (temp file, fsync, rename), mode 0600:
 *
 *   meshd-state 1
 *   coordinator HOST:PORT PUBKEY
 *   self NAME IPV4/BITS IPV6/BITS
 *   pin IPV4NET/BITS IPV6NET/BITS
 *   peer PUBKEY NAME IPV4 IPV6 [ENDPOINT ...]
 *   filter on|off
 *   rule SRC/BITS DST/BITS any|tcp|udp|icmp *|PORT|LOW-HIGH
 *
 * "filter" is the last access-rule state the coordinator sent (off: allow all); with "on",
 * the "rule" lines are the rules in force. A node restarted while the coordinator is down
 * enforces them again (fail closed: a node that had rules never comes up allowing all).
 * No filter line: the coordinator never said (an older meshd or coordinator): allow all.
 *   dns DOMAIN
 *   routes PUBKEY [PREFIX ...]
 *   satellite PUBKEY NAME IPV4 IPV6 [PSK]
 *
 * "satellite" lines are the satellites this node serves as their gateway (SATELLITES,
 * satellites.h), with their preshared keys: a gateway restarted while the coordinator is
 * down serves them again, and one removed there stays removed (the file is written at once
 * on a change, as for access rules).
 *
 * "routes" is what the coordinator last said a node's approved routes are (PEER_ROUTES; our
 * own key: which of ours are approved), as received: meshroutes.c checks them again when
 * they are applied, at start as when they arrive.
 *
 * "pin" is the overlay this node joined (the networks of its first registration): trust
 * pinned at first join. A later registration, or a saved self line, outside it is refused,
 * so a compromised coordinator cannot renumber the node into someone's LAN or the Internet
 * (peers must lie inside the node's own prefix, coordmap.c). A file without a pin line (an
 * older meshd) is pinned to its self line's networks. "dns" is the mesh's DNS domain
 * (CONTROL_MSG_DNS), so names resolve while the coordinator is down; none: not known yet. */
#ifndef MESHD_STATE_H
#define MESHD_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/control.h"
#include "core/ipaddr.h"

enum {
	STATE_FILE_VERSION = 1,
	STATE_FILE_MAX = 16 << 20, /* ~100,000 peers: bounds the read */
};

#define STATE_FILE_NAME "coordinator.state"

struct node_state {
	bool has_coordinator;
	char coord_host[ENDPOINT_HOST_MAX];
	uint16_t coord_port;
	uint8_t coord_public[WIRE_KEY_LEN];

	bool registered;
	char name[CONTROL_NAME_MAX + 1];
	struct ip_prefix ipv4;
	struct ip_prefix ipv6;
	bool pinned;             /* pin_ipv4/6 hold the overlay of the first registration */
	struct ip_prefix pin_ipv4, pin_ipv6;
	char dns_domain[CONTROL_DOMAIN_MAX + 1]; /* "" until the coordinator names one */

	bool filter_known;          /* a filter line was read (or is to be written) */
	bool filter_active;
	struct filter_rule *rules;  /* heap array, with filter_active */
	size_t n_rules;
	size_t rules_cap;

	struct control_peer *peers; /* heap array */
	size_t n_peers;
	size_t peers_cap;

	struct control_peer_routes *routes; /* heap array: "routes" lines */
	size_t n_routes;
	size_t routes_cap;

	struct control_satellites satellites; /* holds preshared keys: state_free wipes it */
};
/* Copies the rule set in force into st (filter_known set); false if out of memory. */
bool state_set_rules(struct node_state *st, bool active, const struct filter_rule *rules, size_t n);

void state_init(struct node_state *st);
void state_free(struct node_state *st);
bool state_add_peer(struct node_state *st, const struct control_peer *p);
bool state_add_routes(struct node_state *st, const struct control_peer_routes *r);

/* Pins the overlay to self's networks if nothing is pinned yet (the first registration). */
void state_pin_overlay(struct node_state *st);
/* True when v4 and v6 lie inside the pinned overlay (or nothing is pinned yet). */
bool state_inside_pin(const struct node_state *st, const struct ip_prefix *v4, const struct ip_prefix *v6);

/* Parses the text form (explicit length); err gets "line N: what is wrong". */
bool state_parse(struct node_state *st, const char *text, size_t len, char *err, size_t err_len);
/* Loads <dir>/coordinator.state; a missing file is an empty state, not an error. */
bool state_load(struct node_state *st, const char *dir, char *err, size_t err_len);
/* Refuses (err says so) a state larger than state_load would read back (STATE_FILE_MAX). */
bool state_save(const struct node_state *st, const char *dir, char *err, size_t err_len);

#endif
