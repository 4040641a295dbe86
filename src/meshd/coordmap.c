/* The coordinator's peer map on this node: peers added, updated and removed as the map and its
 * deltas arrive, and the state file that keeps the map across restarts (written when dirty,
 * from coordclient_tick). The connection that carries the map is coordclient.c's. */
#include "meshd/coordclient_internal.h"

#include <arpa/inet.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/control.h"
#include "core/endpoint_check.h"
#include "core/log.h"
#include "meshd/device.h"
#include "meshd/meshroutes.h"
#include "meshd/path.h"
#include "meshd/peer.h"
#include "meshd/state.h"


void coordmap_mark_dirty(struct coordclient *cc, uint64_t now_ms)
{
	if (!cc->state_dirty)
		cc->state_dirty_since_ms = now_ms;
	cc->state_dirty = true;
}

void coordmap_mark_dirty_urgent(struct coordclient *cc, uint64_t now_ms)
{
	coordmap_mark_dirty(cc, now_ms);
	cc->state_urgent = true;
}

uint64_t coordmap_save_due_ms(const struct coordclient *cc)
{
	if (!cc->state_dirty)
		return UINT64_MAX;
	uint64_t due = cc->state_dirty_since_ms + COORD_STATE_SAVE_DELAY_MS;
	if (!cc->state_urgent && cc->state_saved_once && cc->state_saved_ms + COORD_STATE_SAVE_MIN_INTERVAL_MS > due)
		due = cc->state_saved_ms + COORD_STATE_SAVE_MIN_INTERVAL_MS;
	return due;
}

/* The peers' records live in the peers (record_of() rebuilds one); the state's copy is only
 * needed while a file is read or written, so it does not double every peer's cost. */
void coordmap_drop_saved(struct coordclient *cc)
{
	free(cc->state.peers);
	cc->state.peers = NULL;
	cc->state.n_peers = 0;
	free(cc->state.rules); /* the rules in force live in dev->acl */
	cc->state.rules = NULL;
	cc->state.n_rules = cc->state.rules_cap = 0;
	cc->state.peers_cap = 0;
	free(cc->state.routes);
	sodium_memzero(&cc->state.satellites, sizeof(cc->state.satellites)); /* in force: the peers */
	cc->state.routes = NULL;
	cc->state.n_routes = 0;
	cc->state.routes_cap = 0;
#ifdef __GLIBC__
	/* The copy (448 bytes a peer) and the file's text were the heap's largest blocks: glibc
	 * keeps what they leave free (its trim threshold grows with them), ~0.45 KiB a peer at
	 * 10,000 peers, unless asked to give it back. */
	malloc_trim(0);
#endif
}

/* The coordinator's record of p, rebuilt from what p keeps (name, key, the addresses in its
 * allowed IPs, endpoints, online). */
static void record_of(const struct peer *p, struct control_peer *out)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->node_key, p->public_key, WIRE_KEY_LEN);
	snprintf(out->name, sizeof(out->name), "%s", p->name);
	/* Its two addresses come first; routes (meshroutes.c) follow them. */
	bool v4 = false, v6 = false;
	for (size_t i = 0; i < p->n_allowed_ips; i++) {
		if (p->allowed_ips[i].family == AF_INET && !v4) {
			memcpy(out->ipv4, p->allowed_ips[i].addr, sizeof(out->ipv4));
			v4 = true;
		} else if (p->allowed_ips[i].family == AF_INET6 && !v6) {
			memcpy(out->ipv6, p->allowed_ips[i].addr, sizeof(out->ipv6));
			v6 = true;
		}
	}
	out->online = p->coord_online;
	if (p->n_coord_endpoints)
		memcpy(out->endpoints, p->coord_endpoints, p->n_coord_endpoints * sizeof(out->endpoints[0]));
	out->n_endpoints = p->n_coord_endpoints;
}

/* Field by field: the structs' padding is not part of a record. */
static bool records_equal(const struct control_peer *a, const struct control_peer *b)
{
	if (memcmp(a->node_key, b->node_key, WIRE_KEY_LEN) != 0 || strcmp(a->name, b->name) != 0 ||
	    memcmp(a->ipv4, b->ipv4, sizeof(a->ipv4)) != 0 || memcmp(a->ipv6, b->ipv6, sizeof(a->ipv6)) != 0 ||
	    a->online != b->online || a->n_endpoints != b->n_endpoints)
		return false;
	for (size_t i = 0; i < a->n_endpoints; i++) {
		const struct control_endpoint *x = &a->endpoints[i], *y = &b->endpoints[i];
		if (x->family != y->family || x->port != y->port || memcmp(x->addr, y->addr, sizeof(x->addr)) != 0)
			return false;
	}
	return true;
}

