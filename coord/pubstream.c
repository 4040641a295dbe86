/* One client of a published service (publish.h): accepted (TCP) or first heard from (UDP),
 * announced to its node (STREAM_OPEN with a fresh id and secret), joined by the node's work
 * connection, pumped (core/splice.h), and closed: cleanly when both sides ended, with a
 * reset when anything broke (the node went, the grant was revoked, a frame was forged).
 *
 * Lifetime: pubstream_kill closes the descriptors and moves the stream to the dead list at
 * once (events of this batch see `dead` and skip it); publish_reap frees it after the
 * batch, as conn.c does for connections. */
#include <errno.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "coord/server_internal.h"

static void endpoint_of(const struct sockaddr *sa, struct control_endpoint *e)
{
	memset(e, 0, sizeof(*e));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		e->family = 4;
		memcpy(e->addr, &in->sin_addr, 4);
		e->port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			e->family = 4;
			memcpy(e->addr, in6->sin6_addr.s6_addr + 12, 4);
		} else {
			e->family = 6;
			memcpy(e->addr, &in6->sin6_addr, 16);
		}
		e->port = ntohs(in6->sin6_port);
	}
}

/* Stream ids: a random upper half (an id cannot be guessed from the last one) over the
 * stream's slot in the server's table (lookups cost the same however many streams are
 * open, which a stranger's made-up work connections could otherwise exploit). */
static bool slot_take(struct coord_server *s, struct pub_stream *st)
{
	struct pub_state *p = &s->pub;
	uint64_t slot;

	if (p->n_free > 0) {
		slot = p->free_slots[--p->n_free];
	} else {
		if (p->n_slots == PUBLISH_SLOT_MASK)
			return false;
		if (p->n_slots == p->slots_cap) {
			size_t cap = p->slots_cap ? 2 * p->slots_cap : 64;
			struct pub_stream **a = realloc(p->slots, cap * sizeof(*a));
			if (!a)
				return false;
			p->slots = a;
			uint32_t *f = realloc(p->free_slots, cap * sizeof(*f));
			if (!f)
				return false;
			p->free_slots = f;
			p->slots_cap = cap;
		}
		slot = p->n_slots++;
	}
	uint32_t high;
	do
		randombytes_buf(&high, sizeof(high));
	while (high == 0); /* never id 0 */
	st->id = (uint64_t)high << 32 | slot;
	p->slots[slot] = st;
	return true;
}

static void slot_give(struct coord_server *s, struct pub_stream *st)
{
	struct pub_state *p = &s->pub;
	uint64_t slot = st->id & PUBLISH_SLOT_MASK;

	if (slot < p->n_slots && p->slots[slot] == st) {
		p->slots[slot] = NULL;
		p->free_slots[p->n_free++] = (uint32_t)slot;
	}
}

static struct pub_stream *stream_of_work(struct source *src)
{
	return (struct pub_stream *)(void *)((char *)src - offsetof(struct pub_stream, work_src));
}

static void set_events(struct coord_server *s, struct source *src, uint32_t *registered, uint32_t want)
{
	if (src->fd < 0 || *registered == want)
		return;
	/* Nothing wanted: out of the set, not MOD to 0 (epoll reports EPOLLHUP and EPOLLERR
	 * whatever the mask, so a half-closed socket would wake the loop without end). */
	struct epoll_event ev = { .events = want, .data.ptr = src };
	int op = want == 0 ? EPOLL_CTL_DEL : *registered == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
	if (epoll_ctl(s->epoll_fd, op, src->fd, want ? &ev : NULL) == 0)
		*registered = want;
}

