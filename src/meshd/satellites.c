/* satellites.h: the gateway's side of satellites. */
#include "meshd/satellites.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dns.h"
#include "core/log.h"
#include "meshd/coordclient_internal.h"
#include "meshd/device.h"
#include "meshd/dnsd.h"
#include "meshd/peer.h"
#include "meshd/tx.h"

static const struct control_satellite *find(const struct control_satellites *list, const uint8_t key[WIRE_KEY_LEN])
{
	for (size_t i = 0; i < list->n; i++)
		if (sodium_memcmp(list->list[i].public_key, key, WIRE_KEY_LEN) == 0)
			return &list->list[i];
	return NULL;
}

/* p is what c describes: name, addresses and preshared key. */
static bool same(const struct peer *p, const struct control_satellite *c)
{
	static const uint8_t zero[WIRE_KEY_LEN];
	const uint8_t *psk = c->has_psk ? c->psk : zero;

	return strcmp(p->name, c->name) == 0 && p->n_allowed_ips == 2 && p->allowed_ips[0].bits == 32 &&
	       memcmp(p->allowed_ips[0].addr, c->ipv4, 4) == 0 && p->allowed_ips[1].bits == 128 &&
	       memcmp(p->allowed_ips[1].addr, c->ipv6, 16) == 0 && sodium_memcmp(peer_psk(p), psk, WIRE_KEY_LEN) == 0;
}

/* The peer that owns addr by one of its addresses or a subnet route, or NULL: an exit
 * node's 0.0.0.0/0 or ::/0 (when we use one) owns nothing of the mesh. */
static struct peer *owner(struct device *dev, int family, const uint8_t *addr)
{
	struct peer *p = peer_by_address(dev, family, addr);

	for (size_t i = 0; p && i < p->n_allowed_ips; i++)
		if (p->allowed_ips[i].bits > 0 && ip_prefix_contains(&p->allowed_ips[i], family, addr))
			return p;
	return NULL;
}

/* Why c cannot be taken, or NULL. */
static const char *refusal(struct device *dev, const struct control_satellite *c)
{
	const struct coordclient *cc = dev->coord;

	if (peer_by_public_key(dev, c->public_key))
		return "another peer has its key";
	if (sodium_memcmp(c->public_key, dev->identity.public_key, WIRE_KEY_LEN) == 0)
		return "it has our own key";
	/* Only addresses inside our overlay, as for the map's peers: even a coordinator must not
	 * route other traffic into the mesh. */
	if (cc && cc->state.registered &&
	    (!ip_prefix_contains(&cc->state.ipv4, AF_INET, c->ipv4) ||
	     !ip_prefix_contains(&cc->state.ipv6, AF_INET6, c->ipv6)))
		return "its addresses are outside the overlay";
	if (owner(dev, AF_INET, c->ipv4) || owner(dev, AF_INET6, c->ipv6))
		return "another peer owns its addresses";
	/* Nor ours, nor the DNS service's: traffic for this node must stay here. */
	if (cc && cc->state.registered &&
	    (memcmp(c->ipv4, cc->state.ipv4.addr, 4) == 0 || memcmp(c->ipv6, cc->state.ipv6.addr, 16) == 0))
		return "it has this node's own address";
	uint8_t dns4[4];
	dns4[0] = (uint8_t)(DNS_MESH_SERVICE_IPV4 >> 24);
	dns4[1] = (uint8_t)(DNS_MESH_SERVICE_IPV4 >> 16);
	dns4[2] = (uint8_t)(DNS_MESH_SERVICE_IPV4 >> 8);
	dns4[3] = (uint8_t)DNS_MESH_SERVICE_IPV4;
	uint8_t dns6[16];
	if (memcmp(c->ipv4, dns4, 4) == 0 || (dnsd_service_ipv6(dev, dns6) && memcmp(c->ipv6, dns6, 16) == 0))
		return "it has the mesh's DNS address";
	return NULL;
}

