/* Access rules on the running coordinator: the policy file loaded at start, read again on
 * SIGHUP and when the file changes (checked every tick), and each online node sent the
 * rules that concern it (CONTROL_MSG_FILTER) when it registers and whenever its compiled
 * set changes: a new policy, or a node that joined, left or was renumbered.
 *
 * A policy that does not parse, or that gives some node more than FILTER_MAX_RULES, is
 * refused: at start meshcoord does not start; on reload the error is logged and the
 * previous policy stays. No policy file: every node is told "allow all". */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "coord/server_internal.h"

/* The nodes as the compiler sees them, in change-list order, then every gateway's satellites
 * (each a node of its own to the rules: its name, addresses and tags); e->policy_index and
 * e->policy_sat_index are set. */
static struct policy_node *node_list(struct coord_server *s, size_t *n_out)
{
	size_t n_sats = 0;
	for (struct node_entry *e = s->nodes.head; e; e = e->next)
		if (!e->removed && e->sats)
			n_sats += e->sats->cur.list.n;
	struct policy_node *v = calloc(s->nodes.count + n_sats + 1, sizeof(*v));
	size_t n = 0;

	if (!v)
		return NULL;
	for (struct node_entry *e = s->nodes.head; e; e = e->next) {
		if (e->removed || n == s->nodes.count)
			continue;
		v[n].name = e->rec.name;
		memcpy(v[n].ipv4, e->rec.ipv4, sizeof(v[n].ipv4));
		memcpy(v[n].ipv6, e->rec.ipv6, sizeof(v[n].ipv6));
		if (e->tags) {
			v[n].tags = (const char(*)[TAG_MAX + 1])e->tags->cur.v;
			v[n].n_tags = e->tags->cur.n;
		}
		if (e->routes) {
			v[n].routes = e->routes->effective.list;
			v[n].n_routes = e->routes->effective.n;
		}
		e->policy_index = n++;
	}
	for (struct node_entry *e = s->nodes.head; e; e = e->next) {
		e->policy_sat_index = n;
		for (size_t i = 0; !e->removed && e->sats && i < e->sats->cur.list.n && n < s->nodes.count + n_sats; i++) {
			const struct control_satellite *c = &e->sats->cur.list.list[i];
			v[n].name = c->name;
			memcpy(v[n].ipv4, c->ipv4, sizeof(v[n].ipv4));
			memcpy(v[n].ipv6, c->ipv6, sizeof(v[n].ipv6));
			v[n].tags = (const char(*)[TAG_MAX + 1])e->sats->cur.tags[i].v;
			v[n].n_tags = e->sats->cur.tags[i].n;
			n++;
		}
	}
	*n_out = n;
	return v;
}

/* Appends b's rules that a does not hold yet to a (*a malloc'd, may be NULL); false when
 * out of memory or over FILTER_MAX_RULES. */
static bool rules_merge(struct filter_rule **a, size_t *n_a, const struct filter_rule *b, size_t n_b)
{
	for (size_t i = 0; i < n_b; i++) {
		bool have = false;
		for (size_t j = 0; j < *n_a && !have; j++)
			have = memcmp(&(*a)[j], &b[i], sizeof(b[i])) == 0;
		if (have)
			continue;
		if (*n_a >= FILTER_MAX_RULES)
			return false;
		struct filter_rule *grown = realloc(*a, (*n_a + 1) * sizeof(**a));
		if (!grown)
			return false;
		*a = grown;
		(*a)[(*n_a)++] = b[i];
	}
	return true;
}

/* e's rules: those toward it, and those toward each satellite it serves (it enforces them:
 * the satellite's traffic arrives through it). */
static bool compile_for(struct coord_server *s, struct node_entry *e, const struct policy_node *nodes,
			size_t n_nodes, struct filter_rule **rules, size_t *n, char *err, size_t err_len)
{
	if (!policy_compile(&s->policy.pol, nodes, n_nodes, e->policy_index, rules, n, err, err_len))
		return false;
	for (size_t i = 0; e->sats && i < e->sats->cur.list.n; i++) {
		struct filter_rule *more = NULL;
		size_t n_more = 0;
		bool ok = e->policy_sat_index + i < n_nodes &&
			  policy_compile(&s->policy.pol, nodes, n_nodes, e->policy_sat_index + i, &more, &n_more, err,
					 err_len) &&
			  rules_merge(rules, n, more, n_more);
		free(more);
		if (!ok) {
			if (!err[0])
				snprintf(err, err_len, "the rules of %s and its satellites do not fit", e->rec.name);
			free(*rules);
			*rules = NULL;
			*n = 0;
			return false;
		}
	}
	return true;
}

