/* Allowed IPs as host-route hash tables over a path-compressed binary trie (see
 * allowedips.h). A /32 or /128 lives in its family's table and nowhere else.
 *
 * Trie invariants, for every node n with parent p:
 *   - n->key has no bits set beyond n->bits;
 *   - p->bits < n->bits, the first p->bits bits of n->key are p's, and n sits in
 *     p->child[bit(n->key, p->bits)];
 *   - a node without an owner has two children (it exists only as a branch point).
 * Removal restores the last one by splicing out ownerless nodes with fewer children. */
#include "allowedips.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

enum {
	ALLOWEDIPS_BITS4 = 32,
	ALLOWEDIPS_BITS6 = 128,
	HOSTS_MIN_SLOTS = 16, /* the first allocation: a few static peers fit without growing */
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

/* ---------------------------------------------------------------- host routes */

/* A slot: the owner pointer, then the address (4 or 16 bytes), unaligned (12 or 24 bytes):
 * read and written through memcpy. */
static size_t slot_size(size_t len)
{
	return sizeof(void *) + len;
}

static uint8_t *slot_at(const struct allowedips_hosts *h, size_t i, size_t len)
{
	return h->slots + i * slot_size(len);
}

static void *slot_owner(const uint8_t *slot)
{
	void *owner;
	memcpy(&owner, slot, sizeof(owner));
	return owner;
}

static void slot_set(uint8_t *slot, void *owner, const uint8_t *addr, size_t len)
{
	memcpy(slot, &owner, sizeof(owner));
	memcpy(slot + sizeof(owner), addr, len);
}

static uint64_t mix64(uint64_t x)
{
	/* splitmix64's finalizer: every input bit moves every output bit */
	x ^= x >> 30;
	x *= UINT64_C(0xbf58476d1ce4e5b9);
	x ^= x >> 27;
	x *= UINT64_C(0x94d049bb133111eb);
	return x ^ (x >> 31);
}

static size_t host_home(const struct allowedips *t, const struct allowedips_hosts *h, const uint8_t *addr,
			size_t len)
{
	uint64_t w[2] = { 0, 0 };
	memcpy(w, addr, len);
	uint64_t x = mix64(t->seed ^ w[0]);
	if (len > sizeof(w[0]))
		x = mix64(x ^ w[1]);
	return (size_t)x & h->mask;
}

/* The slot holding addr, or the free slot ending its probe run; NULL with no table yet. */
static uint8_t *host_probe(const struct allowedips *t, const struct allowedips_hosts *h, const uint8_t *addr,
			   size_t len)
{
	if (!h->slots)
		return NULL;
	for (size_t i = host_home(t, h, addr, len);; i = (i + 1) & h->mask) {
		uint8_t *slot = slot_at(h, i, len);
		if (!slot_owner(slot) || memcmp(slot + sizeof(void *), addr, len) == 0)
			return slot;
	}
}

static bool host_resize(const struct allowedips *t, struct allowedips_hosts *h, size_t slots, size_t len)
{
	struct allowedips_hosts old = *h;
	uint8_t *fresh = calloc(slots, slot_size(len));
	if (!fresh)
		return false;
	h->slots = fresh;
	h->mask = slots - 1;
	for (size_t i = 0; old.slots && i <= old.mask; i++) {
		const uint8_t *from = slot_at(&old, i, len);
		void *owner = slot_owner(from);
		if (owner)
			slot_set(host_probe(t, h, from + sizeof(void *), len), owner, from + sizeof(void *), len);
	}
	free(old.slots);
	return true;
}

static bool host_insert(struct allowedips *t, struct allowedips_hosts *h, const uint8_t *addr, size_t len,
			void *owner)
{
	uint8_t *slot = host_probe(t, h, addr, len);
	if (slot && slot_owner(slot)) { /* the same address: it changes owner */
		slot_set(slot, owner, addr, len);
		return true;
	}
	/* Doubled when more than 3/4 full: a miss (an address only a shorter prefix holds)
	 * then probes a few slots on average, and 10,000 peers fit in 16,384 slots. */
	if (!h->slots || (h->count + 1) * 4 > (h->mask + 1) * 3) {
		if (!host_resize(t, h, h->slots ? (h->mask + 1) * 2 : HOSTS_MIN_SLOTS, len))
			return false;
		slot = host_probe(t, h, addr, len);
	}
	slot_set(slot, owner, addr, len);
	h->count++;
	return true;
}

/* Is slot i outside the probe run from home to hole (cyclically)? Then an entry at i whose
 * home is `home` may move into the hole (Knuth's algorithm R). */
static bool may_fill(size_t hole, size_t i, size_t home, size_t mask)
{
	return ((i - home) & mask) >= ((i - hole) & mask);
}

/* Empties slot `hole` by backward shift: the entries after it whose run passes it move up,
 * so only slots from `hole` on (cyclically, up to the run's end) change. No shrinking here
 * (host_remove_by_owner walks the table meanwhile): host_maybe_shrink does that. */
static void host_delete_at(const struct allowedips *t, struct allowedips_hosts *h, size_t hole, size_t len)
{
	for (size_t i = (hole + 1) & h->mask; slot_owner(slot_at(h, i, len)); i = (i + 1) & h->mask) {
		uint8_t *slot = slot_at(h, i, len);
		if (may_fill(hole, i, host_home(t, h, slot + sizeof(void *), len), h->mask)) {
			memcpy(slot_at(h, hole, len), slot, slot_size(len));
			hole = i;
		}
	}
	memset(slot_at(h, hole, len), 0, slot_size(len));
	h->count--;
}

/* Halved below an eighth full (a quarter of the growth threshold: no see-saw). */
static void host_maybe_shrink(const struct allowedips *t, struct allowedips_hosts *h, size_t len)
{
	if (h->count == 0) {
		free(h->slots);
		h->slots = NULL;
		h->mask = 0;
		return;
	}
	size_t slots = h->mask + 1;
	while (slots > HOSTS_MIN_SLOTS && h->count * 8 < slots)
		slots /= 2;
	if (slots != h->mask + 1)
		host_resize(t, h, slots, len); /* out of memory: stays larger, still correct */
}

static bool host_remove(struct allowedips *t, struct allowedips_hosts *h, const uint8_t *addr, size_t len,
			const void *owner)
{
	uint8_t *slot = host_probe(t, h, addr, len);
	if (!slot || !slot_owner(slot) || slot_owner(slot) != owner)
		return false;
	host_delete_at(t, h, (size_t)(slot - h->slots) / slot_size(len), len);
	host_maybe_shrink(t, h, len);
	return true;
}

static void host_remove_by_owner(struct allowedips *t, struct allowedips_hosts *h, size_t len, const void *owner)
{
	if (!h->slots)
		return;
	/* A deletion at i moves only entries from after i (cyclically) into slots from i on,
	 * so slot i is looked at again and nothing not yet seen lands behind the walk (an entry
	 * that wraps around to the front was seen there already and is not owner's). */
	for (size_t i = 0; i <= h->mask;) {
		if (slot_owner(slot_at(h, i, len)) == owner)
			host_delete_at(t, h, i, len);
		else
			i++;
	}
	host_maybe_shrink(t, h, len);
}

static void *host_lookup(const struct allowedips *t, const struct allowedips_hosts *h, const uint8_t *addr,
			 size_t len)
{
	const uint8_t *slot = host_probe(t, h, addr, len);
	return slot ? slot_owner(slot) : NULL;
}

/* The host table of a family the trie roots accept. */
static struct allowedips_hosts *hosts_of(struct allowedips *t, int family)
{
	return family == AF_INET ? &t->hosts4 : &t->hosts6;
}

/* ---------------------------------------------------------------- the table */

void allowedips_init(struct allowedips *t)
{
	memset(t, 0, sizeof(*t));
	randombytes_buf(&t->seed, sizeof(t->seed));
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
	free(t->hosts4.slots);
	free(t->hosts6.slots);
	allowedips_init(t);
}

bool allowedips_insert(struct allowedips *t, const struct ip_prefix *prefix, void *owner)
{
	unsigned int width;
	struct allowedips_node **root = root_of(t, prefix->family, &width);
	if (!root || prefix->bits > width || !owner)
		return false;
	if (prefix->bits == width)
		return host_insert(t, hosts_of(t, prefix->family), prefix->addr, width / 8, owner);
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
	if (prefix->bits == width)
		return host_remove(t, hosts_of(t, prefix->family), prefix->addr, width / 8, owner);
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
	host_remove_by_owner(t, &t->hosts4, 4, owner);
	host_remove_by_owner(t, &t->hosts6, 16, owner);
}

void *allowedips_lookup(const struct allowedips *t, int family, const uint8_t *addr)
{
	const struct allowedips_node *node;
	void *best;

	if (family == AF_INET) {
		if ((best = host_lookup(t, &t->hosts4, addr, 4)) != NULL)
			return best;
		node = t->root4;
	} else if (family == AF_INET6) {
		if ((best = host_lookup(t, &t->hosts6, addr, 16)) != NULL)
			return best;
		node = t->root6;
	} else {
		return NULL;
	}
	/* No host route: the trie holds only prefixes shorter than the width. */
	while (node && common_bits(node->key, addr, node->bits) == node->bits) {
		if (node->owner)
			best = node->owner;
		node = node->child[bit_at(addr, node->bits)];
	}
	return best;
}
