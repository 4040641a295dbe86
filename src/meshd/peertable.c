/* Receiver index -> peer and public key -> peer (see peertable.h). */
#include "meshd/peertable.h"

#include <stdlib.h>
#include <string.h>

#include "meshd/peer.h"

enum {
	PEERTABLE_MIN_SLOTS = 16, /* the first allocation: a few static peers fit without growing */
};

/* Doubled when more than half full, so a miss probes a short run; halved below an eighth. */
static bool too_full(size_t count, size_t mask)
{
	return mask == 0 || (count + 1) * 2 > mask + 1;
}

static bool too_empty(size_t count, size_t mask)
{
	return mask + 1 > PEERTABLE_MIN_SLOTS && count * 8 < mask + 1;
}

/* Is slot i outside the probe run from home to hole (cyclically)? Then an entry at i whose
 * home is `home` may move into the hole (Knuth's algorithm R). */
static bool may_fill(size_t hole, size_t i, size_t home, size_t mask)
{
	return ((i - home) & mask) >= ((i - hole) & mask);
}

/* ---------------------------------------------------------------- index -> peer */

static size_t index_home(const struct index_table *t, uint32_t index)
{
	uint64_t x = (uint64_t)(index ^ t->seed) * UINT64_C(0x9e3779b97f4a7c15);
	return (size_t)(x >> 32) & t->mask;
}

void index_table_init(struct index_table *t)
{
	memset(t, 0, sizeof(*t));
	t->seed = randombytes_random();
}

void index_table_free(struct index_table *t)
{
	free(t->slots);
	t->slots = NULL;
	t->mask = 0;
	t->count = 0;
}

static void index_put(struct index_table *t, uint32_t index, struct peer *peer)
{
	size_t i = index_home(t, index);
	while (t->slots[i].peer)
		i = (i + 1) & t->mask;
	t->slots[i].index = index;
	t->slots[i].peer = peer;
	t->count++;
}

static bool index_resize(struct index_table *t, size_t slots)
{
	struct index_slot *old = t->slots;
	size_t old_n = t->mask ? t->mask + 1 : 0;
	struct index_slot *fresh = calloc(slots, sizeof(*fresh));
	if (!fresh)
		return false;
	t->slots = fresh;
	t->mask = slots - 1;
	t->count = 0;
	for (size_t i = 0; i < old_n; i++)
		if (old[i].peer)
			index_put(t, old[i].index, old[i].peer);
	free(old);
	return true;
}

bool index_table_add(struct index_table *t, uint32_t index, struct peer *peer)
{
	if (too_full(t->count, t->mask) &&
	    !index_resize(t, t->mask ? (t->mask + 1) * 2 : PEERTABLE_MIN_SLOTS))
		return false;
	index_put(t, index, peer);
	return true;
}

struct peer *index_table_find(const struct index_table *t, uint32_t index)
{
	if (!t->slots)
		return NULL;
	for (size_t i = index_home(t, index); t->slots[i].peer; i = (i + 1) & t->mask)
		if (t->slots[i].index == index)
			return t->slots[i].peer;
	return NULL;
}

void index_table_remove(struct index_table *t, uint32_t index, const struct peer *peer)
{
	if (!t->slots)
		return;
	size_t hole = index_home(t, index);
	while (t->slots[hole].peer && !(t->slots[hole].index == index && t->slots[hole].peer == peer))
		hole = (hole + 1) & t->mask;
	if (!t->slots[hole].peer)
		return;
	/* Backward shift: entries after the hole whose run passes it move up. */
	for (size_t i = (hole + 1) & t->mask; t->slots[i].peer; i = (i + 1) & t->mask) {
		if (may_fill(hole, i, index_home(t, t->slots[i].index), t->mask)) {
			t->slots[hole] = t->slots[i];
			hole = i;
		}
	}
	t->slots[hole].peer = NULL;
	t->slots[hole].index = 0;
	t->count--;
	if (too_empty(t->count, t->mask))
		index_resize(t, (t->mask + 1) / 2); /* out of memory: stays larger, still correct */
}

/* ---------------------------------------------------------------- public key -> peer */

static size_t key_home(const struct key_table *t, const uint8_t key[WIRE_KEY_LEN])
{
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t x;
	crypto_shorthash(h, key, WIRE_KEY_LEN, t->seed);
	memcpy(&x, h, sizeof(x));
	return (size_t)x & t->mask;
}

void key_table_init(struct key_table *t)
{
	memset(t, 0, sizeof(*t));
	crypto_shorthash_keygen(t->seed);
}

void key_table_free(struct key_table *t)
{
	free(t->slots);
	t->slots = NULL;
	t->mask = 0;
	t->count = 0;
}

static void key_put(struct key_table *t, struct peer *peer)
{
	size_t i = key_home(t, peer->public_key);
	while (t->slots[i])
		i = (i + 1) & t->mask;
	t->slots[i] = peer;
	t->count++;
}

static bool key_resize(struct key_table *t, size_t slots)
{
	struct peer **old = t->slots;
	size_t old_n = t->mask ? t->mask + 1 : 0;
	struct peer **fresh = calloc(slots, sizeof(*fresh));
	if (!fresh)
		return false;
	t->slots = fresh;
	t->mask = slots - 1;
	t->count = 0;
	for (size_t i = 0; i < old_n; i++)
		if (old[i])
			key_put(t, old[i]);
	free(old);
	return true;
}

bool key_table_add(struct key_table *t, struct peer *peer)
{
	if (too_full(t->count, t->mask) && !key_resize(t, t->mask ? (t->mask + 1) * 2 : PEERTABLE_MIN_SLOTS))
		return false;
	key_put(t, peer);
	return true;
}

struct peer *key_table_find(const struct key_table *t, const uint8_t key[WIRE_KEY_LEN])
{
	if (!t->slots)
		return NULL;
	for (size_t i = key_home(t, key); t->slots[i]; i = (i + 1) & t->mask)
		if (sodium_memcmp(t->slots[i]->public_key, key, WIRE_KEY_LEN) == 0)
			return t->slots[i];
	return NULL;
}

void key_table_remove(struct key_table *t, const struct peer *peer)
{
	if (!t->slots)
		return;
	size_t hole = key_home(t, peer->public_key);
	while (t->slots[hole] && t->slots[hole] != peer)
		hole = (hole + 1) & t->mask;
	if (!t->slots[hole])
		return;
	for (size_t i = (hole + 1) & t->mask; t->slots[i]; i = (i + 1) & t->mask) {
		if (may_fill(hole, i, key_home(t, t->slots[i]->public_key), t->mask)) {
			t->slots[hole] = t->slots[i];
			hole = i;
		}
	}
	t->slots[hole] = NULL;
	t->count--;
	if (too_empty(t->count, t->mask))
		key_resize(t, (t->mask + 1) / 2);
}