static void digest_of(bool active, const struct filter_rule *rules, size_t n, uint8_t out[POLICY_DIGEST_LEN])
{
	crypto_generichash_state st;
	uint8_t a = active;

	crypto_generichash_init(&st, NULL, 0, POLICY_DIGEST_LEN);
	crypto_generichash_update(&st, &a, 1);
	if (n)
		crypto_generichash_update(&st, (const uint8_t *)rules, n * sizeof(*rules));
	crypto_generichash_final(&st, out, POLICY_DIGEST_LEN);
}

/* Queues the set as FILTER parts; the node applies it when the last part is in. */
static void send_set(struct coord_server *s, struct node_entry *e, bool active, const struct filter_rule *rules,
		     size_t n)
{
	struct control_message *m = calloc(1, sizeof(*m));
	size_t parts = n ? (n + CONTROL_FILTER_RULES_PER_MSG - 1) / CONTROL_FILTER_RULES_PER_MSG : 1;

	if (!m)
		return;
	m->type = CONTROL_MSG_FILTER;
	m->u.filter.generation = ++s->policy.generation;
	m->u.filter.parts = (uint8_t)parts; /* n <= FILTER_MAX_RULES: parts fit (control.h) */
	m->u.filter.active = active;
	for (size_t part = 0; part < parts; part++) {
		size_t first = part * CONTROL_FILTER_RULES_PER_MSG;
		size_t k = n - first < CONTROL_FILTER_RULES_PER_MSG ? n - first : CONTROL_FILTER_RULES_PER_MSG;
		m->u.filter.part = (uint8_t)part;
		m->u.filter.n_rules = (uint8_t)k;
		if (k)
			memcpy(m->u.filter.rules, rules + first, k * sizeof(*rules));
		if (!conn_queue_msg(s, e->session, m))
			break; /* the session is dying; it gets a full set when it comes back */
	}
	s->counters.filter_sets_sent++;
	free(m);
}

/* Compiles for e and sends if its set changed since it was last sent in this session. */
static void push_one(struct coord_server *s, struct node_entry *e, const struct policy_node *nodes, size_t n_nodes)
{
	struct filter_rule *rules = NULL;
	size_t n = 0;
	uint8_t digest[POLICY_DIGEST_LEN];
	char err[256];
	bool active = s->policy.loaded;

	err[0] = '\0';
	if (active && !compile_for(s, e, nodes, n_nodes, &rules, &n, err, sizeof(err))) {
		/* policy_check_nodes passed when it was loaded: only a join since then, or memory.
		 * Fail closed: an empty set lets nothing new in, where no set would allow all. */
		log_error("access rules: %s; node %s is sent no rules (nothing may reach it) until the policy is fixed",
			  err, e->rec.name);
		rules = NULL;
		n = 0;
	}
	digest_of(active, rules, n, digest);
	if (!e->filter_sent || memcmp(digest, e->filter_digest, sizeof(digest)) != 0) {
		send_set(s, e, active, rules, n);
		memcpy(e->filter_digest, digest, sizeof(digest));
		e->filter_sent = true;
	}
	free(rules);
}

void policy_push_session(struct coord_server *s, struct node_entry *e)
{
	size_t n;
	struct policy_node *nodes = node_list(s, &n);

	if (!nodes) {
		log_error("access rules: out of memory; node %s gets its rules at the next change", e->rec.name);
		return;
	}
	e->filter_sent = false; /* a new session knows nothing of what the last one was sent */
	push_one(s, e, nodes, n);
	free(nodes);
}

static void push_all(struct coord_server *s)
{
	size_t n;
	struct policy_node *nodes = node_list(s, &n);

	if (!nodes) {
		log_error("access rules: out of memory; will retry");
		return;
	}
	s->policy.dirty = false;
	for (struct node_entry *e = s->nodes.head; e; e = e->next)
		if (!e->removed && e->session && !e->session->dead && e->session->state == CONN_ACTIVE)
			push_one(s, e, nodes, n);
	free(nodes);
}

static void tag_row(const uint8_t node_key[WIRE_KEY_LEN], const char *tag, void *ctx)
{
	struct coord_server *s = ctx;
	struct node_entry *e = nodemap_find(&s->nodes, node_key);

	if (!e)
		return; /* joined after our node list was read: the next reload has it */
	if (!e->tags && !(e->tags = calloc(1, sizeof(*e->tags)))) {
		log_error("access rules: out of memory reading the tags of %s", e->rec.name);
		return;
	}
	if (e->tags->next.n < TAGS_PER_NODE_MAX)
		snprintf(e->tags->next.v[e->tags->next.n++], TAG_MAX + 1, "%s", tag);
}

