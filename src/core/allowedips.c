/* Allowed IPs as a path-compressed binary trie (see allowedips.h).
 *
 * Invariants, for every node n with parent p:
 *   - n->key has no bits set beyond n->bits;
 *   - p->bits < n->bits, the first p->bits bits of n->key are p's, and n sits in
 *     p->child[bit(n->key, p->bits)];
 *   - a node without an owner has two children (it exists only as a branch point).
 * Removal restores the last one by splicing out ownerless nodes with fewer children. */
#include "allowedips.h"

#include <stdlib.h>
#include <string.h>

enum {
	ALLOWEDIPS_BITS4 = 32,
	ALLOWEDIPS_BITS6 = 128,
};

struct allowedips_node {
	struct allowedips_node *child[2];
	struct allowedips_node *parent;
	void *owner; /* NULL: a branch point */
	uint8_t bits;
	uint8_t key[IP_ADDR_MAX_LEN];
};

static unsigned int bit_at(const uint8_t *key, unsigned int i)
{
	return (key[i / 8] >> (7 - i % 8)) & 1u;
}

/* How many leading bits of a and b agree, up to max. */
static unsigned int common_bits(const uint8_t *a, const uint8_t *b, unsigned int max)
{
	unsigned int n = 0;
	while (n + 8 <= max && a[n / 8] == b[n / 8])
		n += 8;
	while (n < max && bit_at(a, n) == bit_at(b, n))
		n++;
	return n;
}

static void mask_key(uint8_t *key, unsigned int bits, unsigned int width)
{
	for (unsigned int i = bits; i < width; i++)
		key[i / 8] &= (uint8_t)~(0x80u >> (i % 8));
}

/* The root and width for a family; NULL for any other family. */
static struct allowedips_node **root_of(struct allowedips *t, int family, unsigned int *width)
{
	if (family == AF_INET) {
		*width = ALLOWEDIPS_BITS4;
		return &t->root4;
	}
	if (family == AF_INET6) {
		*width = ALLOWEDIPS_BITS6;
		return &t->root6;
	}
	return NULL;
}

/* Where a pointer to node is kept: its parent's child slot, or the root. */
static struct allowedips_node **link_of(struct allowedips_node **root, struct allowedips_node *node)
{
	struct allowedips_node *p = node->parent;
	if (!p)
		return root;
	return &p->child[p->child[1] == node];
}

static struct allowedips_node *node_new(struct allowedips *t, const uint8_t *key, unsigned int bits,
					unsigned int width, void *owner)
{
	struct allowedips_node *n = calloc(1, sizeof(*n));
	if (!n)
		return NULL;
	memcpy(n->key, key, width / 8);
	mask_key(n->key, bits, width);
	n->bits = (uint8_t)bits;
	n->owner = owner;
	t->n_nodes++;
	return n;
}

void allowedips_init(struct allowedips *t)
{
	memset(t, 0, sizeof(*t));
}

static void free_tree(struct allowedips_node *n)
{
	/* Post-order through parent links: no recursion, no stack. */
	while (n) {
		if (n->child[0]) {
			n = n->child[0];
			continue;
		}
		if (n->child[1]) {
			n = n->child[1];
			continue;
		}
		struct allowedips_node *p = n->parent;
		if (p)
			p->child[p->child[1] == n] = NULL;
		free(n);
		n = p;
	}
}

void allowedips_free(struct allowedips *t)
{
	free_tree(t->root4);
	free_tree(t->root6);
	allowedips_init(t);
}