/* Keeps the parts of cp that p's other fields do not hold. False when out of memory. */
static bool record_keep(struct peer *p, const struct control_peer *cp)
{
	struct control_endpoint *copy = NULL;

	if (cp->n_endpoints) {
		copy = malloc(cp->n_endpoints * sizeof(*copy));
		if (!copy)
			return false;
		memcpy(copy, cp->endpoints, cp->n_endpoints * sizeof(*copy));
	}
	free(p->coord_endpoints);
	p->coord_endpoints = copy;
	p->n_coord_endpoints = (uint8_t)cp->n_endpoints;
	p->coord_online = cp->online;
	return true;
}

void coordmap_save(struct device *dev, struct coordclient *cc, uint64_t now_ms)
{
	char err[512];
	struct control_peer record;

	cc->state.n_peers = 0;
	cc->state.n_routes = 0;
	cc->state.satellites.n = 0;
	for (size_t i = 0; i < dev->n_peers; i++) {
		const struct peer *p = dev->peers[i];
		if (p->satellite && cc->state.satellites.n < CONTROL_MAX_SATELLITES && p->n_allowed_ips == 2) {
			struct control_satellite *sat = &cc->state.satellites.list[cc->state.satellites.n++];
			memset(sat, 0, sizeof(*sat));
			memcpy(sat->public_key, p->public_key, WIRE_KEY_LEN);
			snprintf(sat->name, sizeof(sat->name), "%s", p->name);
			memcpy(sat->ipv4, p->allowed_ips[0].addr, 4);
			memcpy(sat->ipv6, p->allowed_ips[1].addr, 16);
			sat->has_psk = p->psk != NULL;
			if (p->psk)
				memcpy(sat->psk, p->psk, WIRE_KEY_LEN);
		}
	}
	for (size_t i = 0; i < dev->n_peers; i++) {
		if (!dev->peers[i]->from_coordinator)
			continue;
		record_of(dev->peers[i], &record);
		if (!state_add_peer(&cc->state, &record))
			log_warn("out of memory while saving the peer map");
		if (dev->peers[i]->routes) {
			struct control_peer_routes r;
			memcpy(r.node_key, dev->peers[i]->public_key, WIRE_KEY_LEN);
			r.routes = dev->peers[i]->routes->offered;
			if (!state_add_routes(&cc->state, &r))
				log_warn("out of memory while saving the peer map");
		}
	}
	if (dev->mroutes && dev->mroutes->have_approved) {
		struct control_peer_routes r;
		memcpy(r.node_key, dev->identity.public_key, WIRE_KEY_LEN);
		r.routes = dev->mroutes->approved;
		if (!state_add_routes(&cc->state, &r))
			log_warn("out of memory while saving the peer map");
	}
	cc->state.filter_known = false;
	if (dev->acl.known && !state_set_rules(&cc->state, dev->acl.active, dev->acl.rules, dev->acl.n_rules))
		log_warn("out of memory while saving the access rules");
	if (!state_save(&cc->state, cc->state_dir, err, sizeof(err)))
		log_warn("cannot save the coordinator state: %s", err);
	coordmap_drop_saved(cc);
	cc->state_dirty = false;
	cc->state_urgent = false;
	cc->state_saved_once = true;
	cc->state_saved_ms = now_ms;
}

/* ---------------------------------------------------------------- peers from the map */

/* A copy of cp without the candidates nobody may dial (core/endpoint_check.h): a malicious
 * node, or a compromised coordinator, could otherwise make every node send handshakes and
 * probes to loopback, link-local or broadcast addresses, or to port 0. */
static void drop_undialable(struct device *dev, const struct control_peer *cp, struct control_peer *clean)
{
	*clean = *cp;
	clean->n_endpoints = 0;
	for (size_t i = 0; i < cp->n_endpoints; i++) {
		if (control_endpoint_is_dialable(&cp->endpoints[i]))
			clean->endpoints[clean->n_endpoints++] = cp->endpoints[i];
		else
			dev->counters.map_endpoints_refused++;
	}
	if (clean->n_endpoints < cp->n_endpoints)
		log_debug("peer %s: %zu of its %zu candidate endpoints are not dialable (loopback, link-local, "
			  "multicast, broadcast or port 0); ignored",
			  cp->name, cp->n_endpoints - clean->n_endpoints, cp->n_endpoints);
}

