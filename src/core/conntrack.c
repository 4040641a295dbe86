/* Flows this node opened; see conntrack.h. */
#include "conntrack.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

bool conntrack_init(struct conntrack *ct, size_t n_buckets)
{
	memset(ct, 0, sizeof(*ct));
	if (n_buckets == 0 || (n_buckets & (n_buckets - 1)) != 0)
		return false;
	ct->slots = calloc(n_buckets * CONNTRACK_WAYS, sizeof(*ct->slots));
	if (!ct->slots)
		return false;
	ct->n_buckets = n_buckets;
	randombytes_buf(ct->hash_key, sizeof(ct->hash_key));
	return true;
}

void conntrack_free(struct conntrack *ct)
{
	free(ct->slots);
	memset(ct, 0, sizeof(*ct));
}

void conntrack_clear(struct conntrack *ct)
{
	if (ct->slots)
		memset(ct->slots, 0, ct->n_buckets * CONNTRACK_WAYS * sizeof(*ct->slots));
}

size_t conntrack_count(const struct conntrack *ct, uint64_t now_ms)
{
	size_t n = 0;

	for (size_t i = 0; ct->slots && i < ct->n_buckets * CONNTRACK_WAYS; i++)
		if (ct->slots[i].expires_ms > now_ms)
			n++;
	return n;
}

static void key_make(struct conntrack_entry *k, uint8_t family, uint8_t proto, const uint8_t *local,
		     const uint8_t *remote, uint16_t lport, uint16_t rport)
{
	size_t alen = family == 4 ? 4 : 16;

	memset(k, 0, sizeof(*k));
	k->family = family;
	k->proto = proto;
	k->lport = lport;
	k->rport = rport;
	memcpy(k->local, local, alen);
	memcpy(k->remote, remote, alen);
}

/* The key's bytes after expires_ms; the struct has no padding there (checked below). */
_Static_assert(sizeof(struct conntrack_entry) == 8 + 1 + 1 + 2 + 2 + 16 + 16 + 2,
	       "conntrack_entry: 2 bytes of tail padding, zeroed by key_make");

static struct conntrack_entry *bucket_of(const struct conntrack *ct, const struct conntrack_entry *k)
{
	uint8_t h[crypto_shorthash_BYTES];
	uint64_t v;
	const uint8_t *p = (const uint8_t *)k + sizeof(k->expires_ms);

	crypto_shorthash(h, p, sizeof(*k) - sizeof(k->expires_ms), ct->hash_key);
	memcpy(&v, h, sizeof(v));
	return &ct->slots[(v & (ct->n_buckets - 1)) * CONNTRACK_WAYS];
}

static bool same_flow(const struct conntrack_entry *a, const struct conntrack_entry *b)
{
	return memcmp((const uint8_t *)a + sizeof(a->expires_ms), (const uint8_t *)b + sizeof(b->expires_ms),
		      sizeof(*a) - sizeof(a->expires_ms)) == 0;
}

static uint64_t timeout_ms(uint8_t proto)
{
	switch (proto) {
	case IP_PROTO_TCP:
		return CONNTRACK_TCP_TIMEOUT_MS;
	case IP_PROTO_UDP:
		return CONNTRACK_UDP_TIMEOUT_MS;
	default:
		return CONNTRACK_OTHER_TIMEOUT_MS;
	}
}

/* The tuple of an outgoing packet, as its replies will be looked up. False: not tracked
 * (a later fragment, or ICMP other than echo requests: errors we send open nothing). */
static bool tx_key(const struct filter_flow *f, struct conntrack_entry *k)
{
	if (f->later_fragment)
		return false;
	if (f->icmp) {
		if (!filter_icmp_is_echo_request(f))
			return false;
		key_make(k, f->family, f->proto, f->src, f->dst, f->icmp_id, 0);
		return true;
	}
	key_make(k, f->family, f->proto, f->src, f->dst, f->has_ports ? f->sport : 0, f->has_ports ? f->dport : 0);
	return true;
}

void conntrack_note_tx(struct conntrack *ct, const struct filter_flow *f, uint64_t now_ms)
{
	struct conntrack_entry k;

	if (!ct->slots || !tx_key(f, &k))
		return;
	k.expires_ms = now_ms + timeout_ms(f->proto);
	struct conntrack_entry *b = bucket_of(ct, &k), *victim = &b[0];
	for (size_t i = 0; i < CONNTRACK_WAYS; i++) {
		if (b[i].expires_ms > now_ms && same_flow(&b[i], &k)) {
			b[i].expires_ms = k.expires_ms;
			return;
		}
		if (b[i].expires_ms < victim->expires_ms)
			victim = &b[i];
	}
	if (victim->expires_ms > now_ms)
		ct->evicted++;
	ct->inserted++;
	*victim = k;
}

static bool lookup(const struct conntrack *ct, const struct conntrack_entry *k, uint64_t now_ms)
{
	const struct conntrack_entry *b = bucket_of(ct, k);

	for (size_t i = 0; i < CONNTRACK_WAYS; i++)
		if (b[i].expires_ms > now_ms && same_flow(&b[i], k))
			return true;
	return false;
}

bool conntrack_rx_related(const struct conntrack *ct, const struct filter_flow *f, uint64_t now_ms)
{
	struct conntrack_entry k;

	if (!ct->slots)
		return false;
	if (f->later_fragment)
		return false; /* no ports to match; its first fragment decided */
	if (f->icmp) {
		if (filter_icmp_is_echo_reply(f)) {
			key_make(&k, f->family, f->proto, f->dst, f->src, f->icmp_id, 0);
			return lookup(ct, &k, now_ms);
		}
		if (!filter_icmp_is_error(f))
			return false;
		/* The error quotes our packet: its source is us, its destination the remote. */
		struct filter_flow inner;
		return filter_icmp_error_inner(f, &inner) && tx_key(&inner, &k) && lookup(ct, &k, now_ms);
	}
	key_make(&k, f->family, f->proto, f->dst, f->src, f->has_ports ? f->dport : 0, f->has_ports ? f->sport : 0);
	return lookup(ct, &k, now_ms);
}
