/* The device's peer lookups that must not grow with the map: receiver index -> peer and
 * public key -> peer, as open-addressing hash tables (linear probing, deletion by backward
 * shift, so no tombstones pile up), doubled at half load and halved at an eighth.
 *
 * The index table says only which peer an index was handed out for: peer.c checks the
 * peer's sessions and handshake for it, so an entry that outlived its session finds
 * nothing (peer.c also purges such entries, so a peer holds a bounded number). Indices are
 * ours (random), but receivers' indices in datagrams are anyone's: the hash is keyed with
 * a per-device random seed so nobody can aim lookups at one cluster. Public keys are the
 * peers' choice: their table is keyed with SipHash (crypto_shorthash) for the same reason. */
#ifndef MESHD_PEERTABLE_H
#define MESHD_PEERTABLE_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/wire.h"

struct peer;

struct index_slot {
	uint32_t index;
	struct peer *peer; /* NULL: free */
};

struct index_table {
	struct index_slot *slots;
	size_t mask; /* capacity - 1 (capacity a power of two), 0 before the first insert */
	size_t count;
	uint32_t seed;
};

struct key_table {
	struct peer **slots; /* NULL: free; the key is the peer's public_key */
	size_t mask;
	size_t count;
	uint8_t seed[crypto_shorthash_KEYBYTES];
};

void index_table_init(struct index_table *t);
void index_table_free(struct index_table *t);
/* Adds index -> peer (an index not in the table). False when out of memory. */
bool index_table_add(struct index_table *t, uint32_t index, struct peer *peer);
/* Removes index if it maps to peer. */
void index_table_remove(struct index_table *t, uint32_t index, const struct peer *peer);
struct peer *index_table_find(const struct index_table *t, uint32_t index);

void key_table_init(struct key_table *t);
void key_table_free(struct key_table *t);
/* Adds the peer under its public_key (not already present). False when out of memory. */
bool key_table_add(struct key_table *t, struct peer *peer);
void key_table_remove(struct key_table *t, const struct peer *peer);
struct peer *key_table_find(const struct key_table *t, const uint8_t key[WIRE_KEY_LEN]);

#endif