void coordmap_apply_peer(struct device *dev, struct coordclient *cc, const struct control_peer *announced,
			 uint64_t now_ms)
{
	struct control_peer clean;
	drop_undialable(dev, announced, &clean);
	const struct control_peer *cp = &clean;

	if (sodium_memcmp(cp->node_key, dev->identity.public_key, WIRE_KEY_LEN) == 0)
		return; /* ourselves */

	/* A peer may only own addresses inside our overlay: even a coordinator must not route
	 * other traffic (say, the Internet) into the mesh. */
	if (cc->state.registered && (!ip_prefix_contains(&cc->state.ipv4, AF_INET, cp->ipv4) ||
				     !ip_prefix_contains(&cc->state.ipv6, AF_INET6, cp->ipv6))) {
		log_warn("peer %s: its addresses are outside the overlay; ignored", cp->name);
		return;
	}
	struct config_peer conf;
	memset(&conf, 0, sizeof(conf));
	snprintf(conf.name, sizeof(conf.name), "%.*s", (int)sizeof(conf.name) - 1, cp->name);
	memcpy(conf.public_key, cp->node_key, WIRE_KEY_LEN);
	conf.allowed_ips[0] = (struct ip_prefix){ .family = AF_INET, .bits = 32 };
	memcpy(conf.allowed_ips[0].addr, cp->ipv4, 4);
	conf.allowed_ips[1] = (struct ip_prefix){ .family = AF_INET6, .bits = 128 };
	memcpy(conf.allowed_ips[1].addr, cp->ipv6, 16);
	conf.n_allowed_ips = 2;

	struct peer *p = peer_by_public_key(dev, cp->node_key);
	bool added = !p;
	if (!p && dev->n_peers >= dev->max_peers) {
		dev->counters.map_peers_over_max++;
		if (cc->over_max_warned_generation != cc->map_generation + 1) { /* +1: 0 is "never" */
			cc->over_max_warned_generation = cc->map_generation + 1;
			log_warn("the coordinator's map holds more than max_peers (%zu) peers; the rest (%s and others) "
				 "are ignored: raise max_peers in the config if the network is really this large",
				 dev->max_peers, cp->name);
		}
		return;
	}
	if (!p) {
		p = device_peer_add(dev, &conf);
		if (!p) {
			log_error("out of memory adding peer %s", cp->name);
			return;
		}
		p->from_coordinator = true;
		char v4[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, cp->ipv4, v4, sizeof(v4));
		log_info("peer %s: added from coordinator (%s)", cp->name, v4);
	}
	p->map_generation = cc->map_generation;
	if (p->from_coordinator) {
		struct control_peer known;
		record_of(p, &known);
		if (!added && records_equal(&known, cp))
			return; /* nothing new: no path change, no state write */
		if (!record_keep(p, cp)) {
			log_error("peer %s: out of memory for its record", cp->name);
			return;
		}
		/* Its name and addresses may have changed (re-registered while we were away). */
		if (!peer_set_name(p, conf.name))
			log_error("peer %s: out of memory for its new name; keeping the old one", cp->name);
		if (!peer_set_allowed_ips(dev, p, conf.allowed_ips, conf.n_allowed_ips))
			log_error("peer %s: out of memory for its new addresses; keeping the old ones", cp->name);
	}
	struct sockaddr_storage addrs[CONTROL_MAX_ENDPOINTS];
	size_t n = coordclient_endpoints_to_socket(dev, cp->endpoints, cp->n_endpoints, addrs);
	path_set_announced(&p->path, addrs, n, now_ms);
	meshroutes_peer_changed(dev, p); /* its routes after its addresses; an exit's online flag */
	coordmap_mark_dirty(cc, now_ms);
}

void coordmap_remove_peer(struct device *dev, struct coordclient *cc, struct peer *p, uint64_t now_ms)
{
	log_info("peer %s: removed by the coordinator", p->name);
	meshroutes_peer_gone(dev, p);
	device_peer_remove(dev, p);
	coordmap_mark_dirty(cc, now_ms);
}

/* After a full map: coordinator peers it did not list are gone. */
void coordmap_sweep(struct device *dev, struct coordclient *cc, uint64_t now_ms)
{
	for (size_t i = 0; i < dev->n_peers;) {
		struct peer *p = dev->peers[i];
		if (p->from_coordinator && p->map_generation != cc->map_generation)
			coordmap_remove_peer(dev, cc, p, now_ms); /* swaps the last peer into slot i */
		else
			i++;
	}
}

void coordmap_complete(struct device *dev, struct coordclient *cc, uint64_t now_ms)
{
	coordmap_sweep(dev, cc, now_ms);
	device_initiate_ahead(dev, now_ms); /* new peers: sessions before the first packet */
}

/* ---------------------------------------------------------------- access rules */

void coordmap_apply_filter(struct device *dev, struct coordclient *cc, const struct control_filter *f,
			   uint64_t now_ms)
{
	bool was_active = dev->acl.active;
	size_t was_n = dev->acl.n_rules;

	switch (acl_receive_part(&dev->acl, f)) {
	case ACL_PART_PENDING:
		return;
	case ACL_PART_REFUSED:
		/* The rules in force stay; the coordinator sends a full set on every change and
		 * at every registration. */
		log_warn("access rules: part %u of %u (set %u) out of order or out of memory; the current rules stay",
			 (unsigned int)f->part + 1, (unsigned int)f->parts, (unsigned int)f->generation);
		return;
	case ACL_PART_APPLIED:
		break;
	}
	if (dev->acl.active)
		log_info("access rules: %zu from the coordinator (were %s)", dev->acl.n_rules,
			 was_active ? (was_n == dev->acl.n_rules ? "as many" : "a different set") : "none: allow all");
	else if (was_active)
		log_info("access rules: none (allow all): the coordinator has no policy");
	coordmap_mark_dirty_urgent(cc, now_ms); /* a restart must enforce the new set */
}
