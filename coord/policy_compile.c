/* The policy compiled for one node: the rules that name it as a destination, with their
 * sources expanded to overlay prefixes (core/filter.h). A node is told only what concerns
 * it as a destination; who it may reach elsewhere is the other nodes' business. A subnet
 * router or an exit node is also the destination of what lies behind it: it enforces the
 * rules toward its subnets and, as an exit, toward the internet, because it is the one
 * that receives those packets from the mesh (src/meshd/rx.c filters before the TUN). */
#include "coord/policy.h"

#include "core/routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PORT_MAX = 65535 };

/* Never the internet: the overlay's IPv4 range (db.h DB_OVERLAY_IPV4_BITS) and all of
 * fc00::/7, which holds every network's ULA /48 (and is not routed on the internet). */
#define OVERLAY_V4 "100.64.0.0/10"
#define OVERLAY_V6 "fc00::/7"

struct rule_list {
	struct filter_rule *v;
	size_t n, cap;
	bool over; /* more than FILTER_MAX_RULES */
	bool nomem;
};

static void list_add(struct rule_list *l, const struct filter_rule *r)
{
	for (size_t i = 0; i < l->n; i++)
		if (memcmp(&l->v[i], r, sizeof(*r)) == 0)
			return; /* written twice (a node in two groups): once is enough */
	if (l->n == FILTER_MAX_RULES) {
		l->over = true;
		return;
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		struct filter_rule *v = realloc(l->v, cap * sizeof(*v));
		if (!v) {
			l->nomem = true;
			return;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *r;
}

static const struct policy_node *node_named(const struct policy_node *nodes, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(nodes[i].name, name) == 0)
			return &nodes[i];
	return NULL;
}

static bool node_has_tag(const struct policy_node *node, const char *tag)
{
	for (size_t i = 0; i < node->n_tags; i++)
		if (strcmp(node->tags[i], tag) == 0)
			return true;
	return false;
}

/* What the internet is not: the overlay (the CGNAT range and every ULA, which holds the
 * network's /48) and every node's subnet routes. Exit offers (/0) are not cut out. */
struct cutout {
	struct ip_prefix *v;
	size_t n;
};

static bool cutout_build(struct cutout *c, const struct policy_node *nodes, size_t n_nodes)
{
	size_t cap = 2;

	for (size_t i = 0; i < n_nodes; i++)
		cap += nodes[i].n_routes;
	c->n = 0;
	c->v = calloc(cap, sizeof(*c->v));
	if (!c->v)
		return false;
	ip_prefix_parse(OVERLAY_V4, &c->v[c->n++]);
	ip_prefix_parse(OVERLAY_V6, &c->v[c->n++]);
	for (size_t i = 0; i < n_nodes; i++)
		for (size_t k = 0; k < nodes[i].n_routes; k++)
			if (!route_is_exit(&nodes[i].routes[k]) && route_to_prefix(&nodes[i].routes[k], &c->v[c->n]))
				c->n++;
	return true;
}

/* The destination prefixes one policy destination names on self. */
struct dests {
	struct ip_prefix v[POLICY_MAX_DESTS];
	size_t n;
	bool over;
};

static bool prefix_same(const struct ip_prefix *a, const struct ip_prefix *b)
{
	return a->family == b->family && a->bits == b->bits && memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

static void dests_add(struct dests *d, const struct ip_prefix *p)
{
	for (size_t i = 0; i < d->n; i++)
		if (prefix_same(&d->v[i], p))
			return;
	if (d->n == POLICY_MAX_DESTS) {
		d->over = true;
		return;
	}
	d->v[d->n++] = *p;
}

static void dests_add_addr(struct dests *d, int family, const uint8_t *addr)
{
	struct ip_prefix p = { .family = family, .bits = family == AF_INET ? 32 : 128 };

	memcpy(p.addr, addr, family == AF_INET ? 4 : 16);
	dests_add(d, &p);
}

static bool overlap(const struct ip_prefix *a, const struct ip_prefix *b)
{
	return a->family == b->family && (ip_prefix_within(a, b) || ip_prefix_within(b, a));
}

/* Adds p minus every cut-out prefix, as the fewest prefixes: halves p until each half is
 * either clear of the cut-outs or inside one. Depth at most 128. */
static void cover(struct dests *d, const struct ip_prefix *p, const struct cutout *c)
{
	bool split = false;

	for (size_t i = 0; i < c->n && !d->over; i++) {
		if (!overlap(p, &c->v[i]))
			continue;
		if (ip_prefix_within(p, &c->v[i]))
			return;
		split = true; /* a cut-out lies strictly inside p, so p->bits is below the maximum */
	}
	if (!split) {
		dests_add(d, p);
		return;
	}
	struct ip_prefix lo = *p, hi = *p;
	lo.bits = hi.bits = (uint8_t)(p->bits + 1);
	hi.addr[p->bits / 8] |= (uint8_t)(0x80u >> (p->bits % 8));
	cover(d, &lo, c);
	cover(d, &hi, c);
}

/* What a destination member (not a group) names on self. */
static void dests_of(struct dests *d, const struct policy_ref *ref, const struct policy_node *self,
		     const struct cutout *c)
{
	static const struct ip_prefix all4 = { .family = AF_INET }, all6 = { .family = AF_INET6 };
	const struct ip_prefix *whole = NULL; /* a prefix: its parts on self's routes */

	switch (ref->kind) {
	case POLICY_REF_ALL:
		dests_add_addr(d, AF_INET, self->ipv4);
		dests_add_addr(d, AF_INET6, self->ipv6);
		for (size_t k = 0; k < self->n_routes; k++) {
			struct ip_prefix r;
			if (!route_to_prefix(&self->routes[k], &r))
				continue;
			if (route_is_exit(&self->routes[k]))
				cover(d, r.family == AF_INET ? &all4 : &all6, c);
			else
				dests_add(d, &r);
		}
		return;
	case POLICY_REF_NODE:
		if (strcmp(ref->node, self->name) == 0) {
			dests_add_addr(d, AF_INET, self->ipv4);
			dests_add_addr(d, AF_INET6, self->ipv6);
		}
		return;
	case POLICY_REF_TAG:
		if (node_has_tag(self, ref->tag)) {
			dests_add_addr(d, AF_INET, self->ipv4);
			dests_add_addr(d, AF_INET6, self->ipv6);
		}
		return;
	case POLICY_REF_INTERNET:
		for (size_t k = 0; k < self->n_routes; k++)
			if (route_is_exit(&self->routes[k]))
				cover(d, self->routes[k].family == 4 ? &all4 : &all6, c);
		return;
	case POLICY_REF_PREFIX:
		if (ip_prefix_contains(&ref->prefix, AF_INET, self->ipv4))
			dests_add_addr(d, AF_INET, self->ipv4);
		if (ip_prefix_contains(&ref->prefix, AF_INET6, self->ipv6))
			dests_add_addr(d, AF_INET6, self->ipv6);
		whole = &ref->prefix;
		break;
	case POLICY_REF_GROUP:
		return; /* expanded by the caller */
	}
	for (size_t k = 0; whole && k < self->n_routes; k++) {
		struct ip_prefix r;
		if (!route_to_prefix(&self->routes[k], &r) || r.family != whole->family)
			continue;
		if (route_is_exit(&self->routes[k]))
			cover(d, whole, c); /* the part of it on the internet */
		else if (ip_prefix_within(whole, &r))
			dests_add(d, whole);
		else if (ip_prefix_within(&r, whole))
			dests_add(d, &r);
	}
}

struct emit {
	struct rule_list *out;
	const struct dests *dst;
	const struct policy_dest *dest;
	uint8_t proto;
};

/* One rule per (source, destination prefix of the source's family, port range). */
static void emit_prefix(struct emit *e, int family, const uint8_t *addr, unsigned int bits)
{
	struct filter_rule r;
	bool v4 = family == AF_INET;

	for (size_t d = 0; d < e->dst->n; d++) {
		const struct ip_prefix *to = &e->dst->v[d];
		if (to->family != family)
			continue;
		memset(&r, 0, sizeof(r));
		r.family = v4 ? FILTER_FAMILY_IPV4 : FILTER_FAMILY_IPV6;
		r.proto = e->proto;
		r.src_bits = (uint8_t)bits;
		memcpy(r.src, addr, v4 ? 4 : 16);
		r.dst_bits = to->bits;
		memcpy(r.dst, to->addr, v4 ? 4 : 16);
		for (size_t i = 0; i < e->dest->n_ports; i++) {
			r.port_lo = e->dest->ports[i].lo;
			r.port_hi = e->dest->ports[i].hi;
			list_add(e->out, &r);
		}
	}
}

static void emit_member(struct emit *e, const struct policy_ref *ref, const struct policy_node *nodes, size_t n)
{
	static const uint8_t zero[16];

	switch (ref->kind) {
	case POLICY_REF_ALL:
		emit_prefix(e, AF_INET, zero, 0);
		emit_prefix(e, AF_INET6, zero, 0);
		break;
	case POLICY_REF_NODE: {
		const struct policy_node *src = node_named(nodes, n, ref->node);
		if (!src)
			break; /* not joined (yet): it has no addresses to allow */
		emit_prefix(e, AF_INET, src->ipv4, 32);
		emit_prefix(e, AF_INET6, src->ipv6, 128);
		break;
	}
	case POLICY_REF_TAG:
		for (size_t i = 0; i < n; i++)
			if (node_has_tag(&nodes[i], ref->tag)) {
				emit_prefix(e, AF_INET, nodes[i].ipv4, 32);
				emit_prefix(e, AF_INET6, nodes[i].ipv6, 128);
			}
		break;
	case POLICY_REF_PREFIX: {
		struct ip_prefix net = ip_prefix_network(&ref->prefix);
		emit_prefix(e, net.family, net.addr, net.bits);
		break;
	}
	case POLICY_REF_GROUP:
	case POLICY_REF_INTERNET: /* refused as a source by the parser */
		break;
	}
}

bool policy_compile(const struct policy *p, const struct policy_node *nodes, size_t n_nodes, size_t self,
		    struct filter_rule **out, size_t *n_out, char *err, size_t err_len)
{
	struct rule_list l = { 0 };
	struct cutout c;
	struct dests *d = malloc(sizeof(*d)); /* 40 KiB: not on the stack */
	bool too_many_dests = false;

	bool exit_node = false;
	for (size_t k = 0; k < nodes[self].n_routes; k++)
		exit_node = exit_node || route_is_exit(&nodes[self].routes[k]);
	/* Only an exit node cuts the internet out of its routes: the others skip the walk over
	 * every node's routes (push_all compiles for every node). */
	c = (struct cutout){ 0 };
	if (!d || (exit_node && !cutout_build(&c, nodes, n_nodes))) {
		free(d);
		snprintf(err, err_len, "out of memory compiling the policy for node %s", nodes[self].name);
		return false;
	}
	for (size_t i = 0; i < p->n_rules && !l.over && !l.nomem && !too_many_dests; i++) {
		const struct policy_rule *rule = &p->rules[i];
		for (size_t j = 0; j < rule->n_to; j++) {
			struct emit e = { .out = &l, .dst = d, .dest = &rule->to[j], .proto = rule->proto };
			const struct policy_ref *to = &rule->to[j].ref;
			d->n = 0;
			d->over = false;
			if (to->kind == POLICY_REF_GROUP) {
				const struct policy_group *g = &p->groups[to->group];
				for (size_t k = 0; k < g->n_members; k++)
					dests_of(d, &g->members[k], &nodes[self], &c);
			} else {
				dests_of(d, to, &nodes[self], &c);
			}
			if (d->over) {
				too_many_dests = true;
				break;
			}
			if (d->n == 0)
				continue;
			for (size_t k = 0; k < rule->n_from; k++) {
				const struct policy_ref *from = &rule->from[k];
				if (from->kind != POLICY_REF_GROUP) {
					emit_member(&e, from, nodes, n_nodes);
					continue;
				}
				const struct policy_group *g = &p->groups[from->group];
				for (size_t m = 0; m < g->n_members; m++)
					emit_member(&e, &g->members[m], nodes, n_nodes);
			}
		}
	}
	free(d);
	free(c.v);
	if (l.over || l.nomem || too_many_dests) {
		if (too_many_dests)
			snprintf(err, err_len,
				 "node %s: a destination names more than %d prefixes on it (the internet cut around "
				 "too many subnet routes)",
				 nodes[self].name, POLICY_MAX_DESTS);
		else if (l.over)
			snprintf(err, err_len,
				 "node %s: the policy gives it more than %d rules; use prefixes or fewer port ranges",
				 nodes[self].name, FILTER_MAX_RULES);
		else
			snprintf(err, err_len, "out of memory compiling the policy for node %s", nodes[self].name);
		free(l.v);
		return false;
	}
	*out = l.v;
	*n_out = l.n;
	return true;
}

bool policy_check_nodes(const struct policy *p, const struct policy_node *nodes, size_t n_nodes, char *err,
			size_t err_len)
{
	for (size_t i = 0; i < n_nodes; i++) {
		struct filter_rule *rules;
		size_t n;
		if (!policy_compile(p, nodes, n_nodes, i, &rules, &n, err, err_len))
			return false;
		free(rules);
	}
	return true;
}

static bool some_node_has_tag(const struct policy_node *nodes, size_t n_nodes, const char *tag)
{
	for (size_t i = 0; i < n_nodes; i++)
		if (node_has_tag(&nodes[i], tag))
			return true;
	return false;
}

static void check_ref(const struct policy_ref *ref, const struct policy_node *nodes, size_t n_nodes,
		      void (*warn)(const struct policy_ref *, void *), void *ctx)
{
	if ((ref->kind == POLICY_REF_NODE && !node_named(nodes, n_nodes, ref->node)) ||
	    (ref->kind == POLICY_REF_TAG && !some_node_has_tag(nodes, n_nodes, ref->tag)))
		warn(ref, ctx);
}

void policy_unknown_nodes(const struct policy *p, const struct policy_node *nodes, size_t n_nodes,
			  void (*warn)(const struct policy_ref *ref, void *ctx), void *ctx)
{
	for (size_t i = 0; i < p->n_hosts; i++)
		check_ref(&p->hosts[i].ref, nodes, n_nodes, warn, ctx);
	for (size_t i = 0; i < p->n_groups; i++)
		for (size_t k = 0; k < p->groups[i].n_members; k++)
			check_ref(&p->groups[i].members[k], nodes, n_nodes, warn, ctx);
	for (size_t i = 0; i < p->n_rules; i++) {
		for (size_t k = 0; k < p->rules[i].n_from; k++)
			check_ref(&p->rules[i].from[k], nodes, n_nodes, warn, ctx);
		for (size_t k = 0; k < p->rules[i].n_to; k++)
			check_ref(&p->rules[i].to[k].ref, nodes, n_nodes, warn, ctx);
	}
}
