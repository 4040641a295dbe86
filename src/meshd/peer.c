/* Peers: lookup by key, address and session index, session rotation, staging. */
#include "meshd/peer.h"

#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/allowedips.h"
#include "meshd/device.h"
#include "meshd/peertable.h"
#include "meshd/timerq.h"

/* No preshared key: what Noise's IKpsk2 mixes in then. */
static const uint8_t no_psk[WIRE_KEY_LEN];

bool peer_init(struct peer *p, const struct config_peer *cp)
{
	memset(p, 0, sizeof(*p));
	memcpy(p->public_key, cp->public_key, WIRE_KEY_LEN);
	timers_init(&p->timers, cp->persistent_keepalive_s * 1000u);
	path_init(&p->path);
	p->punch_fd = -1;
	stage_queue_init(&p->staged);
	p->due_ms = UINT64_MAX;
	p->timer_pos = TIMERQ_NOT_QUEUED;
	/* A key of zeros is no key: Noise mixes in the same bytes either way. */
	if (cp->has_psk && sodium_memcmp(cp->psk, no_psk, WIRE_KEY_LEN) != 0) {
		p->psk = malloc(WIRE_KEY_LEN);
		if (!p->psk)
			return false;
		memcpy(p->psk, cp->psk, WIRE_KEY_LEN);
	}
	return peer_set_name(p, cp->name);
}

bool peer_set_name(struct peer *p, const char *name)
{
	char *copy = strndup(name, CONFIG_NAME_MAX - 1);
	if (!copy)
		return false;
	free(p->name);
	p->name = copy;
	return true;
}

const uint8_t *peer_psk(const struct peer *p)
{
	return p->psk ? p->psk : no_psk;
}

struct handshake *peer_handshake_start(struct peer *p)
{
	if (!p->handshake)
		p->handshake = calloc(1, sizeof(*p->handshake));
	return p->handshake;
}

void peer_handshake_end(struct peer *p)
{
	if (!p->handshake)
		return;
	handshake_clear(p->handshake);
	free(p->handshake);
	p->handshake = NULL;
}

struct session_set *peer_sessions_get(struct peer *p)
{
	if (!p->sessions)
		p->sessions = calloc(1, sizeof(*p->sessions));
	return p->sessions;
}

void peer_wipe_keys(struct peer *p)
{
	if (p->sessions) {
		session_set_clear(p->sessions); /* wipes the keys and frees the replay rings */
		free(p->sessions);
		p->sessions = NULL;
	}
	peer_handshake_end(p);
	if (p->cookie_jar) {
		cookie_jar_clear(p->cookie_jar);
		free(p->cookie_jar);
		p->cookie_jar = NULL;
	}
}

void peer_cookie_stamp(struct peer *p, uint8_t *msg, size_t len, uint64_t now_ms)
{
	if (!p->cookie_jar)
		p->cookie_jar = calloc(1, sizeof(*p->cookie_jar));
	if (p->cookie_jar) {
		cookie_jar_stamp(p->cookie_jar, msg, len, now_ms);
		return;
	}
	struct cookie_jar scratch; /* mac2 zeroed all the same; nothing is kept */
	memset(&scratch, 0, sizeof(scratch));
	cookie_jar_stamp(&scratch, msg, len, now_ms);
	cookie_jar_clear(&scratch);
}

void peer_free(struct peer *p)
{
	peer_wipe_keys(p);
	free(p->coord_endpoints);
	free(p->routes);
	free(p->behind);
	p->behind = NULL;
	p->coord_endpoints = NULL;
	p->n_coord_endpoints = 0;
	if (p->psk) {
		sodium_memzero(p->psk, WIRE_KEY_LEN);
		free(p->psk);
		p->psk = NULL;
	}
	sodium_memzero(p->disco_key, sizeof(p->disco_key));
	free(p->name);
	p->name = NULL;
	free(p->allowed_ips);
	p->allowed_ips = NULL;
	p->n_allowed_ips = 0;
	path_free(&p->path);
}

/* ---------------------------------------------------------------- lookups */

struct peer *peer_by_public_key(struct device *dev, const uint8_t key[WIRE_KEY_LEN])
{
	struct peer *p = key_table_find(&dev->keys, key);
	if (p)
		device_peer_touch(dev, p);
	return p;
}

struct peer *peer_by_address(struct device *dev, int family, const uint8_t *addr)
{
	struct peer *p = allowedips_lookup(&dev->routes, family, addr);
	if (p)
		device_peer_touch(dev, p);
	return p;
}