static void add(struct device *dev, const struct control_satellite *c)
{
	struct config_peer conf;
	char v4[INET_ADDRSTRLEN];
	const char *why = refusal(dev, c);

	if (why) {
		dev->counters.satellites_refused++;
		log_warn("satellite %s: not taken: %s", c->name, why);
		return;
	}
	memset(&conf, 0, sizeof(conf));
	snprintf(conf.name, sizeof(conf.name), "%.*s", (int)sizeof(conf.name) - 1, c->name);
	memcpy(conf.public_key, c->public_key, WIRE_KEY_LEN);
	if (c->has_psk) {
		conf.has_psk = true;
		memcpy(conf.psk, c->psk, WIRE_KEY_LEN);
	}
	conf.allowed_ips[0] = (struct ip_prefix){ .family = AF_INET, .bits = 32 };
	memcpy(conf.allowed_ips[0].addr, c->ipv4, 4);
	conf.allowed_ips[1] = (struct ip_prefix){ .family = AF_INET6, .bits = 128 };
	memcpy(conf.allowed_ips[1].addr, c->ipv6, 16);
	conf.n_allowed_ips = 2;
	struct peer *p = device_peer_add(dev, &conf);
	sodium_memzero(&conf, sizeof(conf));
	if (!p) {
		log_error("satellite %s: out of memory adding it", c->name);
		return;
	}
	p->satellite = true;
	dev->n_satellites++;
	inet_ntop(AF_INET, c->ipv4, v4, sizeof(v4));
	log_info("satellite %s: served here (%s); waiting for its handshake", c->name, v4);
}

static void drop(struct device *dev, struct peer *p, const char *why)
{
	log_info("satellite %s: %s; its sessions are wiped", p->name, why);
	dev->n_satellites--;
	device_peer_remove(dev, p);
}

void satellites_apply(struct device *dev, const struct control_satellites *list)
{
	/* Backwards: removal moves the last peer into slot i. */
	for (size_t i = dev->n_peers; i-- > 0;) {
		struct peer *p = dev->peers[i];
		if (!p->satellite)
			continue;
		const struct control_satellite *c = find(list, p->public_key);
		if (!c)
			drop(dev, p, "removed by the coordinator");
		else if (!same(p, c))
			drop(dev, p, "changed (name, addresses or preshared key): replaced");
	}
	for (size_t i = 0; i < list->n; i++) {
		struct peer *p = peer_by_public_key(dev, list->list[i].public_key);
		if (p && p->satellite)
			continue; /* kept as it is */
		add(dev, &list->list[i]);
	}
}

struct peer *satellites_rx(struct device *dev, struct peer *from, uint8_t *pkt, const struct ip_packet_info *info,
			   uint64_t now_ms, bool *done)
{
	*done = false;
	/* A satellite's DNS queries: answered here as our own host's are, the answers routed
	 * back to it (dnsd.c). */
	if (from->satellite && dev->dns && dnsd_intercept(dev, pkt, info, now_ms)) {
		from->rx_bytes += info->total_len;
		*done = true;
		return NULL;
	}
	struct peer *to = owner(dev, info->family, info->dst);
	if (!to || to == from || !(from->satellite || to->satellite))
		return NULL;
	/* Between a satellite and the mesh (the coordinator's peers, whose rules it sends us)
	 * only: a static peer from our config is no one the access rules know, so a satellite
	 * that widens its AllowedIPs toward one is dropped here, and one toward a satellite too. */
	if (!(from->satellite || from->from_coordinator) || !(to->satellite || to->from_coordinator)) {
		dev->counters.satellite_refused++;
		*done = true;
		return NULL;
	}
	return to;
}

void satellites_forward(struct device *dev, struct peer *from, struct peer *to, const uint8_t *pkt,
			const struct ip_packet_info *info, uint64_t now_ms)
{
	from->rx_bytes += info->total_len;
	dev->counters.satellite_forwarded++;
	tx_send_packet(dev, to, pkt, info->total_len, now_ms);
}

void satellites_behind(struct device *dev, const struct control_peer_satellites *m)
{
	const struct coordclient *cc = dev->coord;
	struct peer *p = peer_by_public_key(dev, m->node_key);

	if (!p || !p->from_coordinator)
		return; /* out of order, or beyond max_peers */
	if (m->n == 0) {
		free(p->behind);
		p->behind = NULL;
		return;
	}
	if (!p->behind && !(p->behind = calloc(1, sizeof(*p->behind)))) {
		log_error("peer %s: out of memory for the names of its satellites", p->name);
		return;
	}
	memcpy(p->behind->node_key, m->node_key, WIRE_KEY_LEN);
	p->behind->n = 0;
	for (size_t i = 0; i < m->n; i++) {
		const struct control_peer_satellite *c = &m->list[i];
		if (cc && cc->state.registered && (!ip_prefix_contains(&cc->state.ipv4, AF_INET, c->ipv4) ||
						   !ip_prefix_contains(&cc->state.ipv6, AF_INET6, c->ipv6))) {
			dev->counters.satellites_refused++;
			continue;
		}
		p->behind->list[p->behind->n++] = *c;
	}
}

struct peer *satellites_owner(struct device *dev, int family, const uint8_t *addr)
{
	if (dev->n_satellites == 0)
		return NULL;
	struct peer *p = owner(dev, family, addr);
	return p && p->satellite ? p : NULL;
}
