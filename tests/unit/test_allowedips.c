/* Allowed IPs (src/core/allowedips.c): the trie and host tables against a naive list that
 * scans every prefix (as WireGuard's selftest does with its "horrible" allowedips), on many
 * random prefixes, lookups and removals; then hand cases: /0, /32, /128, nested and
 * overlapping prefixes, a prefix moving to another owner, host routes inside other owners'
 * prefixes, and removal leaving nothing behind; then a large map of host routes (the host
 * tables growing, shrinking and shifting entries on removal). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "core/allowedips.h"

enum {
	NAIVE_MAX = 4096,    /* prefixes in one random round */
	RANDOM_ROUNDS = 6,   /* each with its own seed, family mix and size */
	LOOKUPS = 20000,     /* random addresses looked up per check */
	OWNERS = 64,         /* distinct owners prefixes are spread over */
	BASES = 24,          /* random prefixes grow from a few bases, so they nest and overlap */
};

/* ---------------------------------------------------------------- the naive reference */

struct naive_entry {
	struct ip_prefix prefix; /* masked */
	void *owner;
};

struct naive {
	struct naive_entry e[NAIVE_MAX];
	size_t n;
};

static void mask(struct ip_prefix *p)
{
	unsigned int width = p->family == AF_INET ? 32 : 128;
	for (unsigned int i = p->bits; i < width; i++)
		p->addr[i / 8] &= (uint8_t)~(0x80u >> (i % 8));
	if (p->family == AF_INET)
		memset(p->addr + 4, 0, sizeof(p->addr) - 4);
}

