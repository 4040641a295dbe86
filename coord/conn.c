/* One node connection: bytes in and out, frames, and the connection's life.
 *
 * A connection goes HELLO -> REGISTER -> ACTIVE, or to CLOSING (an error message is being
 * flushed) from anywhere. Connections are never freed while events for them may still be in
 * hand: a failing connection is only marked dead, and dead ones are reaped after each batch,
 * which is also where a registered node's departure is announced.
 *
 * Output is a queue of sealed frames plus, for a registered session, whatever its cursor
 * into the node map still has to say (nodemap.c). That is produced only when the socket can
 * take it, packed as many records to a frame as fit: a full map costs one seal per ~4 KiB,
 * not one per peer. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/ipaddr.h"
#include "core/pubwire.h"
#include "coord/server_internal.h"

const char *conn_addr(const struct conn *c, char *buf, size_t len)
{
	return sockaddr_format(&c->addr.sa, buf, len);
}

/* ---------------------------------------------------------------- lists */

void conn_list_append(struct conn_list *l, struct conn *c)
{
	c->next = NULL;
	c->prev = l->tail;
	if (l->tail)
		l->tail->next = c;
	else
		l->head = c;
	l->tail = c;
	l->count++;
}

void conn_list_remove(struct conn_list *l, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		l->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		l->tail = c->prev;
	c->prev = c->next = NULL;
	l->count--;
}

static struct conn_list *conn_list_of(struct coord_server *s, const struct conn *c)
{
	return c->state == CONN_ACTIVE ? &s->active_list : &s->short_list;
}

void conn_kill(struct coord_server *s, struct conn *c)
{
	if (c->dead)
		return;
	c->dead = true;
	c->dead_next = s->dead_head;
	s->dead_head = c;
}

void conn_schedule_flush(struct coord_server *s, struct conn *c)
{
	if (c->in_flush || c->dead)
		return;
	c->in_flush = true;
	c->flush_next = s->flush_head;
	s->flush_head = c;
}

/* ---------------------------------------------------------------- the write queue */

/* Makes room for need more bytes at the end of c's queue. */
static bool conn_reserve(struct coord_server *s, struct conn *c, size_t need)
{
	size_t pending = c->wlen - c->woff;
	if (pending + need > SERVER_WRITE_QUEUE_MAX) {
		char a[ADDR_STR_MAX];
		SERVER_COUNT_LOG(s, slow_readers, "%s: not reading what we send (%zu bytes queued), closing",
				 conn_addr(c, a, sizeof(a)), pending);
		conn_kill(s, c);
		return false;
	}
	if (c->wcap - c->wlen >= need)
		return true;
	if (c->woff > 0) {
		memmove(c->wbuf, c->wbuf + c->woff, pending);
		c->woff = 0;
		c->wlen = pending;
	}
	if (c->wcap - c->wlen >= need)
		return true;
	size_t cap = c->wcap ? c->wcap : 256;
	while (cap - c->wlen < need)
		cap *= 2;
	uint8_t *b = realloc(c->wbuf, cap);
	if (!b) {
		conn_kill(s, c);
		return false;
	}
	c->wbuf = b;
	c->wcap = cap;
	return true;
}

bool conn_queue_raw(struct coord_server *s, struct conn *c, const uint8_t *data, size_t len)
{
	if (c->dead || !conn_reserve(s, c, len))
		return false;
	memcpy(c->wbuf + c->wlen, data, len);
	c->wlen += len;
	conn_schedule_flush(s, c);
	return true;
}

bool conn_queue_msg(struct coord_server *s, struct conn *c, const struct control_message *m)
{
	uint8_t frame[SERVER_PARTIAL_CAP];
	size_t len;

	if (c->dead || !c->ch.established)
		return false;
	if (!control_seal_message(&c->ch, m, frame, sizeof(frame), &len)) {
		/* only a bug (a message we cannot encode) or a worn-out nonce gets here */
		log_error("internal error: cannot seal control message type %d", (int)m->type);
		conn_kill(s, c);
		return false;
	}
	s->counters.control_frames_sent++;
	return conn_queue_raw(s, c, frame, len);
}

/* ---------------------------------------------------------------- life and death */

/* Ends c's role as its node's session; announce says whether peers hear it went offline. */
static void conn_detach_session(struct coord_server *s, struct conn *c, bool announce)
{
	struct node_entry *e = c->node;
	c->node = NULL;
	if (!e || e->session != c)
		return;
	e->session = NULL;
	relay_session_end(s, e);
	publish_node_offline(s, e->rec.node_key); /* its listeners and clients close at once */
	nodemap_touch(s, e, s->now_ms);
	if (announce)
		nodemap_changed(s, e, true);
}

