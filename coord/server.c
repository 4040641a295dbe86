/* meshcoord's event loop: one epoll over the control listener, every node connection, the
 * STUN socket, a signalfd and a 250 ms timerfd. Single-threaded, so nothing is locked.
 *
 * A connection goes HELLO -> REGISTER -> ACTIVE, or to CLOSING (an error message is being
 * flushed) from anywhere. Connections are never freed while events for them may still be in
 * hand: a failing connection is only marked dead, and dead ones are reaped after each batch,
 * which is also where a registered node's departure is announced.
 *
 * Peer maps and deltas are one mechanism. The node table is also a list ordered by the
 * version of each node's last change: a change (joined, online, offline, endpoints, removed)
 * moves the node to the tail with the next version. Each session keeps a cursor into that
 * list and, whenever its socket can take more, sends the current record of every node from
 * its cursor on. A new session's cursor starts at the head: that is its full map, followed
 * by NETMAP_END. Nothing is queued per session beyond one batch the socket did not take, so
 * 10,000 sessions cost little memory even while all of them lag behind a join storm, and a
 * node that changed three times while a session lagged is sent once. Removed nodes stay in
 * the list as tombstones (sent as PEER_REMOVE) until every session that knew them has
 * passed them. */
#include "coord/server.h"

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "coord/admin.h"
#include "core/clock.h"
#include "core/control.h"
#include "core/ipaddr.h"
#include "core/keys.h"
#include "core/log.h"
#include "core/stun.h"

enum {
	/* Each connection costs a file descriptor and ~1 KiB here plus the kernel's socket;
	 * 60,000 leaves room under a typical 64 Ki descriptor limit and is far above the
	 * 10,000 nodes we aim to serve. Beyond it new connections are accepted and closed. */
	SERVER_MAX_CONNECTIONS = 60000,
	/* A node needs one round trip for hello and REGISTER; anything slower is a half-open or
	 * stalled connection holding a slot. */
	SERVER_HANDSHAKE_TIMEOUT_MS = 10000,
	/* A refused node gets this long to read its error. Equal to the handshake timeout so the
	 * list both share stays sorted by deadline. */
	SERVER_LINGER_MS = SERVER_HANDSHAKE_TIMEOUT_MS,
	/* How often a node sends KEEPALIVE (meshd's choice, under NAT mapping timeouts). */
	SERVER_NODE_KEEPALIVE_MS = 25000,
	/* Three missed keepalives: the node or its path is gone. */
	SERVER_IDLE_TIMEOUT_MS = 3 * SERVER_NODE_KEEPALIVE_MS,
	/* Admin commits (node removed) reach nodes within a second; the tick also checks
	 * deadlines. Four wake-ups a second cost nothing measurable when idle. */
	SERVER_TICK_MS = 250,
	/* last_seen is written at most once per node per interval, however chatty the node.
	 * With keepalives every 25 s that is one small commit per keepalive (400 a second for
	 * 10,000 nodes, about 1% of a core here). Longer would save writes, but "nodes list"
	 * calls a node online while last_seen is within ADMIN_ONLINE_WINDOW_S. */
	SERVER_TOUCH_INTERVAL_MS = 20000,
	/* Per connection: one unsent batch plus the odd control message. Peer updates never
	 * pile up here (the cursor holds a lagging session's place), so only a node that keeps
	 * talking without reading can reach this; it is disconnected. */
	SERVER_WRITE_QUEUE_MAX = 64 * 1024,
	/* Peer records are sealed in batches of this much, one send() each. What the socket
	 * does not take waits in the connection's queue: the most a lagging session holds. */
	SERVER_SEND_BATCH = 16 * 1024,
	/* Bytes one connection may send per wake-up before others get a turn. */
	SERVER_FLUSH_BUDGET = 1024 * 1024,
	/* One read per wake-up into a shared buffer: enough for many frames at once. */
	SERVER_READ_SCRATCH = 64 * 1024,
	/* A partial frame kept between reads: one full frame at most. */
	SERVER_PARTIAL_CAP = CONTROL_FRAME_HEADER_LEN + CONTROL_MAX_FRAME,
	/* Work per wake-up for each source, so one busy source cannot starve the rest. */
	SERVER_ACCEPT_BATCH = 256,
	SERVER_READS_PER_WAKE = 4,
	SERVER_STUN_BATCH = 64,
	SERVER_EPOLL_EVENTS = 256,
	/* The kernel caps it at net.core.somaxconn; 10,000 nodes reconnecting at once after a
	 * coordinator restart should not overflow a small default. */
	SERVER_LISTEN_BACKLOG = 4096,
	/* Bigger than any STUN message we answer, so an oversized datagram is seen as such. */
	SERVER_STUN_RECV_MAX = 2048,
	SERVER_INITIAL_TABLE_SLOTS = 64,
	ADDR_STR_MAX = 64,
};

_Static_assert(SERVER_SEND_BATCH + SERVER_PARTIAL_CAP < SERVER_WRITE_QUEUE_MAX,
	       "an unsent batch leaves room for control messages");
_Static_assert(SERVER_SEND_BATCH >= 2 * SERVER_PARTIAL_CAP, "a batch holds several frames");
_Static_assert(SERVER_READ_SCRATCH >= SERVER_PARTIAL_CAP, "a read can complete any frame");
_Static_assert(SERVER_TOUCH_INTERVAL_MS + SERVER_NODE_KEEPALIVE_MS < ADMIN_ONLINE_WINDOW_S * 1000,
	       "a live node's last_seen stays inside the admin's online window");

