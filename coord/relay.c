/* The relay: datagrams between nodes that cannot reach each other directly, through the
 * coordinator (DESIGN.md, "Paths"). The coordinator only ever forwards opaque ciphertext.
 *
 * Trust: a node's UDP source address is bound to it only by a BIND whose mac verifies under
 * the token of its current session (handed out over the encrypted control channel in
 * RELAY_INFO) and whose counter is above the last one accepted; a replayed BIND binds
 * nothing. DATA is forwarded only from a bound source of a live session, only to a
 * registered node that is online, and never grows: the key field is rewritten in place from
 * destination to sender, so the frame that leaves is the frame that came in. The sender pays
 * for every frame from its token bucket. A destination whose UDP binding is fresh gets the
 * frame over UDP, any other over its TCP session (CONTROL_MSG_RELAY), unless that session's
 * queue is already half full: relayed traffic must not get a node closed as a slow reader.
 *
 * Lifetimes: the token, the binding and the bucket live exactly as long as the node's
 * session; relay_session_end is called wherever a session stops being the node's
 * (conn_detach_session, a newer session replacing it, the node's removal). */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "coord/server_internal.h"
#include "core/ipaddr.h"
#include "core/keys.h"

static bool session_live(const struct node_entry *e)
{
	return e && e->session && !e->session->dead && e->session->state == CONN_ACTIVE && e->relay_has_token;
}

static void unbind(struct coord_server *s, struct node_entry *e)
{
	if (!e->relay_bound)
		return;
	addrmap_remove(&s->relay_addrs, &e->relay_addr_key, e);
	e->relay_bound = false;
	memset(&e->relay_addr, 0, sizeof(e->relay_addr));
	e->relay_addr_len = 0;
}

void relay_session_start(struct coord_server *s, struct node_entry *e, struct conn *c)
{
	struct control_message m;

	unbind(s, e);
	randombytes_buf(e->relay_token, RELAY_TOKEN_LEN);
	e->relay_has_token = true;
	e->relay_counter = 0;
	ratelimit_init(&e->relay_bucket, s->relay_burst, s->now_ms);

	memset(&m, 0, sizeof(m));
	m.type = CONTROL_MSG_RELAY_INFO;
	memcpy(m.u.relay_info.token, e->relay_token, RELAY_TOKEN_LEN);
	m.u.relay_info.stun_port = s->stun_port;
	m.u.relay_info.alt_stun_port = s->stun_alt_port;
	m.u.relay_info.relay_rate = s->relay_rate;
	conn_queue_msg(s, c, &m);
	sodium_memzero(&m, sizeof(m));
}

void relay_session_end(struct coord_server *s, struct node_entry *e)
{
	unbind(s, e);
	sodium_memzero(e->relay_token, sizeof(e->relay_token));
	e->relay_has_token = false;
	e->relay_counter = 0;
}

void relay_free(struct coord_server *s)
{
	addrmap_free(&s->relay_addrs);
}

/* ---------------------------------------------------------------- BIND */

