/* UDP source address -> value (the relay's bound node), in O(1): open addressing with linear
 * probing, keyed by SipHash of the address under a random key, like the node table, so
 * addresses an attacker picks cannot pile into one chain. Only authenticated BINDs insert,
 * and each node holds at most one binding, so the table is bounded by the sessions.
 * Pure data structure: tests/unit/test_addrmap.c. */
#ifndef MESHCOORD_ADDRMAP_H
#define MESHCOORD_ADDRMAP_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum {
	/* family (1) | address (16; IPv4 and v4-mapped IPv6 as IPv4 in the first 4) | port (2) */
	ADDRMAP_KEY_LEN = 19,
	ADDRMAP_INITIAL_SLOTS = 64,
};

struct addrmap_key {
	uint8_t b[ADDRMAP_KEY_LEN];
};

struct addrmap_slot {
	struct addrmap_key key;
	uint64_t hash;
	void *value; /* NULL: empty slot */
};

struct addrmap {
	struct addrmap_slot *slots;
	size_t cap; /* power of two, or 0 before the first insert */
	size_t count;
	uint8_t hash_key[crypto_shorthash_KEYBYTES];
};

/* An empty map with a fresh random hash key. */
void addrmap_init(struct addrmap *m);
void addrmap_free(struct addrmap *m);
/* The canonical key of an IPv4 or IPv6 socket address; false for other families. */
bool addrmap_key_from(struct addrmap_key *k, const struct sockaddr *sa);
void *addrmap_find(const struct addrmap *m, const struct addrmap_key *k);
/* Maps k to value (not NULL), replacing and returning any older value (else NULL). *ok is
 * false if memory ran out (nothing changed). */
void *addrmap_put(struct addrmap *m, const struct addrmap_key *k, void *value, bool *ok);
/* Removes k if it maps to value (a binding replaced since is not someone else's to drop). */
bool addrmap_remove(struct addrmap *m, const struct addrmap_key *k, const void *value);

#endif