static bool same_prefix(const struct ip_prefix *a, const struct ip_prefix *b)
{
	return a->family == b->family && a->bits == b->bits && memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

static void naive_insert(struct naive *nv, const struct ip_prefix *prefix, void *owner)
{
	struct ip_prefix p = *prefix;
	mask(&p);
	for (size_t i = 0; i < nv->n; i++)
		if (same_prefix(&nv->e[i].prefix, &p)) {
			nv->e[i].owner = owner;
			return;
		}
	assert_true(nv->n < NAIVE_MAX);
	nv->e[nv->n].prefix = p;
	nv->e[nv->n].owner = owner;
	nv->n++;
}

static bool naive_remove(struct naive *nv, const struct ip_prefix *prefix, const void *owner)
{
	struct ip_prefix p = *prefix;
	mask(&p);
	for (size_t i = 0; i < nv->n; i++)
		if (same_prefix(&nv->e[i].prefix, &p) && nv->e[i].owner == owner) {
			nv->e[i] = nv->e[--nv->n];
			return true;
		}
	return false;
}

static void naive_remove_by_owner(struct naive *nv, const void *owner)
{
	for (size_t i = 0; i < nv->n;)
		if (nv->e[i].owner == owner)
			nv->e[i] = nv->e[--nv->n];
		else
			i++;
}

static void *naive_lookup(const struct naive *nv, int family, const uint8_t *addr)
{
	void *best = NULL;
	int best_bits = -1;
	for (size_t i = 0; i < nv->n; i++)
		if (nv->e[i].prefix.bits > best_bits && ip_prefix_contains(&nv->e[i].prefix, family, addr)) {
			best = nv->e[i].owner;
			best_bits = nv->e[i].prefix.bits;
		}
	return best;
}

/* ---------------------------------------------------------------- random input */

static uint64_t rng_state;

static uint64_t rng(void)
{
	/* xorshift64*: reproducible from the seed printed on failure */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * UINT64_C(2685821657736338717);
}

static uint8_t owners[OWNERS]; /* their addresses are the owners */

static void random_prefix(const struct ip_prefix *bases, struct ip_prefix *out, bool v6_too)
{
	const struct ip_prefix *base = &bases[rng() % BASES];
	if (!v6_too)
		while (base->family != AF_INET)
			base = &bases[rng() % BASES];
	*out = *base;
	unsigned int width = out->family == AF_INET ? 32 : 128;
	/* lengths cluster at the ends (/0.., host routes) and in between */
	switch (rng() % 4) {
	case 0: out->bits = (uint8_t)(rng() % 5); break;
	case 1: out->bits = (uint8_t)(width - rng() % 3); break;
	default: out->bits = (uint8_t)(rng() % (width + 1)); break;
	}
	/* flip a few bits so siblings and near misses appear */
	for (int k = (int)(rng() % 3); k > 0; k--) {
		unsigned int b = (unsigned int)(rng() % width);
		out->addr[b / 8] ^= (uint8_t)(0x80u >> (b % 8));
	}
}

static void random_addr(const struct ip_prefix *bases, int *family, uint8_t addr[16], bool v6_too)
{
	struct ip_prefix p;
	random_prefix(bases, &p, v6_too);
	*family = p.family;
	memcpy(addr, p.addr, 16);
	if (rng() % 4 == 0) /* now and then an address near none of them */
		for (int i = 0; i < 16; i++)
			addr[i] = (uint8_t)rng();
}

static void check_lookups(const struct allowedips *t, const struct naive *nv, const struct ip_prefix *bases,
			  bool v6_too, uint64_t seed)
{
	for (int k = 0; k < LOOKUPS; k++) {
		int family;
		uint8_t addr[16];
		random_addr(bases, &family, addr, v6_too);
		void *want = naive_lookup(nv, family, addr), *got = allowedips_lookup(t, family, addr);
		if (want != got)
			fail_msg("seed %llu lookup %d: trie says %p, list says %p", (unsigned long long)seed, k, got, want);
	}
	/* every prefix's own address finds the owner of its longest match */
	for (size_t i = 0; i < nv->n; i++) {
		const struct ip_prefix *p = &nv->e[i].prefix;
		assert_ptr_equal(allowedips_lookup(t, p->family, p->addr), naive_lookup(nv, p->family, p->addr));
	}
}

static void random_round(uint64_t seed, size_t n_prefixes, bool v6_too)
{
	static struct naive nv;
	struct allowedips t;
	struct ip_prefix bases[BASES];

	rng_state = seed;
	nv.n = 0;
	allowedips_init(&t);
	for (int i = 0; i < BASES; i++) {
		bases[i].family = (v6_too && i % 2) ? AF_INET6 : AF_INET;
		for (int j = 0; j < 16; j++)
			bases[i].addr[j] = (uint8_t)rng();
		if (bases[i].family == AF_INET)
			memset(bases[i].addr + 4, 0, 12);
	}

	for (size_t i = 0; i < n_prefixes; i++) {
		struct ip_prefix p;
		random_prefix(bases, &p, v6_too);
		void *owner = &owners[rng() % OWNERS];
		assert_true(allowedips_insert(&t, &p, owner));
		naive_insert(&nv, &p, owner);
	}
	check_lookups(&t, &nv, bases, v6_too, seed);

	/* remove a third by prefix (some with the wrong owner: nothing happens then) */
	for (size_t i = 0; i < n_prefixes / 3 && nv.n > 0; i++) {
		struct naive_entry e = nv.e[rng() % nv.n];
		void *who = rng() % 8 ? e.owner : (void *)&owners[rng() % OWNERS];
		assert_int_equal(allowedips_remove(&t, &e.prefix, who), naive_remove(&nv, &e.prefix, who));
	}
	check_lookups(&t, &nv, bases, v6_too, seed);

	/* a few owners go altogether, then some prefixes come back */
	for (int i = 0; i < OWNERS / 4; i++) {
		void *owner = &owners[rng() % OWNERS];
		allowedips_remove_by_owner(&t, owner);
		naive_remove_by_owner(&nv, owner);
	}
	for (size_t i = 0; i < n_prefixes / 4; i++) {
		struct ip_prefix p;
		random_prefix(bases, &p, v6_too);
		void *owner = &owners[rng() % OWNERS];
		assert_true(allowedips_insert(&t, &p, owner));
		naive_insert(&nv, &p, owner);
	}
	check_lookups(&t, &nv, bases, v6_too, seed);

	/* everything out: no node may be left */
	for (int i = 0; i < OWNERS; i++)
		allowedips_remove_by_owner(&t, &owners[i]);
	assert_int_equal(t.n_nodes, 0);
	assert_null(t.root4);
	assert_null(t.root6);
	assert_int_equal(t.hosts4.count + t.hosts6.count, 0);
	allowedips_free(&t);
}

static void test_random_against_list(void **state)
{
	(void)state;
	static const struct {
		uint64_t seed;
		size_t n;
		bool v6;
	} rounds[RANDOM_ROUNDS] = {
		{ 1, 50, false }, { 2, 1000, false }, { 3, 4000, false },
		{ 4, 100, true }, { 5, 2000, true },  { 6, 4000, true },
	};
	for (int i = 0; i < RANDOM_ROUNDS; i++)
		random_round(rounds[i].seed, rounds[i].n, rounds[i].v6);
}

/* ---------------------------------------------------------------- hand cases */

static struct ip_prefix P(const char *s)
{
	struct ip_prefix p;
	assert_true(ip_prefix_parse(s, &p));
	return p;
}

static void *look(const struct allowedips *t, const char *ip)
{
	uint8_t addr[16] = { 0 };
	if (strchr(ip, ':')) {
		assert_int_equal(inet_pton(AF_INET6, ip, addr), 1);
		return allowedips_lookup(t, AF_INET6, addr);
	}
	assert_int_equal(inet_pton(AF_INET, ip, addr), 1);
	return allowedips_lookup(t, AF_INET, addr);
}

static void test_hand_cases(void **state)
{
	(void)state;
	struct allowedips t;
	int a, b, c, d;
	allowedips_init(&t);

	assert_null(look(&t, "100.64.0.1"));
	assert_null(look(&t, "fd00::1"));

	/* /0: everything of its family, nothing of the other */
	assert_true(allowedips_insert(&t, &(struct ip_prefix){ .family = AF_INET, .bits = 0 }, &a));
	assert_ptr_equal(look(&t, "0.0.0.0"), &a);
	assert_ptr_equal(look(&t, "255.255.255.255"), &a);
	assert_null(look(&t, "::1"));

	/* nested: /10 inside /0, /32 inside /10; overlapping siblings */
	assert_true(allowedips_insert(&t, &(struct ip_prefix){ 0 }, &a) == false); /* no family */
	struct ip_prefix p10 = P("100.64.0.0/10"), p32 = P("100.64.0.7/32"), p24 = P("100.64.1.0/24");
	assert_true(allowedips_insert(&t, &p10, &b));
	assert_true(allowedips_insert(&t, &p32, &c));
	assert_true(allowedips_insert(&t, &p24, &d));
	assert_ptr_equal(look(&t, "100.64.0.7"), &c);
	assert_ptr_equal(look(&t, "100.64.0.6"), &b);
	assert_ptr_equal(look(&t, "100.64.1.200"), &d);
	assert_ptr_equal(look(&t, "100.128.0.1"), &a); /* outside the /10 */
	assert_ptr_equal(look(&t, "10.0.0.1"), &a);

	/* host bits in the given prefix are ignored */
	struct ip_prefix sloppy = { .family = AF_INET, .bits = 24 };
	memcpy(sloppy.addr, (uint8_t[]){ 100, 64, 1, 99 }, 4);
	assert_true(allowedips_insert(&t, &sloppy, &c)); /* the same /24: moves to c */
	assert_ptr_equal(look(&t, "100.64.1.1"), &c);
	assert_false(allowedips_remove(&t, &p24, &d)); /* d no longer owns it */
	assert_true(allowedips_remove(&t, &p24, &c));
	assert_ptr_equal(look(&t, "100.64.1.1"), &b);

	/* removing the middle prefix keeps the inner and outer ones */
	assert_true(allowedips_remove(&t, &p10, &b));
	assert_ptr_equal(look(&t, "100.64.0.7"), &c);
	assert_ptr_equal(look(&t, "100.64.0.6"), &a);
	assert_false(allowedips_remove(&t, &p10, &b)); /* already gone */

	/* /128 and IPv6 nesting */
	struct ip_prefix h6 = P("fd7a:115c:a1e0::2/128"), n6 = P("fd7a:115c:a1e0::/48"), all6 = P("::/0");
	assert_true(allowedips_insert(&t, &h6, &b));
	assert_ptr_equal(look(&t, "fd7a:115c:a1e0::2"), &b);
	assert_null(look(&t, "fd7a:115c:a1e0::3"));
	assert_true(allowedips_insert(&t, &n6, &d));
	assert_true(allowedips_insert(&t, &all6, &a));
	assert_ptr_equal(look(&t, "fd7a:115c:a1e0::3"), &d);
	assert_ptr_equal(look(&t, "2001:db8::1"), &a);
	assert_ptr_equal(look(&t, "fd7a:115c:a1e0::2"), &b);

	/* two host routes differing in the last bit branch at bit 127 */
	struct ip_prefix h6b = P("fd7a:115c:a1e0::3/128");
	assert_true(allowedips_insert(&t, &h6b, &c));
	assert_ptr_equal(look(&t, "fd7a:115c:a1e0::3"), &c);
	assert_ptr_equal(look(&t, "fd7a:115c:a1e0::2"), &b);

	/* a malformed prefix is refused */
	assert_false(allowedips_insert(&t, &(struct ip_prefix){ .family = AF_INET, .bits = 33 }, &a));
	assert_false(allowedips_insert(&t, &(struct ip_prefix){ .family = AF_INET6, .bits = 129 }, &a));

	/* an owner removed is found by nothing */
	allowedips_remove_by_owner(&t, &c);
	assert_ptr_equal(look(&t, "100.64.0.7"), &a);
	assert_ptr_equal(look(&t, "fd7a:115c:a1e0::3"), &d);
	allowedips_remove_by_owner(&t, &a);
	allowedips_remove_by_owner(&t, &b);
	allowedips_remove_by_owner(&t, &d);
	assert_null(look(&t, "100.64.0.7"));
	assert_null(look(&t, "fd7a:115c:a1e0::2"));
	assert_int_equal(t.n_nodes, 0);
	assert_int_equal(t.hosts4.count + t.hosts6.count, 0);
	allowedips_free(&t);
}

/* Host routes (the hash tables) mixed with prefixes (the trie) of other owners. */
static void test_hosts_and_prefixes(void **state)
{
	(void)state;
	struct allowedips t;
	int a, b, c;
	allowedips_init(&t);

	/* the same address as b's /32 and inside a's /24: the /32 wins, its neighbours are a's */
	struct ip_prefix net = P("100.64.5.0/24"), host = P("100.64.5.9/32"), host2 = P("100.64.5.10/32");
	assert_true(allowedips_insert(&t, &net, &a));
	assert_true(allowedips_insert(&t, &host, &b));
	assert_true(allowedips_insert(&t, &host2, &c));
	assert_ptr_equal(look(&t, "100.64.5.9"), &b);
	assert_ptr_equal(look(&t, "100.64.5.10"), &c);
	assert_ptr_equal(look(&t, "100.64.5.8"), &a);
	assert_null(look(&t, "100.64.6.9"));
	/* and the other way round: the /24 added after the /32 changes nothing for it */
	struct ip_prefix h6 = P("fd7a:115c:a1e0::9/128"), n6 = P("fd7a:115c:a1e0::/64");
	assert_true(allowedips_insert(&t, &h6, &b));
	assert_true(allowedips_insert(&t, &n6, &a));
	assert_ptr_equal(look(&t, "fd7a:115c:a1e0::9"), &b);
	assert_ptr_equal(look(&t, "fd7a:115c:a1e0::8"), &a);
	/* an IPv4 host route says nothing about the IPv6 address with the same first bytes */
	uint8_t v6[16] = { 100, 64, 5, 9 };
	assert_null(allowedips_lookup(&t, AF_INET6, v6));

	/* the /32's owner goes: its address falls back to the /24, the other host stays */
	assert_false(allowedips_remove(&t, &host, &a)); /* not a's: the /24 is, the /32 is not */
	allowedips_remove_by_owner(&t, &b);
	assert_ptr_equal(look(&t, "100.64.5.9"), &a);
	assert_ptr_equal(look(&t, "fd7a:115c:a1e0::9"), &a);
	assert_ptr_equal(look(&t, "100.64.5.10"), &c);
	/* the prefix's owner goes: the hosts stay */
	assert_true(allowedips_insert(&t, &host, &b));
	allowedips_remove_by_owner(&t, &a);
	assert_ptr_equal(look(&t, "100.64.5.9"), &b);
	assert_ptr_equal(look(&t, "100.64.5.10"), &c);
	assert_null(look(&t, "100.64.5.8"));
	assert_int_equal(t.n_nodes, 0); /* no prefix left in the trie */

	/* re-adding: a host route moves between owners, and comes back after removal */
	assert_true(allowedips_insert(&t, &host, &c));
	assert_ptr_equal(look(&t, "100.64.5.9"), &c);
	assert_false(allowedips_remove(&t, &host, &b));
	assert_true(allowedips_remove(&t, &host, &c));
	assert_null(look(&t, "100.64.5.9"));
	assert_true(allowedips_insert(&t, &host, &b));
	assert_true(allowedips_insert(&t, &net, &a));
	assert_ptr_equal(look(&t, "100.64.5.9"), &b);
	assert_ptr_equal(look(&t, "100.64.5.11"), &a);

	allowedips_remove_by_owner(&t, &a);
	allowedips_remove_by_owner(&t, &b);
	allowedips_remove_by_owner(&t, &c);
	assert_int_equal(t.n_nodes, 0);
	assert_int_equal(t.hosts4.count + t.hosts6.count, 0);
	assert_null(look(&t, "100.64.5.10"));
	allowedips_free(&t);
}

enum {
	MANY_HOSTS = 20000, /* a large mesh's /32s and /128s: the tables grow past 16,384 slots */
};

static void host_of(unsigned int i, bool v6, struct ip_prefix *p)
{
	memset(p, 0, sizeof(*p));
	if (v6) {
		*p = P("fd7a:115c:a1e0::/128");
		p->addr[12] = (uint8_t)(i >> 24);
		p->addr[13] = (uint8_t)(i >> 16);
		p->addr[14] = (uint8_t)(i >> 8);
		p->addr[15] = (uint8_t)i;
	} else {
		*p = P("100.64.0.0/32");
		p->addr[1] = (uint8_t)(64 + ((i >> 16) & 0x3f));
		p->addr[2] = (uint8_t)(i >> 8);
		p->addr[3] = (uint8_t)i;
	}
}

/* Whose is host i now (NULL: removed), with the /10 and /48 of `outer` under them all. */
static void check_many(const struct allowedips *t, void *const *want, void *outer)
{
	for (unsigned int i = 0; i < MANY_HOSTS; i++)
		for (int v6 = 0; v6 < 2; v6++) {
			struct ip_prefix p;
			host_of(i, v6, &p);
			void *got = allowedips_lookup(t, p.family, p.addr);
			if (got != (want[i] ? want[i] : outer))
				fail_msg("host %u (v6 %d): %p, want %p", i, v6, got, want[i] ? want[i] : outer);
		}
}

static void test_many_hosts(void **state)
{
	(void)state;
	static void *want[MANY_HOSTS];
	struct allowedips t;
	int outer;
	struct ip_prefix p10 = P("100.64.0.0/10"), p48 = P("fd7a:115c:a1e0::/48");
	allowedips_init(&t);
	assert_true(allowedips_insert(&t, &p10, &outer));
	assert_true(allowedips_insert(&t, &p48, &outer));
	for (unsigned int i = 0; i < MANY_HOSTS; i++) {
		struct ip_prefix p;
		want[i] = &owners[i % OWNERS];
		for (int v6 = 0; v6 < 2; v6++) {
			host_of(i, v6, &p);
			assert_true(allowedips_insert(&t, &p, want[i]));
		}
	}
	assert_int_equal(t.hosts4.count, MANY_HOSTS);
	assert_int_equal(t.hosts6.count, MANY_HOSTS);
	assert_true(t.hosts4.count * 4 <= (t.hosts4.mask + 1) * 3); /* at most 3/4 full */
	assert_int_equal(t.n_nodes, 2); /* the /10, the /48 and nothing else in the tries */
	check_many(&t, want, &outer);

	/* every third by prefix (moving entries back into the holes), then half the owners */
	for (unsigned int i = 0; i < MANY_HOSTS; i += 3) {
		struct ip_prefix p;
		for (int v6 = 0; v6 < 2; v6++) {
			host_of(i, v6, &p);
			assert_true(allowedips_remove(&t, &p, want[i]));
		}
		want[i] = NULL;
	}
	check_many(&t, want, &outer);
	for (int k = 0; k < OWNERS; k += 2) {
		allowedips_remove_by_owner(&t, &owners[k]);
		for (unsigned int i = 0; i < MANY_HOSTS; i++)
			if (want[i] == &owners[k])
				want[i] = NULL;
	}
	check_many(&t, want, &outer);

	/* the rest go too: the tables shrink back, and re-adding works from there */
	for (int k = 1; k < OWNERS; k += 2)
		allowedips_remove_by_owner(&t, &owners[k]);
	assert_int_equal(t.hosts4.count + t.hosts6.count, 0);
	assert_null(t.hosts4.slots);
	for (unsigned int i = 0; i < MANY_HOSTS; i++)
		want[i] = NULL;
	check_many(&t, want, &outer);
	for (int v6 = 0; v6 < 2; v6++) {
		struct ip_prefix again;
		host_of(7, v6, &again);
		assert_true(allowedips_insert(&t, &again, &owners[1]));
	}
	want[7] = &owners[1];
	check_many(&t, want, &outer);
	allowedips_free(&t);
}

static void test_free_nonempty(void **state)
{
	(void)state;
	struct allowedips t;
	int a;
	allowedips_init(&t);
	for (int i = 0; i < 300; i++) {
		struct ip_prefix p = { .family = i % 2 ? AF_INET6 : AF_INET, .bits = (uint8_t)(i % 33) };
		p.addr[0] = (uint8_t)i;
		p.addr[3] = (uint8_t)(i * 7);
		assert_true(allowedips_insert(&t, &p, &a));
	}
	assert_true(t.n_nodes > 0);
	allowedips_free(&t); /* ASan/valgrind: nothing leaks */
	assert_int_equal(t.n_nodes, 0);
	assert_null(look(&t, "0.0.0.0"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_against_list),
		cmocka_unit_test(test_hand_cases),
		cmocka_unit_test(test_hosts_and_prefixes),
		cmocka_unit_test(test_many_hosts),
		cmocka_unit_test(test_free_nonempty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