void policy_push_tags_reload(struct coord_server *s)
{
	for (struct node_entry *e = s->nodes.head; e; e = e->next)
		if (e->tags)
			e->tags->next.n = 0;
	if (!db_tags_list(s->db, tag_row, s)) {
		SERVER_COUNT_LOG(s, db_errors, "registry: cannot read the tags; those in force stay until the next change");
		return;
	}
	for (struct node_entry *e = s->nodes.head; e; e = e->next) {
		if (!e->tags || e->removed || db_tags_equal(&e->tags->cur, &e->tags->next))
			continue; /* a removed node's rows went with it; it is out of the rules already */
		log_info("access rules: node %s has %zu tag(s) now", e->rec.name, e->tags->next.n);
		e->tags->cur = e->tags->next;
		policy_push_nodes_changed(s);
	}
}

void policy_push_nodes_changed(struct coord_server *s)
{
	if (s->policy.loaded)
		s->policy.dirty = true;
}

/* Reads the policy file; false (err set) leaves the loaded policy as it was. */
static bool load(struct coord_server *s, const char *path, char *err, size_t err_len)
{
	struct policy p;
	struct stat st;
	size_t n;

	if (stat(path, &st) < 0)
		memset(&st, 0, sizeof(st));
	/* Remembered even if it does not load: the tick reads it again only when it changes,
	 * so a broken file is reported once, not four times a second. */
	s->policy.mtime = st.st_mtim;
	s->policy.ino = st.st_ino;
	s->policy.size = st.st_size;
	if (!policy_load(&p, path, err, err_len))
		return false;
	struct policy_node *nodes = node_list(s, &n);
	if (!nodes) {
		snprintf(err, err_len, "%s: out of memory", path);
		policy_free(&p);
		return false;
	}
	char why[256];
	bool ok = policy_check_nodes(&p, nodes, n, why, sizeof(why));
	free(nodes);
	if (!ok) {
		snprintf(err, err_len, "%.300s: %s", path, why);
		policy_free(&p);
		return false;
	}
	if (s->policy.loaded)
		policy_free(&s->policy.pol);
	s->policy.pol = p;
	s->policy.loaded = true;
	s->policy.dirty = true;
	return true;
}

bool policy_push_open(struct coord_server *s, const char *path, char *err, size_t err_len)
{
	snprintf(s->policy.path, sizeof(s->policy.path), "%s", path ? path : "");
	if (!s->policy.path[0])
		return true;
	if (!load(s, s->policy.path, err, err_len))
		return false;
	log_info("access rules: %s loaded (%zu rules)", s->policy.path, s->policy.pol.n_rules);
	return true;
}

void policy_push_reload(struct coord_server *s, const char *path, const char *why)
{
	char err[512];

	if (strcmp(path, s->policy.path) != 0) {
		snprintf(s->policy.path, sizeof(s->policy.path), "%s", path);
		if (!path[0]) {
			if (s->policy.loaded) {
				policy_free(&s->policy.pol);
				s->policy.loaded = false;
				log_info("%s: policy_file removed from the configuration: every node may reach every other",
					 why);
				push_all(s);
			}
			return;
		}
	}
	if (!s->policy.path[0])
		return;
	if (!load(s, s->policy.path, err, sizeof(err))) {
		s->counters.policy_errors++;
		log_error("%s: access rules not changed: %s", why, err);
		return;
	}
	log_info("%s: access rules %s read again (%zu rules)", why, s->policy.path, s->policy.pol.n_rules);
	push_all(s);
}

void policy_push_tick(struct coord_server *s)
{
	struct stat st;

	if (s->policy.path[0] && stat(s->policy.path, &st) == 0 &&
	    (st.st_mtim.tv_sec != s->policy.mtime.tv_sec || st.st_mtim.tv_nsec != s->policy.mtime.tv_nsec ||
	     st.st_ino != s->policy.ino || st.st_size != s->policy.size)) {
		policy_push_reload(s, s->policy.path, "policy file changed");
	}
	if (s->policy.dirty)
		push_all(s);
}

void policy_push_close(struct coord_server *s)
{
	if (s->policy.loaded)
		policy_free(&s->policy.pol);
	s->policy.loaded = false;
}