/* Every bad input is counted; SIGUSR1 prints these. */
#define SERVER_COUNTERS(X)                                                                     \
	X(conns_accepted)       /* TCP connections accepted */                                 \
	X(conns_refused_limit)  /* closed at once: SERVER_MAX_CONNECTIONS reached */           \
	X(accept_errors)        /* accept4 failed (descriptor limit, memory) */                \
	X(hello_invalid)        /* first frame not a valid hello to our key: garbage, other key */ \
	X(hello_replayed)       /* hello timestamp not newer than that node's last accepted */ \
	X(frames_bad_length)    /* frame length 0 or above CONTROL_MAX_FRAME */                \
	X(frames_forged)        /* transport frame failed authentication */                    \
	X(msgs_malformed)       /* known message type that does not parse */                   \
	X(msgs_unknown)         /* unknown message type, skipped */                            \
	X(msgs_unexpected)      /* valid message out of place (e.g. PEER from a node) */       \
	X(handshake_timeouts)   /* no hello + REGISTER within SERVER_HANDSHAKE_TIMEOUT_MS */   \
	X(closed_unregistered)  /* closed by the other side before registering */             \
	X(idle_timeouts)        /* registered session silent for SERVER_IDLE_TIMEOUT_MS */     \
	X(slow_readers)         /* queue above SERVER_WRITE_QUEUE_MAX (not reading): closed */ \
	X(registrations)        /* REGISTER accepted (new or returning node) */                \
	X(nodes_created)        /* of which new nodes */                                       \
	X(registrations_refused) /* REGISTER refused: join key or removed node */              \
	X(sessions_replaced)    /* older session of a node closed by its newer one */          \
	X(nodes_removed)        /* removals seen in the registry and pushed */                 \
	X(endpoint_updates)     /* ENDPOINTS messages applied */                               \
	X(peer_msgs_sent)       /* PEER and PEER_REMOVE messages sent (maps and deltas) */     \
	X(db_errors)            /* registry writes or reads that failed */                     \
	X(stun_requests)        /* Binding requests answered */                                \
	X(stun_dropped)         /* datagrams on the STUN port that were not Binding requests */

struct server_counters {
#define SERVER_COUNTER_FIELD(name) uint64_t name;
	SERVER_COUNTERS(SERVER_COUNTER_FIELD)
#undef SERVER_COUNTER_FIELD
};

/* What an epoll event points at: the first member of every source. */
enum source_kind { SOURCE_LISTENER, SOURCE_STUN, SOURCE_SIGNAL, SOURCE_TIMER, SOURCE_CONN };

struct source {
	enum source_kind kind;
	int fd;
};

enum conn_state {
	CONN_HELLO,    /* waiting for frame 1 */
	CONN_REGISTER, /* channel up, waiting for REGISTER */
	CONN_ACTIVE,   /* registered: receives the map and deltas */
	CONN_CLOSING,  /* flushing a final ERROR, then closing; input is discarded */
};

struct node_entry;

union peer_addr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

struct conn {
	struct source src; /* first: epoll hands it back */
	enum conn_state state;
	bool dead;        /* marked for reaping; ignore all events */
	bool in_flush;    /* on the flush list */
	bool want_out;    /* EPOLLOUT currently requested */
	bool shut_wr;     /* CLOSING: our side already shut down */
	bool map_done;    /* ACTIVE: NETMAP_END sent */
	/* On the short list (HELLO, REGISTER, CLOSING; sorted by deadline) or the active list
	 * (ACTIVE; least recently heard first). */
	struct conn *prev, *next;
	struct conn *flush_next, *dead_next;
	uint64_t deadline_ms;  /* short list: when to give up; active list: last frame seen */
	union peer_addr addr;
	struct control_channel ch;
	uint8_t hello_timestamp[WIRE_TIMESTAMP_LEN];
	struct node_entry *node;   /* ACTIVE: its node, whose session this is */
	struct node_entry *cursor; /* ACTIVE: next change to send; NULL: caught up */
	uint64_t sent_version;     /* every change up to this version was sent (or skipped) */
	uint64_t start_version;    /* the table's version when the session began: removals up
				    * to it are no news to this node */
	uint8_t *partial;          /* an incomplete frame, kept between reads */
	size_t partial_len;
	uint8_t *wbuf; /* sealed frames waiting for the socket: [woff, wlen) */
	size_t woff, wlen, wcap;
};

struct node_entry {
	struct db_node rec;
	uint64_t hash;
	uint64_t version;     /* of its last change; the change list is sorted by it */
	struct conn *session; /* its live registered session, if online */
	struct node_entry *prev, *next; /* the change list: sessions' cursors walk it */
	struct node_entry *tomb_next;   /* removed: on the tombstone list */
	size_t tomb_pending;  /* removed: sessions that have yet to pass it */
	bool removed;         /* a tombstone: out of the hash, still in the change list */
	uint64_t last_touch_ms;
	/* Hello timestamps are kept per known node: a hello replayed for a key we do not know
	 * yet can never produce a REGISTER (that needs the node's ephemeral key), so remembering
	 * unknown keys would only let strangers grow this table. */
	uint8_t last_hello[WIRE_TIMESTAMP_LEN];
	bool has_hello;
	bool seen; /* reload: still in the registry */
};

/* Open addressing with linear probing, keyed by SipHash of the node key (random key, so
 * chosen node keys cannot pile into one chain). */
struct node_table {
	struct node_entry **slots;
	size_t cap; /* power of two */
	size_t count;
	uint8_t hash_key[crypto_shorthash_KEYBYTES];
	struct node_entry *head, *tail; /* the change list, tombstones included */
	struct node_entry *tombs;
	uint64_t version; /* of the newest change */
};

struct conn_list {
	struct conn *head, *tail;
	size_t count;
};

struct coord_server {
	struct source listener, stun, signal, timer;
	int epoll_fd;
	bool listener_paused; /* descriptor limit hit: resumed at the next tick */
	bool stop;
	struct db *db;
	uint8_t coord_private[WIRE_KEY_LEN];
	struct node_table nodes;
	struct conn_list short_list, active_list;
	size_t n_conns;
	struct conn *flush_head;
	struct conn *dead_head; /* killed in this batch, still on their lists */
	struct conn *graveyard; /* off every list, freed at the end of the batch */
	uint64_t now_ms;        /* monotonic, read once per batch */
	uint8_t scratch[SERVER_READ_SCRATCH];
	uint8_t batch[SERVER_SEND_BATCH];
	struct server_counters counters;
	struct log_ratelimit rl_conn;   /* bad input on the control port */
	struct log_ratelimit rl_stun;   /* bad input on the STUN port */
	struct log_ratelimit rl_system; /* resource trouble: accept, database */
};

#define SERVER_LOG_LIMITED(limiter, ...)                                                       \
	do {                                                                                   \
		unsigned int suppressed_;                                                      \
		if (log_ratelimit_allow((limiter), clock_monotonic_ms(), &suppressed_)) {      \
			log_warn(__VA_ARGS__);                                                 \
			if (suppressed_)                                                       \
				log_warn("(%u similar messages suppressed)", suppressed_);     \
		}                                                                              \
	} while (0)

static const char *conn_addr(const struct conn *c, char *buf, size_t len)
{
	return sockaddr_format(&c->addr.sa, buf, len);
}

static int64_t unix_now(void)
{
	return (int64_t)time(NULL);
}

/* ---------------------------------------------------------------- node table */

