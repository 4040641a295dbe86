/* Satellites on the coordinator: which gateway serves which stock WireGuard devices (the
 * registry's satellites table, db_satellites.c), pushed to each gateway as one SATELLITES
 * message after REGISTERED and whenever its list changes, and published to every node as host
 * routes of the gateway (routes.c puts them in the gateway's PEER_ROUTES), so the mesh sends
 * a satellite's traffic to its gateway. Changes come from admin commits (db_changed at the
 * tick), so a removed satellite is cut off within a tick plus one message. */
#include <stdlib.h>
#include <string.h>

#include "coord/server_internal.h"

static bool lists_equal(const struct control_satellites *a, const struct control_satellites *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		const struct control_satellite *x = &a->list[i], *y = &b->list[i];
		if (memcmp(x->public_key, y->public_key, WIRE_KEY_LEN) != 0 || strcmp(x->name, y->name) != 0 ||
		    memcmp(x->ipv4, y->ipv4, 4) != 0 || memcmp(x->ipv6, y->ipv6, 16) != 0 || x->has_psk != y->has_psk ||
		    sodium_memcmp(x->psk, y->psk, WIRE_KEY_LEN) != 0)
			return false;
	}
	return true;
}

static void sats_free(struct node_entry *e)
{
	if (!e->sats)
		return;
	sodium_memzero(e->sats, sizeof(*e->sats));
	free(e->sats);
	e->sats = NULL;
}

void satellites_send(struct coord_server *s, struct node_entry *e)
{
	struct control_message m;

	if (!e->session)
		return;
	memset(&m, 0, sizeof(m));
	m.type = CONTROL_MSG_SATELLITES;
	if (e->sats)
		m.u.satellites = e->sats->cur.list;
	if (!conn_queue_msg(s, e->session, &m))
		log_warn("satellites: cannot queue the list for gateway %s", e->rec.name);
	sodium_memzero(&m, sizeof(m)); /* preshared keys */
}

static void reload_row(const struct db_satellite *sat, void *arg)
{
	struct coord_server *s = arg;
	struct node_entry *e = nodemap_find(&s->nodes, sat->gateway_key);

	if (!e || e->removed)
		return;
	if (!e->sats && !(e->sats = calloc(1, sizeof(*e->sats)))) {
		log_error("out of memory for the satellites of %s", e->rec.name);
		return;
	}
	struct control_satellites *next = &e->sats->next.list;
	if (next->n >= CONTROL_MAX_SATELLITES)
		return; /* the registry refuses more; a hand-edited one is cut here */
	struct db_tags *tags = &e->sats->next.tags[next->n];
	struct control_satellite *c = &next->list[next->n++];
	memset(tags, 0, sizeof(*tags));
	for (const char *p = sat->tags; *p && tags->n < TAGS_PER_NODE_MAX;) {
		size_t len = strcspn(p, " ");
		if (len > 0 && len <= TAG_MAX)
			memcpy(tags->v[tags->n++], p, len); /* checked by the registry (db_satellites.c) */
		p += len + (p[len] == ' ');
	}
	memset(c, 0, sizeof(*c));
	memcpy(c->public_key, sat->public_key, WIRE_KEY_LEN);
	memcpy(c->name, sat->name, sizeof(c->name));
	memcpy(c->ipv4, sat->ipv4, 4);
	memcpy(c->ipv6, sat->ipv6, 16);
	c->has_psk = sat->has_psk;
	memcpy(c->psk, sat->psk, WIRE_KEY_LEN);
}

void satellites_reload(struct coord_server *s)
{
	for (struct node_entry *e = s->nodes.head; e; e = e->next)
		if (e->sats)
			memset(&e->sats->next, 0, sizeof(e->sats->next));
	if (!db_satellites_list(s->db, reload_row, s)) {
		SERVER_COUNT_LOG(s, db_errors, "registry: cannot read the satellites; will retry");
		return;
	}
	for (struct node_entry *e = s->nodes.head; e; e = e->next) {
		if (!e->sats || e->removed)
			continue;
		struct sat_set *cur = &e->sats->cur, *next = &e->sats->next;
		bool list_same = lists_equal(&cur->list, &next->list), tags_same = list_same;
		for (size_t i = 0; tags_same && i < next->list.n; i++)
			tags_same = db_tags_equal(&cur->tags[i], &next->tags[i]);
		if (list_same && tags_same)
			continue;
		if (!list_same)
			log_info("satellites: gateway %s serves %zu (was %zu)", e->rec.name, next->list.n, cur->list.n);
		*cur = *next;
		if (!list_same) {
			satellites_send(s, e);
			routes_satellites_changed(s, e);
		}
		policy_push_nodes_changed(s); /* a satellite's name, addresses or tags may be in the rules */
		/* e->sats stays when its list is empty: every node hears an empty PEER_SATELLITES */
		if (!list_same)
			nodemap_changed(s, e, true); /* PEER, PEER_ROUTES, PEER_SATELLITES to every node */
	}
}

void satellites_forget(struct node_entry *e)
{
	sats_free(e);
}

bool satellites_message(const struct node_entry *e, struct control_message *m)
{
	if (!e->sats)
		return false;
	memset(m, 0, sizeof(*m));
	m->type = CONTROL_MSG_PEER_SATELLITES;
	memcpy(m->u.peer_satellites.node_key, e->rec.node_key, WIRE_KEY_LEN);
	for (size_t i = 0; i < e->sats->cur.list.n; i++) {
		const struct control_satellite *c = &e->sats->cur.list.list[i];
		struct control_peer_satellite *o = &m->u.peer_satellites.list[i];
		memcpy(o->name, c->name, sizeof(o->name));
		memcpy(o->ipv4, c->ipv4, 4);
		memcpy(o->ipv6, c->ipv6, 16);
	}
	m->u.peer_satellites.n = e->sats->cur.list.n;
	return true;
}

size_t satellites_routes(const struct node_entry *e, struct control_route *out, size_t cap)
{
	size_t n = 0;

	for (size_t i = 0; e->sats && i < e->sats->cur.list.n && n + 2 <= cap; i++) {
		const struct control_satellite *c = &e->sats->cur.list.list[i];
		memset(&out[n], 0, 2 * sizeof(out[0]));
		out[n].family = 4;
		out[n].bits = 32;
		memcpy(out[n].addr, c->ipv4, 4);
		out[n + 1].family = 6;
		out[n + 1].bits = 128;
		memcpy(out[n + 1].addr, c->ipv6, 16);
		n += 2;
	}
	return n;
}
