/* Names outside the mesh: forwarded to the system's resolvers (dnsd.h).
 *
 * Each forwarded query gets its own UDP socket, connected to the upstream: the kernel picks
 * a random source port for it and delivers only datagrams from that upstream's address and
 * port, and the query goes out with a fresh random ID. An answer is taken only if its ID and
 * its question (name byte for byte, type, class) match what was sent; anything else on the
 * socket is counted and ignored, so a blind spoofer must guess port, ID and the name's case
 * pattern at once. The table is bounded (DNSD_PENDING_MAX); a query past it is dropped.
 *
 * Upstreams are resolv.conf's nameservers, read at start and again when the file changes.
 * Loops: our own service addresses are never an upstream. When resolv.conf names
 * systemd-resolved's stub (127.0.0.53), we forward to it: resolved sends the names of its
 * other domains to their servers, and ours to us only for the mesh's domain, which we answer
 * ourselves and never forward (dnsd.c), so no query comes back around. We do not read
 * resolved's own upstream list (/run/systemd/resolve/resolv.conf) instead: that would skip its
 * per-link routing (a corporate VPN's domain) and its cache. */
#include "meshd/dnsd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "meshd/device.h"

enum {
	RESOLV_CONF_MAX = 64 * 1024, /* a resolv.conf is a few lines; read no more than this */
	RESOLV_LINE_MAX = 512,
};

void dnsfwd_parse_resolv(struct dnsd *d, const char *text, size_t len, const uint8_t service6[16],
			 bool have_service6)
{
	size_t pos = 0;
	d->n_upstreams = 0;
	d->next_upstream = 0;
	while (pos < len && d->n_upstreams < DNSD_UPSTREAMS_MAX) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t line_len = nl ? (size_t)(nl - (text + pos)) : len - pos;
		char line[RESOLV_LINE_MAX], word[16], addr[INET6_ADDRSTRLEN + 1];
		size_t copy = line_len < sizeof(line) - 1 ? line_len : sizeof(line) - 1;
		memcpy(line, text + pos, copy);
		line[copy] = '\0';
		pos += line_len + 1;
		if (memchr(line, '\0', copy) || sscanf(line, " %15s %46s", word, addr) != 2 ||
		    strcmp(word, "nameserver") != 0)
			continue;
		char *scope = strchr(addr, '%'); /* fe80::1%eth0: a link-local server, zone dropped */
		if (scope)
			*scope = '\0';
		struct sockaddr_storage ss;
		memset(&ss, 0, sizeof(ss));
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
			if (ntohl(s4->sin_addr.s_addr) == DNS_MESH_SERVICE_IPV4)
				continue; /* ourselves: a loop */
			s4->sin_family = AF_INET;
			s4->sin_port = htons(DNS_PORT);
		} else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
			if (have_service6 && memcmp(&s6->sin6_addr, service6, 16) == 0)
				continue;
			s6->sin6_family = AF_INET6;
			s6->sin6_port = htons(DNS_PORT);
		} else {
			continue;
		}
		d->upstream[d->n_upstreams++] = ss;
	}
}

/* Reads resolv.conf again if it changed (at most every DNSD_RESOLV_CHECK_MS). */
static void refresh_upstreams(struct device *dev, uint64_t now_ms)
{
	struct dnsd *d = dev->dns;
	struct stat st;
	if (d->resolv_known && now_ms - d->resolv_checked_ms < DNSD_RESOLV_CHECK_MS)
		return;
	d->resolv_checked_ms = now_ms;
	if (stat(d->resolv_path, &st) < 0) {
		if (d->resolv_known || d->n_upstreams)
			log_warn("mesh DNS: cannot read %s (%s): names outside the mesh get SERVFAIL until it is back",
				 d->resolv_path, strerror(errno));
		d->n_upstreams = 0;
		d->resolv_known = true;
		memset(&d->resolv_mtime, 0, sizeof(d->resolv_mtime));
		return;
	}
	if (d->resolv_known && st.st_ino == d->resolv_ino && st.st_size == d->resolv_size &&
	    st.st_mtim.tv_sec == d->resolv_mtime.tv_sec && st.st_mtim.tv_nsec == d->resolv_mtime.tv_nsec)
		return;
	d->resolv_known = true;
	d->resolv_ino = st.st_ino;
	d->resolv_size = st.st_size;
	d->resolv_mtime = st.st_mtim;

	char *buf = malloc(RESOLV_CONF_MAX);
	int fd = open(d->resolv_path, O_RDONLY | O_CLOEXEC);
	ssize_t n = (buf && fd >= 0) ? read(fd, buf, RESOLV_CONF_MAX) : -1;
	if (fd >= 0)
		close(fd);
	uint8_t s6[16];
	bool have6 = dnsd_service_ipv6(dev, s6);
	dnsfwd_parse_resolv(d, buf ? buf : "", n > 0 ? (size_t)n : 0, s6, have6);
	free(buf);

	char list[3 * (INET6_ADDRSTRLEN + 2)] = "";
	for (size_t i = 0; i < d->n_upstreams; i++) {
		char a[INET6_ADDRSTRLEN];
		const struct sockaddr_storage *u = &d->upstream[i];
		inet_ntop(u->ss_family,
			  u->ss_family == AF_INET ? (const void *)&((const struct sockaddr_in *)u)->sin_addr
						  : (const void *)&((const struct sockaddr_in6 *)u)->sin6_addr,
			  a, sizeof(a));
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "", a);
	}
	if (d->n_upstreams)
		log_info("mesh DNS: other names go to %s (from %s)", list, d->resolv_path);
	else
		log_warn("mesh DNS: %s names no usable nameserver: names outside the mesh get SERVFAIL",
			 d->resolv_path);
}

