/* Per-source limits for strangers: a bounded table keyed by source address, each entry a
 * token bucket of events (handshakes, STUN answers) and a count of the connections the
 * source holds open before authenticating. Pure: the caller passes the time, so unit tests
 * drive it with an injected clock (tests/unit/test_srclimit.c).
 *
 * A source is an IPv4 address or an IPv6 /64 (one host usually owns a whole /64, as
 * WireGuard's ratelimiter assumes); an IPv4-mapped IPv6 address counts as its IPv4 address.
 *
 * Bounded: SRCLIMIT_WAYS entries per hash set, the hash keyed at random so chosen sources
 * cannot pile into one set. A new source takes a free entry of its set, else one that has
 * gone idle (no connection held, bucket refilled to full: forgetting it changes nothing).
 * When every entry of the set is busy the new source gets no entry (srclimit_get returns
 * NULL) and the caller refuses it or charges a shared overflow bucket: an active source is
 * never evicted, so a flood from many addresses cannot reset a victim's bucket. */
#ifndef MESHD_SRCLIMIT_H
#define MESHD_SRCLIMIT_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/ratelimit.h"

enum {
	SRCLIMIT_KEY_LEN = 9, /* family tag + IPv4 address or IPv6 /64 */
	/* Entries per set: a few colliding busy sources still get their own bucket. */
	SRCLIMIT_WAYS = 4,
};

struct srclimit_entry {
	uint8_t key[SRCLIMIT_KEY_LEN];
	bool used;
	uint32_t held; /* connections open and not yet authenticated */
	struct ratelimit bucket;
};

struct srclimit {
	struct srclimit_entry *entries; /* n_sets * SRCLIMIT_WAYS */
	size_t n_sets;                  /* power of two */
	uint32_t rate, burst;           /* events per second, bucket size (events) */
	uint64_t idle_ms;               /* an entry with nothing held is forgettable after this */
	uint8_t hash_key[crypto_shorthash_KEYBYTES];
};

/* A table of at least `entries` entries (rounded up to whole sets of a power-of-two count);
 * rate events per second with a burst of `burst`. False on allocation failure. */
bool srclimit_init(struct srclimit *t, size_t entries, uint32_t rate, uint32_t burst);
void srclimit_free(struct srclimit *t);
/* The source's entry, created if needed; NULL if sa is not IPv4/IPv6 or its set is full of
 * busy sources. */
struct srclimit_entry *srclimit_get(struct srclimit *t, const struct sockaddr *sa, uint64_t now_ms);
/* Takes one event from e's bucket: false (nothing taken) if the source is over its rate. */
bool srclimit_take(const struct srclimit *t, struct srclimit_entry *e, uint64_t now_ms);
/* The source's existing entry, or NULL (no creation): for releasing what a source held. */
struct srclimit_entry *srclimit_find(struct srclimit *t, const struct sockaddr *sa);

#endif