void pubstream_kill(struct coord_server *s, struct pub_stream *st, bool abort)
{
	struct pub_service *v = st->svc;

	if (st->dead)
		return;
	st->dead = true;
	slot_give(s, st);
	if (abort && st->client_src.fd >= 0) {
		/* A reset, not a FIN: the client must not take a cut stream for a whole one. */
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };
		setsockopt(st->client_src.fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	if (st->client_src.fd >= 0)
		close(st->client_src.fd);
	if (st->work_src.fd >= 0)
		close(st->work_src.fd);
	st->client_src.fd = st->work_src.fd = -1;
	if (st->prev)
		st->prev->next = st->next;
	else
		v->streams = st->next;
	if (st->next)
		st->next->prev = st->prev;
	v->active--;
	v->bytes_up += st->sp.bytes_up;
	v->bytes_down += st->sp.bytes_down;
	s->pub.bytes_up += st->sp.bytes_up;
	s->pub.bytes_down += st->sp.bytes_down;
	s->pub.status_dirty = true;
	st->dead_next = s->pub.dead_streams;
	s->pub.dead_streams = st;
}

/* Pumps st and acts on the outcome: closed when done or broken, else epoll follows what
 * each side needs now. */
static void stream_run(struct coord_server *s, struct pub_stream *st, uint64_t now_ms)
{
	char a[ADDR_STR_MAX];

	splice_pump(&st->sp);
	if (st->sp.moved) {
		st->active_ms = now_ms;
		st->sp.moved = false;
	}
	if (st->sp.failed) {
		s->pub.streams_failed++;
		log_debug("published %s/%u: client %s: %s, closing", st->svc->svc.name, (unsigned int)st->svc->svc.port,
			  sockaddr_format(&st->client.sa, a, sizeof(a)), st->sp.why);
		pubstream_kill(s, st, true);
		return;
	}
	if (splice_done(&st->sp)) {
		pubstream_kill(s, st, false);
		return;
	}
	set_events(s, &st->client_src, &st->client_events, splice_plain_events(&st->sp));
	set_events(s, &st->work_src, &st->work_events, splice_sealed_events(&st->sp));
}

static bool udp_out(void *ctx, const uint8_t *data, size_t len)
{
	struct pub_stream *st = ctx;

	return st->svc->src.fd >= 0 &&
	       sendto(st->svc->src.fd, data, len, MSG_DONTWAIT, &st->client.sa, st->client_len) == (ssize_t)len;
}

/* A new stream for a client: its secret, STREAM_OPEN to the node. NULL if the node is not
 * online (its listener is about to close) or memory ran out. */
static struct pub_stream *stream_new(struct coord_server *s, struct pub_service *v, const union peer_addr *client,
				     socklen_t client_len, int fd, uint64_t now_ms)
{
	struct node_entry *e = nodemap_find(&s->nodes, v->node_key);
	if (!e || !e->session)
		return NULL;
	/* The node's control session is backed up (a slow downlink under a flood of clients):
	 * turned away here, as relayed datagrams are, rather than let the queue reach
	 * SERVER_WRITE_QUEUE_MAX and cut the node off the mesh. */
	if (e->session->wlen - e->session->woff > SERVER_RELAY_QUEUE_MAX) {
		s->pub.streams_refused_busy++;
		return NULL;
	}
	struct pub_stream *st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	splice_init(&st->sp, fd >= 0 ? SPLICE_PLAIN_STREAM : SPLICE_PLAIN_EXTERNAL);
	st->sp.plain_fd = fd;
	st->sp.need_attach = true;
	st->client_src = (struct source){ SOURCE_PUB_CLIENT, fd };
	st->work_src = (struct source){ SOURCE_PUB_WORK, -1 };
	st->svc = v;
	st->client = *client;
	st->client_len = client_len;
	st->created_ms = st->active_ms = now_ms;
	if (fd < 0) {
		st->sp.dgram_out = udp_out;
		st->sp.dgram_ctx = st;
	}

	if (!slot_take(s, st)) {
		splice_free(&st->sp);
		free(st);
		return NULL;
	}
	struct control_message m;
	memset(&m, 0, sizeof(m));
	m.type = CONTROL_MSG_STREAM_OPEN;
	randombytes_buf(m.u.stream_open.secret, CONTROL_STREAM_SECRET_LEN);
	m.u.stream_open.stream_id = st->id;
	m.u.stream_open.proto = v->svc.proto;
	m.u.stream_open.port = v->svc.port;
	endpoint_of(&client->sa, &m.u.stream_open.client);
	bool ok = pubwire_channel_init(&st->sp.ch, m.u.stream_open.secret, false) && conn_queue_msg(s, e->session, &m);
	sodium_memzero(&m, sizeof(m));
	if (!ok) {
		slot_give(s, st);
		splice_free(&st->sp);
		free(st);
		return NULL;
	}
	if (fd >= 0) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &st->client_src };
		if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			slot_give(s, st);
			splice_free(&st->sp);
			free(st);
			return NULL;
		}
		st->client_events = EPOLLIN;
	}
	st->next = v->streams;
	if (v->streams)
		v->streams->prev = st;
	v->streams = st;
	v->active++;
	v->total++;
	s->pub.streams_opened++;
	s->pub.status_dirty = true;
	return st;
}

void pubstream_on_listener(struct coord_server *s, struct pub_service *v, uint64_t now_ms)
{
	char a[ADDR_STR_MAX];

	for (int i = 0; i < PUBLISH_ACCEPT_BATCH && !v->dead; i++) {
		union peer_addr addr;
		socklen_t alen = sizeof(addr);
		memset(&addr, 0, sizeof(addr));
		int fd = accept4(v->src.fd, &addr.sa, &alen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				/* The client stays queued and would wake us forever: stop listening
				 * until the next tick, as the control listener does. */
				struct epoll_event ev = { .events = 0, .data.ptr = &v->src };
				if (epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, v->src.fd, &ev) == 0)
					v->paused = true;
				SERVER_COUNT_LOG(s, accept_errors, "published %s/%u: cannot accept: %s", v->svc.name,
						 (unsigned int)v->svc.port, strerror(errno));
			}
			return;
		}
		if (v->active >= s->cfg.publish.max_connections) {
			v->refused++;
			s->pub.streams_refused_limit++;
			log_debug("published %s/%u: client %s refused: %u connections open", v->svc.name,
				  (unsigned int)v->svc.port, sockaddr_format(&addr.sa, a, sizeof(a)),
				  (unsigned int)s->cfg.publish.max_connections);
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (!stream_new(s, v, &addr, alen, fd, now_ms))
			close(fd);
	}
}