static void slot_free(struct dnsd *d, struct dnsd_pending *p)
{
	if (p->fd < 0)
		return;
	close(p->fd); /* also leaves the epoll set: nobody else holds this fd */
	p->fd = -1;
	d->n_pending--;
}

void dnsfwd_close_all(struct dnsd *d)
{
	for (size_t i = 0; i < DNSD_PENDING_MAX; i++)
		slot_free(d, &d->pending[i]);
}

/* SERVFAIL to the client of p: its question, no records, RD as it asked. */
static void servfail(struct device *dev, const struct dnsd_pending *p)
{
	struct dns_query q;
	uint8_t out[DNS_UDP_PLAIN_MAX];
	memset(&q, 0, sizeof(q));
	q.h.id = p->client_id;
	q.h.flags = p->client_flags;
	q.q = p->q;
	size_t n = dns_answer_build(&q, DNS_RCODE_SERVFAIL, NULL, 0, out, sizeof(out));
	if (n) {
		out[2] &= (uint8_t)~(DNS_FLAG_AA >> 8); /* not authoritative for someone else's name */
		dnsd_reply(dev, &p->client, out, n);
	}
}

void dnsfwd_query(struct device *dev, const struct dnsd_client *cl, uint8_t *msg, size_t len,
		  const struct dns_question *q, uint16_t flags, uint64_t now_ms)
{
	struct dnsd *d = dev->dns;
	struct dnsd_pending *p = NULL;

	refresh_upstreams(dev, now_ms);
	for (size_t i = 0; i < DNSD_PENDING_MAX && !p; i++)
		if (d->pending[i].fd < 0)
			p = &d->pending[i];
	if (!p) {
		d->counters.forward_full++;
		return; /* the stub retries; by then a slot may be free */
	}
	p->client = *cl;
	p->client_id = dns_id_get(msg);
	p->client_flags = flags;
	p->q = *q;
	if (d->n_upstreams == 0) {
		d->counters.forward_no_upstream++;
		servfail(dev, p);
		return;
	}
	const struct sockaddr_storage *up = &d->upstream[d->next_upstream++ % d->n_upstreams];
	socklen_t up_len = up->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	int fd = socket(up->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (const struct sockaddr *)up, up_len) < 0) {
		log_debug("mesh DNS: cannot open a socket to an upstream: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		servfail(dev, p);
		return;
	}
	p->upstream_id = (uint16_t)randombytes_uniform(UINT16_MAX + 1);
	dns_id_set(msg, p->upstream_id);
	if (send(fd, msg, len, 0) < 0 || !device_watch_fd(dev, fd, EPOLLIN)) {
		log_debug("mesh DNS: sending to an upstream failed: %s", strerror(errno));
		close(fd);
		servfail(dev, p);
		return;
	}
	p->fd = fd;
	p->deadline_ms = now_ms + DNSD_UPSTREAM_TIMEOUT_MS;
	d->n_pending++;
	d->counters.forwarded++;
}

bool dnsfwd_owns_fd(const struct device *dev, int fd)
{
	if (!dev->dns || dev->dns->n_pending == 0)
		return false;
	for (size_t i = 0; i < DNSD_PENDING_MAX; i++)
		if (dev->dns->pending[i].fd == fd)
			return true;
	return false;
}

void dnsfwd_on_readable(struct device *dev, int fd, uint64_t now_ms)
{
	struct dnsd *d = dev->dns;
	struct dnsd_pending *p = NULL;
	uint8_t buf[DNSD_UPSTREAM_MSG_MAX];
	(void)now_ms;

	for (size_t i = 0; i < DNSD_PENDING_MAX && !p; i++)
		if (d->pending[i].fd == fd)
			p = &d->pending[i];
	if (!p)
		return;
	/* A bounded number of datagrams per wake-up: a spoofer cannot keep us here. */
	for (int k = 0; k < 8; k++) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_TRUNC);
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR) { /* ICMP unreachable: that upstream is down */
				servfail(dev, p);
				slot_free(d, p);
			}
			return;
		}
		struct dns_header h;
		struct dns_question q;
		if ((size_t)n > sizeof(buf) || !dns_response_question(buf, (size_t)n, &h, &q) ||
		    h.id != p->upstream_id || !dns_question_equal(&q, &p->q)) {
			d->counters.upstream_mismatched++;
			continue;
		}
		dns_id_set(buf, p->client_id);
		dnsd_reply(dev, &p->client, buf, (size_t)n);
		d->counters.upstream_answers++;
		slot_free(d, p);
		return;
	}
}

void dnsfwd_tick(struct device *dev, uint64_t now_ms)
{
	struct dnsd *d = dev->dns;
	if (!d || d->n_pending == 0)
		return;
	for (size_t i = 0; i < DNSD_PENDING_MAX; i++) {
		struct dnsd_pending *p = &d->pending[i];
		if (p->fd >= 0 && now_ms >= p->deadline_ms) {
			d->counters.upstream_timeouts++;
			servfail(dev, p);
			slot_free(d, p);
		}
	}
}

uint64_t dnsfwd_next_deadline(const struct device *dev)
{
	uint64_t next = UINT64_MAX;
	const struct dnsd *d = dev->dns;
	if (!d || d->n_pending == 0)
		return next;
	for (size_t i = 0; i < DNSD_PENDING_MAX; i++)
		if (d->pending[i].fd >= 0 && d->pending[i].deadline_ms < next)
			next = d->pending[i].deadline_ms;
	return next;
}