bool allowedips_insert(struct allowedips *t, const struct ip_prefix *prefix, void *owner)
{
	unsigned int width;
	struct allowedips_node **root = root_of(t, prefix->family, &width);
	if (!root || prefix->bits > width || !owner)
		return false;
	unsigned int bits = prefix->bits;
	uint8_t key[IP_ADDR_MAX_LEN] = { 0 };
	memcpy(key, prefix->addr, width / 8);
	mask_key(key, bits, width);

	struct allowedips_node **link = root, *parent = NULL, *node;
	while ((node = *link) != NULL) {
		unsigned int limit = node->bits < bits ? node->bits : bits;
		unsigned int common = common_bits(node->key, key, limit);
		if (common == node->bits) {
			if (node->bits == bits) { /* the same prefix: it changes owner */
				node->owner = owner;
				return true;
			}
			parent = node; /* node is a shorter prefix of ours: go down */
			link = &node->child[bit_at(key, node->bits)];
			continue;
		}
		/* node's prefix and ours part at bit `common` (< node->bits). */
		struct allowedips_node *fresh = node_new(t, key, bits, width, owner);
		if (!fresh)
			return false;
		if (common == bits) {
			/* Ours is a shorter prefix of node's: it goes between parent and node. */
			fresh->child[bit_at(node->key, bits)] = node;
		} else {
			struct allowedips_node *branch = node_new(t, key, common, width, NULL);
			if (!branch) {
				free(fresh);
				t->n_nodes--;
				return false;
			}
			branch->child[bit_at(node->key, common)] = node;
			branch->child[bit_at(key, common)] = fresh;
			fresh->parent = branch;
			fresh = branch;
		}
		node->parent = fresh;
		fresh->parent = parent;
		*link = fresh;
		return true;
	}
	node = node_new(t, key, bits, width, owner);
	if (!node)
		return false;
	node->parent = parent;
	*link = node;
	return true;
}

/* node just lost its owner: splice out ownerless nodes that no longer branch. */
static void compact(struct allowedips *t, struct allowedips_node **root, struct allowedips_node *node)
{
	while (node && !node->owner) {
		if (node->child[0] && node->child[1])
			return;
		struct allowedips_node *child = node->child[0] ? node->child[0] : node->child[1];
		struct allowedips_node *parent = node->parent;
		*link_of(root, node) = child;
		if (child)
			child->parent = parent;
		free(node);
		t->n_nodes--;
		if (child)
			return; /* the parent has as many children as before */
		node = parent;
	}
}

static struct allowedips_node *find_exact(struct allowedips_node *node, const uint8_t *key, unsigned int bits)
{
	while (node && node->bits <= bits && common_bits(node->key, key, node->bits) == node->bits) {
		if (node->bits == bits)
			return node;
		node = node->child[bit_at(key, node->bits)];
	}
	return NULL;
}

bool allowedips_remove(struct allowedips *t, const struct ip_prefix *prefix, const void *owner)
{
	unsigned int width;
	struct allowedips_node **root = root_of(t, prefix->family, &width);
	if (!root || prefix->bits > width)
		return false;
	uint8_t key[IP_ADDR_MAX_LEN] = { 0 };
	memcpy(key, prefix->addr, width / 8);
	mask_key(key, prefix->bits, width);
	struct allowedips_node *node = find_exact(*root, key, prefix->bits);
	if (!node || !node->owner || node->owner != owner)
		return false;
	node->owner = NULL;
	compact(t, root, node);
	return true;
}

/* The first node (pre-order from n) that owner owns, or NULL. */
static struct allowedips_node *next_owned(struct allowedips_node *n, const void *owner)
{
	struct allowedips_node *from = NULL; /* the child we came back up from */
	while (n) {
		if (!from && n->owner == owner)
			return n;
		if (!from && n->child[0]) {
			n = n->child[0];
			continue;
		}
		if ((!from || from == n->child[0]) && n->child[1]) {
			from = NULL;
			n = n->child[1];
			continue;
		}
		from = n;
		n = n->parent;
	}
	return NULL;
}

void allowedips_remove_by_owner(struct allowedips *t, const void *owner)
{
	struct allowedips_node **roots[] = { &t->root4, &t->root6 };
	if (!owner)
		return;
	for (size_t r = 0; r < sizeof(roots) / sizeof(roots[0]); r++) {
		struct allowedips_node *n;
		/* Each removal may reshape the trie, so the walk starts over from the root: owners
		 * have few prefixes, and the data path removes by prefix (allowedips_remove). */
		while ((n = next_owned(*roots[r], owner)) != NULL) {
			n->owner = NULL;
			compact(t, roots[r], n);
		}
	}
}

void *allowedips_lookup(const struct allowedips *t, int family, const uint8_t *addr)
{
	const struct allowedips_node *node;
	unsigned int width;
	void *best = NULL;

	if (family == AF_INET) {
		node = t->root4;
		width = ALLOWEDIPS_BITS4;
	} else if (family == AF_INET6) {
		node = t->root6;
		width = ALLOWEDIPS_BITS6;
	} else {
		return NULL;
	}
	while (node && common_bits(node->key, addr, node->bits) == node->bits) {
		if (node->owner)
			best = node->owner;
		if (node->bits == width)
			break;
		node = node->child[bit_at(addr, node->bits)];
	}
	return best;
}