void pubstream_on_udp(struct coord_server *s, struct pub_service *v, uint64_t now_ms)
{
	uint8_t *buf = s->scratch; /* the loop's read buffer: bigger than any datagram */

	for (int i = 0; i < PUBLISH_ACCEPT_BATCH && !v->dead; i++) {
		union peer_addr addr;
		socklen_t alen = sizeof(addr);
		memset(&addr, 0, sizeof(addr)); /* compared whole below */
		ssize_t n = recvfrom(v->src.fd, buf, sizeof(s->scratch), MSG_DONTWAIT, &addr.sa, &alen);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		/* A scan of the service's flows (at most max_connections); a flow found moves to
		 * the front, so the busy ones are found first. */
		struct pub_stream *st = v->streams;
		while (st && !(st->client_len == alen && memcmp(&st->client, &addr, alen) == 0))
			st = st->next;
		if (st && st->prev) {
			st->prev->next = st->next;
			if (st->next)
				st->next->prev = st->prev;
			st->prev = NULL;
			st->next = v->streams;
			v->streams->prev = st;
			v->streams = st;
		}
		if (!st) {
			if (v->active >= s->cfg.publish.max_connections) {
				v->refused++;
				s->pub.streams_refused_limit++;
				continue;
			}
			st = stream_new(s, v, &addr, alen, -1, now_ms);
			if (!st)
				continue;
		}
		splice_push_datagram(&st->sp, buf, (size_t)n);
		stream_run(s, st, now_ms);
	}
}

void pubstream_on_event(struct coord_server *s, struct source *src, uint32_t events, uint64_t now_ms)
{
	bool work = src->kind == SOURCE_PUB_WORK;
	struct pub_stream *st = work ? stream_of_work(src) : (struct pub_stream *)(void *)src;

	if (st->dead)
		return;
	if (events & EPOLLERR) {
		int err = 0;
		socklen_t len = sizeof(err);
		getsockopt(src->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			st->sp.failed = true;
			st->sp.why = work ? "the work connection failed" : "the client's connection failed";
		}
	}
	stream_run(s, st, now_ms);
}

static struct pub_stream *stream_by_id(struct coord_server *s, uint64_t id)
{
	uint64_t slot = id & PUBLISH_SLOT_MASK;
	struct pub_stream *st = slot < s->pub.n_slots ? s->pub.slots[slot] : NULL;

	return st && st->id == id ? st : NULL;
}

void pubstream_adopt_work(struct coord_server *s, struct conn *c, const uint8_t *body, size_t body_len,
			  const uint8_t *rest, size_t rest_len)
{
	char a[ADDR_STR_MAX];
	uint64_t id;
	struct pub_stream *st = NULL;

	if (pubwire_preamble_read(body, body_len, &id))
		st = stream_by_id(s, id);
	if (!st || st->work_src.fd >= 0 || rest_len > SPLICE_BUF_CAP) {
		s->pub.work_unknown++;
		log_debug("%s: work connection for no waiting stream, closing", conn_addr(c, a, sizeof(a)));
		conn_kill(s, c);
		return;
	}
	int fd = c->src.fd;
	epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
	c->src.fd = -1; /* the stream owns it now; conn_free closes nothing */
	conn_kill(s, c);
	st->work_src.fd = fd;
	st->sp.sealed_fd = fd;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &st->work_src };
	if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		pubstream_kill(s, st, true);
		return;
	}
	st->work_events = EPOLLIN;
	if (rest_len && !splice_feed_sealed(&st->sp, rest, rest_len)) {
		pubstream_kill(s, st, true);
		return;
	}
	stream_run(s, st, s->now_ms);
}

void pubstream_on_refuse(struct coord_server *s, struct conn *c, uint64_t stream_id)
{
	struct pub_stream *st = stream_by_id(s, stream_id);

	/* Only the stream's own node may refuse it. */
	if (!st || !c->node || sodium_memcmp(st->svc->node_key, c->node->rec.node_key, WIRE_KEY_LEN) != 0)
		return;
	s->pub.streams_failed++;
	pubstream_kill(s, st, true);
}

void pubstream_tick(struct coord_server *s, struct pub_service *v, uint64_t now_ms)
{
	bool udp = v->svc.proto == CONTROL_PROTO_UDP;
	uint64_t idle_ms = (uint64_t)(udp ? s->cfg.publish.udp_timeout_s : s->cfg.publish.idle_timeout_s) * 1000u;

	for (struct pub_stream *st = v->streams, *next; st; st = next) {
		next = st->next;
		if (!st->sp.attached && now_ms - st->created_ms >= PUBLISH_ATTACH_TIMEOUT_MS) {
			s->pub.streams_attach_timeouts++;
			log_debug("published %s/%u: no work connection from node %s within %d s, closing a client",
				  v->svc.name, (unsigned int)v->svc.port, v->node_name, PUBLISH_ATTACH_TIMEOUT_MS / 1000);
			pubstream_kill(s, st, true);
		} else if (now_ms - st->active_ms >= idle_ms) {
			s->pub.streams_idle_timeouts++;
			pubstream_kill(s, st, !udp);
		}
	}
}
