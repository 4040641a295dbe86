/* Per-source limits for strangers (srclimit.h). */
#include "core/srclimit.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

static bool source_key(const struct sockaddr *sa, uint8_t key[SRCLIMIT_KEY_LEN])
{
	static const uint8_t mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	memset(key, 0, SRCLIMIT_KEY_LEN);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		key[0] = 4;
		memcpy(key + 1, &in->sin_addr, 4);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		if (memcmp(a, mapped_prefix, sizeof(mapped_prefix)) == 0) {
			key[0] = 4;
			memcpy(key + 1, a + 12, 4);
		} else {
			key[0] = 6;
			memcpy(key + 1, a, 8); /* the /64 */
		}
		return true;
	}
	return false;
}

bool srclimit_init(struct srclimit *t, size_t entries, uint32_t rate, uint32_t burst)
{
	size_t sets = 1;

	memset(t, 0, sizeof(*t));
	while (sets * SRCLIMIT_WAYS < entries)
		sets *= 2;
	t->entries = calloc(sets * SRCLIMIT_WAYS, sizeof(*t->entries));
	if (!t->entries)
		return false;
	t->n_sets = sets;
	t->rate = rate;
	t->burst = burst;
	/* An idle bucket is full again after burst / rate seconds; rounded up. */
	t->idle_ms = rate ? ((uint64_t)burst * 1000 + rate - 1) / rate : 0;
	randombytes_buf(t->hash_key, sizeof(t->hash_key));
	return true;
}

void srclimit_free(struct srclimit *t)
{
	free(t->entries);
	memset(t, 0, sizeof(*t));
}

static struct srclimit_entry *set_of(struct srclimit *t, const uint8_t key[SRCLIMIT_KEY_LEN])
{
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t v;

	crypto_shorthash(h, key, SRCLIMIT_KEY_LEN, t->hash_key);
	memcpy(&v, h, sizeof(v));
	return &t->entries[(v & (t->n_sets - 1)) * SRCLIMIT_WAYS];
}

static bool entry_idle(const struct srclimit *t, const struct srclimit_entry *e, uint64_t now_ms)
{
	return e->held == 0 && now_ms >= e->bucket.last_ms && now_ms - e->bucket.last_ms >= t->idle_ms;
}

struct srclimit_entry *srclimit_find(struct srclimit *t, const struct sockaddr *sa)
{
	uint8_t key[SRCLIMIT_KEY_LEN];

	if (!t->entries || !source_key(sa, key))
		return NULL;
	struct srclimit_entry *set = set_of(t, key);
	for (size_t i = 0; i < SRCLIMIT_WAYS; i++)
		if (set[i].used && memcmp(set[i].key, key, SRCLIMIT_KEY_LEN) == 0)
			return &set[i];
	return NULL;
}

struct srclimit_entry *srclimit_get(struct srclimit *t, const struct sockaddr *sa, uint64_t now_ms)
{
	uint8_t key[SRCLIMIT_KEY_LEN];
	struct srclimit_entry *spare = NULL;

	if (!t->entries || !source_key(sa, key))
		return NULL;
	struct srclimit_entry *set = set_of(t, key);
	for (size_t i = 0; i < SRCLIMIT_WAYS; i++) {
		struct srclimit_entry *e = &set[i];
		if (e->used && memcmp(e->key, key, SRCLIMIT_KEY_LEN) == 0)
			return e;
		if (!spare && (!e->used || entry_idle(t, e, now_ms)))
			spare = e;
	}
	if (!spare)
		return NULL;
	memset(spare, 0, sizeof(*spare));
	memcpy(spare->key, key, SRCLIMIT_KEY_LEN);
	spare->used = true;
	ratelimit_init(&spare->bucket, t->burst, now_ms);
	return spare;
}

bool srclimit_take(const struct srclimit *t, struct srclimit_entry *e, uint64_t now_ms)
{
	return ratelimit_take(&e->bucket, t->rate, t->burst, now_ms, 1);
}