void conn_refuse(struct coord_server *s, struct conn *c, enum control_error_code code, const char *text)
{
	if (c->dead || c->state == CONN_CLOSING)
		return;
	if (!c->ch.established) {
		conn_kill(s, c);
		return;
	}
	if (c->state == CONN_ACTIVE) {
		nodemap_session_left(s, c);
		conn_list_remove(&s->active_list, c);
		c->state = CONN_CLOSING;
		conn_list_append(&s->short_list, c);
		conn_detach_session(s, c, true);
	} else {
		conn_list_remove(&s->short_list, c);
		c->state = CONN_CLOSING;
		conn_list_append(&s->short_list, c);
	}
	c->deadline_ms = s->now_ms + SERVER_LINGER_MS;

	struct control_message m;
	memset(&m, 0, sizeof(m));
	m.type = CONTROL_MSG_ERROR;
	m.u.error.code = (uint16_t)code;
	snprintf(m.u.error.text, sizeof(m.u.error.text), "%s", text);
	conn_queue_msg(s, c, &m);
}

void conn_release_source(struct coord_server *s, struct conn *c)
{
	if (!c->src_held)
		return;
	c->src_held = false;
	/* held > 0 keeps the entry from being reused, so it is still there */
	struct srclimit_entry *e = srclimit_find(&s->src_conns, &c->addr.sa);
	if (e && e->held > 0)
		e->held--;
}

void conn_free(struct coord_server *s, struct conn *c)
{
	conn_release_source(s, c);
	if (c->src.fd >= 0)
		close(c->src.fd); /* also leaves the epoll set */
	free(c->partial);
	free(c->wbuf);
	control_channel_clear(&c->ch);
	sodium_memzero(c, sizeof(*c));
	free(c);
	s->n_conns--;
}

/* Takes the dead off every list and announces departures; the announcements may kill more
 * (a failed send), which the same loop handles. Freeing waits for free_graveyard. */
static void reap_dead(struct coord_server *s)
{
	while (s->dead_head) {
		struct conn *c = s->dead_head;
		s->dead_head = c->dead_next;
		if (c->state == CONN_ACTIVE)
			nodemap_session_left(s, c);
		conn_list_remove(conn_list_of(s, c), c);
		/* A killed session announces its node offline, unless a newer session took over. */
		conn_detach_session(s, c, true);
		c->dead_next = s->graveyard;
		s->graveyard = c;
	}
}

/* Called with the flush list empty, so nothing points at these any more. */
static void free_graveyard(struct coord_server *s)
{
	while (s->graveyard) {
		struct conn *c = s->graveyard;
		s->graveyard = c->dead_next;
		conn_free(s, c);
	}
}

/* ---------------------------------------------------------------- output */

static void conn_set_events(struct coord_server *s, struct conn *c, bool want_out)
{
	if (c->want_out == want_out)
		return;
	struct epoll_event ev = { .events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = &c->src };
	if (epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, c->src.fd, &ev) == 0)
		c->want_out = want_out;
	else
		conn_kill(s, c);
}

/* Packs what c's cursor has to say, as many records to a frame as fit, and seals the frames
 * into out (at most cap bytes): the map, NETMAP_END once, then changes. Returns the bytes
 * written. */
static size_t conn_produce(struct coord_server *s, struct conn *c, uint8_t *out, size_t cap)
{
	uint8_t plain[CONTROL_MAX_PLAIN];
	size_t used = 0;
	bool more = true;

	while (more && !c->dead && cap - used >= SERVER_PARTIAL_CAP) {
		struct control_message m;
		size_t plain_len = 0, len;

		while ((more = nodemap_next_news(s, c, &m)) &&
		       control_record_append(plain, sizeof(plain), &plain_len, &m))
			nodemap_news_sent(s, c);
		if (plain_len == 0) {
			if (!more)
				break;
			/* Any valid message fits an empty frame: this one is not valid (a record the
			 * registry should not have held). Skipped, so one bad record cannot close
			 * every session that reaches it. */
			SERVER_COUNT_LOG(s, msgs_unencodable, "internal error: cannot encode control message type %d; skipped",
					 (int)m.type);
			nodemap_news_sent(s, c);
			continue;
		}
		if (!control_seal(&c->ch, plain, plain_len, out + used, cap - used, &len)) {
			conn_kill(s, c); /* only a worn-out nonce can */
			break;
		}
		used += len;
		s->counters.control_frames_sent++;
	}
	return used;
}

/* Writes c's queue, then fresh batches from its cursor, until the socket is full or the
 * budget is spent; asks for EPOLLOUT exactly when something is left. */