static void on_bind(struct coord_server *s, const uint8_t *buf, size_t len, const union peer_addr *from,
		    socklen_t from_len)
{
	char a[ADDR_STR_MAX];
	const uint8_t *key = relay_bind_key(buf, len);
	struct addrmap_key k;
	uint64_t counter;

	if (!key || !addrmap_key_from(&k, &from->sa)) {
		SERVER_COUNT_LOG(s, relay_malformed, "relay: malformed %zu-byte BIND from %s", len,
				 sockaddr_format(&from->sa, a, sizeof(a)));
		return;
	}
	struct node_entry *e = nodemap_find(&s->nodes, key);
	if (!session_live(e)) {
		SERVER_COUNT_LOG(s, relay_bind_unknown, "relay: BIND from %s for a node that is unknown or offline",
				 sockaddr_format(&from->sa, a, sizeof(a)));
		return;
	}
	if (!relay_check_bind(buf, len, e->relay_token, &counter)) {
		SERVER_COUNT_LOG(s, relay_bind_bad_mac, "relay: BIND from %s for node %s does not verify (old token?)",
				 sockaddr_format(&from->sa, a, sizeof(a)), e->rec.name);
		return;
	}
	if (counter <= e->relay_counter) {
		SERVER_COUNT_LOG(s, relay_bind_replayed, "relay: replayed BIND for node %s from %s: not bound",
				 e->rec.name, sockaddr_format(&from->sa, a, sizeof(a)));
		return;
	}
	/* Authenticated: now the node's binding may move. */
	e->relay_counter = counter;
	if (!e->relay_bound || memcmp(&k, &e->relay_addr_key, sizeof(k)) != 0) {
		bool ok;
		unbind(s, e);
		struct node_entry *prev = addrmap_put(&s->relay_addrs, &k, e, &ok);
		if (!ok) {
			log_error("relay: out of memory binding node %s", e->rec.name);
			return;
		}
		if (prev && prev != e)
			prev->relay_bound = false; /* the address now belongs to e (a NAT reused it) */
		e->relay_addr = *from;
		e->relay_addr_len = from_len;
		e->relay_addr_key = k;
		e->relay_bound = true;
		log_debug("relay: node %s bound %s", e->rec.name, sockaddr_format(&from->sa, a, sizeof(a)));
	}
	e->relay_bound_ms = s->now_ms;
	s->counters.relay_binds++;

	uint8_t ack[RELAY_BIND_ACK_LEN];
	relay_build_bind_ack(ack, counter, e->relay_token);
	if (sendto(s->stun.fd, ack, sizeof(ack), MSG_DONTWAIT, &from->sa, from_len) < 0)
		SERVER_COUNT_LOG(s, relay_send_errors, "relay: cannot acknowledge %s's BIND: %s", e->rec.name,
				 strerror(errno));
}

/* ---------------------------------------------------------------- forwarding */

static bool binding_fresh(const struct coord_server *s, const struct node_entry *e)
{
	return e->relay_bound && s->now_ms - e->relay_bound_ms < s->relay_bind_fresh_ms;
}

/* frame holds a DATA frame for dest_key (which points into it) with payload_len bytes of
 * payload; src is the proven sender. */
static void forward(struct coord_server *s, struct node_entry *src, const uint8_t *dest_key, uint8_t *frame,
		    size_t payload_len)
{
	char keyb64[KEY_BASE64_LEN + 1];
	size_t frame_len = RELAY_DATA_HEADER_LEN + payload_len;
	struct node_entry *dst = nodemap_find(&s->nodes, dest_key);

	if (!dst) {
		key_to_base64(keyb64, dest_key);
		SERVER_COUNT_LOG(s, relay_dest_unknown, "relay: node %s sent to unknown node %s", src->rec.name, keyb64);
		return;
	}
	if (!session_live(dst)) {
		SERVER_COUNT_LOG(s, relay_dest_offline, "relay: node %s sent to %s, which is offline", src->rec.name,
				 dst->rec.name);
		return;
	}
	bool udp = binding_fresh(s, dst);
	struct conn *c = dst->session;
	if (!udp && c->wlen - c->woff > SERVER_RELAY_QUEUE_MAX) {
		SERVER_COUNT_LOG(s, relay_queue_full, "relay: %s is not reading its TCP session fast enough: dropped a frame from %s",
				 dst->rec.name, src->rec.name);
		return;
	}
	if (!ratelimit_take(&src->relay_bucket, s->relay_rate, s->relay_burst, s->now_ms, frame_len)) {
		SERVER_COUNT_LOG(s, relay_rate_limited, "relay: node %s is over its rate limit (%u bytes/s): dropping",
				 src->rec.name, (unsigned int)s->relay_rate);
		return;
	}
	if (udp) {
		/* Same size: the key field now names the sender instead of the destination. */
		size_t out_len = relay_wrap_data(frame, src->rec.node_key, payload_len);
		if (out_len == frame_len && s->udp.batching && s->udp.n_out < SERVER_STUN_BATCH) {
			/* frame is a receive buffer of this batch: it stays put until the flush */
			unsigned int i = s->udp.n_out++;
			s->udp.out_iov[i] = (struct iovec){ .iov_base = frame, .iov_len = out_len };
			s->udp.out[i].msg_hdr = (struct msghdr){ .msg_name = &dst->relay_addr.sa,
								 .msg_namelen = dst->relay_addr_len,
								 .msg_iov = &s->udp.out_iov[i],
								 .msg_iovlen = 1 };
			s->counters.relay_udp_frames++;
			s->counters.relay_bytes += payload_len;
			return;
		}
		if (out_len != frame_len ||
		    sendto(s->stun.fd, frame, out_len, MSG_DONTWAIT, &dst->relay_addr.sa, dst->relay_addr_len) < 0) {
			SERVER_COUNT_LOG(s, relay_send_errors, "relay: cannot send to %s: %s", dst->rec.name,
					 strerror(errno));
			return;
		}
		s->counters.relay_udp_frames++;
		s->counters.relay_bytes += payload_len;
		return;
	}
	struct control_message m;
	memset(&m, 0, sizeof(m));
	m.type = CONTROL_MSG_RELAY;
	memcpy(m.u.relay.node_key, src->rec.node_key, WIRE_KEY_LEN);
	m.u.relay.payload = frame + RELAY_DATA_OFF_PAYLOAD;
	m.u.relay.payload_len = payload_len;
	if (!conn_queue_msg(s, c, &m)) {
		SERVER_COUNT_LOG(s, relay_send_errors, "relay: cannot queue a frame for %s", dst->rec.name);
		return;
	}
	s->counters.relay_tcp_frames++;
	s->counters.relay_bytes += payload_len;
}

