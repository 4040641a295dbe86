/* What a node connection says, and what the coordinator does about it: the Noise hello
 * (frame 1), then REGISTER, and on a registered session ENDPOINTS, KEEPALIVE and RELAY. Anything
 * else is counted and, where it means the node and we disagree, refused. */
#include <stdlib.h>
#include <string.h>

#include "coord/server_internal.h"
#include "core/endpoint_check.h"
#include "core/keys.h"

/* ---------------------------------------------------------------- endpoints */

/* Keeps the dialable candidates of in[0..n), at most SERVER_MAX_ENDPOINTS_PER_NODE of them
 * (the first ones and the last: meshd lists its reflexive address last). */
static size_t endpoints_filter(struct coord_server *s, const struct conn *c, const struct control_endpoint *in,
			       size_t n, struct control_endpoint out[CONTROL_MAX_ENDPOINTS])
{
	char a[ADDR_STR_MAX];
	size_t kept = 0, refused = 0;

	for (size_t i = 0; i < n && i < CONTROL_MAX_ENDPOINTS; i++) {
		if (!control_endpoint_is_dialable(&in[i])) {
			refused++;
			continue;
		}
		if (kept == SERVER_MAX_ENDPOINTS_PER_NODE) {
			out[kept - 1] = in[i]; /* the last one wins the last place */
			s->counters.endpoints_over_cap++;
			continue;
		}
		out[kept++] = in[i];
	}
	if (refused > 0) {
		s->counters.endpoints_refused += refused - 1;
		SERVER_COUNT_LOG(s, endpoints_refused,
				 "%s: node %s reported %zu candidate endpoint(s) nobody may dial (loopback, "
				 "link-local, multicast, broadcast, unspecified or port 0); dropped",
				 conn_addr(c, a, sizeof(a)), c->node ? c->node->rec.name : "(registering)", refused);
	}
	return kept;
}

/* Stores and pushes e's endpoints, unless they are what every peer has already. */
static void endpoints_apply(struct coord_server *s, struct node_entry *e, const struct control_endpoint *list,
			    size_t n, uint64_t now_ms)
{
	e->eps_applied_ms = now_ms;
	if (server_endpoints_equal(e->rec.endpoints, e->rec.n_endpoints, list, n))
		return; /* nothing changed: spare the database and every peer */
	if (!db_node_set_endpoints(s->db, e->rec.node_key, list, n))
		SERVER_COUNT_LOG(s, db_errors, "registry: cannot store endpoints of %s", e->rec.name);
	memmove(e->rec.endpoints, list, n * sizeof(e->rec.endpoints[0]));
	memset(e->rec.endpoints + n, 0, (CONTROL_MAX_ENDPOINTS - n) * sizeof(e->rec.endpoints[0]));
	e->rec.n_endpoints = n;
	s->counters.endpoint_updates++;
	nodemap_changed(s, e, true);
}

void dispatch_endpoints_forget(struct coord_server *s, struct node_entry *e)
{
	if (!e->pending_eps)
		return;
	for (struct node_entry **pp = &s->eps_due; *pp; pp = &(*pp)->eps_next) {
		if (*pp == e) {
			*pp = e->eps_next;
			break;
		}
	}
	e->eps_next = NULL;
	free(e->pending_eps);
	e->pending_eps = NULL;
	e->n_pending_eps = 0;
}

void dispatch_endpoints_due(struct coord_server *s, uint64_t now_ms)
{
	struct node_entry **pp = &s->eps_due;

	while (*pp) {
		struct node_entry *e = *pp;
		if (now_ms - e->eps_applied_ms < SERVER_ENDPOINT_INTERVAL_MS) {
			pp = &e->eps_next;
			continue;
		}
		*pp = e->eps_next;
		e->eps_next = NULL;
		struct control_endpoint *list = e->pending_eps;
		size_t n = e->n_pending_eps;
		e->pending_eps = NULL;
		e->n_pending_eps = 0;
		if (e->session) /* offline since: its next REGISTER says where it is */
			endpoints_apply(s, e, list, n, now_ms);
		free(list);
	}
}

/* At most one update per node per SERVER_ENDPOINT_INTERVAL_MS is applied; one that comes
 * sooner is held back (replacing any held before it) and applied by the tick. */
