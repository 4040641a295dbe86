/* Token buckets per source address: see source_limit.h. */
#include "core/source_limit.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

enum {
	COST_MS = 1000 / SOURCE_LIMIT_PER_SECOND,
	FULL_MS = SOURCE_LIMIT_BURST * COST_MS,
	TAG_IPV4 = 4,
	TAG_IPV6 = 6,
};

_Static_assert(crypto_shorthash_KEYBYTES == sizeof(((struct source_limit *)0)->hash_key), "siphash key");

void source_limit_init(struct source_limit *l)
{
	memset(l, 0, sizeof(*l));
	randombytes_buf(l->hash_key, sizeof(l->hash_key));
}

void source_limit_free(struct source_limit *l)
{
	free(l->slots);
	memset(l, 0, sizeof(*l));
}

static bool source_key(const struct sockaddr *sa, uint8_t key[SOURCE_LIMIT_KEY_LEN])
{
	static const uint8_t v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	memset(key, 0, SOURCE_LIMIT_KEY_LEN);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		key[0] = TAG_IPV4;
		memcpy(key + 1, &in->sin_addr, 4);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		if (memcmp(a, v4_mapped, sizeof(v4_mapped)) == 0) {
			key[0] = TAG_IPV4; /* an IPv4 sender on our dual-stack socket */
			memcpy(key + 1, a + 12, 4);
		} else {
			key[0] = TAG_IPV6;
			memcpy(key + 1, a, 8); /* the /64 */
		}
		return true;
	}
	return false;
}

static void refill(struct source_limit_slot *s, uint64_t now_ms)
{
	uint64_t elapsed = now_ms > s->last_ms ? now_ms - s->last_ms : 0;
	uint64_t tokens = s->tokens_ms + elapsed;
	s->tokens_ms = tokens > FULL_MS ? FULL_MS : (uint32_t)tokens;
	s->last_ms = now_ms;
}

bool source_limit_take(struct source_limit *l, const struct sockaddr *source, uint64_t now_ms)
{
	uint8_t key[SOURCE_LIMIT_KEY_LEN], hash[crypto_shorthash_BYTES];
	struct source_limit_slot *free_slot = NULL;

	if (!source_key(source, key))
		return false;
	if (!l->slots && !(l->slots = calloc(SOURCE_LIMIT_SLOTS, sizeof(*l->slots))))
		return false;
	crypto_shorthash(hash, key, sizeof(key), l->hash_key);
	uint64_t h;
	memcpy(&h, hash, sizeof(h));
	for (size_t i = 0; i < SOURCE_LIMIT_PROBES; i++) {
		struct source_limit_slot *s = &l->slots[(h + i) % SOURCE_LIMIT_SLOTS];
		if (s->used && memcmp(s->key, key, sizeof(key)) == 0) {
			refill(s, now_ms);
			if (s->tokens_ms < COST_MS)
				return false;
			s->tokens_ms -= COST_MS;
			return true;
		}
		/* Idle long enough, its bucket would be full again: forgetting it changes nothing. */
		if (!free_slot && (!s->used || now_ms - s->last_ms >= SOURCE_LIMIT_IDLE_MS))
			free_slot = s;
	}
	if (!free_slot) {
		l->refused_full++;
		return false;
	}
	memcpy(free_slot->key, key, sizeof(key));
	free_slot->used = true;
	free_slot->last_ms = now_ms;
	free_slot->tokens_ms = FULL_MS - COST_MS;
	return true;
}