static void conn_flush(struct coord_server *s, struct conn *c)
{
	size_t budget = SERVER_FLUSH_BUDGET;

	while (!c->dead && budget > 0) {
		size_t pending = c->wlen - c->woff;
		bool from_queue = pending > 0;
		/* No arithmetic on an empty queue's NULL buffer (undefined, clang's UBSan says so). */
		const uint8_t *data = from_queue ? c->wbuf + c->woff : NULL;
		if (!from_queue) {
			if (!nodemap_has_news(c))
				break;
			pending = conn_produce(s, c, s->batch, sizeof(s->batch));
			data = s->batch;
			if (pending == 0)
				continue; /* only skipped entries, or c died */
		}
		ssize_t n = send(c->src.fd, data, pending, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR && from_queue)
			continue;
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
				n = 0;
			} else {
				char a[ADDR_STR_MAX];
				log_debug("%s: send failed: %s", conn_addr(c, a, sizeof(a)), strerror(errno));
				conn_kill(s, c);
				break;
			}
		}
		budget = (size_t)n < budget ? budget - (size_t)n : 0;
		if (from_queue) {
			c->woff += (size_t)n;
			if (c->woff == c->wlen) {
				/* Idle sessions hold no buffer: most of 10,000 sessions are idle. */
				free(c->wbuf);
				c->wbuf = NULL;
				c->woff = c->wlen = c->wcap = 0;
			}
		} else if ((size_t)n < pending) {
			/* Sealed frames must go out in order: the rest waits in the queue. */
			conn_queue_raw(s, c, data + n, pending - (size_t)n);
		}
		if ((size_t)n < pending)
			break; /* the socket is full */
	}
	if (c->dead)
		return;
	bool left = c->wlen > c->woff || nodemap_has_news(c);
	if (!left && c->state == CONN_CLOSING && !c->shut_wr) {
		/* Our error is out; the node closes on it, and its FIN (or the linger deadline)
		 * ends the connection. Closing now could reset it before the error is read. */
		shutdown(c->src.fd, SHUT_WR);
		c->shut_wr = true;
	}
	conn_set_events(s, c, left);
}

static void flush_all(struct coord_server *s)
{
	while (s->flush_head) {
		struct conn *c = s->flush_head;
		s->flush_head = c->flush_next;
		c->flush_next = NULL;
		c->in_flush = false;
		if (!c->dead)
			conn_flush(s, c);
	}
}

void conn_flush_and_reap(struct coord_server *s)
{
	/* Only here, with no event in hand, may connections be freed. */
	for (;;) {
		flush_all(s);
		if (!s->dead_head)
			break;
		reap_dead(s);
	}
	free_graveyard(s);
}

/* ---------------------------------------------------------------- input */

/* A frame of more records than SERVER_MAX_RECORDS_PER_FRAME: refused whole, before any of
 * it is acted on; logged once per node (and rate-limited across nodes). */
static bool conn_records_within_cap(struct coord_server *s, struct conn *c, const uint8_t *plain, size_t len)
{
	const uint8_t *msg;
	size_t msg_len, off = 0, n = 0;
	char a[ADDR_STR_MAX];

	while (control_record_next(plain, len, &off, &msg, &msg_len) > 0)
		if (++n > SERVER_MAX_RECORDS_PER_FRAME)
			break;
	if (n <= SERVER_MAX_RECORDS_PER_FRAME)
		return true; /* a malformed frame is the caller's to refuse */
	if (c->node && c->node->logged_records) {
		s->counters.frames_over_records++;
	} else {
		if (c->node)
			c->node->logged_records = true;
		SERVER_COUNT_LOG(s, frames_over_records, "%s: node %s sent a frame of more than %d records, closing",
				 conn_addr(c, a, sizeof(a)), c->node ? c->node->rec.name : "(unregistered)",
				 SERVER_MAX_RECORDS_PER_FRAME);
	}
	conn_refuse(s, c, CONTROL_ERR_BAD_MESSAGE, "too many records in one frame");
	return false;
}

/* Every message of one decrypted frame, in order, until one ends the session. */
static void conn_records(struct coord_server *s, struct conn *c, const uint8_t *plain, size_t len, uint64_t now_ms)
{
	struct frame_state fs = { .keepalive_answered = false };
	const uint8_t *msg;
	size_t msg_len, off = 0;
	int got;

	if (!conn_records_within_cap(s, c, plain, len))
		return;
	while (!c->dead && c->state != CONN_CLOSING &&
	       (got = control_record_next(plain, len, &off, &msg, &msg_len)) != 0) {
		if (got < 0) {
			char a[ADDR_STR_MAX];
			SERVER_COUNT_LOG(s, records_malformed, "%s: frame with malformed records (%zu bytes), closing",
					 conn_addr(c, a, sizeof(a)), len);
			conn_refuse(s, c, CONTROL_ERR_BAD_MESSAGE, "malformed frame");
			return;
		}
		dispatch_message(s, c, msg, msg_len, now_ms, &fs);
	}
}