static void handle_endpoints(struct coord_server *s, struct conn *c, const struct control_message *m, uint64_t now_ms)
{
	struct node_entry *e = c->node;
	struct control_endpoint eps[CONTROL_MAX_ENDPOINTS];

	if (!e)
		return;
	size_t n = endpoints_filter(s, c, m->u.endpoints.list, m->u.endpoints.n, eps);
	if (!e->pending_eps && now_ms - e->eps_applied_ms >= SERVER_ENDPOINT_INTERVAL_MS) {
		endpoints_apply(s, e, eps, n, now_ms);
		return;
	}
	s->counters.endpoint_coalesced++;
	if (!e->pending_eps) {
		e->pending_eps = malloc(sizeof(eps));
		if (!e->pending_eps) {
			endpoints_apply(s, e, eps, n, now_ms); /* no memory to wait with */
			return;
		}
		e->eps_next = s->eps_due;
		s->eps_due = e;
	}
	memcpy(e->pending_eps, eps, n * sizeof(eps[0]));
	e->n_pending_eps = n;
}

/* ---------------------------------------------------------------- registration */

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
	case DB_REGISTER_KEY_USED_UP:
		*code = CONTROL_ERR_JOIN_KEY_USED; /* as final as a used one-time key */
		return "join key used up (it allows a limited number of nodes); create a new one with 'meshcoord authkey create'";
	case DB_REGISTER_KEY_BUSY:
		/* Not final: meshd retries on any code it does not know to be final. */
		*code = CONTROL_ERR_INTERNAL;
		return "join key is over its limit of registrations per minute; retrying later";
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

/* The registry's answer is in rec: make e the node's entry, c its session. */
static struct node_entry *register_entry(struct coord_server *s, struct conn *c, const struct db_node *rec,
					 bool *created)
{
	char a[ADDR_STR_MAX];
	struct node_entry *e = nodemap_find(&s->nodes, rec->node_key);

	*created = !e;
	if (!e) {
		e = nodemap_add(&s->nodes, rec);
		if (!e)
			return NULL;
		memcpy(e->last_hello, c->hello_timestamp, WIRE_TIMESTAMP_LEN);
		e->has_hello = true;
		s->counters.nodes_created++;
		return e;
	}
	struct conn *old = e->session;
	e->rec = *rec;
	if (old && old != c) {
		/* Newest wins: the node restarted or moved, and the old connection is either dead
		 * or about to be. Its end is not announced: the node is online. */
		s->counters.sessions_replaced++;
		log_debug("%s: node %s replaces its older session", conn_addr(c, a, sizeof(a)), rec->name);
		e->session = NULL;
		old->node = NULL;
		relay_session_end(s, e);
		/* What the old session published closes; the new one asks again (PUBLISH). */
		publish_node_offline(s, e->rec.node_key);
		conn_kill(s, old);
	}
	return e;
}