static uint64_t node_key_hash(const struct node_table *t, const uint8_t key[WIRE_KEY_LEN])
{
	uint8_t out[crypto_shorthash_BYTES];
	uint64_t h;

	crypto_shorthash(out, key, WIRE_KEY_LEN, t->hash_key);
	memcpy(&h, out, sizeof(h));
	return h;
}

static struct node_entry *node_find(const struct node_table *t, const uint8_t key[WIRE_KEY_LEN])
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

/* A new entry for a record not in the table yet, in the hash but not on the change list. */
static struct node_entry *node_new(struct node_table *t, const struct db_node *rec)
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

static void node_table_free(struct node_table *t)
{
	struct node_entry *e = t->head;
	while (e) {
		struct node_entry *next = e->next;
		free(e);
		e = next;
	}
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

/* ---------------------------------------------------------------- connection lists */

static void list_append(struct conn_list *l, struct conn *c)
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

static void list_remove(struct conn_list *l, struct conn *c)
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

/* ---------------------------------------------------------------- lifecycle */

/* Marks c for reaping after the current batch; it gets no more input or output. */
static void conn_kill(struct coord_server *s, struct conn *c)
{
	if (c->dead)
		return;
	c->dead = true;
	c->dead_next = s->dead_head;
	s->dead_head = c;
}

static void conn_schedule_flush(struct coord_server *s, struct conn *c)
{
	if (c->in_flush || c->dead)
		return;
	c->in_flush = true;
	c->flush_next = s->flush_head;
	s->flush_head = c;
}

/* Records that a change happened to e (or that e is new, not yet on the list): e moves to the
 * tail with the next version, and every session will send it. O(sessions), like any push. */
static void node_changed(struct coord_server *s, struct node_entry *e, bool on_list)
{
	struct node_entry *after = on_list ? e->next : NULL;

	for (struct conn *c = s->active_list.head; c; c = c->next) {
		if (c->dead)
			continue;
		if (on_list && c->cursor == e) {
			c->cursor = after ? after : e; /* it still reaches e, now at the tail */
		} else if (!c->cursor) {
			c->cursor = e; /* was caught up: e is its next news */
			conn_schedule_flush(s, c);
		}
	}
	if (on_list)
		change_list_unlink(&s->nodes, e);
	change_list_append(&s->nodes, e);
}

/* Frees tombstone t: every session that knew it has passed it. */
static void tomb_free(struct coord_server *s, struct node_entry *t)
{
	/* Sessions that began after the removal skip t without counting; move them on. */
	for (struct conn *c = s->active_list.head; c; c = c->next)
		if (c->cursor == t)
			c->cursor = t->next;
	struct node_entry **pp = &s->nodes.tombs;
	while (*pp != t)
		pp = &(*pp)->tomb_next;
	*pp = t->tomb_next;
	change_list_unlink(&s->nodes, t);
	free(t);
}

static void tomb_passed(struct coord_server *s, struct node_entry *t)
{
	if (t->tomb_pending > 0 && --t->tomb_pending == 0)
		tomb_free(s, t);
}

/* c stops being a registered session (closing or reaped): the tombstones it still owed a
 * PEER_REMOVE no longer wait for it. */
static void conn_leave_active(struct coord_server *s, struct conn *c)
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

/* Encodes and seals m into out; kills c on failure (only a bug or a worn-out nonce can). */
static bool conn_seal_msg(struct coord_server *s, struct conn *c, const struct control_message *m, uint8_t *out,
			  size_t cap, size_t *out_len)
{
	uint8_t plain[CONTROL_MAX_PLAIN];
	size_t len = control_encode(m, plain, sizeof(plain));
	if (len == 0) {
		log_error("internal error: cannot encode control message type %d", (int)m->type);
		conn_kill(s, c);
		return false;
	}
	if (!control_seal(&c->ch, plain, len, out, cap, out_len)) {
		conn_kill(s, c);
		return false;
	}
	return true;
}

/* Makes room for need more bytes at the end of c's queue. */
static bool conn_reserve(struct coord_server *s, struct conn *c, size_t need)
{
	size_t pending = c->wlen - c->woff;
	if (pending + need > SERVER_WRITE_QUEUE_MAX) {
		char a[ADDR_STR_MAX];
		s->counters.slow_readers++;
		SERVER_LOG_LIMITED(&s->rl_conn, "%s: not reading what we send (%zu bytes queued), closing",
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

/* Appends bytes (a welcome, or a batch the socket did not take) to c's queue. */
static bool conn_queue_raw(struct coord_server *s, struct conn *c, const uint8_t *data, size_t len)
{
	if (c->dead || !conn_reserve(s, c, len))
		return false;
	memcpy(c->wbuf + c->wlen, data, len);
	c->wlen += len;
	conn_schedule_flush(s, c);
	return true;
}

/* Seals one message onto c's queue, behind everything sealed before it. */
static bool conn_queue_msg(struct coord_server *s, struct conn *c, const struct control_message *m)
{
	uint8_t plain[CONTROL_MAX_PLAIN];
	size_t len, out_len;

	if (c->dead || !c->ch.established)
		return false;
	len = control_encode(m, plain, sizeof(plain));
	if (len == 0) {
		log_error("internal error: cannot encode control message type %d", (int)m->type);
		conn_kill(s, c);
		return false;
	}
	if (!conn_reserve(s, c, CONTROL_FRAME_HEADER_LEN + len + NOISE_TAG_LEN))
		return false;
	if (!control_seal(&c->ch, plain, len, c->wbuf + c->wlen, c->wcap - c->wlen, &out_len)) {
		conn_kill(s, c);
		return false;
	}
	c->wlen += out_len;
	conn_schedule_flush(s, c);
	return true;
}

static void node_touch(struct coord_server *s, struct node_entry *e, uint64_t now_ms)
{
	e->last_touch_ms = now_ms;
	if (!db_node_touch(s->db, e->rec.node_key, unix_now())) {
		s->counters.db_errors++;
		SERVER_LOG_LIMITED(&s->rl_system, "registry: cannot record last-seen time of %s", e->rec.name);
	}
}

/* Ends c's role as its node's session; announce says whether peers hear it went offline. */
static void conn_detach_session(struct coord_server *s, struct conn *c, bool announce)
{
	struct node_entry *e = c->node;
	c->node = NULL;
	if (!e || e->session != c)
		return;
	e->session = NULL;
	node_touch(s, e, s->now_ms);
	if (announce)
		node_changed(s, e, true);
}

/* Queues a final ERROR (if the channel is up) and closes once it is flushed. */
static void conn_refuse(struct coord_server *s, struct conn *c, enum control_error_code code, const char *text)
{
	if (c->dead || c->state == CONN_CLOSING)
		return;
	if (!c->ch.established) {
		conn_kill(s, c);
		return;
	}
	if (c->state == CONN_ACTIVE) {
		conn_leave_active(s, c);
		list_remove(&s->active_list, c);
		c->state = CONN_CLOSING;
		list_append(&s->short_list, c);
		conn_detach_session(s, c, true);
	} else {
		list_remove(&s->short_list, c);
		c->state = CONN_CLOSING;
		list_append(&s->short_list, c);
	}
	c->deadline_ms = s->now_ms + SERVER_LINGER_MS;

	struct control_message m;
	memset(&m, 0, sizeof(m));
	m.type = CONTROL_MSG_ERROR;
	m.u.error.code = (uint16_t)code;
	snprintf(m.u.error.text, sizeof(m.u.error.text), "%s", text);
	conn_queue_msg(s, c, &m);
}

static void conn_free(struct coord_server *s, struct conn *c)
{
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
			conn_leave_active(s, c);
		list_remove(conn_list_of(s, c), c);
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

static bool conn_has_news(const struct conn *c)
{
	return c->state == CONN_ACTIVE && (c->cursor || !c->map_done);
}

/* Seals the records from c's cursor on into out (at most cap bytes): the map, NETMAP_END
 * once, then changes. Returns the bytes written. */
static size_t conn_produce(struct coord_server *s, struct conn *c, uint8_t *out, size_t cap)
{
	size_t used = 0;

	while (!c->dead && conn_has_news(c) && cap - used >= SERVER_PARTIAL_CAP) {
		struct node_entry *e = c->cursor;
		struct control_message m;
		bool tomb = false;

		if (!e) {
			memset(&m, 0, sizeof(m));
			m.type = CONTROL_MSG_NETMAP_END;
			c->map_done = true;
		} else {
			c->cursor = e->next;
			c->sent_version = e->version;
			if (e->removed) {
				if (e->version <= c->start_version)
					continue; /* removed before this session began */
				memset(&m, 0, sizeof(m));
				m.type = CONTROL_MSG_PEER_REMOVE;
				memcpy(m.u.remove_key, e->rec.node_key, WIRE_KEY_LEN);
				tomb = true;
			} else if (e == c->node) {
				continue;
			} else {
				node_message_peer(e, &m);
			}
			s->counters.peer_msgs_sent++;
		}
		size_t len;
		bool ok = conn_seal_msg(s, c, &m, out + used, cap - used, &len);
		if (tomb)
			tomb_passed(s, e); /* may free e; the cursor is already past it */
		if (!ok)
			break;
		used += len;
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
		const uint8_t *data = c->wbuf + c->woff;
		bool from_queue = pending > 0;
		if (!from_queue) {
			if (!conn_has_news(c))
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
	bool left = c->wlen > c->woff || conn_has_news(c);
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

/* ---------------------------------------------------------------- registration */

static bool endpoints_equal(const struct control_endpoint *a, size_t na, const struct control_endpoint *b, size_t nb)
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

static const char *register_error_text(enum db_register_result r, enum control_error_code *code)
{
	switch (r) {
	case DB_REGISTER_KEY_UNKNOWN:
		*code = CONTROL_ERR_JOIN_KEY_UNKNOWN;
		return "unknown join key: it was not made by this coordinator, or was mistyped";
	case DB_REGISTER_KEY_EXPIRED:
		*code = CONTROL_ERR_JOIN_KEY_EXPIRED;
		return "join key expired; create a new one with 'meshcoord authkey create'";
	case DB_REGISTER_KEY_REVOKED:
		*code = CONTROL_ERR_JOIN_KEY_REVOKED;
		return "join key revoked; create a new one with 'meshcoord authkey create'";
	case DB_REGISTER_KEY_USED:
		*code = CONTROL_ERR_JOIN_KEY_USED;
		return "join key already used (it was a one-time key); create a new one with 'meshcoord authkey create'";
	case DB_REGISTER_NODE_REMOVED:
		*code = CONTROL_ERR_NODE_REMOVED;
		return "this node was removed from the network by an administrator";
	case DB_REGISTER_NEED_KEY:
		*code = CONTROL_ERR_NEED_JOIN_KEY;
		return "this node is not registered: start it with a join key";
	case DB_REGISTER_OK:
	case DB_REGISTER_ERROR:
	default:
		*code = CONTROL_ERR_INTERNAL;
		return "the coordinator's registry failed; try again later";
	}
}

static void handle_register(struct coord_server *s, struct conn *c, const struct control_register *reg,
			    uint64_t now_ms)
{
	char a[ADDR_STR_MAX];
	char keyb64[KEY_BASE64_LEN + 1];
	struct db_node rec;

	key_to_base64(keyb64, c->ch.remote_static);
	enum db_register_result r = db_register_node(s->db, c->ch.remote_static, reg->join_secret,
						     reg->join_secret_len, reg->hostname, unix_now(), &rec);
	if (r != DB_REGISTER_OK) {
		enum control_error_code code;
		const char *text = register_error_text(r, &code);
		if (r == DB_REGISTER_ERROR) {
			s->counters.db_errors++;
			SERVER_LOG_LIMITED(&s->rl_system, "registry: cannot register node %s from %s", keyb64,
					   conn_addr(c, a, sizeof(a)));
		} else {
			s->counters.registrations_refused++;
			SERVER_LOG_LIMITED(&s->rl_conn, "%s: node %s refused: %s", conn_addr(c, a, sizeof(a)), keyb64,
					   text);
		}
		conn_refuse(s, c, code, text);
		return;
	}
	int64_t now = unix_now();
	if (!endpoints_equal(rec.endpoints, rec.n_endpoints, reg->endpoints, reg->n_endpoints) &&
	    !db_node_set_endpoints(s->db, rec.node_key, reg->endpoints, reg->n_endpoints)) {
		s->counters.db_errors++;
		SERVER_LOG_LIMITED(&s->rl_system, "registry: cannot store endpoints of %s", rec.name);
	}
	memset(rec.endpoints, 0, sizeof(rec.endpoints));
	memcpy(rec.endpoints, reg->endpoints, reg->n_endpoints * sizeof(rec.endpoints[0]));
	rec.n_endpoints = reg->n_endpoints;

	struct node_entry *e = node_find(&s->nodes, rec.node_key);
	bool created = !e;
	if (!e) {
		e = node_new(&s->nodes, &rec);
		if (!e) {
			log_error("out of memory adding node %s", rec.name);
			conn_refuse(s, c, CONTROL_ERR_INTERNAL, "the coordinator is out of memory; try again later");
			return;
		}
		memcpy(e->last_hello, c->hello_timestamp, WIRE_TIMESTAMP_LEN);
		e->has_hello = true;
		s->counters.nodes_created++;
	} else {
		struct conn *old = e->session;
		e->rec = rec;
		if (old && old != c) {
			/* Newest wins: the node restarted or moved, and the old connection is
			 * either dead or about to be. Its end is not announced: the node is online. */
			s->counters.sessions_replaced++;
			log_debug("%s: node %s replaces its older session", conn_addr(c, a, sizeof(a)), rec.name);
			e->session = NULL;
			old->node = NULL;
			conn_kill(s, old);
		}
	}
	s->counters.registrations++;
	e->session = c;
	if (rec.last_seen == now)
		e->last_touch_ms = now_ms; /* a new record says "seen now" already */
	else
		node_touch(s, e, now_ms);

	list_remove(&s->short_list, c);
	c->state = CONN_ACTIVE;
	c->node = e;
	c->deadline_ms = now_ms;
	c->cursor = s->nodes.head;
	c->sent_version = 0;
	c->start_version = s->nodes.version;
	c->map_done = false;
	list_append(&s->active_list, c);

	if (created)
		log_info("node %s joined from %s: %u.%u.%u.%u, key %s", rec.name, conn_addr(c, a, sizeof(a)),
			 rec.ipv4[0], rec.ipv4[1], rec.ipv4[2], rec.ipv4[3], keyb64);
	else
		log_debug("node %s online from %s", rec.name, conn_addr(c, a, sizeof(a)));

	struct control_message m;
	memset(&m, 0, sizeof(m));
	m.type = CONTROL_MSG_REGISTERED;
	memcpy(m.u.registered.name, rec.name, sizeof(m.u.registered.name));
	memcpy(m.u.registered.ipv4, rec.ipv4, sizeof(rec.ipv4));
	m.u.registered.ipv4_bits = DB_OVERLAY_IPV4_BITS;
	memcpy(m.u.registered.ipv6, rec.ipv6, sizeof(rec.ipv6));
	m.u.registered.ipv6_bits = DB_OVERLAY_IPV6_BITS;
	conn_queue_msg(s, c, &m); /* before any map record: the flush produces those later */
	node_changed(s, e, !created);
}

static void handle_endpoints(struct coord_server *s, struct conn *c, const struct control_message *m)
{
	struct node_entry *e = c->node;
	if (!e)
		return;
	size_t n = m->u.endpoints.n;
	if (endpoints_equal(e->rec.endpoints, e->rec.n_endpoints, m->u.endpoints.list, n))
		return; /* nothing changed: spare the database and every peer */
	if (!db_node_set_endpoints(s->db, e->rec.node_key, m->u.endpoints.list, n)) {
		s->counters.db_errors++;
		SERVER_LOG_LIMITED(&s->rl_system, "registry: cannot store endpoints of %s", e->rec.name);
	}
	memset(e->rec.endpoints, 0, sizeof(e->rec.endpoints));
	memcpy(e->rec.endpoints, m->u.endpoints.list, n * sizeof(e->rec.endpoints[0]));
	e->rec.n_endpoints = n;
	s->counters.endpoint_updates++;
	node_changed(s, e, true);
}

/* One decrypted message from a node. */
static void handle_message(struct coord_server *s, struct conn *c, const uint8_t *plain, size_t len,
			   uint64_t now_ms)
{
	char a[ADDR_STR_MAX];
	struct control_message m;
	enum control_decode_result r;

	memset(&m, 0, sizeof(m));
	r = control_decode(plain, len, &m);
	if (r == CONTROL_DECODE_UNKNOWN) {
		s->counters.msgs_unknown++;
		goto out;
	}
	if (r != CONTROL_DECODE_OK) {
		s->counters.msgs_malformed++;
		SERVER_LOG_LIMITED(&s->rl_conn, "%s: malformed message (type %u), closing", conn_addr(c, a, sizeof(a)),
				   len ? plain[0] : 0u);
		conn_refuse(s, c, CONTROL_ERR_BAD_MESSAGE, "malformed message");
		goto out;
	}
	if (c->state == CONN_REGISTER) {
		if (m.type != CONTROL_MSG_REGISTER) {
			s->counters.msgs_unexpected++;
			SERVER_LOG_LIMITED(&s->rl_conn, "%s: message type %d before REGISTER, closing",
					   conn_addr(c, a, sizeof(a)), (int)m.type);
			conn_refuse(s, c, CONTROL_ERR_BAD_MESSAGE, "the first message must be REGISTER");
			goto out;
		}
		handle_register(s, c, &m.u.reg, now_ms);
		goto out;
	}
	switch (m.type) {
	case CONTROL_MSG_KEEPALIVE: {
		struct control_message reply = { .type = CONTROL_MSG_KEEPALIVE };
		conn_queue_msg(s, c, &reply);
		if (c->node && now_ms - c->node->last_touch_ms >= SERVER_TOUCH_INTERVAL_MS)
			node_touch(s, c->node, now_ms);
		break;
	}
	case CONTROL_MSG_ENDPOINTS:
		handle_endpoints(s, c, &m);
		break;
	default:
		/* REGISTER again, or a coordinator-only type: harmless, but not for us. */
		s->counters.msgs_unexpected++;
		SERVER_LOG_LIMITED(&s->rl_conn, "%s: unexpected message type %d, ignored", conn_addr(c, a, sizeof(a)),
				   (int)m.type);
		break;
	}
out:
	sodium_memzero(&m, sizeof(m)); /* a REGISTER holds the join secret */
}

/* Frame 1: the Noise hello. */
static void handle_hello(struct coord_server *s, struct conn *c, const uint8_t *body, size_t len)
{
	char a[ADDR_STR_MAX];
	uint8_t welcome[CONTROL_FRAME_HEADER_LEN + CONTROL_WELCOME_LEN];
	size_t welcome_len;
	uint8_t ts[WIRE_TIMESTAMP_LEN];

	if (!control_server_accept(&c->ch, s->coord_private, body, len, ts, NULL, welcome, sizeof(welcome),
				   &welcome_len)) {
		s->counters.hello_invalid++;
		SERVER_LOG_LIMITED(&s->rl_conn, "%s: not a valid hello for this coordinator (%zu bytes), closing",
				   conn_addr(c, a, sizeof(a)), len);
		conn_kill(s, c);
		return;
	}
	struct node_entry *e = node_find(&s->nodes, c->ch.remote_static);
	if (e && e->has_hello && memcmp(ts, e->last_hello, WIRE_TIMESTAMP_LEN) <= 0) {
		char keyb64[KEY_BASE64_LEN + 1];
		key_to_base64(keyb64, c->ch.remote_static);
		s->counters.hello_replayed++;
		SERVER_LOG_LIMITED(&s->rl_conn, "%s: replayed or stale hello for node %s (%s), closing",
				   conn_addr(c, a, sizeof(a)), e->rec.name, keyb64);
		conn_kill(s, c);
		return;
	}
	if (e) {
		memcpy(e->last_hello, ts, WIRE_TIMESTAMP_LEN);
		e->has_hello = true;
	}
	memcpy(c->hello_timestamp, ts, WIRE_TIMESTAMP_LEN);
	c->state = CONN_REGISTER;

	/* The welcome goes out as is: it is the handshake, not a transport frame. */
	conn_queue_raw(s, c, welcome, welcome_len);
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
			s->counters.frames_bad_length++;
			SERVER_LOG_LIMITED(&s->rl_conn, "%s: frame length 0 or above %d (not a meshd node?), closing",
					   conn_addr(c, a, sizeof(a)), CONTROL_MAX_FRAME);
			conn_kill(s, c);
			break;
		}
		off += consumed;
		if (c->state == CONN_HELLO) {
			handle_hello(s, c, body, body_len);
			continue;
		}
		uint8_t plain[CONTROL_MAX_FRAME];
		size_t plain_len;
		if (!control_open(&c->ch, body, body_len, plain, sizeof(plain), &plain_len)) {
			s->counters.frames_forged++;
			SERVER_LOG_LIMITED(&s->rl_conn, "%s: frame failed authentication, closing",
					   conn_addr(c, a, sizeof(a)));
			conn_kill(s, c);
			break;
		}
		if (c->state == CONN_ACTIVE) {
			/* Heard from it: to the back of the idle-deadline line. */
			c->deadline_ms = now_ms;
			list_remove(&s->active_list, c);
			list_append(&s->active_list, c);
		}
		handle_message(s, c, plain, plain_len, now_ms);
		sodium_memzero(plain, plain_len);
	}
	return off;
}

static void conn_on_readable(struct coord_server *s, struct conn *c, uint64_t now_ms)
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
			if (c->state == CONN_HELLO || c->state == CONN_REGISTER) {
				s->counters.closed_unregistered++;
				SERVER_LOG_LIMITED(&s->rl_conn, "%s: closed before registering", conn_addr(c, a, sizeof(a)));
			} else {
				log_debug("%s: closed by peer", conn_addr(c, a, sizeof(a)));
			}
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

/* ---------------------------------------------------------------- accept, STUN, signals */

static void on_accept(struct coord_server *s, uint64_t now_ms)
{
	for (int i = 0; i < SERVER_ACCEPT_BATCH; i++) {
		union peer_addr addr;
		socklen_t alen = sizeof(addr);
		char a[ADDR_STR_MAX];
		memset(&addr, 0, sizeof(addr));
		int fd = accept4(s->listener.fd, &addr.sa, &alen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			int e = errno;
			s->counters.accept_errors++;
			SERVER_LOG_LIMITED(&s->rl_system, "cannot accept connections: %s (%zu open)", strerror(e),
					   s->n_conns);
			if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
				/* The pending connection stays queued and would wake us forever:
				 * stop listening until the next tick. */
				struct epoll_event ev = { .events = 0, .data.ptr = &s->listener };
				if (epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, s->listener.fd, &ev) == 0)
					s->listener_paused = true;
			}
			return;
		}
		if (s->n_conns >= SERVER_MAX_CONNECTIONS) {
			s->counters.conns_refused_limit++;
			SERVER_LOG_LIMITED(&s->rl_system, "%s: refused, %d connections open already",
					   sockaddr_format(&addr.sa, a, sizeof(a)), SERVER_MAX_CONNECTIONS);
			close(fd);
			continue;
		}
		struct conn *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			s->counters.accept_errors++;
			continue;
		}
		int one = 1;
		/* We batch frames ourselves; Nagle would only delay pushed deltas. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->src.kind = SOURCE_CONN;
		c->src.fd = fd;
		c->state = CONN_HELLO;
		c->addr = addr;
		c->deadline_ms = now_ms + SERVER_HANDSHAKE_TIMEOUT_MS;
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &c->src };
		if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			close(fd);
			free(c);
			s->counters.accept_errors++;
			continue;
		}
		s->n_conns++;
		s->counters.conns_accepted++;
		list_append(&s->short_list, c);
	}
}

static void on_stun(struct coord_server *s)
{
	for (int i = 0; i < SERVER_STUN_BATCH; i++) {
		uint8_t in[SERVER_STUN_RECV_MAX];
		uint8_t out[STUN_MAX_MESSAGE];
		union peer_addr from;
		socklen_t flen = sizeof(from);
		struct stun_request req;
		char a[ADDR_STR_MAX];

		ssize_t n = recvfrom(s->stun.fd, in, sizeof(in), MSG_DONTWAIT | MSG_TRUNC, &from.sa, &flen);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return; /* EAGAIN, or an ICMP error from an earlier answer: nothing to do */
		}
		if ((size_t)n > sizeof(in) || !stun_parse_request(in, (size_t)n, &req)) {
			s->counters.stun_dropped++;
			SERVER_LOG_LIMITED(&s->rl_stun, "stun: dropped a %zd-byte datagram from %s: not a Binding request",
					   n, sockaddr_format(&from.sa, a, sizeof(a)));
			continue;
		}
		size_t len = stun_build_response(&req, &from.sa, out, sizeof(out));
		if (len == 0) {
			s->counters.stun_dropped++;
			continue;
		}
		s->counters.stun_requests++;
		/* Best effort, like UDP: a full socket buffer drops the answer and the client retries. */
		(void)sendto(s->stun.fd, out, len, MSG_DONTWAIT, &from.sa, flen);
	}
}

static void on_signal(struct coord_server *s)
{
	struct signalfd_siginfo si;
	while (read(s->signal.fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGUSR1) {
			coord_server_log_counters(s);
		} else {
			log_info("signal %u received, shutting down", si.ssi_signo);
			s->stop = true;
		}
	}
}

/* ---------------------------------------------------------------- registry changes */

struct reload_ctx {
	struct coord_server *s;
	bool failed;
};

static void reload_one(const struct db_node *n, void *arg)
{
	struct reload_ctx *ctx = arg;
	struct coord_server *s = ctx->s;
	struct node_entry *e = node_find(&s->nodes, n->node_key);

	if (!e) {
		/* Not made by us (nothing else makes nodes today), but follow the registry. */
		e = node_new(&s->nodes, n);
		if (!e) {
			ctx->failed = true;
			return;
		}
		e->seen = true;
		node_changed(s, e, false);
		return;
	}
	e->seen = true;
	bool changed = strcmp(e->rec.name, n->name) != 0 || memcmp(e->rec.ipv4, n->ipv4, sizeof(n->ipv4)) != 0 ||
		       memcmp(e->rec.ipv6, n->ipv6, sizeof(n->ipv6)) != 0 ||
		       !endpoints_equal(e->rec.endpoints, e->rec.n_endpoints, n->endpoints, n->n_endpoints);
	e->rec = *n;
	if (changed)
		node_changed(s, e, true);
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
	node_hash_remove(&s->nodes, e);
	e->removed = true;
	node_changed(s, e, true);
	/* Every registered session owes it a PEER_REMOVE, the dead ones too: reaping them
	 * settles their share (conn_leave_active). */
	e->tomb_pending = s->active_list.count;
	e->tomb_next = s->nodes.tombs;
	s->nodes.tombs = e;
	if (e->tomb_pending == 0)
		tomb_free(s, e);
}

static void reload_nodes(struct coord_server *s)
{
	struct reload_ctx ctx = { .s = s };

	for (struct node_entry *e = s->nodes.head; e; e = e->next)
		e->seen = false;
	if (!db_nodes_list(s->db, reload_one, &ctx) || ctx.failed) {
		s->counters.db_errors++;
		SERVER_LOG_LIMITED(&s->rl_system, "registry: cannot reload the node list; will retry");
		/* Keep everyone: a failed read must not look like mass removal. */
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

/* ---------------------------------------------------------------- timer */

static void on_tick(struct coord_server *s, uint64_t now_ms)
{
	uint64_t expirations;
	char a[ADDR_STR_MAX];

	while (read(s->timer.fd, &expirations, sizeof(expirations)) == (ssize_t)sizeof(expirations))
		;
	if (db_changed(s->db))
		reload_nodes(s);

	for (struct conn *c = s->short_list.head; c && c->deadline_ms <= now_ms; c = c->next) {
		if (c->dead)
			continue;
		if (c->state != CONN_CLOSING) {
			s->counters.handshake_timeouts++;
			SERVER_LOG_LIMITED(&s->rl_conn, "%s: no hello and REGISTER within %d s (half-open?), closing",
					   conn_addr(c, a, sizeof(a)), SERVER_HANDSHAKE_TIMEOUT_MS / 1000);
		}
		conn_kill(s, c);
	}
	for (struct conn *c = s->active_list.head; c && c->deadline_ms + SERVER_IDLE_TIMEOUT_MS <= now_ms;
	     c = c->next) {
		if (c->dead)
			continue;
		s->counters.idle_timeouts++;
		SERVER_LOG_LIMITED(&s->rl_conn, "%s: node %s silent for %d s, closing", conn_addr(c, a, sizeof(a)),
				   c->node ? c->node->rec.name : "?", SERVER_IDLE_TIMEOUT_MS / 1000);
		conn_kill(s, c);
	}
	if (s->listener_paused) {
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &s->listener };
		if (epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, s->listener.fd, &ev) == 0)
			s->listener_paused = false;
	}
}

/* ---------------------------------------------------------------- setup */

/* Binds a numeric address ("0.0.0.0", "::", "fe80::1%eth0"; brackets allowed). */
static int open_socket(const char *host_in, uint16_t port, int type, const char *what, char *err, size_t err_len)
{
	char host[ENDPOINT_HOST_MAX];
	size_t hl = strlen(host_in);
	if (hl >= 2 && host_in[0] == '[' && host_in[hl - 1] == ']')
		snprintf(host, sizeof(host), "%.*s", (int)(hl - 2), host_in + 1);
	else
		snprintf(host, sizeof(host), "%s", host_in);

	char service[8];
	snprintf(service, sizeof(service), "%u", (unsigned int)port);
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE, .ai_socktype = type };
	struct addrinfo *ai = NULL;
	int gai = getaddrinfo(host, service, &hints, &ai);
	if (gai != 0 || !ai) {
		snprintf(err, err_len, "%s address '%s' is not a numeric IPv4 or IPv6 address", what, host_in);
		return -1;
	}
	int fd = socket(ai->ai_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, err_len, "cannot create the %s socket: %s", what, strerror(errno));
		freeaddrinfo(ai);
		return -1;
	}
	int one = 1, zero = 0;
	if (type == SOCK_STREAM)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ai->ai_family == AF_INET6) /* "::" serves IPv4 too, whatever the sysctl default */
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		char a[ADDR_STR_MAX];
		snprintf(err, err_len, "cannot bind the %s socket to %s: %s", what,
			 sockaddr_format(ai->ai_addr, a, sizeof(a)), strerror(errno));
		close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	if (type == SOCK_STREAM && listen(fd, SERVER_LISTEN_BACKLOG) < 0) {
		snprintf(err, err_len, "cannot listen on the %s socket: %s", what, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Every node session is a descriptor: take all the kernel allows us. */
static void raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t old = rl.rlim_cur;
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			rl.rlim_cur = old;
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)SERVER_MAX_CONNECTIONS + 64)
		log_warn("open file limit is %llu: at most about that many nodes can connect (raise LimitNOFILE)",
			 (unsigned long long)rl.rlim_cur);
}

