/* Subnet routes and exit offers on the coordinator: what each node advertises (ROUTES), what
 * an administrator or an auto_approve_routes rule approved (the registry, db_routes.c), and
 * what every node is told (PEER_ROUTES, right after the PEER record of the node it is about,
 * nodemap.c). A route takes effect when it is both advertised and approved. */
#include <stdlib.h>
#include <string.h>

#include "coord/server_internal.h"
#include "core/routes.h"

static bool routes_equal(const struct control_routes *a, const struct control_routes *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (!route_equal(&a->list[i], &b->list[i]))
			return false;
	return true;
}

static void add_route(struct control_routes *rs, const struct control_route *r)
{
	if (rs->n < CONTROL_MAX_ROUTES && !route_list_has(rs, r))
		rs->list[rs->n++] = *r;
}

/* effective = the host routes of the node's satellites (satellites.c), then advertised and
 * approved, in the advertised order. Satellites come first: at most CONTROL_MAX_SATELLITES
 * take half the list, so they are never crowded out by a router's LANs. */
static void effective_compute(const struct node_entry *e, struct control_routes *out)
{
	const struct node_routes *nr = e->routes;
	struct control_route sat[2 * CONTROL_MAX_SATELLITES];
	size_t n_sat = satellites_routes(e, sat, sizeof(sat) / sizeof(sat[0]));

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < n_sat; i++)
		add_route(out, &sat[i]);
	for (size_t i = 0; i < nr->advertised.n; i++)
		if (route_list_has(&nr->approved, &nr->advertised.list[i]))
			add_route(out, &nr->advertised.list[i]);
}

static struct node_routes *routes_of(struct node_entry *e)
{
	if (!e->routes)
		e->routes = calloc(1, sizeof(*e->routes));
	return e->routes;
}

/* Pushes e again if what its peers route changed. */
static void effective_update(struct coord_server *s, struct node_entry *e)
{
	struct control_routes eff;

	effective_compute(e, &eff);
	if (routes_equal(&eff, &e->routes->effective))
		return;
	e->routes->effective = eff;
	if (!e->removed) {
		nodemap_changed(s, e, true);
		policy_push_nodes_changed(s); /* a router enforces the rules toward its routes */
	}
}

void routes_satellites_changed(struct coord_server *s, struct node_entry *e)
{
	if (!routes_of(e)) {
		log_error("out of memory storing the routes of %s", e->rec.name);
		return;
	}
	effective_update(s, e);
}

/* ---------------------------------------------------------------- from the registry */

struct reload_ctx {
	struct coord_server *s;
};

static void reload_row(const struct db_route *r, void *arg)
{
	struct reload_ctx *ctx = arg;
	struct node_entry *e = nodemap_find(&ctx->s->nodes, r->node_key);
	struct node_routes *nr = e ? routes_of(e) : NULL;

	if (!nr)
		return;
	if (r->approved)
		add_route(&nr->approved, &r->route);
	/* A live session's ROUTES is newer than the registry's copy; otherwise take the copy. */
	if (r->advertised && !e->session)
		add_route(&nr->advertised, &r->route);
}

void routes_reload(struct coord_server *s)
{
	struct reload_ctx ctx = { .s = s };

	for (struct node_entry *e = s->nodes.head; e; e = e->next) {
		if (!e->routes || e->removed)
			continue;
		memset(&e->routes->approved, 0, sizeof(e->routes->approved));
		if (!e->session)
			memset(&e->routes->advertised, 0, sizeof(e->routes->advertised));
	}
	if (!db_routes_list(s->db, reload_row, &ctx)) {
		SERVER_COUNT_LOG(s, db_errors, "registry: cannot read the routes; will retry");
		return;
	}
	for (struct node_entry *e = s->nodes.head; e; e = e->next)
		if (e->routes && !e->removed)
			effective_update(s, e);
}

/* ---------------------------------------------------------------- from the node */

/* Every other node's approved routes, for the collision check. */
static size_t taken_routes(struct coord_server *s, const struct node_entry *self, struct control_route *out, size_t cap)
{
	size_t n = 0;

	for (struct node_entry *e = s->nodes.head; e; e = e->next) {
		if (e == self || e->removed || !e->routes)
			continue;
		for (size_t i = 0; i < e->routes->approved.n && n < cap; i++)
			out[n++] = e->routes->approved.list[i];
	}
	return n;
}

static void overlay_routes(struct coord_server *s, struct control_route *v4, struct control_route *v6)
{
	memset(v4, 0, sizeof(*v4));
	memset(v6, 0, sizeof(*v6));
	v4->family = 4;
	v4->bits = DB_OVERLAY_IPV4_BITS;
	v4->addr[0] = 100;
	v4->addr[1] = 64;
	v6->family = 6;
	v6->bits = DB_OVERLAY_IPV6_BITS;
	db_network_ipv6_prefix(s->db, v6->addr);
	memset(v6->addr + DB_OVERLAY_IPV6_BITS / 8, 0, 16 - DB_OVERLAY_IPV6_BITS / 8);
}