static void handle_register(struct coord_server *s, struct conn *c, const struct control_register *reg,
			    uint64_t now_ms)
{
	char a[ADDR_STR_MAX];
	char keyb64[KEY_BASE64_LEN + 1];
	struct db_node rec;

	key_to_base64(keyb64, c->ch.remote_static);
	enum db_register_result r = db_register_node(s->db, c->ch.remote_static, reg->join_secret,
						     reg->join_secret_len, reg->hostname, server_unix_now(), &rec);
	if (r != DB_REGISTER_OK) {
		enum control_error_code code;
		const char *text = register_error_text(r, &code);
		if (r == DB_REGISTER_ERROR)
			SERVER_COUNT_LOG(s, db_errors, "registry: cannot register node %s from %s", keyb64,
					 conn_addr(c, a, sizeof(a)));
		else {
			s->refused_by[r]++;
			SERVER_COUNT_LOG(s, registrations_refused, "%s: node %s refused: %s",
					 conn_addr(c, a, sizeof(a)), keyb64, text);
		}
		conn_refuse(s, c, code, text);
		return;
	}
	int64_t now = server_unix_now();
	struct control_endpoint eps[CONTROL_MAX_ENDPOINTS];
	size_t n_eps = endpoints_filter(s, c, reg->endpoints, reg->n_endpoints, eps);
	if (!server_endpoints_equal(rec.endpoints, rec.n_endpoints, eps, n_eps) &&
	    !db_node_set_endpoints(s->db, rec.node_key, eps, n_eps))
		SERVER_COUNT_LOG(s, db_errors, "registry: cannot store endpoints of %s", rec.name);
	memset(rec.endpoints, 0, sizeof(rec.endpoints));
	memcpy(rec.endpoints, eps, n_eps * sizeof(rec.endpoints[0]));
	rec.n_endpoints = n_eps;

	bool created;
	struct node_entry *e = register_entry(s, c, &rec, &created);
	if (!e) {
		log_error("out of memory adding node %s", rec.name);
		conn_refuse(s, c, CONTROL_ERR_INTERNAL, "the coordinator is out of memory; try again later");
		return;
	}
	s->counters.registrations++;
	e->session = c;
	dispatch_endpoints_forget(s, e); /* what REGISTER says is newer than anything held back */
	e->eps_applied_ms = now_ms;
	conn_release_source(s, c); /* authenticated: no longer a stranger's slot */
	if (rec.last_seen == now)
		e->last_touch_ms = now_ms; /* a new record says "seen now" already */
	else
		nodemap_touch(s, e, now_ms);

	conn_list_remove(&s->short_list, c);
	c->state = CONN_ACTIVE;
	c->node = e;
	c->deadline_ms = now_ms;
	c->cursor = s->nodes.head;
	c->cursor_routes = false;
	c->cursor_sats = false;
	c->sent_version = 0;
	c->start_version = s->nodes.version;
	c->map_done = false;
	conn_list_append(&s->active_list, c);

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
	relay_session_start(s, e, c); /* RELAY_INFO right behind REGISTERED */
	dispatch_send_dns(s, c);
	satellites_send(s, e); /* a gateway's static peers, before any map record */
	nodemap_changed(s, e, !created);
	/* Its access rules, queued before any map record (those are produced at the flush),
	 * so no peer reaches it before they are in force. After nodemap_changed: a new node
	 * is then on the list the rules are compiled from. */
	if (created)
		policy_push_nodes_changed(s); /* its name may be in other nodes' rules */
	policy_push_session(s, e);
}

void dispatch_send_dns(struct coord_server *s, struct conn *c)
{
	struct control_message m;

	if (!s->cfg.dns_domain[0])
		return; /* a server without a configuration (tests): nodes keep what they have */
	memset(&m, 0, sizeof(m));
	m.type = CONTROL_MSG_DNS;
	memcpy(m.u.dns.domain, s->cfg.dns_domain, sizeof(m.u.dns.domain));
	conn_queue_msg(s, c, &m);
}

void dispatch_message(struct coord_server *s, struct conn *c, const uint8_t *msg, size_t len, uint64_t now_ms,
		      struct frame_state *fs)
{
	char a[ADDR_STR_MAX];
	struct control_message m;
	enum control_decode_result r;