static bool initiation_has_index(const struct peer *p, uint32_t index)
{
	return peer_initiation_in_flight(p) && p->handshake->local_index == index;
}

/* The table names the peer an index was handed out for; the peer's own state says whether
 * the index is still in use (sessions rotate and expire without telling the table). */
struct session *peer_session_by_index(struct device *dev, uint32_t index, struct peer **peer_out)
{
	struct peer *p = index_table_find(&dev->indices, index);
	struct session *s = p && p->sessions ? session_set_by_index(p->sessions, index) : NULL;
	if (!s)
		return NULL;
	device_peer_touch(dev, p);
	*peer_out = p;
	return s;
}

struct peer *peer_by_handshake_index(struct device *dev, uint32_t index)
{
	struct peer *p = index_table_find(&dev->indices, index);
	if (!p || !initiation_has_index(p, index))
		return NULL;
	device_peer_touch(dev, p);
	return p;
}

void peer_purge_indices(struct device *dev, struct peer *p, bool all)
{
	for (size_t i = 0; i < p->n_indices;) {
		uint32_t index = p->indices[i];
		bool in_session = p->sessions && session_set_by_index(p->sessions, index);
		if (all || (!in_session && !initiation_has_index(p, index))) {
			index_table_remove(&dev->indices, index, p);
			p->indices[i] = p->indices[--p->n_indices];
		} else {
			i++;
		}
	}
}

bool peer_index_add(struct device *dev, struct peer *p, uint32_t index)
{
	peer_purge_indices(dev, p, false);
	if (p->n_indices == PEER_INDICES_MAX) {
		/* Cannot happen (four live at most); if it did, the oldest goes. */
		index_table_remove(&dev->indices, p->indices[0], p);
		memmove(p->indices, p->indices + 1, (PEER_INDICES_MAX - 1) * sizeof(p->indices[0]));
		p->n_indices--;
	}
	if (!index_table_add(&dev->indices, index, p))
		return false;
	p->indices[p->n_indices++] = index;
	return true;
}

uint32_t peer_new_local_index(struct device *dev, struct peer *p)
{
	/* Random so that indices do not reveal how many sessions we have made. */
	uint32_t index;
	do
		index = randombytes_random();
	while (index_table_find(&dev->indices, index));
	/* Out of memory: the index is still unique, but nothing will find its handshake; the
	 * retry timer tries again. */
	if (!peer_index_add(dev, p, index))
		log_warn("peer %s: out of memory for a receiver index", p->name);
	device_peer_touch(dev, p);
	return index;
}

/* ---------------------------------------------------------------- allowed IPs */

void peer_unroute(struct device *dev, struct peer *p)
{
	for (size_t i = 0; i < p->n_allowed_ips; i++)
		allowedips_remove(&dev->routes, &p->allowed_ips[i], p);
}

static bool route_all(struct device *dev, struct peer *p, const struct ip_prefix *ips, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!allowedips_insert(&dev->routes, &ips[i], p)) {
			for (size_t j = 0; j < i; j++)
				allowedips_remove(&dev->routes, &ips[j], p);
			return false;
		}
	}
	return true;
}

bool peer_set_allowed_ips(struct device *dev, struct peer *p, const struct ip_prefix *ips, size_t n)
{
	struct ip_prefix *copy = NULL;
	if (n > 0) {
		copy = malloc(n * sizeof(*copy));
		if (!copy)
			return false;
		memcpy(copy, ips, n * sizeof(*copy));
	}
	peer_unroute(dev, p);
	if (!route_all(dev, p, copy, n)) {
		free(copy);
		route_all(dev, p, p->allowed_ips, p->n_allowed_ips); /* back as it was */
		return false;
	}
	free(p->allowed_ips);
	p->allowed_ips = copy;
	p->n_allowed_ips = n;
	return true;
}

void peer_stage_packet(struct device *dev, struct peer *p, const uint8_t *pkt, size_t len, uint64_t *dropped)
{
	stage_push(&dev->stage, &p->staged, pkt, len, dropped);
	device_peer_touch(dev, p);
}

unsigned int peer_drop_staged(struct device *dev, struct peer *p)
{
	return stage_clear(&dev->stage, &p->staged);
}

bool peer_endpoint_equal(const struct peer *p, const struct sockaddr_storage *addr)
{
	return p->has_endpoint && sockaddr_inet_equal(&p->endpoint, addr);
}
