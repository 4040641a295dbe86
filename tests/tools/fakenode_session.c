/* fakenode's simulated nodes, one connection each: connect, hello, welcome, REGISTER,
 * REGISTERED, the netmap, then the held session, with every PEER accounted for. The raw modes'
 * connections pass through here too, only to be read and closed. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <sodium.h>

#include "core/clock.h"
#include "core/handshake.h"
#include "core/keys.h"
#include "fakenode.h"

/* ---------------------------------------------------------------- bookkeeping */

static size_t node_index(const struct run *r, const struct node *nd)
{
	return (size_t)(nd - r->nodes);
}

static uint64_t key_hash(const uint8_t key[WIRE_KEY_LEN])
{
	uint64_t h;

	/* keys are random: their first bytes are already a good hash */
	memcpy(&h, key, sizeof(h));
	return h;
}

bool fakenode_index_keys(struct run *r)
{
	size_t slots = 1;

	while (slots < r->n * 2)
		slots <<= 1;
	r->key_index = malloc(slots * sizeof(*r->key_index));
	if (!r->key_index)
		return false;
	for (size_t i = 0; i < slots; i++)
		r->key_index[i] = -1;
	r->key_index_mask = slots - 1;
	for (size_t i = 0; i < r->n; i++) {
		size_t s = (size_t)key_hash(r->nodes[i].public_key) & r->key_index_mask;

		while (r->key_index[s] >= 0)
			s = (s + 1) & r->key_index_mask;
		r->key_index[s] = (int32_t)i;
	}
	return true;
}

static long key_lookup(const struct run *r, const uint8_t key[WIRE_KEY_LEN])
{
	size_t s = (size_t)key_hash(key) & r->key_index_mask;

	/* the table is at most half full, so an empty slot ends every search */
	while (r->key_index[s] >= 0) {
		if (memcmp(r->nodes[r->key_index[s]].public_key, key, WIRE_KEY_LEN) == 0)
			return r->key_index[s];
		s = (s + 1) & r->key_index_mask;
	}
	return -1;
}

static bool node_in_handshake(const struct node *nd)
{
	return nd->state == NODE_CONNECTING || nd->state == NODE_HELLO_SENT || nd->state == NODE_REGISTERING;
}

void fakenode_close(struct run *r, struct node *nd)
{
	if (nd->fd >= 0) {
		epoll_ctl(r->epfd, EPOLL_CTL_DEL, nd->fd, NULL);
		close(nd->fd);
		nd->fd = -1;
	}
	if (node_in_handshake(nd) && r->pending > 0)
		r->pending--;
	if (nd->state == NODE_READY && r->ready > 0)
		r->ready--;
	nd->t_closed_ms = fakenode_now_ms();
	free(nd->carry);
	nd->carry = NULL;
	nd->carry_len = 0;
	control_channel_clear(&nd->ch);
	nd->state = NODE_DONE;
}

void fakenode_fail(struct run *r, struct node *nd, enum fail_reason why)
{
	if (nd->state == NODE_DONE)
		return;
	if (nd->registered) {
		/* counted as registered; it just did not last */
		r->closed_after_registration++;
		r->fail_counts[FAIL_CLOSED_AFTER_REGISTERED]++;
	} else {
		nd->failed = true;
		r->failed++;
		r->fail_counts[why]++;
	}
	fakenode_close(r, nd);
}

static void epoll_update(struct run *r, struct node *nd)
{
	struct epoll_event ev = { .events = EPOLLIN | (nd->want_out ? EPOLLOUT : 0), .data.ptr = nd };

	epoll_ctl(r->epfd, EPOLL_CTL_MOD, nd->fd, &ev);
}

