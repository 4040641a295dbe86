/* Subnet routes and exit nodes on a node.
 *
 * As a client: each peer's approved routes (PEER_ROUTES from the coordinator) become part of
 * that peer's allowed IPs (so the data path sends to it and accepts from it) and kernel
 * routes via our interface, unless they collide with the overlay, with our own LAN prefixes
 * or with another peer's route (ignored and counted). The exit node chosen (exit_node, or
 * 'meshd set exit-node') gets 0.0.0.0/0 and ::/0, and policy routing sends everything but
 * meshd's own sockets (marked MESHROUTES_FWMARK with SO_MARK) into the tunnel:
 *
 *   ip rule 5180: lookup main suppress_prefixlength 0     (exit_node_allow_lan only)
 *   ip rule 5181: not fwmark MESHROUTES_FWMARK lookup 5182
 *   table 5182:   default dev <interface>
 *
 * If the exit node goes away (removed, revoked, offline) the rules stay: internet traffic
 * is dropped (fail closed) until it is back or the choice is cleared; status says so.
 *
 * As a router: what we advertise (ROUTES after every registration), forwarding switched on
 * for our interface and the ones the advertised networks (or the default route) leave by,
 * and meshnft.h's table: masquerade toward the LAN (snat_routes) and toward the Internet
 * (advertise_exit_node). */
#ifndef MESHD_MESHROUTES_H
#define MESHD_MESHROUTES_H

#include <stdbool.h>
#include <stdint.h>

#include "core/control.h"
#include "core/ipc.h"
#include "meshd/config.h"
#include "meshd/meshnft.h"

enum {
	/* Policy routing for the exit node: a mark no other program uses ("MS"), a table
	 * number beside Tailscale's 52 and wg-quick's 51820, and rule priorities below the
	 * main table's (32766) so they are looked at first. */
	MESHROUTES_FWMARK = 0x4d53,
	MESHROUTES_TABLE = 5182,
	MESHROUTES_RULE_LAN_PRIO = 5180,
	MESHROUTES_RULE_EXIT_PRIO = 5181,
	MESHROUTES_STATUS_MAX = 160,
};

struct device;
struct peer;

/* What a peer offers (its approved routes) and which of them we use (bit i: list[i]). */
struct peer_routes {
	struct control_routes offered;
	uint32_t used;
};
_Static_assert(CONTROL_MAX_ROUTES <= 32, "used is a 32-bit mask");

struct meshroutes {
	struct control_routes advertised; /* ours: advertise_routes, and the exit pair */
	struct control_routes approved;   /* of ours, what the coordinator approved */
	bool have_approved;
	bool snat;
	char exit_node[CONFIG_NODE_NAME_MAX];
	bool exit_allow_lan;
	bool exit_rules;                  /* the policy rules and table are in place */
	struct peer *exit_peer;           /* the exit in use, or NULL */
	char exit_status[MESHROUTES_STATUS_MAX];
	struct meshnft nft;
	bool router_ready;                /* nft table applied for the current overlay */
	uint64_t refused;                 /* offered routes ignored: collisions */
};

/* Before the coordinator's state is applied: our advertisement, stale rules and table from a
 * crash removed, the exit rules if exit_node is set, forwarding if we advertise. */
bool meshroutes_open(struct device *dev, const struct config *cfg, char *err, size_t err_len);
void meshroutes_close(struct device *dev);
/* Our overlay is known (state or REGISTERED): the router's table; and ROUTES is sent when
 * connected (send true). */
void meshroutes_registered(struct device *dev, bool send, uint64_t now_ms);
/* PEER_ROUTES (from the coordinator, or the state file at start). */
void meshroutes_on_peer_routes(struct device *dev, const struct control_peer_routes *m);
/* After a PEER record was applied to p (its allowed IPs were reset, its online flag may
 * have changed), and before p is removed. */
void meshroutes_peer_changed(struct device *dev, struct peer *p);
void meshroutes_peer_gone(struct device *dev, struct peer *p);
/* 'meshd set exit-node NAME|none': "" clears. false with err when it cannot be set up. */
bool meshroutes_set_exit(struct device *dev, const char *name, char *err, size_t err_len);
/* SIGHUP: the route keys of the new configuration, applied at once (advertisement, source
 * NAT, exit choice); forwarding for a new network fails once meshd dropped root (logged). */
void meshroutes_reload(struct device *dev, const struct config *n, uint64_t now_ms);
/* Sets SO_MARK on one of meshd's sockets, so the exit's policy rules let it bypass the
 * tunnel. Failure (no CAP_NET_ADMIN) is logged at debug: only exit clients need it. */
void meshroutes_mark_socket(int fd);
/* status: our routes and exit, and a peer's offered/used routes, as text and JSON. */
void meshroutes_status_text(const struct device *dev, struct ipc_text *out);
void meshroutes_status_json(const struct device *dev, struct ipc_text *out);
void meshroutes_peer_text(const struct peer *p, struct ipc_text *out);
void meshroutes_peer_json(const struct peer *p, struct ipc_text *out);

#endif
