/* The node's side of publishing (publish.h). */
#include "meshd/publish.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/ipc.h"
#include "core/log.h"
#include "core/pubwire.h"
#include "core/splice.h"
#include "meshd/config.h"
#include "meshd/coordclient.h"
#include "meshd/device.h"

enum {
	/* PROXY protocol v2 (haproxy's proxy-protocol.txt, section 2.2): the signature, then
	 * version 2 + PROXY command, then family + transport, then the address block length. */
	PROXY_SIG_LEN = 12,
	PROXY_VERSION_PROXY = 0x21,
	PROXY_TCP4 = 0x11,
	PROXY_TCP6 = 0x21,
	PROXY_ADDR4_LEN = 4 + 4 + 2 + 2,
	PROXY_ADDR6_LEN = 16 + 16 + 2 + 2,
	PROXY_HEADER_MAX = PROXY_SIG_LEN + 4 + PROXY_ADDR6_LEN,
};
static const uint8_t proxy_sig[PROXY_SIG_LEN] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
						  0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };

struct pn_service {
	struct config_publish cfg;
	uint8_t state; /* the coordinator's last answer; 0: none yet */
	size_t active;
	uint64_t total, bytes_up, bytes_down, failed;
};

struct pn_stream {
	struct splice sp;
	uint64_t id;
	size_t svc;
	struct control_endpoint client;
	uint32_t plain_ev, sealed_ev;
	uint64_t created_ms, active_ms;
	bool started; /* its sockets exist (else it waits for a dial slot) */
	bool counted_dial;
	struct pn_stream *prev, *next;
};

struct pubnode {
	struct pn_service svc[CONFIG_MAX_PUBLISH];
	size_t n_svc;
	bool sent; /* a PUBLISH went out in this registration (an empty one must follow a removal) */
	struct pn_stream *streams, *tail;
	size_t n_streams, dials;
	bool starting; /* start_waiting is running (it is not reentrant) */
	struct pn_stream **by_fd; /* descriptor -> stream, for the loop's dispatch */
	size_t by_fd_cap;
	uint64_t next_tick_ms;
};

static const char *proto_name(uint8_t p)
{
	return p == CONTROL_PROTO_UDP ? "udp" : "tcp";
}

static const char *state_text(uint8_t st)
{
	switch (st) {
	case CONTROL_PUBLISH_OPEN:
		return "published";
	case CONTROL_PUBLISH_NOT_GRANTED:
		return "not-granted";
	case CONTROL_PUBLISH_DISABLED:
		return "coordinator-off";
	case CONTROL_PUBLISH_OUT_OF_RANGE:
		return "out-of-range";
	case CONTROL_PUBLISH_BIND_FAILED:
		return "port-busy";
	default:
		return "waiting";
	}
}

/* ---------------------------------------------------------------- descriptors */

static bool fd_map(struct pubnode *pn, int fd, struct pn_stream *st)
{
	if (fd < 0)
		return false;
	if ((size_t)fd >= pn->by_fd_cap) {
		size_t cap = pn->by_fd_cap ? pn->by_fd_cap : 64;
		while (cap <= (size_t)fd)
			cap *= 2;
		struct pn_stream **p = realloc(pn->by_fd, cap * sizeof(*p));
		if (!p)
			return false;
		memset(p + pn->by_fd_cap, 0, (cap - pn->by_fd_cap) * sizeof(*p));
		pn->by_fd = p;
		pn->by_fd_cap = cap;
	}
	pn->by_fd[fd] = st;
	return true;
}

static void fd_close(struct device *dev, struct pubnode *pn, int fd, bool reset)
{
	if (fd < 0)
		return;
	if (reset) {
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	}
	device_watch_fd(dev, fd, 0);
	if ((size_t)fd < pn->by_fd_cap)
		pn->by_fd[fd] = NULL;
	close(fd);
}

/* ---------------------------------------------------------------- streams */

static void start_waiting(struct device *dev, struct pubnode *pn, uint64_t now_ms);

