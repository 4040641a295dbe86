/* Allowed IPs: which owner (a peer) a destination or source address belongs to, by longest
 * prefix match, in time independent of how many prefixes there are.
 *
 * Strategy: one binary trie per family (IPv4, IPv6), path-compressed as WireGuard's
 * allowedips: a node is a prefix (key, bits); a child differs from its parent at bit
 * `parent.bits`, and nodes without an owner exist only where two prefixes branch. Lookup
 * walks at most 33 or 129 nodes, and in practice as many as there are nested prefixes.
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

struct allowedips {
	struct allowedips_node *root4, *root6;
	size_t n_nodes; /* every node, branch points included (for tests and memory figures) */
};

void allowedips_init(struct allowedips *t);
/* Frees every node. The table is empty (and usable) afterwards. */
void allowedips_free(struct allowedips *t);

/* Adds `prefix` for owner (bits beyond the prefix length are ignored). False when out of
 * memory or the prefix is malformed (family, length); the table is unchanged then. */
bool allowedips_insert(struct allowedips *t, const struct ip_prefix *prefix, void *owner);
/* Removes `prefix` if owner owns it (another owner's, or an absent, prefix stays). */
bool allowedips_remove(struct allowedips *t, const struct ip_prefix *prefix, const void *owner);
/* Removes every prefix of owner (a walk over the whole table). */
void allowedips_remove_by_owner(struct allowedips *t, const void *owner);
/* The owner of the longest prefix containing addr (4 or 16 bytes by family), or NULL. */
void *allowedips_lookup(const struct allowedips *t, int family, const uint8_t *addr);

#endif