/* Sends what is queued; keeps the rest for EPOLLOUT. False: the connection is gone. */
static bool node_flush(struct run *r, struct node *nd)
{
	while (nd->wlen > 0) {
		ssize_t w = send(nd->fd, nd->wbuf, nd->wlen, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (w <= 0)
			return false;
		memmove(nd->wbuf, nd->wbuf + w, nd->wlen - (size_t)w);
		nd->wlen -= (size_t)w;
	}
	bool want = nd->wlen > 0;

	if (want != nd->want_out) {
		nd->want_out = want;
		epoll_update(r, nd);
	}
	return true;
}

static bool node_queue(struct node *nd, const uint8_t *data, size_t len)
{
	if (len > sizeof(nd->wbuf) - nd->wlen)
		return false;
	memcpy(nd->wbuf + nd->wlen, data, len);
	nd->wlen += len;
	return true;
}

static bool node_send_message(struct run *r, struct node *nd, const struct control_message *m)
{
	uint8_t frame[CONTROL_FRAME_HEADER_LEN + CONTROL_MAX_FRAME];
	size_t frame_len;

	/* one record per frame, as meshd sends */
	if (!control_seal_message(&nd->ch, m, frame, sizeof(frame), &frame_len) || !node_queue(nd, frame, frame_len))
		return false;
	nd->t_last_tx_ms = fakenode_now_ms();
	return node_flush(r, nd);
}

/* Each fake node reports one candidate endpoint in TEST-NET-3: distinct per node, never sent
 * to (fakenode speaks no UDP, and meshd nodes in the lab have no route there). */
static void fake_endpoint(size_t i, struct control_endpoint *ep)
{
	memset(ep, 0, sizeof(*ep));
	ep->family = 4;
	ep->addr[0] = 203;
	ep->addr[1] = 0;
	ep->addr[2] = 113;
	ep->addr[3] = (uint8_t)(1 + i % 250);
	ep->port = (uint16_t)(20000 + i / 250);
}

static bool endpoint_equal(const struct control_endpoint *a, const struct control_endpoint *b)
{
	size_t alen = a->family == 6 ? 16 : 4;

	return a->family == b->family && a->port == b->port && memcmp(a->addr, b->addr, alen) == 0;
}

/* ---------------------------------------------------------------- node state machine */

static bool hello_dump(const char *path, const uint8_t *frame, size_t len)
{
	FILE *f = fopen(path, "wb");
	bool ok = f && fwrite(frame, 1, len, f) == len;

	if (f && fclose(f) != 0)
		ok = false;
	if (!ok)
		fprintf(stderr, "fakenode: --dump-hello %s: %s\n", path, strerror(errno));
	return ok;
}

static void node_connected(struct run *r, struct node *nd)
{
	int err = 0;
	socklen_t elen = sizeof(err);
	uint8_t stamp[WIRE_TIMESTAMP_LEN];
	uint8_t frame[CONTROL_FRAME_HEADER_LEN + CONTROL_HELLO_LEN];
	size_t frame_len;

	if (getsockopt(nd->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0 || err != 0) {
		if (r->fail_counts[FAIL_CONNECT] == 0)
			fprintf(stderr, "fakenode: connect to %s: %s\n", r->target_text, strerror(err ? err : errno));
		fakenode_fail(r, nd, FAIL_CONNECT);
		return;
	}
	if (r->opt.raw_file || r->opt.half_open) {
		nd->state = NODE_HELLO_SENT; /* waiting for the coordinator to end it */
		if (!node_flush(r, nd))
			fakenode_fail(r, nd, FAIL_SEND);
		return;
	}
	handshake_tai64n(stamp, clock_realtime());
	if (!control_client_hello(&nd->ch, nd->private_key, r->coord_public, stamp, NULL, frame, sizeof(frame),
				  &frame_len)) {
		fprintf(stderr, "fakenode: control_client_hello failed\n");
		fakenode_fail(r, nd, FAIL_SEND);
		return;
	}
	if (r->opt.dump_hello && node_index(r, nd) == 0 && !hello_dump(r->opt.dump_hello, frame, frame_len))
		fakenode_stop_requested = 1;
	nd->state = NODE_HELLO_SENT;
	if (!node_queue(nd, frame, frame_len) || !node_flush(r, nd))
		fakenode_fail(r, nd, FAIL_SEND);
}

static void node_on_welcome(struct run *r, struct node *nd, const uint8_t *body, size_t len)
{
	struct control_message m;
	size_t i = node_index(r, nd);

	if (!control_client_finish(&nd->ch, body, len)) {
		fakenode_fail(r, nd, FAIL_BAD_WELCOME);
		return;
	}
	if (r->opt.forge) {
		/* a transport frame nobody sealed: as long as a REGISTER, contents random */
		uint8_t frame[CONTROL_FRAME_HEADER_LEN + 64];

		randombytes_buf(frame, sizeof(frame));
		frame[0] = 0;
		frame[1] = (uint8_t)(sizeof(frame) - CONTROL_FRAME_HEADER_LEN);
		nd->state = NODE_REGISTERING;
		if (!node_queue(nd, frame, sizeof(frame)) || !node_flush(r, nd))
			fakenode_fail(r, nd, FAIL_SEND);
		return;
	}
	memset(&m, 0, sizeof(m));
	m.type = CONTROL_MSG_REGISTER;
	snprintf(m.u.reg.hostname, sizeof(m.u.reg.hostname), "%s-%zu", r->opt.hostname_prefix, i);
	switch (r->opt.secret) {
	case SECRET_KEY:
		memcpy(m.u.reg.join_secret, r->jk.secret, JOINKEY_SECRET_LEN);
		m.u.reg.join_secret_len = JOINKEY_SECRET_LEN;
		break;
	case SECRET_WRONG:
		randombytes_buf(m.u.reg.join_secret, JOINKEY_SECRET_LEN);
		m.u.reg.join_secret_len = JOINKEY_SECRET_LEN;
		break;
	case SECRET_NONE:
		m.u.reg.join_secret_len = 0;
		break;
	}
	fake_endpoint(i, &m.u.reg.endpoints[0]);
	m.u.reg.n_endpoints = 1;
	nd->state = NODE_REGISTERING;
	bool ok = node_send_message(r, nd, &m);

	sodium_memzero(&m, sizeof(m));
	if (!ok)
		fakenode_fail(r, nd, FAIL_SEND);
}

static void node_on_registered(struct run *r, struct node *nd, const struct control_registered *reg)
{
	char ip[INET_ADDRSTRLEN] = "?";
	char key[KEY_BASE64_LEN + 1];

	nd->registered = true;
	nd->t_registered_ms = fakenode_now_ms();
	snprintf(nd->name, sizeof(nd->name), "%s", reg->name);
	memcpy(nd->ipv4, reg->ipv4, sizeof(nd->ipv4));
	nd->state = NODE_NETMAP;
	if (r->pending > 0)
		r->pending--;
	r->registered++;
	r->t_last_registered_ms = nd->t_registered_ms;
	if (r->opt.print_registered) {
		inet_ntop(AF_INET, reg->ipv4, ip, sizeof(ip));
		key_to_base64(key, nd->public_key);
		/* line-buffered: a test that kills the coordinator mid-run sees every line printed */
		printf("registered %s %s %s\n", nd->name, ip, key);
		fflush(stdout);
	}
}

static void node_check_converged(struct run *r, struct node *nd)
{
	if (nd->converged || nd->peers_known != r->n - 1)
		return;
	nd->converged = true;
	r->converged++;
	if (r->converged == r->n - r->failed && r->t_converged_ms == 0)
		r->t_converged_ms = fakenode_now_ms();
}

static void node_on_peer(struct run *r, struct node *nd, const struct control_peer *p)
{
	size_t self = node_index(r, nd);
	long other = key_lookup(r, p->node_key);

	r->peer_msgs++;
	r->t_last_peer_ms = fakenode_now_ms();
	if (other < 0) {
		r->foreign_peers++;
		return;
	}
	if ((size_t)other == self)
		return;
	uint64_t *row = r->known + self * r->known_words;
	uint64_t bit = UINT64_C(1) << ((size_t)other % 64);

	if (!(row[(size_t)other / 64] & bit)) {
		row[(size_t)other / 64] |= bit;
		nd->peers_known++;
		node_check_converged(r, nd);
	}
	if (r->prop_sent && !nd->saw_propagation && (size_t)other == 0) {
		for (size_t e = 0; e < p->n_endpoints; e++) {
			if (endpoint_equal(&p->endpoints[e], &r->prop_endpoint)) {
				nd->saw_propagation = true;
				r->prop_seen++;
				break;
			}
		}
	}
}

static void node_on_message(struct run *r, struct node *nd, const uint8_t *plain, size_t len)
{
	struct control_message m;
	enum control_decode_result res = control_decode(plain, len, &m);

	if (res == CONTROL_DECODE_UNKNOWN)
		return;
	if (res != CONTROL_DECODE_OK) {
		fakenode_fail(r, nd, FAIL_MALFORMED);
		return;
	}
	switch (m.type) {
	case CONTROL_MSG_REGISTERED:
		if (nd->state != NODE_REGISTERING) {
			fakenode_fail(r, nd, FAIL_MALFORMED);
			return;
		}
		node_on_registered(r, nd, &m.u.registered);
		break;
	case CONTROL_MSG_ERROR:
		r->error_codes[m.u.error.code <= CONTROL_ERR_INTERNAL ? m.u.error.code : CONTROL_ERR_INTERNAL + 1]++;
		snprintf(r->last_error_text, sizeof(r->last_error_text), "%s", m.u.error.text);
		fakenode_fail(r, nd, FAIL_ERROR_MESSAGE);
		break;
	case CONTROL_MSG_PEER:
		if (nd->registered)
			node_on_peer(r, nd, &m.u.peer);
		break;
	case CONTROL_MSG_NETMAP_END:
		if (nd->state == NODE_NETMAP) {
			nd->state = NODE_READY;
			r->ready++;
			nd->t_netmap_ms = fakenode_now_ms();
			/* real nodes are not in step: spread the keepalives over the period, so any
			 * window of an idle measurement carries its share of them */
			nd->t_last_tx_ms = nd->t_netmap_ms - randombytes_uniform(FAKENODE_KEEPALIVE_MS);
			if (nd->t_netmap_ms - nd->t_registered_ms > r->netmap_max_ms)
				r->netmap_max_ms = nd->t_netmap_ms - nd->t_registered_ms;
			r->netmaps++;
			/* a lone node knows everyone as soon as its (empty) map is complete */
			node_check_converged(r, nd);
			if (r->netmaps + r->failed == r->n)
				r->t_all_netmaps_ms = nd->t_netmap_ms;
		}
		break;
	default:
		/* PEER_REMOVE, KEEPALIVE and anything newer: nothing to account for */
		break;
	}
}

static void node_on_frame(struct run *r, struct node *nd, const uint8_t *body, size_t len)
{
	uint8_t plain[CONTROL_MAX_FRAME];
	size_t plain_len, msg_len, off = 0;
	const uint8_t *msg;
	int got;

	r->frames_in++;
	if (nd->state == NODE_HELLO_SENT) {
		node_on_welcome(r, nd, body, len);
		return;
	}
	if (!control_open(&nd->ch, body, len, plain, sizeof(plain), &plain_len)) {
		fakenode_fail(r, nd, FAIL_DECRYPT);
		return;
	}
	while (nd->state != NODE_DONE && (got = control_record_next(plain, plain_len, &off, &msg, &msg_len)) != 0) {
		if (got < 0) {
			fakenode_fail(r, nd, FAIL_MALFORMED);
			return;
		}
		node_on_message(r, nd, msg, msg_len);
	}
}

/* Why a connection closed, from where it was in the exchange. */
static enum fail_reason close_reason(const struct node *nd)
{
	return nd->state == NODE_HELLO_SENT ? FAIL_CLOSED_BEFORE_WELCOME : FAIL_CLOSED_BEFORE_REGISTERED;
}

static void node_readable(struct run *r, struct node *nd)
{
	uint8_t *buf = r->rbuf;

	for (int reads = 0; reads < FAKENODE_READS_PER_EVENT && nd->state != NODE_DONE; reads++) {
		size_t have = nd->carry_len;
		ssize_t got;

		if (have)
			memcpy(buf, nd->carry, have);
		got = recv(nd->fd, buf + have, FAKENODE_READ_CHUNK, 0);
		if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (got <= 0) {
			nd->closed_by_server = true;
			fakenode_fail(r, nd, close_reason(nd));
			return;
		}
		if (r->opt.raw_file || r->opt.half_open) {
			nd->rx_bytes += (uint32_t)got;
			nd->carry_len = 0;
			if (r->opt.raw_hangup) { /* the answer is in: on to the next connection */
				fakenode_close(r, nd);
				return;
			}
			continue;
		}
		have += (size_t)got;

		size_t off = 0;
		while (nd->state != NODE_DONE) {
			const uint8_t *body;
			size_t body_len, consumed;
			int f = control_frame_next(buf + off, have - off, &body, &body_len, &consumed);

			if (f == 0)
				break;
			if (f < 0) {
				fakenode_fail(r, nd, FAIL_BAD_FRAME);
				return;
			}
			node_on_frame(r, nd, body, body_len);
			off += consumed;
		}
		if (nd->state == NODE_DONE)
			return;
		nd->carry_len = have - off;
		if (nd->carry_len) {
			if (!nd->carry) {
				nd->carry = malloc(CONTROL_FRAME_HEADER_LEN + CONTROL_MAX_FRAME);
				if (!nd->carry) {
					fakenode_fail(r, nd, FAIL_SEND);
					return;
				}
			}
			memcpy(nd->carry, buf + off, nd->carry_len);
		}
		if ((size_t)got < FAKENODE_READ_CHUNK)
			return; /* drained */
	}
}

void fakenode_start(struct run *r, struct node *nd, const uint8_t *raw, size_t raw_len)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = nd };
	int one = 1;

	r->started++;
	r->pending++;
	nd->state = NODE_CONNECTING;
	nd->t_connect_ms = fakenode_now_ms();
	nd->fd = socket(r->target.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (nd->fd < 0) {
		fprintf(stderr, "fakenode: socket: %s\n", strerror(errno));
		fakenode_fail(r, nd, FAIL_CONNECT);
		return;
	}
	/* small frames, latency measured: no Nagle delay */
	setsockopt(nd->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* Many nodes from one machine look like one host to meshcoord's per-source limits; on
	 * loopback, each can have an address of its own (all of 127/8 is ours). */
	const struct sockaddr_in *to4 = (const struct sockaddr_in *)&r->target;
	if (r->opt.spread_sources && r->target.ss_family == AF_INET && (ntohl(to4->sin_addr.s_addr) >> 24) == 127) {
		uint32_t i = (uint32_t)(nd - r->nodes);
		struct sockaddr_in from = { .sin_family = AF_INET,
					    .sin_addr.s_addr = htonl(0x7f010001u + i) }; /* 127.1.0.1 + i */
		if (bind(nd->fd, (const struct sockaddr *)&from, sizeof(from)) != 0) {
			fprintf(stderr, "fakenode: bind to a loopback source: %s\n", strerror(errno));
			fakenode_fail(r, nd, FAIL_CONNECT);
			return;
		}
	}
	if (raw_len && !node_queue(nd, raw, raw_len)) {
		fakenode_fail(r, nd, FAIL_SEND);
		return;
	}
	if (connect(nd->fd, (const struct sockaddr *)&r->target, r->target_len) < 0 && errno != EINPROGRESS) {
		if (r->fail_counts[FAIL_CONNECT] == 0)
			fprintf(stderr, "fakenode: connect to %s: %s\n", r->target_text, strerror(errno));
		close(nd->fd);
		nd->fd = -1;
		fakenode_fail(r, nd, FAIL_CONNECT);
		return;
	}
	nd->want_out = true;
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, nd->fd, &ev) < 0) {
		fprintf(stderr, "fakenode: epoll_ctl: %s\n", strerror(errno));
		fakenode_fail(r, nd, FAIL_CONNECT);
	}
}

