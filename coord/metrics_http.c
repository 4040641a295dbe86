/* The metrics listener: plain HTTP/1.0-1.1, GET /metrics, served from meshcoord's one epoll
 * loop. A scraper cannot stall the loop: every socket is non-blocking, a request is at most
 * HTTPREQ_MAX bytes, at most METRICS_MAX_CONNECTIONS are open (more are closed at once), and
 * a connection that has not sent its request and taken its answer within METRICS_TIMEOUT_MS
 * is closed at the next tick. One request per connection ("Connection: close"), so nothing
 * is kept between requests. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "coord/httpreq.h"
#include "coord/server_internal.h"

enum {
	/* Scrapers are one or two Prometheus servers (and a person with curl): a few slots,
	 * each holding a request buffer of HTTPREQ_MAX bytes. */
	METRICS_MAX_CONNECTIONS = 8,
	/* Request and answer take milliseconds on loopback or a LAN; a connection still open
	 * after this is stalled or hostile, and holds a slot. */
	METRICS_TIMEOUT_MS = 5000,
	METRICS_ACCEPT_BATCH = 16,
	METRICS_LISTEN_BACKLOG = 16,
};

struct metrics_conn {
	struct source src; /* first: epoll hands it back; fd -1 when the slot is free */
	uint64_t deadline_ms;
	size_t req_len;
	bool answering; /* the answer is in out; now writing it */
	struct ipc_text out;
	size_t out_off;
	uint8_t req[HTTPREQ_MAX];
};

struct metrics_http {
	struct source listener;
	struct metrics_conn conns[METRICS_MAX_CONNECTIONS];
};

/* 127.0.0.0/8 or ::1 (or ::ffff:127.x): only this host can connect. */
static bool host_is_loopback(const char *host, bool *unspecified)
{
	struct in6_addr a6;
	struct in_addr a4;

	*unspecified = false;
	if (inet_pton(AF_INET, host, &a4) == 1) {
		*unspecified = a4.s_addr == htonl(INADDR_ANY);
		return (ntohl(a4.s_addr) >> 24) == 127;
	}
	if (inet_pton(AF_INET6, host, &a6) == 1) {
		*unspecified = IN6_IS_ADDR_UNSPECIFIED(&a6);
		return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
	}
	return false;
}

static void conn_close(struct metrics_conn *c)
{
	if (c->src.fd >= 0)
		close(c->src.fd); /* also takes it out of the epoll set */
	ipc_text_free(&c->out);
	c->src.fd = -1;
	c->req_len = 0;
	c->out_off = 0;
	c->answering = false;
}

static void on_accept(struct coord_server *s, struct metrics_http *m, uint64_t now_ms)
{
	for (int i = 0; i < METRICS_ACCEPT_BATCH; i++) {
		int fd = accept4(m->listener.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return; /* EAGAIN, or an error that the next wake-up sees again */
		struct metrics_conn *c = NULL;
		for (size_t k = 0; k < METRICS_MAX_CONNECTIONS && !c; k++)
			if (m->conns[k].src.fd < 0)
				c = &m->conns[k];
		struct epoll_event ev = { .events = EPOLLIN };
		if (c) {
			c->src.fd = fd;
			ev.data.ptr = &c->src;
		}
		if (!c || epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0) {
			SERVER_COUNT_LOG(s, metrics_refused, "metrics: %d connections open already; one more closed",
					 METRICS_MAX_CONNECTIONS);
			close(fd);
			if (c)
				c->src.fd = -1;
			continue;
		}
		c->deadline_ms = now_ms + METRICS_TIMEOUT_MS;
		c->req_len = 0;
		c->out_off = 0;
		c->answering = false;
		ipc_text_init(&c->out);
	}
}

static const char *status_line(enum httpreq_result r, bool found)
{
	switch (r) {
	case HTTPREQ_OK:
		return found ? "200 OK" : "404 Not Found";
	case HTTPREQ_TOO_LARGE:
		return "431 Request Header Fields Too Large";
	case HTTPREQ_BAD_METHOD:
		return "405 Method Not Allowed";
	case HTTPREQ_BAD_VERSION:
		return "505 HTTP Version Not Supported";
	case HTTPREQ_BAD:
	case HTTPREQ_INCOMPLETE:
	default:
		return "400 Bad Request";
	}
}

/* The whole answer, headers and body, into c->out. */
static void build_answer(struct coord_server *s, struct metrics_conn *c, enum httpreq_result r,
			 const struct httpreq *req)
{
	bool found = r == HTTPREQ_OK && strcmp(req->path, "/metrics") == 0;
	struct ipc_text body;

	ipc_text_init(&body);
	if (found)
		metrics_render(s, &body);
	else if (r == HTTPREQ_OK)
		ipc_text_printf(&body, "not found: the metrics are at /metrics\n");
	else
		ipc_text_printf(&body, "%s: meshcoord serves GET /metrics only\n", status_line(r, found));
	if (body.failed) {
		ipc_text_free(&body);
		ipc_text_init(&body);
		ipc_text_printf(&body, "out of memory\n");
		r = HTTPREQ_BAD; /* any error status will do: the scrape fails visibly */
		found = false;
	}
	ipc_text_printf(&c->out,
			"HTTP/1.1 %s\r\n"
			"Content-Type: %s\r\n"
			"Content-Length: %zu\r\n"
			"%s"
			"Connection: close\r\n\r\n",
			status_line(r, found),
			found ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8", body.len,
			r == HTTPREQ_BAD_METHOD ? "Allow: GET, HEAD\r\n" : "");
	if (!(r == HTTPREQ_OK && req->method_head) && body.len > 0)
		ipc_text_printf(&c->out, "%.*s", (int)body.len, body.buf);
	ipc_text_free(&body);
	s->counters.metrics_requests++;
	c->answering = true;
}

static void on_writable(struct coord_server *s, struct metrics_conn *c)
{
	(void)s;
	if (c->out.failed) {
		conn_close(c);
		return;
	}
	while (c->out_off < c->out.len) {
		ssize_t n = send(c->src.fd, c->out.buf + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return; /* EPOLLOUT brings us back */
		if (n <= 0) {
			conn_close(c);
			return;
		}
		c->out_off += (size_t)n;
	}
	conn_close(c);
}

static void on_readable(struct coord_server *s, struct metrics_conn *c)
{
	for (;;) {
		size_t room = sizeof(c->req) - c->req_len;
		ssize_t n = room ? recv(c->src.fd, c->req + c->req_len, room, MSG_DONTWAIT) : 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return; /* the rest of the request comes later */
		if (n < 0 || (n == 0 && room > 0)) {
			conn_close(c); /* gone before its request was complete */
			return;
		}
		c->req_len += (size_t)n;
		struct httpreq req;
		enum httpreq_result r = httpreq_parse(c->req, c->req_len, &req);
		if (r == HTTPREQ_INCOMPLETE)
			continue;
		build_answer(s, c, r, &req);
		struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = &c->src };
		if (epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, c->src.fd, &ev) < 0) {
			conn_close(c);
			return;
		}
		on_writable(s, c);
		return;
	}
}

