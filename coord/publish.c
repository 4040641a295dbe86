/* What the coordinator publishes (publish.h): nodes ask (PUBLISH), the registry grants
 * (meshcoord publish allow), the config bounds (publish: ports), and this file opens and
 * closes the listeners to match, telling each node what became of each request. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "coord/server_internal.h"
#include "core/fileio.h"

enum {
	/* One status line: names, numbers, tabs. */
	STATUS_LINE_MAX = 2 * CONTROL_NAME_MAX + ADDR_STR_MAX + 6 * 24,
	STATUS_FILE_MODE = 0644, /* nothing secret: what is published and its counters */
	/* A UDP service's socket buffers: bursts of many clients between two wake-ups. */
	PUBLISH_UDP_SOCKBUF = 1024 * 1024,
};

static const char *proto_name(uint8_t proto)
{
	return proto == CONTROL_PROTO_UDP ? "udp" : "tcp";
}

/* ---------------------------------------------------------------- grants */

struct grant_load {
	struct db_publish_grant *list;
	size_t n, cap;
	bool failed;
};

static void grant_add(const struct db_publish_grant *g, void *ctx)
{
	struct grant_load *l = ctx;

	if (l->failed || l->n == PUBLISH_MAX_GRANTS)
		return;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		struct db_publish_grant *p = realloc(l->list, cap * sizeof(*p));
		if (!p) {
			l->failed = true;
			return;
		}
		l->list = p;
		l->cap = cap;
	}
	l->list[l->n++] = *g;
}

static bool granted(const struct coord_server *s, const uint8_t key[WIRE_KEY_LEN], const struct control_service *sv)
{
	for (size_t i = 0; i < s->pub.n_grants; i++) {
		const struct db_publish_grant *g = &s->pub.grants[i];
		if (g->port == sv->port && g->proto == sv->proto && sodium_memcmp(g->node_key, key, WIRE_KEY_LEN) == 0)
			return true;
	}
	return false;
}

/* ---------------------------------------------------------------- services */

static struct pub_service *service_find(struct coord_server *s, const uint8_t key[WIRE_KEY_LEN], uint8_t proto,
					uint16_t port)
{
	for (struct pub_service *v = s->pub.services; v; v = v->next)
		if (v->svc.proto == proto && v->svc.port == port && sodium_memcmp(v->node_key, key, WIRE_KEY_LEN) == 0)
			return v;
	return NULL;
}

/* A port another node's service holds (a grant moved while the old listener is open). */
static struct pub_service *service_on_port(struct coord_server *s, uint8_t proto, uint16_t port)
{
	for (struct pub_service *v = s->pub.services; v; v = v->next)
		if (v->svc.proto == proto && v->svc.port == port)
			return v;
	return NULL;
}

static struct pub_service *service_open(struct coord_server *s, const struct pub_node *pn,
					const struct control_service *sv)
{
	const struct coord_publish_config *cfg = &s->cfg.publish;
	char err[256];
	bool udp = sv->proto == CONTROL_PROTO_UDP;
	int fd = server_open_socket(cfg->bind_host, sv->port, udp ? SOCK_DGRAM : SOCK_STREAM, "published", PUBLISH_LISTEN_BACKLOG,
				    err, sizeof(err));
	if (fd < 0) {
		log_warn("node %s: cannot publish %s %s/%u: %s", pn->name, sv->name, proto_name(sv->proto),
			 (unsigned int)sv->port, err);
		return NULL;
	}
	if (udp) {
		int size = PUBLISH_UDP_SOCKBUF;
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	}
	struct pub_service *v = calloc(1, sizeof(*v));
	if (!v) {
		close(fd);
		return NULL;
	}
	v->src.kind = udp ? SOURCE_PUB_UDP : SOURCE_PUB_LISTEN;
	v->src.fd = fd;
	memcpy(v->node_key, pn->node_key, WIRE_KEY_LEN);
	memcpy(v->node_name, pn->name, sizeof(v->node_name));
	v->svc = *sv;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &v->src };
	if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		close(fd);
		free(v);
		return NULL;
	}
	v->next = s->pub.services;
	s->pub.services = v;
	s->pub.status_dirty = true;
	log_info("node %s: %s published on %s %s:%u", pn->name, sv->name, proto_name(sv->proto), cfg->bind_host,
		 (unsigned int)sv->port);
	return v;
}

