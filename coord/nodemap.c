/* The coordinator's copy of the node table, and how the peer maps stream out of it.
 *
 * Peer maps and deltas are one mechanism. The table is also a list ordered by the version of
 * each node's last change: a change (joined, online, offline, endpoints, removed) moves the
 * node to the tail with the next version. Each session keeps a cursor into that list and,
 * whenever its socket can take more, is sent the current record of every node from its cursor
 * on. A new session's cursor starts at the head: that is its full map, followed by
 * NETMAP_END. Nothing is queued per session beyond one batch the socket did not take, so
 * 10,000 sessions cost little memory even while all of them lag behind a join storm, and a
 * node that changed three times while a session lagged is sent once. Removed nodes stay in
 * the list as tombstones (sent as PEER_REMOVE) until every session that knew them has passed
 * them. */
#include <stdlib.h>
#include <string.h>

#include "coord/server_internal.h"

/* ---------------------------------------------------------------- the hash */

static uint64_t node_key_hash(const struct node_table *t, const uint8_t key[WIRE_KEY_LEN])
{
	uint8_t out[crypto_shorthash_BYTES];
	uint64_t h;

	crypto_shorthash(out, key, WIRE_KEY_LEN, t->hash_key);
	memcpy(&h, out, sizeof(h));
	return h;
}

struct node_entry *nodemap_find(const struct node_table *t, const uint8_t key[WIRE_KEY_LEN])
{
	if (t->cap == 0)
		return NULL;
	size_t mask = t->cap - 1;
	for (size_t i = node_key_hash(t, key) & mask;; i = (i + 1) & mask) {
		struct node_entry *e = t->slots[i];
		if (!e)
			return NULL;
		if (memcmp(e->rec.node_key, key, WIRE_KEY_LEN) == 0)
			return e;
	}
}

static void slots_place(struct node_entry **slots, size_t cap, struct node_entry *e)
{
	size_t i = e->hash & (cap - 1);
	while (slots[i])
		i = (i + 1) & (cap - 1);
	slots[i] = e;
}

static bool node_table_grow(struct node_table *t)
{
	size_t cap = t->cap ? t->cap * 2 : SERVER_INITIAL_TABLE_SLOTS;
	struct node_entry **slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return false;
	for (size_t i = 0; i < t->cap; i++)
		if (t->slots[i])
			slots_place(slots, cap, t->slots[i]);
	free(t->slots);
	t->slots = slots;
	t->cap = cap;
	return true;
}

struct node_entry *nodemap_add(struct node_table *t, const struct db_node *rec)
{
	if ((t->count + 1) * 2 > t->cap && !node_table_grow(t)) /* load factor at most 1/2 */
		return NULL;
	struct node_entry *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->rec = *rec;
	e->hash = node_key_hash(t, rec->node_key);
	slots_place(t->slots, t->cap, e);
	t->count++;
	return e;
}

/* Takes e out of the hash. Backward-shift deletion keeps every probe chain unbroken
 * without tombstone slots. */
static void node_hash_remove(struct node_table *t, struct node_entry *e)
{
	size_t mask = t->cap - 1;
	size_t i = e->hash & mask;
	while (t->slots[i] != e)
		i = (i + 1) & mask;
	t->slots[i] = NULL;
	for (size_t j = (i + 1) & mask; t->slots[j]; j = (j + 1) & mask) {
		size_t home = t->slots[j]->hash & mask;
		/* Move slots[j] into the hole unless its home lies cyclically in (i, j]. */
		bool home_between = i < j ? (home > i && home <= j) : (home > i || home <= j);
		if (!home_between) {
			t->slots[i] = t->slots[j];
			t->slots[j] = NULL;
			i = j;
		}
	}
	t->count--;
}

