/* The policy compiled for one node: the rules that name it as a destination, with their
 * sources expanded to overlay prefixes (core/filter.h). A node is told only what concerns
 * it as a destination; who it may reach elsewhere is the other nodes' business. */
#include "coord/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PORT_MAX = 65535 };

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

/* Which of self's addresses a member (NODE or PREFIX) or "*" names. */
static void target_of(const struct policy_ref *ref, const struct policy_node *self, bool *v4, bool *v6)
{
	switch (ref->kind) {
	case POLICY_REF_ALL:
		*v4 = *v6 = true;
		break;
	case POLICY_REF_NODE:
		if (strcmp(ref->node, self->name) == 0)
			*v4 = *v6 = true;
		break;
	case POLICY_REF_PREFIX:
		if (ip_prefix_contains(&ref->prefix, AF_INET, self->ipv4))
			*v4 = true;
		if (ip_prefix_contains(&ref->prefix, AF_INET6, self->ipv6))
			*v6 = true;
		break;
	case POLICY_REF_GROUP:
		break; /* expanded by the caller */
	}
}

struct emit {
	struct rule_list *out;
	const struct policy_node *self;
	const struct policy_dest *dest;
	uint8_t proto;
	bool v4, v6; /* self's addresses the destination names */
};

static void emit_prefix(struct emit *e, int family, const uint8_t *addr, unsigned int bits)
{
	struct filter_rule r;
	bool v4 = family == AF_INET;

	if (v4 ? !e->v4 : !e->v6)
		return;
	memset(&r, 0, sizeof(r));
	r.family = v4 ? FILTER_FAMILY_IPV4 : FILTER_FAMILY_IPV6;
	r.proto = e->proto;
	r.src_bits = (uint8_t)bits;
	memcpy(r.src, addr, v4 ? 4 : 16);
	r.dst_bits = v4 ? 32 : 128;
	memcpy(r.dst, v4 ? e->self->ipv4 : e->self->ipv6, v4 ? 4 : 16);
	for (size_t i = 0; i < e->dest->n_ports; i++) {
		r.port_lo = e->dest->ports[i].lo;
		r.port_hi = e->dest->ports[i].hi;
		list_add(e->out, &r);
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
	case POLICY_REF_PREFIX: {
		struct ip_prefix net = ip_prefix_network(&ref->prefix);
		emit_prefix(e, net.family, net.addr, net.bits);
		break;
	}
	case POLICY_REF_GROUP:
		break;
	}
}

bool policy_compile(const struct policy *p, const struct policy_node *nodes, size_t n_nodes, size_t self,
		    struct filter_rule **out, size_t *n_out, char *err, size_t err_len)
{
	struct rule_list l = { 0 };

	for (size_t i = 0; i < p->n_rules && !l.over && !l.nomem; i++) {
		const struct policy_rule *rule = &p->rules[i];
		for (size_t j = 0; j < rule->n_to; j++) {
			struct emit e = { .out = &l, .self = &nodes[self], .dest = &rule->to[j], .proto = rule->proto };
			const struct policy_ref *to = &rule->to[j].ref;
			if (to->kind == POLICY_REF_GROUP) {
				const struct policy_group *g = &p->groups[to->group];
				for (size_t k = 0; k < g->n_members; k++)
					target_of(&g->members[k], e.self, &e.v4, &e.v6);
			} else {
				target_of(to, e.self, &e.v4, &e.v6);
			}
			if (!e.v4 && !e.v6)
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
	if (l.over || l.nomem) {
		if (l.over)
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

static void check_ref(const struct policy_ref *ref, const struct policy_node *nodes, size_t n_nodes,
		      void (*warn)(const struct policy_ref *, void *), void *ctx)
{
	if (ref->kind == POLICY_REF_NODE && !node_named(nodes, n_nodes, ref->node))
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