/* Approves what a rule covers and nothing that collides. */
static void auto_approve(struct coord_server *s, struct node_entry *e)
{
	struct node_routes *nr = e->routes;
	struct control_route v4, v6;

	if (s->cfg.n_auto_approve == 0)
		return;
	struct control_route *taken = malloc(SERVER_ROUTES_TAKEN_MAX * sizeof(*taken));
	if (!taken) {
		log_error("out of memory checking the routes of %s", e->rec.name);
		return;
	}
	overlay_routes(s, &v4, &v6);
	for (size_t i = 0; i < nr->advertised.n; i++) {
		const struct control_route *r = &nr->advertised.list[i];
		char text[ROUTE_STR_MAX];
		bool found;

		if (route_list_has(&nr->approved, r) ||
		    !route_auto_approves(s->cfg.auto_approve, s->cfg.n_auto_approve, e->rec.name, r))
			continue;
		/* Bounded: at most 32 routes per node; a big network with many routers pays a
		 * walk per advertised route, once per ROUTES that changed something. */
		size_t n_taken = taken_routes(s, e, taken, SERVER_ROUTES_TAKEN_MAX);
		enum route_refusal why = route_check_approval(r, &v4, &v6, taken, n_taken);
		route_format(r, text, sizeof(text));
		if (why != ROUTE_OK) {
			SERVER_COUNT_LOG(s, routes_auto_refused, "routes: not auto-approving %s for %s: %s", text,
					 e->rec.name, route_refusal_text(why));
			continue;
		}
		if (!db_route_set_approved(s->db, e->rec.name, r, true, &found)) {
			SERVER_COUNT_LOG(s, db_errors, "registry: cannot approve route %s of %s", text, e->rec.name);
			continue;
		}
		add_route(&nr->approved, r);
		s->counters.routes_auto_approved++;
		log_info("routes: %s of %s approved by auto_approve_routes", text, e->rec.name);
	}
	free(taken);
}

/* Stores and announces what e advertises now (clean: deduplicated). */
static void routes_apply(struct coord_server *s, struct node_entry *e, const struct control_routes *clean,
			 uint64_t now_ms)
{
	struct node_routes *nr = routes_of(e);
	if (!nr) {
		log_error("out of memory storing the routes of %s", e->rec.name);
		return;
	}
	if (!db_routes_set_advertised(s->db, e->rec.node_key, clean)) {
		SERVER_COUNT_LOG(s, db_errors, "registry: cannot store the routes of %s", e->rec.name);
		return;
	}
	nr->advertised = *clean;
	nr->applied_ms = now_ms ? now_ms : 1;
	s->counters.routes_updates++;
	log_info("routes: %s advertises %zu route(s)", e->rec.name, clean->n);
	auto_approve(s, e);
	effective_update(s, e);
}

void routes_on_message(struct coord_server *s, struct conn *c, const struct control_routes *adv, uint64_t now_ms)
{
	struct node_entry *e = c->node;
	struct control_routes clean;

	if (!e)
		return;
	memset(&clean, 0, sizeof(clean));
	for (size_t i = 0; i < adv->n; i++)
		add_route(&clean, &adv->list[i]); /* duplicates are said once */
	struct node_routes *nr = e->routes;
	if (nr && nr->deferred_due_ms) {
		/* A newer message replaces the one waiting; the wait itself stays. */
		nr->deferred = clean;
		return;
	}
	if (nr && routes_equal(&clean, &nr->advertised) && nr->applied_ms != 0)
		return; /* the same again (a reconnection): nothing to write */
	if (!nr && clean.n == 0)
		return;
	if (nr && nr->applied_ms != 0 && now_ms - nr->applied_ms < SERVER_ROUTES_INTERVAL_MS) {
		/* Too soon: kept and applied when the interval is over (routes_tick), so the last
		 * word of a burst always lands while the burst costs one registry write a second. */
		nr->deferred = clean;
		nr->deferred_due_ms = nr->applied_ms + SERVER_ROUTES_INTERVAL_MS;
		s->routes_deferred_n++;
		s->counters.routes_deferred++;
		return;
	}
	routes_apply(s, e, &clean, now_ms);
}

void routes_tick(struct coord_server *s, uint64_t now_ms)
{
	size_t still_waiting = 0;

	if (s->routes_deferred_n == 0)
		return;
	/* Counted afresh: a node removed while its ROUTES waited took its wait with it. */
	for (struct node_entry *e = s->nodes.head; e; e = e->next) {
		struct node_routes *nr = e->routes;
		if (!nr || !nr->deferred_due_ms)
			continue;
		if (now_ms < nr->deferred_due_ms) {
			still_waiting++;
			continue;
		}
		nr->deferred_due_ms = 0;
		if (!routes_equal(&nr->deferred, &nr->advertised))
			routes_apply(s, e, &nr->deferred, now_ms);
	}
	s->routes_deferred_n = still_waiting;
}

bool routes_message(const struct node_entry *e, struct control_message *m)
{
	if (!e->routes)
		return false;
	memset(m, 0, sizeof(*m));
	m->type = CONTROL_MSG_PEER_ROUTES;
	memcpy(m->u.peer_routes.node_key, e->rec.node_key, WIRE_KEY_LEN);
	m->u.peer_routes.routes = e->routes->effective;
	return true;
}