static void stream_end(struct device *dev, struct pubnode *pn, struct pn_stream *st, bool failed, uint64_t now_ms)
{
	struct pn_service *v = &pn->svc[st->svc];

	if (failed) {
		v->failed++;
		log_debug("publish %s: stream %016" PRIx64 ": %s", v->cfg.name, st->id, st->sp.why ? st->sp.why : "closed");
		/* the coordinator resets its client now instead of waiting for a work connection */
		struct control_message m = { .type = CONTROL_MSG_STREAM_REFUSE };
		m.u.stream_refuse = st->id;
		coordclient_send(dev, &m, now_ms);
	}
	if (st->counted_dial)
		pn->dials--;
	fd_close(dev, pn, st->sp.plain_fd, failed);
	fd_close(dev, pn, st->sp.sealed_fd, false);
	v->active--;
	v->bytes_up += st->sp.bytes_up;
	v->bytes_down += st->sp.bytes_down;
	if (st->prev)
		st->prev->next = st->next;
	else
		pn->streams = st->next;
	if (st->next)
		st->next->prev = st->prev;
	else
		pn->tail = st->prev;
	pn->n_streams--;
	splice_free(&st->sp);
	free(st);
	start_waiting(dev, pn, now_ms);
}

/* epoll follows what the side needs (0 takes it out of the set until it needs something). */
static void watch(struct device *dev, int fd, uint32_t *registered, uint32_t want)
{
	if (fd < 0 || *registered == want)
		return;
	if (device_watch_fd(dev, fd, want))
		*registered = want;
}

/* Pumps st; closes it when done or broken. Returns false if st is gone. */
static bool stream_run(struct device *dev, struct pubnode *pn, struct pn_stream *st, uint64_t now_ms)
{
	splice_pump(&st->sp);
	if (st->sp.moved) {
		st->active_ms = now_ms;
		st->sp.moved = false;
	}
	/* A UDP flow ends when the coordinator forgets it (udp_timeout): its work connection
	 * closes, which is no failure. */
	bool flow_over = st->sp.kind == SPLICE_PLAIN_DGRAM && st->sp.sealed_closed;
	if (st->sp.failed || splice_done(&st->sp)) {
		stream_end(dev, pn, st, st->sp.failed && !flow_over, now_ms);
		return false;
	}
	watch(dev, st->sp.plain_fd, &st->plain_ev, splice_plain_events(&st->sp));
	watch(dev, st->sp.sealed_fd, &st->sealed_ev, splice_sealed_events(&st->sp));
	return true;
}

static bool sockaddr_of(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		*len = sizeof(*in);
		return true;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*len = sizeof(*in6);
		return true;
	}
	return false;
}