void publish_close_service(struct coord_server *s, struct pub_service *v)
{
	if (v->dead)
		return;
	while (v->streams)
		pubstream_kill(s, v->streams, true);
	if (v->src.fd >= 0)
		close(v->src.fd); /* also leaves the epoll set */
	v->src.fd = -1;
	for (struct pub_service **pp = &s->pub.services; *pp; pp = &(*pp)->next)
		if (*pp == v) {
			*pp = v->next;
			break;
		}
	v->dead = true;
	v->dead_next = s->pub.dead_services;
	s->pub.dead_services = v;
	s->pub.status_dirty = true;
	log_info("node %s: %s %s/%u no longer published", v->node_name, v->svc.name, proto_name(v->svc.proto),
		 (unsigned int)v->svc.port);
}

/* ---------------------------------------------------------------- nodes' requests */

static struct pub_node **node_slot(struct coord_server *s, const uint8_t key[WIRE_KEY_LEN])
{
	struct pub_node **pp = &s->pub.nodes;

	while (*pp && sodium_memcmp((*pp)->node_key, key, WIRE_KEY_LEN) != 0)
		pp = &(*pp)->next;
	return pp;
}

static bool requested(const struct pub_node *pn, const struct control_service *sv, const uint8_t *state)
{
	for (size_t i = 0; i < pn->req.n; i++)
		if (pn->req.list[i].proto == sv->proto && pn->req.list[i].port == sv->port)
			return state[i] == CONTROL_PUBLISH_OPEN;
	return false;
}

static uint8_t state_of(struct coord_server *s, const struct pub_node *pn, const struct control_service *sv)
{
	const struct coord_publish_config *cfg = &s->cfg.publish;

	if (!cfg->enabled)
		return CONTROL_PUBLISH_DISABLED;
	if (!granted(s, pn->node_key, sv))
		return CONTROL_PUBLISH_NOT_GRANTED;
	if (sv->port < cfg->port_lo || sv->port > cfg->port_hi)
		return CONTROL_PUBLISH_OUT_OF_RANGE;
	return CONTROL_PUBLISH_OPEN;
}

static void tell(struct coord_server *s, struct pub_node *pn, size_t i, uint8_t state, bool log)
{
	struct node_entry *e = nodemap_find(&s->nodes, pn->node_key);
	const struct control_service *sv = &pn->req.list[i];

	if (pn->told[i] == state)
		return;
	pn->told[i] = state;
	if (log && state != CONTROL_PUBLISH_OPEN)
		log_info("node %s asks to publish %s %s/%u: %s", pn->name, sv->name, proto_name(sv->proto),
			 (unsigned int)sv->port,
			 state == CONTROL_PUBLISH_DISABLED	   ? "publishing is off here (no 'publish:' in the config)"
			 : state == CONTROL_PUBLISH_NOT_GRANTED  ? "not granted ('meshcoord publish allow' grants it)"
			 : state == CONTROL_PUBLISH_OUT_OF_RANGE ? "granted, but outside publish: ports"
								  : "the port cannot be opened here");
	if (!e || !e->session)
		return;
	struct control_message m;
	memset(&m, 0, sizeof(m));
	m.type = CONTROL_MSG_PUBLISH_STATE;
	m.u.publish_state.service = *sv;
	m.u.publish_state.state = state;
	conn_queue_msg(s, e->session, &m);
}

/* Opens and closes pn's listeners to match its request, the grants and the config; log:
 * whether a refusal is worth a line (not when a node repeats the request it made). */
