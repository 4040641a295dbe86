/* Peers: lookup by key, address and session index, session rotation, staging. */
#include "meshd/peer.h"

#include <netinet/in.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "meshd/device.h"

bool peer_init(struct peer *p, const struct config_peer *cp, size_t staged_slot_size)
{
	memset(p, 0, sizeof(*p));
	memcpy(p->name, cp->name, sizeof(p->name));
	memcpy(p->public_key, cp->public_key, WIRE_KEY_LEN);
	if (cp->has_psk)
		memcpy(p->psk, cp->psk, WIRE_KEY_LEN);
	memcpy(p->allowed_ips, cp->allowed_ips, sizeof(p->allowed_ips));
	p->n_allowed_ips = cp->n_allowed_ips;
	timers_init(&p->timers, cp->persistent_keepalive_s * 1000u);
	path_init(&p->path);
	p->punch_fd = -1;
	p->staged_slot_size = staged_slot_size;
	p->staged = calloc(PEER_STAGED_MAX, staged_slot_size);
	return p->staged != NULL;
}

void peer_wipe_keys(struct peer *p)
{
	session_clear(&p->next);
	session_clear(&p->current);
	session_clear(&p->previous);
	handshake_clear(&p->handshake);
}

void peer_free(struct peer *p)
{
	peer_wipe_keys(p);
	cookie_jar_clear(&p->cookie_jar);
	sodium_memzero(p->psk, sizeof(p->psk));
	sodium_memzero(p->disco_key, sizeof(p->disco_key));
	if (p->staged)
		sodium_memzero(p->staged, PEER_STAGED_MAX * p->staged_slot_size);
	free(p->staged);
	p->staged = NULL;
}

struct peer *peer_by_public_key(struct device *dev, const uint8_t key[WIRE_KEY_LEN])
{
	for (size_t i = 0; i < dev->n_peers; i++)
		if (sodium_memcmp(dev->peers[i]->public_key, key, WIRE_KEY_LEN) == 0)
			return dev->peers[i];
	return NULL;
}

/* A linear scan is fine for the static peer lists of today; a trie (WireGuard's
 * allowedips) replaces it when the coordinator hands out large peer maps. */
struct peer *peer_by_address(struct device *dev, int family, const uint8_t *addr)
{
	struct peer *best = NULL;
	int best_bits = -1;

	for (size_t i = 0; i < dev->n_peers; i++) {
		struct peer *p = dev->peers[i];
		for (size_t j = 0; j < p->n_allowed_ips; j++) {
			const struct ip_prefix *prefix = &p->allowed_ips[j];
			if (prefix->bits > best_bits && ip_prefix_contains(prefix, family, addr)) {
				best = p;
				best_bits = prefix->bits;
			}
		}
	}
	return best;
}

struct session *peer_session_by_index(struct device *dev, uint32_t index, struct peer **peer_out)
{
	for (size_t i = 0; i < dev->n_peers; i++) {
		struct peer *p = dev->peers[i];
		struct session *candidates[] = { &p->current, &p->previous, &p->next };
		for (size_t j = 0; j < sizeof(candidates) / sizeof(candidates[0]); j++) {
			if (candidates[j]->valid && candidates[j]->local_index == index) {
				*peer_out = p;
				return candidates[j];
			}
		}
	}
	return NULL;
}

struct peer *peer_by_handshake_index(struct device *dev, uint32_t index)
{
	for (size_t i = 0; i < dev->n_peers; i++) {
		struct peer *p = dev->peers[i];
		if (p->handshake.state == HANDSHAKE_INITIATION_SENT && p->handshake.local_index == index)
			return p;
	}
	return NULL;
}

static bool local_index_in_use(struct device *dev, uint32_t index)
{
	struct peer *unused;
	return peer_session_by_index(dev, index, &unused) != NULL || peer_by_handshake_index(dev, index) != NULL;
}

uint32_t peer_new_local_index(struct device *dev)
{
	/* Random so that indices do not reveal how many sessions we have made. */
	for (;;) {
		uint32_t index = randombytes_random();
		if (!local_index_in_use(dev, index))
			return index;
	}
}

/* The rotation is WireGuard's. Our own new session becomes current at once. If one we
 * answered is still waiting in `next` (our initiation crossed the peer's), that one becomes
 * `previous`, so the peer's packets on it are still accepted, and the old current goes:
 * each side then sends on the session it initiated and so keeps rekeying it on time. */
void peer_install_initiator_session(struct peer *p, struct session *s)
{
	session_clear(&p->previous);
	if (p->next.valid) {
		p->previous = p->next;
		memset(&p->next, 0, sizeof(p->next));
		session_clear(&p->current);
	} else {
		p->previous = p->current;
	}
	p->current = *s;
	sodium_memzero(s, sizeof(*s));
}

/* A session we answered is unusable until the initiator's first packet confirms it; the
 * previous one is dropped to make room, as WireGuard does. */
void peer_install_responder_session(struct peer *p, struct session *s)
{
	session_clear(&p->next);
	session_clear(&p->previous);
	p->next = *s;
	sodium_memzero(s, sizeof(*s));
}

void peer_confirm_next_session(struct peer *p)
{
	session_clear(&p->previous);
	p->previous = p->current;
	p->current = p->next;
	memset(&p->next, 0, sizeof(p->next));
}

void peer_stage_packet(struct peer *p, const uint8_t *pkt, size_t len, uint64_t *dropped)
{
	if (len > p->staged_slot_size) {
		(*dropped)++;
		return;
	}
	if (p->staged_count == PEER_STAGED_MAX) {
		/* Full: drop the oldest, as the newest is the most useful after a handshake. */
		p->staged_head = (p->staged_head + 1) % PEER_STAGED_MAX;
		p->staged_count--;
		(*dropped)++;
	}
	unsigned int slot = (p->staged_head + p->staged_count) % PEER_STAGED_MAX;
	memcpy(p->staged + (size_t)slot * p->staged_slot_size, pkt, len);
	p->staged_len[slot] = (uint16_t)len;
	p->staged_count++;
}

bool peer_endpoint_equal(const struct peer *p, const struct sockaddr_storage *addr)
{
	return p->has_endpoint && sockaddr_equal(&p->endpoint, addr);
}