static void on_data(struct coord_server *s, uint8_t *buf, size_t len, const union peer_addr *from)
{
	char a[ADDR_STR_MAX];
	const uint8_t *key, *payload;
	size_t payload_len;
	struct addrmap_key k;

	if (!relay_parse_data(buf, len, &key, &payload, &payload_len) || !addrmap_key_from(&k, &from->sa)) {
		SERVER_COUNT_LOG(s, relay_malformed, "relay: malformed %zu-byte DATA from %s", len,
				 sockaddr_format(&from->sa, a, sizeof(a)));
		return;
	}
	struct node_entry *src = addrmap_find(&s->relay_addrs, &k);
	if (!src || !src->relay_bound || !session_live(src)) {
		SERVER_COUNT_LOG(s, relay_unbound_source, "relay: DATA from %s, which no node has bound: dropped",
				 sockaddr_format(&from->sa, a, sizeof(a)));
		return;
	}
	s->counters.relay_rx_udp_frames++;
	s->counters.relay_rx_bytes += payload_len;
	forward(s, src, key, buf, payload_len);
}

void relay_flush_udp(struct coord_server *s)
{
	unsigned int sent = 0;
	while (sent < s->udp.n_out) {
		int n = sendmmsg(s->stun.fd, s->udp.out + sent, s->udp.n_out - sent, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* A full socket buffer or an unreachable node: this frame is lost, as UDP would
			 * lose it; the rest still go. */
			SERVER_COUNT_LOG(s, relay_send_errors, "relay: cannot send a relayed frame: %s",
					 n < 0 ? strerror(errno) : "nothing sent");
			n = 1;
		}
		sent += (unsigned int)n;
	}
	s->udp.n_out = 0;
}

void relay_on_datagram(struct coord_server *s, uint8_t *buf, size_t len, const union peer_addr *from,
		       socklen_t from_len)
{
	if (len > 0 && buf[WIRE_OFF_TYPE] == MSG_RELAY_BIND)
		on_bind(s, buf, len, from, from_len);
	else
		on_data(s, buf, len, from);
}

void relay_on_control(struct coord_server *s, struct conn *c, const struct control_relay *m)
{
	struct node_entry *src = c->node;

	if (!session_live(src) || src->session != c)
		return; /* not a registered session: dispatch only calls us for one */
	/* A node relays over TCP only while its UDP to us is not acknowledged. If its last BIND
	 * is also older than its BIND interval, our UDP to it is lost as well: deliver to it
	 * over TCP from now on, instead of until relay_bind_fresh runs out. */
	if (src->relay_bound && s->now_ms - src->relay_bound_ms > SERVER_NODE_BIND_INTERVAL_MS + SERVER_TICK_MS)
		src->relay_bound_ms = s->now_ms - s->relay_bind_fresh_ms;
	s->counters.relay_rx_tcp_frames++;
	s->counters.relay_rx_bytes += m->payload_len;
	/* The same DATA frame a UDP sender would have sent, so both paths forward alike. */
	memcpy(s->relay_frame + RELAY_DATA_OFF_KEY, m->node_key, WIRE_KEY_LEN);
	memcpy(s->relay_frame + RELAY_DATA_OFF_PAYLOAD, m->payload, m->payload_len);
	forward(s, src, s->relay_frame + RELAY_DATA_OFF_KEY, s->relay_frame, m->payload_len);
}