struct load_ctx {
	struct coord_server *s;
	bool failed;
};

static void load_one(const struct db_node *n, void *arg)
{
	struct load_ctx *ctx = arg;
	struct node_entry *e;
	if (node_find(&ctx->s->nodes, n->node_key))
		return;
	e = node_new(&ctx->s->nodes, n);
	if (e)
		change_list_append(&ctx->s->nodes, e);
	else
		ctx->failed = true;
}

static bool epoll_add_source(struct coord_server *s, struct source *src)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = src };
	return epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, src->fd, &ev) == 0;
}

struct coord_server *coord_server_open(const struct coord_config *cfg, struct db *db,
				       const uint8_t coord_private[WIRE_KEY_LEN], char *err, size_t err_len)
{
	struct coord_server *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	s->listener = (struct source){ SOURCE_LISTENER, -1 };
	s->stun = (struct source){ SOURCE_STUN, -1 };
	s->signal = (struct source){ SOURCE_SIGNAL, -1 };
	s->timer = (struct source){ SOURCE_TIMER, -1 };
	s->epoll_fd = -1;
	s->db = db;
	memcpy(s->coord_private, coord_private, WIRE_KEY_LEN);
	randombytes_buf(s->nodes.hash_key, sizeof(s->nodes.hash_key));

	raise_fd_limit();

	struct load_ctx lctx = { .s = s };
	(void)db_changed(db); /* start from now: what we load is current */
	if (!db_nodes_list(db, load_one, &lctx) || lctx.failed) {
		snprintf(err, err_len, "cannot load the node list from the registry");
		goto fail;
	}

	s->listener.fd = open_socket(cfg->listen_host, cfg->listen_port, SOCK_STREAM, "control", err, err_len);
	if (s->listener.fd < 0)
		goto fail;
	s->stun.fd = open_socket(cfg->stun_host, cfg->stun_port, SOCK_DGRAM, "STUN", err, err_len);
	if (s->stun.fd < 0)
		goto fail;

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR1);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ||
	    (s->signal.fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
		snprintf(err, err_len, "cannot set up signal handling: %s", strerror(errno));
		goto fail;
	}
	s->timer.fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	struct itimerspec its = {
		.it_interval = { .tv_sec = SERVER_TICK_MS / 1000, .tv_nsec = (SERVER_TICK_MS % 1000) * 1000000L },
		.it_value = { .tv_sec = SERVER_TICK_MS / 1000, .tv_nsec = (SERVER_TICK_MS % 1000) * 1000000L },
	};
	s->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (s->timer.fd < 0 || timerfd_settime(s->timer.fd, 0, &its, NULL) < 0 || s->epoll_fd < 0 ||
	    !epoll_add_source(s, &s->listener) || !epoll_add_source(s, &s->stun) || !epoll_add_source(s, &s->signal) ||
	    !epoll_add_source(s, &s->timer)) {
		snprintf(err, err_len, "cannot set up the event loop: %s", strerror(errno));
		goto fail;
	}
	return s;