static int dial(const struct sockaddr_storage *ss, socklen_t len, int type, bool *connecting)
{
	int fd = socket(ss->ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (type == SOCK_STREAM) {
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	*connecting = false;
	if (connect(fd, (const struct sockaddr *)ss, len) < 0) {
		if (errno != EINPROGRESS) {
			close(fd);
			return -1;
		}
		*connecting = true;
	}
	return fd;
}

/* The PROXY v2 header for a client of st's service (TCP only): who connected, to which
 * public port of the coordinator. */
static size_t proxy_header(const struct pn_stream *st, const struct pn_service *v, const struct sockaddr_storage *coord,
			   uint8_t out[PROXY_HEADER_MAX])
{
	size_t n = 0;
	bool v6 = st->client.family == 6;
	uint8_t dst[16] = { 0 };

	if (coord->ss_family == AF_INET6 && v6)
		memcpy(dst, &((const struct sockaddr_in6 *)coord)->sin6_addr, 16);
	else if (coord->ss_family == AF_INET && !v6)
		memcpy(dst, &((const struct sockaddr_in *)coord)->sin_addr, 4);
	memcpy(out, proxy_sig, PROXY_SIG_LEN);
	n = PROXY_SIG_LEN;
	out[n++] = PROXY_VERSION_PROXY;
	out[n++] = v6 ? PROXY_TCP6 : PROXY_TCP4;
	size_t alen = v6 ? PROXY_ADDR6_LEN : PROXY_ADDR4_LEN, ip = v6 ? 16 : 4;
	out[n++] = (uint8_t)(alen >> 8);
	out[n++] = (uint8_t)alen;
	memcpy(out + n, st->client.addr, ip);
	n += ip;
	memcpy(out + n, dst, ip);
	n += ip;
	out[n++] = (uint8_t)(st->client.port >> 8);
	out[n++] = (uint8_t)st->client.port;
	out[n++] = (uint8_t)(v->cfg.public_port >> 8);
	out[n++] = (uint8_t)v->cfg.public_port;
	return n;
}

/* Opens st's two sockets: the local service and the work connection (preamble and ATTACH
 * queued ahead of anything the local side says). */
static void stream_start(struct device *dev, struct pubnode *pn, struct pn_stream *st, uint64_t now_ms)
{
	struct pn_service *v = &pn->svc[st->svc];
	struct sockaddr_storage local, coord;
	socklen_t local_len, coord_len;
	const char *host;
	uint16_t port;
	bool udp = v->cfg.proto == CONTROL_PROTO_UDP;
	uint8_t pre[PUBWIRE_PREAMBLE_FRAME_LEN];

	st->started = true;
	st->created_ms = st->active_ms = now_ms;
	if (!coordclient_address(dev, &coord, &coord_len, &host, &port) ||
	    !sockaddr_of(v->cfg.local_host, v->cfg.local_port, &local, &local_len)) {
		st->sp.failed = true;
		st->sp.why = "no coordinator address";
		stream_run(dev, pn, st, now_ms);
		return;
	}
	st->sp.plain_fd = dial(&local, local_len, udp ? SOCK_DGRAM : SOCK_STREAM, &st->sp.plain_connecting);
	st->sp.sealed_fd = dial(&coord, coord_len, SOCK_STREAM, &st->sp.sealed_connecting);
	if (st->sp.plain_fd < 0 || st->sp.sealed_fd < 0 || !fd_map(pn, st->sp.plain_fd, st) ||
	    !fd_map(pn, st->sp.sealed_fd, st)) {
		log_warn("publish %s: cannot connect to %s:%u (%s); the client is turned away", v->cfg.name,
			 v->cfg.local_host, (unsigned int)v->cfg.local_port, strerror(errno));
		st->sp.failed = true;
		st->sp.why = "cannot dial";
		stream_run(dev, pn, st, now_ms);
		return;
	}
	st->counted_dial = true;
	pn->dials++;
	pubwire_preamble_write(st->id, pre);
	uint8_t hdr[PROXY_HEADER_MAX];
	if (!splice_queue_sealed_raw(&st->sp, pre, sizeof(pre)) || !splice_queue_sealed(&st->sp, PUBWIRE_ATTACH, NULL, 0) ||
	    (v->cfg.proxy_protocol && !splice_queue_plain(&st->sp, hdr, proxy_header(st, v, &coord, hdr)))) {
		st->sp.failed = true;
		st->sp.why = "out of memory";
	}
	stream_run(dev, pn, st, now_ms);
}

/* Starts waiting streams while dial slots are free. Not reentrant: a start that fails at
 * once ends its stream, and stream_end calls back here; that inner call returns and this
 * loop, which looks from the head again after every start, carries on (a nested walk would
 * free the stream an outer one holds, and nest once per failing stream). */
static void start_waiting(struct device *dev, struct pubnode *pn, uint64_t now_ms)
{
	if (pn->starting)
		return;
	pn->starting = true;
	while (pn->dials < PUBLISH_DIALS_MAX) {
		struct pn_stream *st = pn->streams;
		while (st && st->started)
			st = st->next;
		if (!st)
			break;
		if (now_ms - st->created_ms > PUBLISH_QUEUE_MAX_MS) {
			/* The coordinator has given up on it by now: no dial, no local connection. */
			st->started = true;
			st->sp.failed = true;
			st->sp.why = "waited too long for a dial slot";
			stream_run(dev, pn, st, now_ms);
			continue;
		}
		stream_start(dev, pn, st, now_ms); /* marks it started, or ends it */
	}
	pn->starting = false;
}

void publish_on_stream_open(struct device *dev, const struct control_stream_open *m, uint64_t now_ms)
{
	struct pubnode *pn = dev->pub;
	size_t i = 0;

	while (pn && i < pn->n_svc && !(pn->svc[i].cfg.proto == m->proto && pn->svc[i].cfg.public_port == m->port))
		i++;
	if (!pn || i == pn->n_svc || pn->n_streams >= PUBLISH_STREAMS_MAX) {
		struct control_message r = { .type = CONTROL_MSG_STREAM_REFUSE };
		r.u.stream_refuse = m->stream_id;
		coordclient_send(dev, &r, now_ms);
		return;
	}
	struct pn_stream *st = calloc(1, sizeof(*st));
	if (!st)
		return;
	splice_init(&st->sp, m->proto == CONTROL_PROTO_UDP ? SPLICE_PLAIN_DGRAM : SPLICE_PLAIN_STREAM);
	if (!pubwire_channel_init(&st->sp.ch, m->secret, true)) {
		free(st);
		return;
	}
	st->id = m->stream_id;
	st->svc = i;
	st->client = m->client;
	st->created_ms = st->active_ms = now_ms;
	st->prev = pn->tail;
	if (pn->tail)
		pn->tail->next = st;
	else
		pn->streams = st;
	pn->tail = st;
	pn->n_streams++;
	pn->svc[i].active++;
	pn->svc[i].total++;
	start_waiting(dev, pn, now_ms);
}

bool publish_owns_fd(const struct device *dev, int fd)
{
	const struct pubnode *pn = dev->pub;
	return pn && fd >= 0 && (size_t)fd < pn->by_fd_cap && pn->by_fd[fd];
}

void publish_on_io(struct device *dev, int fd, uint32_t events, uint64_t now_ms)
{
	struct pubnode *pn = dev->pub;
	struct pn_stream *st = pn->by_fd[fd];
	bool sealed = fd == st->sp.sealed_fd;
	bool *connecting = sealed ? &st->sp.sealed_connecting : &st->sp.plain_connecting;

	if (*connecting) {
		if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			return;
		bool was_dial = sealed && st->counted_dial;
		if (splice_connect_check(&st->sp, sealed) && was_dial) {
			st->counted_dial = false; /* the work connection is up: a slot is free */
			pn->dials--;
			if (!stream_run(dev, pn, st, now_ms))
				return;
			start_waiting(dev, pn, now_ms);
			return;
		}
	} else if (events & EPOLLERR) {
		int err = 0;
		socklen_t len = sizeof(err);
		getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err && !(st->sp.kind == SPLICE_PLAIN_DGRAM && !sealed)) {
			st->sp.failed = true;
			st->sp.why = sealed ? "the work connection failed" : "the local service's connection failed";
		}
	}
	stream_run(dev, pn, st, now_ms);
}

void publish_tick(struct device *dev, uint64_t now_ms)
{
	struct pubnode *pn = dev->pub;

	if (!pn || now_ms < pn->next_tick_ms)
		return;
	pn->next_tick_ms = now_ms + PUBLISH_TICK_MS;
	/* Each pass ends one stream (which may start waiting ones): bounded by the list. */
	for (size_t pass = 0; pass <= PUBLISH_STREAMS_MAX; pass++) {
		struct pn_stream *st = pn->streams;
		for (; st; st = st->next) {
			uint64_t idle = st->sp.kind == SPLICE_PLAIN_DGRAM ? PUBLISH_UDP_IDLE_MS : PUBLISH_IDLE_TIMEOUT_MS;
			if (st->started && (st->sp.plain_connecting || st->sp.sealed_connecting) &&
			    now_ms - st->created_ms >= PUBLISH_CONNECT_TIMEOUT_MS) {
				st->sp.why = "connect timed out";
				break;
			}
			if (now_ms - st->active_ms >= idle) {
				st->sp.why = "idle";
				break;
			}
		}
		if (!st)
			break;
		st->sp.failed = true;
		stream_end(dev, pn, st, true, now_ms);
	}
}

uint64_t publish_next_deadline(const struct device *dev)
{
	return dev->pub && dev->pub->streams ? dev->pub->next_tick_ms : UINT64_MAX;
}

/* ---------------------------------------------------------------- the services */

static void send_publish(struct device *dev, struct pubnode *pn, uint64_t now_ms)
{
	struct control_message m;

	if (!coordclient_ready(dev) || (pn->n_svc == 0 && !pn->sent))
		return;
	memset(&m, 0, sizeof(m));
	m.type = CONTROL_MSG_PUBLISH;
	for (size_t i = 0; i < pn->n_svc; i++) {
		struct control_service *sv = &m.u.publish.list[i];
		snprintf(sv->name, sizeof(sv->name), "%s", pn->svc[i].cfg.name);
		sv->proto = pn->svc[i].cfg.proto;
		sv->port = pn->svc[i].cfg.public_port;
		pn->svc[i].state = 0;
	}
	m.u.publish.n = pn->n_svc;
	if (coordclient_send(dev, &m, now_ms))
		pn->sent = pn->n_svc > 0;
}

void publish_registered(struct device *dev, uint64_t now_ms)
{
	if (dev->pub) {
		dev->pub->sent = false; /* a new session knows nothing of the old one's */
		send_publish(dev, dev->pub, now_ms);
	}
}

void publish_on_state(struct device *dev, const struct control_publish_state_msg *m)
{
	struct pubnode *pn = dev->pub;
	const struct control_service *sv = &m->service;
	const char *node = coordclient_node_name(dev);

	for (size_t i = 0; pn && i < pn->n_svc; i++) {
		struct pn_service *v = &pn->svc[i];
		if (v->cfg.proto != sv->proto || v->cfg.public_port != sv->port || v->state == m->state)
			continue;
		v->state = m->state;
		if (m->state == CONTROL_PUBLISH_OPEN)
			log_info("publish %s: %s:%u is published on the coordinator's port %s/%u", v->cfg.name,
				 v->cfg.local_host, (unsigned int)v->cfg.local_port, proto_name(sv->proto),
				 (unsigned int)sv->port);
		else if (m->state == CONTROL_PUBLISH_NOT_GRANTED)
			log_warn("publish %s: the coordinator did not grant %s port %u to this node; its admin can run "
				 "'meshcoord publish allow %s %u%s'",
				 v->cfg.name, proto_name(sv->proto), (unsigned int)sv->port, node ? node : "NODE",
				 (unsigned int)sv->port, sv->proto == CONTROL_PROTO_UDP ? " --protocol udp" : "");
		else
			log_warn("publish %s: not published: %s", v->cfg.name,
				 m->state == CONTROL_PUBLISH_DISABLED	    ? "the coordinator publishes nothing (no 'publish:' in its config)"
				 : m->state == CONTROL_PUBLISH_OUT_OF_RANGE ? "the port is outside the coordinator's 'publish: ports'"
									    : "the coordinator cannot listen on that port (in use?)");
	}
}

static void load(struct pubnode *pn, const struct config *cfg)
{
	pn->n_svc = cfg->n_publish;
	for (size_t i = 0; i < cfg->n_publish; i++) {
		memset(&pn->svc[i], 0, sizeof(pn->svc[i]));
		pn->svc[i].cfg = cfg->publish[i];
	}
}

bool publish_open(struct device *dev, const struct config *cfg)
{
	struct pubnode *pn = calloc(1, sizeof(*pn));
	if (!pn)
		return false;
	load(pn, cfg);
	dev->pub = pn;
	return true;
}

void publish_close(struct device *dev)
{
	struct pubnode *pn = dev->pub;
	if (!pn)
		return;
	while (pn->streams) {
		struct pn_stream *st = pn->streams;
		pn->streams = st->next;
		if (st->sp.plain_fd >= 0)
			close(st->sp.plain_fd);
		if (st->sp.sealed_fd >= 0)
			close(st->sp.sealed_fd);
		splice_free(&st->sp);
		free(st);
	}
	free(pn->by_fd);
	free(pn);
	dev->pub = NULL;
}

void publish_reload(struct device *dev, const struct config *cfg, uint64_t now_ms)
{
	struct pubnode *pn = dev->pub;
	bool same = pn && pn->n_svc == cfg->n_publish;

	for (size_t i = 0; same && i < cfg->n_publish; i++)
		same = memcmp(&pn->svc[i].cfg, &cfg->publish[i], sizeof(cfg->publish[i])) == 0;
	if (!pn || same)
		return;
	/* Streams of the old list end: their service may be gone or moved. */
	while (pn->streams) {
		pn->streams->sp.failed = true;
		pn->streams->sp.why = "publish list reloaded";
		stream_end(dev, pn, pn->streams, true, now_ms);
	}
	load(pn, cfg);
	log_info("SIGHUP: publish list changed (%zu services); telling the coordinator", cfg->n_publish);
	send_publish(dev, pn, now_ms);
}

void publish_status_render(const struct device *dev, bool json, struct ipc_text *t)
{
	const struct pubnode *pn = dev->pub;
	struct sockaddr_storage ss;
	socklen_t sl;
	const char *host = "";
	uint16_t port;

	if (!pn || pn->n_svc == 0) {
		if (json)
			ipc_text_printf(t, ", \"publish\": []");
		return;
	}
	if (!coordclient_address(dev, &ss, &sl, &host, &port))
		host = "";
	if (json)
		ipc_text_printf(t, ", \"publish\": [");
	else
		ipc_text_printf(t, "  published on the coordinator (%s):\n    %-16s %-5s %-22s %-6s %-16s %5s %7s %12s %12s\n",
				host[0] ? host : "not resolved yet", "SERVICE", "PROTO", "LOCAL", "PORT", "STATE", "CONNS",
				"TOTAL", "BYTES_IN", "BYTES_OUT");
	for (size_t i = 0; i < pn->n_svc; i++) {
		const struct pn_service *v = &pn->svc[i];
		uint64_t up = v->bytes_up, down = v->bytes_down;
		for (const struct pn_stream *st = pn->streams; st; st = st->next)
			if (st->svc == i) {
				up += st->sp.bytes_up;
				down += st->sp.bytes_down;
			}
		char local[CONFIG_IP_TEXT_MAX + 8];
		snprintf(local, sizeof(local), "%s:%u", v->cfg.local_host, (unsigned int)v->cfg.local_port);
		/* bytes in: from clients toward the service (down the work connection) */
		if (json)
			ipc_text_printf(t, "%s{\"name\": \"%s\", \"protocol\": \"%s\", \"local\": \"%s\", \"public_port\": %u, "
					   "\"state\": \"%s\", \"connections\": %zu, \"total\": %" PRIu64 ", \"bytes_in\": %" PRIu64
					   ", \"bytes_out\": %" PRIu64 "}",
					i ? ", " : "", v->cfg.name, proto_name(v->cfg.proto), local, (unsigned int)v->cfg.public_port,
					state_text(v->state), v->active, v->total, down, up);
		else
			ipc_text_printf(t, "    %-16s %-5s %-22s %-6u %-16s %5zu %7" PRIu64 " %12" PRIu64 " %12" PRIu64 "\n", v->cfg.name,
					proto_name(v->cfg.proto), local, (unsigned int)v->cfg.public_port, state_text(v->state),
					v->active, v->total, down, up);
	}
	if (json)
		ipc_text_printf(t, "]");
}