	memset(&m, 0, sizeof(m));
	r = control_decode(msg, len, &m);
	if (r == CONTROL_DECODE_UNKNOWN) {
		s->counters.msgs_unknown++;
		goto out;
	}
	if (r != CONTROL_DECODE_OK) {
		SERVER_COUNT_LOG(s, msgs_malformed, "%s: malformed message (type %u), closing",
				 conn_addr(c, a, sizeof(a)), len ? msg[0] : 0u);
		conn_refuse(s, c, CONTROL_ERR_BAD_MESSAGE, "malformed message");
		goto out;
	}
	if (c->state == CONN_REGISTER) {
		if (m.type != CONTROL_MSG_REGISTER) {
			SERVER_COUNT_LOG(s, msgs_unexpected, "%s: message type %d before REGISTER, closing",
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
		if (fs->keepalive_answered) {
			s->counters.keepalives_coalesced++; /* one answer says all a frame can ask */
			break;
		}
		fs->keepalive_answered = true;
		conn_queue_msg(s, c, &reply);
		if (c->node && now_ms - c->node->last_touch_ms >= SERVER_TOUCH_INTERVAL_MS)
			nodemap_touch(s, c->node, now_ms);
		break;
	}
	case CONTROL_MSG_ENDPOINTS:
		handle_endpoints(s, c, &m, now_ms);
		break;
	case CONTROL_MSG_RELAY:
		relay_on_control(s, c, &m.u.relay);
		break;
	case CONTROL_MSG_ROUTES:
		routes_on_message(s, c, &m.u.routes, now_ms);
		break;
	case CONTROL_MSG_PUBLISH:
		publish_on_message(s, c, &m.u.publish);
		break;
	case CONTROL_MSG_STREAM_REFUSE:
		pubstream_on_refuse(s, c, m.u.stream_refuse);
		break;
	default:
		/* REGISTER again, or a coordinator-only type: harmless, but not for us. */
		SERVER_COUNT_LOG(s, msgs_unexpected, "%s: unexpected message type %d, ignored",
				 conn_addr(c, a, sizeof(a)), (int)m.type);
		break;
	}
out:
	sodium_memzero(&m, sizeof(m)); /* a REGISTER holds the join secret */
}

/* TAI64N seconds (core/handshake.c: label 2^62 + 10 is the Unix epoch) as Unix seconds. */
static int64_t tai64n_unix_seconds(const uint8_t ts[WIRE_TIMESTAMP_LEN])
{
	uint64_t label = 0;

	for (int i = 0; i < 8; i++)
		label = label << 8 | ts[i];
	uint64_t epoch = (UINT64_C(1) << 62) + 10;
	if (label < epoch)
		return 0; /* before 1970: as stale as it gets */
	label -= epoch;
	return label > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)label;
}

/* Strategy: the cheapest refusal first. The source's hello bucket (no crypto), then reading
 * the hello (two X25519), then its age and, for a known node, its timestamp against the last
 * accepted one; only a hello that passes all of them is answered (three X25519 more). */
void dispatch_hello(struct coord_server *s, struct conn *c, const uint8_t *body, size_t len)
{
	char a[ADDR_STR_MAX];
	uint8_t welcome[CONTROL_FRAME_HEADER_LEN + CONTROL_WELCOME_LEN];
	size_t welcome_len;
	uint8_t ts[WIRE_TIMESTAMP_LEN];

	struct srclimit_entry *src = srclimit_find(&s->src_conns, &c->addr.sa);
	if (src && !srclimit_take(&s->src_conns, src, s->now_ms)) {
		SERVER_COUNT_LOG(s, hello_rate_limited, "%s: more than %d hellos a second from this address, closing",
				 conn_addr(c, a, sizeof(a)), SERVER_SRC_HELLO_RATE);
		conn_kill(s, c);
		return;
	}
	if (!control_server_read_hello(&c->ch, &s->coord_key, body, len, ts)) {
		SERVER_COUNT_LOG(s, hello_invalid, "%s: not a valid hello for this coordinator (%zu bytes), closing",
				 conn_addr(c, a, sizeof(a)), len);
		conn_kill(s, c);
		return;
	}
	int64_t now = server_unix_now(), sent = tai64n_unix_seconds(ts);
	if (sent < now - SERVER_HELLO_MAX_AGE_S) {
		char keyb64[KEY_BASE64_LEN + 1];
		key_to_base64(keyb64, c->ch.remote_static);
		SERVER_COUNT_LOG(s, hello_stale,
				 "%s: hello from node key %s is %lld s old (more than %d s): replayed, or the "
				 "node's clock is behind; closing",
				 conn_addr(c, a, sizeof(a)), keyb64, (long long)(now - sent), SERVER_HELLO_MAX_AGE_S);
		conn_kill(s, c);
		return;
	}
	struct node_entry *e = nodemap_find(&s->nodes, c->ch.remote_static);
	if (e && e->has_hello && memcmp(ts, e->last_hello, WIRE_TIMESTAMP_LEN) <= 0) {
		char keyb64[KEY_BASE64_LEN + 1];
		key_to_base64(keyb64, c->ch.remote_static);
		SERVER_COUNT_LOG(s, hello_replayed, "%s: replayed or stale hello for node %s (%s), closing",
				 conn_addr(c, a, sizeof(a)), e->rec.name, keyb64);
		conn_kill(s, c);
		return;
	}
	if (!control_server_write_welcome(&c->ch, NULL, welcome, sizeof(welcome), &welcome_len)) {
		log_error("internal error: cannot answer a hello from %s", conn_addr(c, a, sizeof(a)));
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
