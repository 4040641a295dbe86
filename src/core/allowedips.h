/* Allowed IPs: which owner (a peer) a destination or source address belongs to, by longest
 * prefix match, in time independent of how many prefixes there are.
 *
 * Strategy: host routes (/32, /128: a mesh peer's own addresses, so most of a large map) sit
 * in an exact-match hash table per family, checked first: a host route is the longest match
 * an address can have. Shorter prefixes sit in one binary trie per family, path-compressed
 * as WireGuard's allowedips: a node is a prefix (key, bits); a child differs from its parent
 * at bit `parent.bits`, and nodes without an owner exist only where two prefixes branch.
 * Lookup is one hash probe run, then a walk of at most 32 or 128 nodes, in practice as many
 * as there are nested prefixes. (A host route in the trie cost a leaf and a branch point,
 * 128 bytes; in the table it costs a slot, 12 or 24 bytes at most 3/4 full.)
 *
 * One prefix has one owner: inserting a prefix that is already present moves it to the new
 * owner (as WireGuard's allowed IPs do). Owners are opaque pointers; nothing is freed
 * through them. */
#ifndef MESHD_ALLOWEDIPS_H
#define MESHD_ALLOWEDIPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipaddr.h"

struct allowedips_node;

/* Open addressing with linear probing and deletion by backward shift (as meshd's peer
 * tables): a slot is the owner pointer (NULL: free) followed by the address. */
struct allowedips_hosts {
	uint8_t *slots;
	size_t mask;  /* capacity - 1 (a power of two), 0 before the first insert */
	size_t count;
};

struct allowedips {
	struct allowedips_node *root4, *root6; /* prefixes shorter than a host route */
	struct allowedips_hosts hosts4, hosts6;
	uint64_t seed; /* keys the hosts' hash, so nobody can aim addresses at one probe run */
	size_t n_nodes; /* trie nodes, branch points included (for tests and memory figures) */
};

void allowedips_init(struct allowedips *t);
/* Frees every node. The table is empty (and usable) afterwards. */
void allowedips_free(struct allowedips *t);

/* Adds `prefix` for owner (bits beyond the prefix length are ignored). False when out of
 * memory or the prefix is malformed (family, length); the table is unchanged then. */
bool allowedips_insert(struct allowedips *t, const struct ip_prefix *prefix, void *owner);
/* Removes `prefix` if owner owns it (another owner's, or an absent, prefix stays). */
bool allowedips_remove(struct allowedips *t, const struct ip_prefix *prefix, const void *owner);
/* Removes every prefix of owner (a walk over the whole trie and hash tables). */
void allowedips_remove_by_owner(struct allowedips *t, const void *owner);
/* The owner of the longest prefix containing addr (4 or 16 bytes by family), or NULL. */
void *allowedips_lookup(const struct allowedips *t, int family, const uint8_t *addr);

#endif