void nodemap_free(struct node_table *t)
{
	struct node_entry *e = t->head;
	while (e) {
		struct node_entry *next = e->next;
		sodium_memzero(e->relay_token, sizeof(e->relay_token)); /* a live session's */
		free(e->pending_eps);
		free(e->routes);
		free(e->tags);
		satellites_forget(e);
		free(e);
		e = next;
	}
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

/* ---------------------------------------------------------------- the change list */

static void change_list_unlink(struct node_table *t, struct node_entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		t->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		t->tail = e->prev;
	e->prev = e->next = NULL;
}

static void change_list_append(struct node_table *t, struct node_entry *e)
{
	e->version = ++t->version;
	e->next = NULL;
	e->prev = t->tail;
	if (t->tail)
		t->tail->next = e;
	else
		t->head = e;
	t->tail = e;
}

/* O(sessions), like any push. */
void nodemap_changed(struct coord_server *s, struct node_entry *e, bool on_list)
{
	struct node_entry *after = on_list ? e->next : NULL;

	for (struct conn *c = s->active_list.head; c; c = c->next) {
		if (c->dead)
			continue;
		if (on_list && c->cursor == e) {
			c->cursor = after ? after : e; /* it still reaches e, now at the tail */
			c->cursor_routes = false;      /* e is sent whole, PEER first, later */
			c->cursor_sats = false;
		} else if (!c->cursor) {
			c->cursor = e; /* was caught up: e is its next news */
			conn_schedule_flush(s, c);
		}
	}
	if (on_list)
		change_list_unlink(&s->nodes, e);
	change_list_append(&s->nodes, e);
}

/* ---------------------------------------------------------------- tombstones */

/* Frees tombstone t: every session that knew it has passed it. */
static void tomb_free(struct coord_server *s, struct node_entry *t)
{
	/* Sessions that began after the removal skip t without counting; move them on. */
	for (struct conn *c = s->active_list.head; c; c = c->next)
		if (c->cursor == t) {
			c->cursor = t->next;
			c->cursor_routes = false;
			c->cursor_sats = false;
		}
	struct node_entry **pp = &s->nodes.tombs;
	while (*pp != t)
		pp = &(*pp)->tomb_next;
	*pp = t->tomb_next;
	change_list_unlink(&s->nodes, t);
	free(t->routes);
	free(t->tags);
	satellites_forget(t);
	free(t);
}

static void tomb_passed(struct coord_server *s, struct node_entry *t)
{
	if (t->tomb_pending > 0 && --t->tomb_pending == 0)
		tomb_free(s, t);
}

void nodemap_session_left(struct coord_server *s, struct conn *c)
{
	struct node_entry *t = s->nodes.tombs;
	while (t) {
		struct node_entry *next = t->tomb_next;
		if (t->version > c->start_version && t->version > c->sent_version)
			tomb_passed(s, t);
		t = next;
	}
	c->cursor = NULL;
}

size_t nodemap_tomb_count(const struct node_table *t)
{
	size_t n = 0;

	for (const struct node_entry *e = t->tombs; e; e = e->tomb_next)
		n++;
	return n;
}

/* ---------------------------------------------------------------- cursors */

bool nodemap_has_news(const struct conn *c)
{
	return c->state == CONN_ACTIVE && (c->cursor || !c->map_done);
}

static void node_message_peer(const struct node_entry *e, struct control_message *m)
{
	memset(m, 0, sizeof(*m));
	m->type = CONTROL_MSG_PEER;
	struct control_peer *p = &m->u.peer;
	memcpy(p->node_key, e->rec.node_key, WIRE_KEY_LEN);
	memcpy(p->name, e->rec.name, sizeof(p->name));
	memcpy(p->ipv4, e->rec.ipv4, sizeof(p->ipv4));
	memcpy(p->ipv6, e->rec.ipv6, sizeof(p->ipv6));
	p->online = e->session != NULL;
	p->n_endpoints = e->rec.n_endpoints;
	memcpy(p->endpoints, e->rec.endpoints, e->rec.n_endpoints * sizeof(p->endpoints[0]));
}

bool nodemap_next_news(struct coord_server *s, struct conn *c, struct control_message *m)
{
	if (c->state != CONN_ACTIVE)
		return false;
	while (c->cursor) {
		struct node_entry *e = c->cursor;

		if (e->removed && e->version <= c->start_version) {
			/* removed before this session began: no news, and not counted in
			 * tomb_pending, so nothing to settle */
		} else if (e->removed) {
			memset(m, 0, sizeof(*m));
			m->type = CONTROL_MSG_PEER_REMOVE;
			memcpy(m->u.remove_key, e->rec.node_key, WIRE_KEY_LEN);
			return true;
		} else if (e != c->node) {
			/* PEER, then its PEER_ROUTES (the node applies routes to a peer it knows),
			 * then its PEER_SATELLITES (names of the hosts those routes lead to) */
			if (c->cursor_sats && satellites_message(e, m))
				return true;
			if (c->cursor_routes && !c->cursor_sats && routes_message(e, m))
				return true;
			node_message_peer(e, m);
			return true;
		} else if (routes_message(e, m)) {
			c->cursor_routes = true; /* its own: which of its routes are approved */
			return true;
		}
		c->cursor = e->next;
		c->sent_version = e->version;
		c->cursor_routes = false;
		c->cursor_sats = false;
	}
	if (c->map_done)
		return false;
	memset(m, 0, sizeof(*m));
	m->type = CONTROL_MSG_NETMAP_END;
	return true;
}

void nodemap_news_sent(struct coord_server *s, struct conn *c)
{
	struct node_entry *e = c->cursor;

	if (!e) {
		c->map_done = true;
		return;
	}
	if (!c->cursor_routes && !c->cursor_sats && !e->removed && e != c->node && e->routes) {
		c->cursor_routes = true; /* the same entry again: its PEER_ROUTES */
		return;
	}
	if (!c->cursor_sats && !e->removed && e != c->node && e->sats) {
		c->cursor_sats = true; /* and again: its PEER_SATELLITES */
		return;
	}
	c->cursor_routes = false;
	c->cursor_sats = false;
	c->cursor = e->next;
	c->sent_version = e->version;
	s->counters.peer_msgs_sent++;
	if (c->map_done)
		s->counters.peer_deltas_sent++;
	if (e->removed)
		tomb_passed(s, e); /* may free e; the cursor is already past it */
}

/* ---------------------------------------------------------------- the registry */

bool server_endpoints_equal(const struct control_endpoint *a, size_t na, const struct control_endpoint *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++) {
		size_t alen = a[i].family == 4 ? 4 : 16;
		if (a[i].family != b[i].family || a[i].port != b[i].port || memcmp(a[i].addr, b[i].addr, alen) != 0)
			return false;
	}
	return true;
}

