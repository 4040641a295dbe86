/* Source address -> value (addrmap.h). Deletion shifts entries back, as nodemap.c does, so
 * probe chains stay unbroken without tombstone slots. */
#include "coord/addrmap.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t v4mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

void addrmap_init(struct addrmap *m)
{
	memset(m, 0, sizeof(*m));
	randombytes_buf(m->hash_key, sizeof(m->hash_key));
}

void addrmap_free(struct addrmap *m)
{
	free(m->slots);
	sodium_memzero(m, sizeof(*m));
}

bool addrmap_key_from(struct addrmap_key *k, const struct sockaddr *sa)
{
	memset(k, 0, sizeof(*k));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		k->b[0] = 4;
		memcpy(k->b + 1, &in->sin_addr, 4);
		memcpy(k->b + 17, &in->sin_port, 2);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		if (memcmp(in6->sin6_addr.s6_addr, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0) {
			k->b[0] = 4;
			memcpy(k->b + 1, in6->sin6_addr.s6_addr + 12, 4);
		} else {
			k->b[0] = 6;
			memcpy(k->b + 1, in6->sin6_addr.s6_addr, 16);
		}
		memcpy(k->b + 17, &in6->sin6_port, 2);
		return true;
	}
	return false;
}

static uint64_t key_hash(const struct addrmap *m, const struct addrmap_key *k)
{
	uint8_t out[crypto_shorthash_BYTES];
	uint64_t h;

	crypto_shorthash(out, k->b, ADDRMAP_KEY_LEN, m->hash_key);
	memcpy(&h, out, sizeof(h));
	return h;
}

/* The slot holding k, or the empty slot that ends its chain. */
static size_t slot_of(const struct addrmap *m, const struct addrmap_key *k, uint64_t h)
{
	size_t mask = m->cap - 1;
	size_t i = h & mask;
	while (m->slots[i].value && memcmp(m->slots[i].key.b, k->b, ADDRMAP_KEY_LEN) != 0)
		i = (i + 1) & mask;
	return i;
}

void *addrmap_find(const struct addrmap *m, const struct addrmap_key *k)
{
	if (m->cap == 0)
		return NULL;
	return m->slots[slot_of(m, k, key_hash(m, k))].value;
}

static bool grow(struct addrmap *m)
{
	size_t cap = m->cap ? m->cap * 2 : ADDRMAP_INITIAL_SLOTS;
	struct addrmap_slot *slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return false;
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->slots[i].value)
			continue;
		size_t j = m->slots[i].hash & (cap - 1);
		while (slots[j].value)
			j = (j + 1) & (cap - 1);
		slots[j] = m->slots[i];
	}
	free(m->slots);
	m->slots = slots;
	m->cap = cap;
	return true;
}

void *addrmap_put(struct addrmap *m, const struct addrmap_key *k, void *value, bool *ok)
{
	uint64_t h = key_hash(m, k);

	*ok = true;
	if (m->cap) {
		struct addrmap_slot *sl = &m->slots[slot_of(m, k, h)];
		if (sl->value) {
			void *old = sl->value;
			sl->value = value;
			return old;
		}
	}
	if ((m->count + 1) * 2 > m->cap && !grow(m)) { /* load factor at most 1/2 */
		*ok = false;
		return NULL;
	}
	struct addrmap_slot *sl = &m->slots[slot_of(m, k, h)];
	sl->key = *k;
	sl->hash = h;
	sl->value = value;
	m->count++;
	return NULL;
}

bool addrmap_remove(struct addrmap *m, const struct addrmap_key *k, const void *value)
{
	if (m->cap == 0)
		return false;
	size_t mask = m->cap - 1;
	size_t i = slot_of(m, k, key_hash(m, k));
	if (!m->slots[i].value || m->slots[i].value != value)
		return false;
	memset(&m->slots[i], 0, sizeof(m->slots[i]));
	for (size_t j = (i + 1) & mask; m->slots[j].value; j = (j + 1) & mask) {
		size_t home = m->slots[j].hash & mask;
		/* Move slots[j] into the hole unless its home lies cyclically in (i, j]. */
		bool home_between = i < j ? (home > i && home <= j) : (home > i || home <= j);
		if (!home_between) {
			m->slots[i] = m->slots[j];
			memset(&m->slots[j], 0, sizeof(m->slots[j]));
			i = j;
		}
	}
	m->count--;
	return true;
}