static void reconcile(struct coord_server *s, struct pub_node *pn, bool log)
{
	uint8_t state[CONTROL_MAX_PUBLISH];

	for (size_t i = 0; i < pn->req.n; i++)
		state[i] = state_of(s, pn, &pn->req.list[i]);
	/* Close first: a port that moved between two of its requests is free again. */
	for (struct pub_service *v = s->pub.services, *next; v; v = next) {
		next = v->next;
		if (sodium_memcmp(v->node_key, pn->node_key, WIRE_KEY_LEN) == 0 && !requested(pn, &v->svc, state))
			publish_close_service(s, v);
	}
	for (size_t i = 0; i < pn->req.n; i++) {
		const struct control_service *sv = &pn->req.list[i];
		if (state[i] == CONTROL_PUBLISH_OPEN && !service_find(s, pn->node_key, sv->proto, sv->port)) {
			struct pub_service *other = service_on_port(s, sv->proto, sv->port);
			if (other) /* its node lost the grant to this one */
				publish_close_service(s, other);
			if (!service_open(s, pn, sv))
				state[i] = CONTROL_PUBLISH_BIND_FAILED;
		}
		tell(s, pn, i, state[i], log);
	}
}

void publish_on_message(struct coord_server *s, struct conn *c, const struct control_publish *req)
{
	struct node_entry *e = c->node;

	if (!e)
		return;
	struct pub_node **pp = node_slot(s, e->rec.node_key), *pn = *pp;
	if (!pn) {
		if (req->n == 0)
			return;
		pn = calloc(1, sizeof(*pn));
		if (!pn) {
			log_error("out of memory for node %s's publish request", e->rec.name);
			return;
		}
		memcpy(pn->node_key, e->rec.node_key, WIRE_KEY_LEN);
		pn->next = s->pub.nodes;
		s->pub.nodes = pn;
		pp = &s->pub.nodes;
	}
	memcpy(pn->name, e->rec.name, sizeof(pn->name));
	/* The same request again (a reconnection, or a node repeating itself): answered again,
	 * but its refusals were logged already. */
	bool repeated = pn->req.n == req->n;
	for (size_t i = 0; repeated && i < req->n; i++)
		repeated = strcmp(pn->req.list[i].name, req->list[i].name) == 0 &&
			   pn->req.list[i].proto == req->list[i].proto && pn->req.list[i].port == req->list[i].port;
	pn->req = *req;
	memset(pn->told, 0, sizeof(pn->told)); /* a new request hears every answer */
	reconcile(s, pn, !repeated);
	if (req->n == 0) {
		*pp = pn->next;
		free(pn);
	}
}

void publish_node_offline(struct coord_server *s, const uint8_t node_key[WIRE_KEY_LEN])
{
	struct pub_node **pp = node_slot(s, node_key), *pn = *pp;

	for (struct pub_service *v = s->pub.services, *next; v; v = next) {
		next = v->next;
		if (sodium_memcmp(v->node_key, node_key, WIRE_KEY_LEN) == 0)
			publish_close_service(s, v);
	}
	if (pn) {
		*pp = pn->next;
		free(pn);
	}
}

void publish_grants_reload(struct coord_server *s)
{
	struct grant_load l = { 0 };

	if (!db_publish_list(s->db, grant_add, &l) || l.failed) {
		SERVER_COUNT_LOG(s, db_errors, "registry: cannot read the publish grants; keeping the last ones");
		free(l.list);
		return;
	}
	free(s->pub.grants);
	s->pub.grants = l.list;
	s->pub.n_grants = l.n;
	for (struct pub_node *pn = s->pub.nodes; pn; pn = pn->next)
		reconcile(s, pn, true);
	/* A service whose node went (removed, so no request is left) closes too. */
	for (struct pub_service *v = s->pub.services, *next; v; v = next) {
		next = v->next;
		if (!*node_slot(s, v->node_key))
			publish_close_service(s, v);
	}
}

/* ---------------------------------------------------------------- life */

bool publish_open(struct coord_server *s)
{
	publish_grants_reload(s);
	s->pub.status_dirty = true;
	return true;
}