fail:
	coord_server_close(s);
	return NULL;
}

int coord_server_run(struct coord_server *s)
{
	char pub_b64[KEY_BASE64_LEN + 1];
	uint8_t pub[WIRE_KEY_LEN];
	struct sockaddr_storage la, sa;
	socklen_t lal = sizeof(la), sal = sizeof(sa);
	char lbuf[ADDR_STR_MAX], sbuf[ADDR_STR_MAX];

	key_public_from_private(pub, s->coord_private);
	key_to_base64(pub_b64, pub);
	getsockname(s->listener.fd, (struct sockaddr *)&la, &lal);
	getsockname(s->stun.fd, (struct sockaddr *)&sa, &sal);
	log_info("serving: control on TCP %s, STUN on UDP %s, %zu nodes registered, public key %s",
		 sockaddr_format((struct sockaddr *)&la, lbuf, sizeof(lbuf)),
		 sockaddr_format((struct sockaddr *)&sa, sbuf, sizeof(sbuf)), s->nodes.count, pub_b64);

	while (!s->stop) {
		struct epoll_event events[SERVER_EPOLL_EVENTS];
		int n = epoll_wait(s->epoll_fd, events, SERVER_EPOLL_EVENTS, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("epoll_wait failed: %s", strerror(errno));
			return -1;
		}
		uint64_t now_ms = clock_monotonic_ms();
		s->now_ms = now_ms;
		for (int i = 0; i < n; i++) {
			struct source *src = events[i].data.ptr;
			switch (src->kind) {
			case SOURCE_LISTENER:
				on_accept(s, now_ms);
				break;
			case SOURCE_STUN:
				on_stun(s);
				break;
			case SOURCE_SIGNAL:
				on_signal(s);
				break;
			case SOURCE_TIMER:
				on_tick(s, now_ms);
				break;
			case SOURCE_CONN: {
				struct conn *c = (struct conn *)src;
				if (c->dead)
					break;
				if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
					conn_on_readable(s, c, now_ms);
				if (!c->dead && (events[i].events & EPOLLOUT))
					conn_schedule_flush(s, c);
				break;
			}
			}
		}
		/* Only here, with no event in hand, may connections be freed. */
		for (;;) {
			flush_all(s);
			if (!s->dead_head)
				break;
			reap_dead(s);
		}
		free_graveyard(s);
	}
	return 0;
}

