/* Route rules (routes.h): parsing, containment, auto approval and collisions. */
#include "routes.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

static size_t family_len(uint8_t family)
{
	return family == 4 ? 4 : family == 6 ? 16 : 0;
}

bool route_to_prefix(const struct control_route *r, struct ip_prefix *out)
{
	size_t len = family_len(r->family);

	if (len == 0 || r->bits > len * 8)
		return false;
	memset(out, 0, sizeof(*out));
	out->family = r->family == 4 ? AF_INET : AF_INET6;
	out->bits = r->bits;
	memcpy(out->addr, r->addr, len);
	return true;
}

bool route_from_prefix(const struct ip_prefix *p, struct control_route *out)
{
	struct ip_prefix net = ip_prefix_network(p);

	memset(out, 0, sizeof(*out));
	if (p->family == AF_INET && p->bits <= 32)
		out->family = 4;
	else if (p->family == AF_INET6 && p->bits <= 128)
		out->family = 6;
	else
		return false;
	out->bits = p->bits;
	memcpy(out->addr, net.addr, family_len(out->family));
	return true;
}

bool route_parse(const char *s, struct control_route *out)
{
	struct ip_prefix p;

	if (!s || !strchr(s, '/') || !ip_prefix_parse(s, &p) || !route_from_prefix(&p, out))
		return false;
	return memcmp(out->addr, p.addr, family_len(out->family)) == 0; /* no host bits */
}

const char *route_format(const struct control_route *r, char *buf, size_t len)
{
	struct ip_prefix p;

	if (!route_to_prefix(r, &p)) {
		snprintf(buf, len, "(invalid)");
		return buf;
	}
	return ip_prefix_format(&p, buf, len);
}

bool route_equal(const struct control_route *a, const struct control_route *b)
{
	return a->family == b->family && a->bits == b->bits && memcmp(a->addr, b->addr, family_len(a->family)) == 0;
}

bool route_is_exit(const struct control_route *r)
{
	return r->bits == 0;
}

bool route_within(const struct control_route *inner, const struct control_route *outer)
{
	struct ip_prefix i, o;

	return route_to_prefix(inner, &i) && route_to_prefix(outer, &o) && ip_prefix_within(&i, &o);
}

bool route_overlaps(const struct control_route *a, const struct control_route *b)
{
	return route_within(a, b) || route_within(b, a);
}

bool route_list_has(const struct control_routes *rs, const struct control_route *r)
{
	for (size_t i = 0; i < rs->n; i++)
		if (route_equal(&rs->list[i], r))
			return true;
	return false;
}

bool route_auto_approves(const struct route_auto_rule *rules, size_t n_rules, const char *node_name,
			 const struct control_route *advertised)
{
	for (size_t i = 0; i < n_rules; i++) {
		if (!route_within(advertised, &rules[i].prefix))
			continue;
		for (size_t j = 0; j < rules[i].n_nodes; j++)
			if (strcmp(rules[i].nodes[j], "*") == 0 || strcmp(rules[i].nodes[j], node_name) == 0)
				return true;
	}
	return false;
}

enum route_refusal route_check_approval(const struct control_route *cand, const struct control_route *overlay4,
					const struct control_route *overlay6, const struct control_route *taken,
					size_t n_taken)
{
	if (route_is_exit(cand))
		return ROUTE_OK;
	if ((overlay4 && route_overlaps(cand, overlay4)) || (overlay6 && route_overlaps(cand, overlay6)))
		return ROUTE_OVERLAPS_OVERLAY;
	for (size_t i = 0; i < n_taken; i++)
		if (!route_is_exit(&taken[i]) && route_overlaps(cand, &taken[i]))
			return ROUTE_TAKEN;
	return ROUTE_OK;
}

const char *route_refusal_text(enum route_refusal r)
{
	switch (r) {
	case ROUTE_OK:
		return "ok";
	case ROUTE_OVERLAPS_OVERLAY:
		return "it overlaps the mesh's own addresses";
	case ROUTE_TAKEN:
		return "it overlaps a route already approved for another node";
	}
	return "refused";
}