void publish_reap(struct coord_server *s)
{
	while (s->pub.dead_streams) {
		struct pub_stream *st = s->pub.dead_streams;
		s->pub.dead_streams = st->dead_next;
		splice_free(&st->sp);
		free(st);
	}
	while (s->pub.dead_services) {
		struct pub_service *v = s->pub.dead_services;
		s->pub.dead_services = v->dead_next;
		free(v);
	}
}

void publish_close(struct coord_server *s)
{
	while (s->pub.services)
		publish_close_service(s, s->pub.services);
	while (s->pub.nodes) {
		struct pub_node *pn = s->pub.nodes;
		s->pub.nodes = pn->next;
		free(pn);
	}
	publish_reap(s);
	/* Stopped: nothing is published any more; a reader must not think otherwise. */
	char path[COORDCONF_PATH_MAX + sizeof(PUBLISH_STATUS_FILE) + 1];
	if (s->cfg.state_dir[0] &&
	    snprintf(path, sizeof(path), "%s/%s", s->cfg.state_dir, PUBLISH_STATUS_FILE) < (int)sizeof(path))
		unlink(path);
	free(s->pub.grants);
	s->pub.grants = NULL;
	s->pub.n_grants = 0;
	free(s->pub.slots);
	free(s->pub.free_slots);
	s->pub.slots = NULL;
	s->pub.free_slots = NULL;
	s->pub.n_slots = s->pub.n_free = s->pub.slots_cap = 0;
}

/* The status file: one line per published service (tab-separated: node, protocol, port,
 * name, bind address, live streams, streams since it opened, bytes in, bytes out), read by
 * `meshcoord publish list` next to the grants. */
static void status_write(struct coord_server *s)
{
	char path[COORDCONF_PATH_MAX + sizeof(PUBLISH_STATUS_FILE) + 1], err[256];
	size_t cap = 64, len = 0, n = 0;

	for (struct pub_service *v = s->pub.services; v; v = v->next)
		n++;
	cap += n * STATUS_LINE_MAX;
	char *text = malloc(cap);
	if (!text)
		return;
	len += (size_t)snprintf(text, cap, "# meshcoord publish status v1 written %lld\n", (long long)server_unix_now());
	for (struct pub_service *v = s->pub.services; v && len < cap; v = v->next) {
		uint64_t up = v->bytes_up, down = v->bytes_down;
		for (struct pub_stream *st = v->streams; st; st = st->next) {
			up += st->sp.bytes_up;
			down += st->sp.bytes_down;
		}
		int w = snprintf(text + len, cap - len, "%s\t%s\t%u\t%s\t%s\t%zu\t%" PRIu64 "\t%" PRIu64 "\t%" PRIu64 "\n",
				 v->node_name, proto_name(v->svc.proto), (unsigned int)v->svc.port, v->svc.name,
				 s->cfg.publish.bind_host, v->active, v->total, up, down);
		if (w < 0 || (size_t)w >= cap - len)
			break;
		len += (size_t)w;
	}
	if (s->cfg.state_dir[0] &&
	    snprintf(path, sizeof(path), "%s/%s", s->cfg.state_dir, PUBLISH_STATUS_FILE) < (int)sizeof(path) &&
	    !file_write_replace(path, text, len, STATUS_FILE_MODE, err, sizeof(err)))
		log_debug("publish status: %s", err);
	free(text);
}

void publish_tick(struct coord_server *s, uint64_t now_ms)
{
	for (struct pub_service *v = s->pub.services; v; v = v->next) {
		if (v->paused) {
			struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &v->src };
			if (epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, v->src.fd, &ev) == 0)
				v->paused = false;
		}
		pubstream_tick(s, v, now_ms);
		if (v->active || v->streams)
			s->pub.status_dirty = true; /* byte counts move */
	}
	if ((s->pub.status_dirty && now_ms - s->pub.status_written_ms >= PUBLISH_STATUS_INTERVAL_MS) ||
	    now_ms - s->pub.status_written_ms >= PUBLISH_STATUS_REFRESH_MS) {
		s->pub.status_dirty = false;
		s->pub.status_written_ms = now_ms;
		status_write(s);
	}
}