/* Runs every complete frame in buf[0..len); returns the bytes consumed. */
static size_t conn_process(struct coord_server *s, struct conn *c, const uint8_t *buf, size_t len, uint64_t now_ms)
{
	char a[ADDR_STR_MAX];
	size_t off = 0;

	while (!c->dead && c->state != CONN_CLOSING) {
		const uint8_t *body;
		size_t body_len, consumed;
		int r = control_frame_next(buf + off, len - off, &body, &body_len, &consumed);
		if (r == 0)
			break;
		if (r < 0) {
			SERVER_COUNT_LOG(s, frames_bad_length,
					 "%s: frame length 0 or above %d (not a meshd node?), closing",
					 conn_addr(c, a, sizeof(a)), CONTROL_MAX_FRAME);
			conn_kill(s, c);
			break;
		}
		off += consumed;
		if (c->state == CONN_HELLO && body_len == PUBWIRE_PREAMBLE_LEN) {
			/* A node's work connection for a published stream (core/pubwire.h): the
			 * stream takes the descriptor and what was read after the preamble. */
			pubstream_adopt_work(s, c, body, body_len, buf + off, len - off);
			return len;
		}
		if (c->state == CONN_HELLO) {
			dispatch_hello(s, c, body, body_len);
			continue;
		}
		uint8_t plain[CONTROL_MAX_FRAME];
		size_t plain_len;
		if (!control_open(&c->ch, body, body_len, plain, sizeof(plain), &plain_len)) {
			SERVER_COUNT_LOG(s, frames_forged, "%s: frame failed authentication, closing",
					 conn_addr(c, a, sizeof(a)));
			conn_kill(s, c);
			break;
		}
		s->counters.control_frames_received++;
		if (c->state == CONN_ACTIVE) {
			/* Heard from it: to the back of the idle-deadline line. */
			c->deadline_ms = now_ms;
			conn_list_remove(&s->active_list, c);
			conn_list_append(&s->active_list, c);
		}
		conn_records(s, c, plain, plain_len, now_ms);
		sodium_memzero(plain, plain_len);
	}
	return off;
}

void conn_on_readable(struct coord_server *s, struct conn *c, uint64_t now_ms)
{
	for (int i = 0; i < SERVER_READS_PER_WAKE && !c->dead; i++) {
		uint8_t *dst;
		size_t room;
		if (c->partial) {
			dst = c->partial + c->partial_len;
			room = SERVER_PARTIAL_CAP - c->partial_len;
		} else {
			dst = s->scratch;
			room = sizeof(s->scratch);
		}
		ssize_t n = recv(c->src.fd, dst, room, MSG_DONTWAIT);
		if (n == 0) {
			char a[ADDR_STR_MAX];
			if (c->state == CONN_HELLO || c->state == CONN_REGISTER)
				SERVER_COUNT_LOG(s, closed_unregistered, "%s: closed before registering",
						 conn_addr(c, a, sizeof(a)));
			else
				log_debug("%s: closed by peer", conn_addr(c, a, sizeof(a)));
			conn_kill(s, c);
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				conn_kill(s, c);
			return;
		}
		if (c->state == CONN_CLOSING)
			continue; /* waiting for its FIN; whatever else it says is moot */

		const uint8_t *buf = c->partial ? c->partial : s->scratch;
		size_t len = c->partial ? c->partial_len + (size_t)n : (size_t)n;
		size_t used = conn_process(s, c, buf, len, now_ms);
		if (c->dead)
			return;
		if (c->state == CONN_CLOSING) {
			free(c->partial);
			c->partial = NULL;
			c->partial_len = 0;
			return;
		}
		size_t left = len - used; /* an incomplete frame: below SERVER_PARTIAL_CAP */
		if (left == 0) {
			free(c->partial);
			c->partial = NULL;
			c->partial_len = 0;
		} else if (c->partial) {
			memmove(c->partial, c->partial + used, left);
			c->partial_len = left;
		} else {
			c->partial = malloc(SERVER_PARTIAL_CAP);
			if (!c->partial) {
				conn_kill(s, c);
				return;
			}
			memcpy(c->partial, s->scratch + used, left);
			c->partial_len = left;
		}
		if ((size_t)n < room)
			return; /* the socket is empty */
	}
}