void coord_server_close(struct coord_server *s)
{
	if (!s)
		return;
	struct conn_list *lists[] = { &s->short_list, &s->active_list };
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		while (lists[i]->head) {
			struct conn *c = lists[i]->head;
			list_remove(lists[i], c);
			conn_free(s, c);
		}
	}
	struct source *srcs[] = { &s->listener, &s->stun, &s->signal, &s->timer };
	for (size_t i = 0; i < sizeof(srcs) / sizeof(srcs[0]); i++)
		if (srcs[i]->fd >= 0)
			close(srcs[i]->fd);
	if (s->epoll_fd >= 0)
		close(s->epoll_fd);
	node_table_free(&s->nodes);
	sodium_memzero(s->coord_private, sizeof(s->coord_private));
	sodium_memzero(s->scratch, sizeof(s->scratch));
	free(s);
}

void coord_server_log_counters(const struct coord_server *s)
{
	char line[2048];
	size_t used = 0;
	size_t tombs = 0;

	for (const struct node_entry *t = s->nodes.tombs; t; t = t->tomb_next)
		tombs++;

#define SERVER_COUNTER_PRINT(name)                                                                     \
	if (used < sizeof(line))                                                                       \
		used += (size_t)snprintf(line + used, sizeof(line) - used, " %s=%" PRIu64, #name,      \
					 s->counters.name);
	SERVER_COUNTERS(SERVER_COUNTER_PRINT)
#undef SERVER_COUNTER_PRINT
	if (used < sizeof(line))
		snprintf(line + used, sizeof(line) - used, " connections=%zu sessions=%zu nodes=%zu tombstones=%zu",
			 s->n_conns, s->active_list.count, s->nodes.count, tombs);
	log_info("counters:%s", line);
}