void fakenode_event(struct run *r, struct node *nd, uint32_t events)
{
	if (nd->state == NODE_CONNECTING) {
		if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			node_connected(r, nd);
		return;
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		node_readable(r, nd);
	if (nd->state != NODE_DONE && (events & EPOLLOUT) && !node_flush(r, nd))
		fakenode_fail(r, nd, FAIL_SEND);
}

void fakenode_send_keepalives(struct run *r, uint64_t now)
{
	struct control_message m = { .type = CONTROL_MSG_KEEPALIVE };

	/* a scan of every session: once a second is plenty for a 25 s period */
	if (now < r->next_keepalive_check_ms)
		return;
	r->next_keepalive_check_ms = now + 1000;
	for (size_t i = 0; i < r->n; i++) {
		struct node *nd = &r->nodes[i];

		if ((nd->state == NODE_READY || nd->state == NODE_NETMAP) && now - nd->t_last_tx_ms >= FAKENODE_KEEPALIVE_MS &&
		    !node_send_message(r, nd, &m))
			fakenode_fail(r, nd, FAIL_SEND);
	}
}

/* Node 0 announces a new endpoint; every other live node must hear of it. */
void fakenode_propagation_start(struct run *r)
{
	struct node *nd = &r->nodes[0];
	struct control_message m;

	memset(&m, 0, sizeof(m));
	m.type = CONTROL_MSG_ENDPOINTS;
	r->prop_endpoint.family = 4;
	r->prop_endpoint.addr[0] = 198;
	r->prop_endpoint.addr[1] = 51;
	r->prop_endpoint.addr[2] = 100;
	r->prop_endpoint.addr[3] = 200;
	/* a port no registration used: the change is unmistakable */
	r->prop_endpoint.port = (uint16_t)(40000 + randombytes_uniform(20000));
	m.u.endpoints.list[0] = r->prop_endpoint;
	fake_endpoint(0, &m.u.endpoints.list[1]);
	m.u.endpoints.n = 2;
	r->prop_sent = true;
	r->t_prop_sent_ms = fakenode_now_ms();
	if (!node_send_message(r, nd, &m)) {
		fprintf(stderr, "fakenode: could not send the endpoint change\n");
		fakenode_fail(r, nd, FAIL_SEND);
	}
}


/* One storm frame: records alternate between two endpoint lists (every one a change), with a
 * KEEPALIVE between them under --storm-keepalive, up to --storm-records or a full frame. */
static bool storm_seal(struct run *r, struct node *nd)
{
	uint8_t plain[CONTROL_MAX_PLAIN];
	size_t used = 0;
	long n = 0;

	while (n < r->opt.storm_records) {
		struct control_message m;

		memset(&m, 0, sizeof(m));
		if (r->opt.storm_keepalive && n % 2 == 1) {
			m.type = CONTROL_MSG_KEEPALIVE;
		} else {
			m.type = CONTROL_MSG_ENDPOINTS;
			m.u.endpoints.list[0].family = 4;
			memcpy(m.u.endpoints.list[0].addr, (const uint8_t[]){ 198, 51, 100, 77 }, 4);
			/* every ENDPOINTS a change from the one before, and from the one a second ago */
			r->storm_port = (uint16_t)(r->storm_port % 10000 + 1);
			m.u.endpoints.list[0].port = (uint16_t)(20000 + r->storm_port);
			m.u.endpoints.n = 1;
		}
		if (!control_record_append(plain, sizeof(plain), &used, &m))
			break;
		n++;
	}
	bool ok = n > 0 && control_seal(&nd->ch, plain, used, r->storm_buf, sizeof(r->storm_buf), &r->storm_len);
	r->storm_off = 0;
	if (ok) {
		r->storm_frames++;
		r->storm_records_sent += (uint64_t)n;
	}
	return ok;
}

bool fakenode_storm(struct run *r, uint64_t now)
{
	struct node *nd = &r->nodes[0];

	if (r->opt.storm_s == 0 || r->storm_done)
		return false;
	if (!r->storm_started) {
		if (nd->state != NODE_READY || nd->wlen > 0)
			return false;
		r->storm_started = true;
		r->storm_end_ms = now + (uint64_t)r->opt.storm_s * 1000;
	}
	if (nd->state != NODE_READY || (now >= r->storm_end_ms && r->storm_off == r->storm_len)) {
		r->storm_done = true;
		return false;
	}
	/* A bounded burst per loop turn, so the node still reads what the coordinator says. */
	for (int i = 0; i < 64; i++) {
		if (r->storm_off == r->storm_len) {
			if (now >= r->storm_end_ms)
				break;
			if (!storm_seal(r, nd)) {
				fakenode_fail(r, nd, FAIL_SEND);
				r->storm_done = true;
				return false;
			}
		}
		ssize_t w = send(nd->fd, r->storm_buf + r->storm_off, r->storm_len - r->storm_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			break;
		if (w <= 0) {
			fakenode_fail(r, nd, FAIL_SEND);
			r->storm_done = true;
			return false;
		}
		r->storm_off += (size_t)w;
	}
	nd->t_last_tx_ms = now; /* no keepalive of its own may cut into a storm frame */
	return true;
}
