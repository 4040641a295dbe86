/* Access rules on this node; see acl.h. */
#include "meshd/acl.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"

void acl_init(struct acl *a)
{
	memset(a, 0, sizeof(*a));
}

void acl_free(struct acl *a)
{
	free(a->rules);
	free(a->pending);
	conntrack_free(&a->ct);
	memset(a, 0, sizeof(*a));
}

bool acl_set(struct acl *a, bool active, const struct filter_rule *rules, size_t n, bool from_coordinator)
{
	struct filter_rule *copy = NULL;

	if (!active)
		n = 0;
	if (n > FILTER_MAX_RULES)
		return false;
	if (n) {
		copy = malloc(n * sizeof(*copy));
		if (!copy)
			return false;
		memcpy(copy, rules, n * sizeof(*copy));
	}
	/* The table is kept across rule changes: flows this node opened stay answered. */
	if (active && !a->ct.slots && !conntrack_init(&a->ct, CONNTRACK_DEFAULT_BUCKETS)) {
		free(copy);
		return false;
	}
	if (!active)
		conntrack_free(&a->ct); /* allow all needs no table; ~200 KiB back */
	free(a->rules);
	a->rules = copy;
	a->n_rules = n;
	a->active = active;
	a->known = true;
	a->from_coordinator = from_coordinator;
	return true;
}

static void pending_drop(struct acl *a)
{
	free(a->pending);
	a->pending = NULL;
	a->n_pending = 0;
	a->pending_parts = 0;
	a->pending_next = 0;
}

enum acl_part_result acl_receive_part(struct acl *a, const struct control_filter *f)
{
	if (f->part == 0) {
		pending_drop(a);
		a->pending_generation = f->generation;
		a->pending_parts = f->parts;
		a->pending_active = f->active;
		/* Room for the whole set at once: parts * per part is the most it can hold. */
		if (f->active) {
			a->pending = malloc((size_t)f->parts * CONTROL_FILTER_RULES_PER_MSG * sizeof(*a->pending));
			if (!a->pending) {
				pending_drop(a);
				return ACL_PART_REFUSED;
			}
		}
	} else if (!a->pending_parts || f->generation != a->pending_generation || f->part != a->pending_next ||
		   f->parts != a->pending_parts || f->active != a->pending_active) {
		pending_drop(a);
		return ACL_PART_REFUSED;
	}
	if (f->n_rules) {
		memcpy(a->pending + a->n_pending, f->rules, f->n_rules * sizeof(*f->rules));
		a->n_pending += f->n_rules;
	}
	a->pending_next = (uint8_t)(f->part + 1);
	if (a->pending_next < a->pending_parts)
		return ACL_PART_PENDING;
	bool ok = acl_set(a, a->pending_active, a->pending, a->n_pending, true);
	pending_drop(a);
	return ok ? ACL_PART_APPLIED : ACL_PART_REFUSED;
}

/* An ICMP error about a packet this node sent in answer to an allowed connection (a peer
 * that may reach our port 80 says "fragmentation needed" about our reply): the quoted
 * packet, turned around, is what a rule allows. Path MTU discovery needs these. */
static bool error_about_allowed(const struct acl *a, const struct filter_flow *f)
{
	struct filter_flow inner, back;

	if (!filter_icmp_is_error(f) || !filter_icmp_error_inner(f, &inner))
		return false;
	back = inner;
	back.src = inner.dst;
	back.dst = inner.src;
	back.sport = inner.dport;
	back.dport = inner.sport;
	return filter_rules_allow(a->rules, a->n_rules, &back);
}

bool acl_allow_rx_slow(struct acl *a, const uint8_t *pkt, size_t len, uint64_t now_ms)
{
	struct filter_flow f;

	if (!filter_flow_parse(pkt, len, &f))
		return false; /* headers we cannot read cannot be matched: not let in */
	return conntrack_rx_related(&a->ct, &f, now_ms) || filter_rules_allow(a->rules, a->n_rules, &f) ||
	       error_about_allowed(a, &f);
}

void acl_note_tx_slow(struct acl *a, const uint8_t *pkt, size_t len, uint64_t now_ms)
{
	struct filter_flow f;

	if (filter_flow_parse(pkt, len, &f))
		conntrack_note_tx(&a->ct, &f, now_ms);
}