void metrics_http_on_event(struct coord_server *s, struct source *src, uint32_t events, uint64_t now_ms)
{
	struct metrics_http *m = s->metrics;

	if (!m)
		return;
	if (src->kind == SOURCE_METRICS) {
		on_accept(s, m, now_ms);
		return;
	}
	struct metrics_conn *c = (struct metrics_conn *)src;
	if (c->src.fd < 0)
		return; /* closed earlier in this batch */
	if (c->answering) {
		if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			on_writable(s, c);
	} else if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
		on_readable(s, c);
	}
}

void metrics_http_tick(struct coord_server *s, uint64_t now_ms)
{
	struct metrics_http *m = s->metrics;

	if (!m)
		return;
	for (size_t k = 0; k < METRICS_MAX_CONNECTIONS; k++) {
		struct metrics_conn *c = &m->conns[k];
		if (c->src.fd >= 0 && c->deadline_ms <= now_ms) {
			SERVER_COUNT_LOG(s, metrics_timeouts, "metrics: a connection took more than %d s; closed",
					 METRICS_TIMEOUT_MS / 1000);
			conn_close(c);
		}
	}
}

bool metrics_http_open(struct coord_server *s, const struct coord_config *cfg, char *err, size_t err_len)
{
	if (cfg->metrics_port == 0)
		return true;
	struct metrics_http *m = calloc(1, sizeof(*m));
	if (!m) {
		snprintf(err, err_len, "out of memory for the metrics listener");
		return false;
	}
	m->listener = (struct source){ SOURCE_METRICS, -1 };
	for (size_t k = 0; k < METRICS_MAX_CONNECTIONS; k++) {
		m->conns[k].src = (struct source){ SOURCE_METRICS_CONN, -1 };
		ipc_text_init(&m->conns[k].out);
	}
	s->metrics = m;
	m->listener.fd = server_open_socket(cfg->metrics_host, cfg->metrics_port, SOCK_STREAM, "metrics",
					     METRICS_LISTEN_BACKLOG, err, err_len);
	if (m->listener.fd < 0)
		return false;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &m->listener };
	if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, m->listener.fd, &ev) < 0) {
		snprintf(err, err_len, "cannot watch the metrics listener: %s", strerror(errno));
		return false;
	}
	bool unspecified = false;
	log_info("metrics: serving http://%s%s%s:%u/metrics", strchr(cfg->metrics_host, ':') ? "[" : "",
		 cfg->metrics_host, strchr(cfg->metrics_host, ':') ? "]" : "", (unsigned int)cfg->metrics_port);
	if (!host_is_loopback(cfg->metrics_host, &unspecified))
		log_warn("metrics: serving on %s:%u, not a loopback address: whoever reaches it reads node counts "
			 "and traffic; firewall it%s",
			 cfg->metrics_host, (unsigned int)cfg->metrics_port, unspecified ? " (every interface)" : "");
	return true;
}

void metrics_http_close(struct coord_server *s)
{
	struct metrics_http *m = s->metrics;

	if (!m)
		return;
	for (size_t k = 0; k < METRICS_MAX_CONNECTIONS; k++)
		conn_close(&m->conns[k]);
	if (m->listener.fd >= 0)
		close(m->listener.fd);
	free(m);
	s->metrics = NULL;
}