void nodemap_touch(struct coord_server *s, struct node_entry *e, uint64_t now_ms)
{
	e->last_touch_ms = now_ms;
	if (!db_node_touch(s->db, e->rec.node_key, server_unix_now()))
		SERVER_COUNT_LOG(s, db_errors, "registry: cannot record last-seen time of %s", e->rec.name);
}

struct load_ctx {
	struct coord_server *s;
	bool failed;
};

static void load_one(const struct db_node *n, void *arg)
{
	struct load_ctx *ctx = arg;
	struct node_entry *e;
	if (nodemap_find(&ctx->s->nodes, n->node_key))
		return;
	e = nodemap_add(&ctx->s->nodes, n);
	if (e)
		change_list_append(&ctx->s->nodes, e);
	else
		ctx->failed = true;
}

bool nodemap_load(struct coord_server *s)
{
	struct load_ctx ctx = { .s = s };

	return db_nodes_list(s->db, load_one, &ctx) && !ctx.failed;
}

static void reload_one(const struct db_node *n, void *arg)
{
	struct load_ctx *ctx = arg;
	struct coord_server *s = ctx->s;
	struct node_entry *e = nodemap_find(&s->nodes, n->node_key);

	if (!e) {
		/* Not made by us (nothing else makes nodes today), but follow the registry. */
		e = nodemap_add(&s->nodes, n);
		if (!e) {
			ctx->failed = true;
			return;
		}
		e->seen = true;
		nodemap_changed(s, e, false);
		policy_push_nodes_changed(s);
		return;
	}
	e->seen = true;
	bool changed = strcmp(e->rec.name, n->name) != 0 || memcmp(e->rec.ipv4, n->ipv4, sizeof(n->ipv4)) != 0 ||
		       memcmp(e->rec.ipv6, n->ipv6, sizeof(n->ipv6)) != 0 ||
		       !server_endpoints_equal(e->rec.endpoints, e->rec.n_endpoints, n->endpoints, n->n_endpoints);
	e->rec = *n;
	if (changed) {
		nodemap_changed(s, e, true);
		policy_push_nodes_changed(s);
	}
}

/* The registry no longer has e: cut its session off and leave a tombstone, which every
 * session passes as a PEER_REMOVE. */
static void node_remove(struct coord_server *s, struct node_entry *e)
{
	struct conn *sess = e->session;

	s->counters.nodes_removed++;
	log_info("node %s was removed from the registry: disconnecting it and telling its peers", e->rec.name);
	if (sess) {
		e->session = NULL;
		sess->node = NULL;
		conn_refuse(s, sess, CONTROL_ERR_NODE_REMOVED,
			    "this node was removed from the network by an administrator");
	}
	relay_session_end(s, e); /* its traffic is never forwarded again */
	dispatch_endpoints_forget(s, e);
	policy_push_nodes_changed(s);
	node_hash_remove(&s->nodes, e);
	e->removed = true;
	nodemap_changed(s, e, true);
	/* Every registered session owes it a PEER_REMOVE, the dead ones too: reaping them
	 * settles their share (nodemap_session_left). */
	e->tomb_pending = s->active_list.count;
	e->tomb_next = s->nodes.tombs;
	s->nodes.tombs = e;
	if (e->tomb_pending == 0)
		tomb_free(s, e);
}

void nodemap_reload(struct coord_server *s)
{
	struct load_ctx ctx = { .s = s };

	for (struct node_entry *e = s->nodes.head; e; e = e->next)
		e->seen = false;
	if (!db_nodes_list(s->db, reload_one, &ctx) || ctx.failed) {
		/* Keep everyone: a failed read must not look like mass removal. */
		SERVER_COUNT_LOG(s, db_errors, "registry: cannot reload the node list; will retry");
		return;
	}
	/* Removals append tombstones at the tail, which this walk then meets and skips. */
	struct node_entry *e = s->nodes.head;
	while (e) {
		struct node_entry *next = e->next;
		if (!e->seen && !e->removed)
			node_remove(s, e);
		e = next;
	}
}
