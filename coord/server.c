/* meshcoord's event loop: one epoll over the control listener, every node connection, the
 * STUN sockets (the main one also relays), a signalfd and a 250 ms timerfd. Single-threaded,
 * so nothing is locked. This file holds the loop, the listener, signals, the tick and setup;
 * what each connection does is in conn.c and dispatch.c, the node map in nodemap.c, the relay
 * in relay.c (see server_internal.h). */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "coord/server_internal.h"
#include "core/ipaddr.h"
#include "core/keys.h"
#include "core/sdnotify.h"

int64_t server_unix_now(void)
{
	return (int64_t)time(NULL);
}

/* ---------------------------------------------------------------- accept, signals */

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
			SERVER_COUNT_LOG(s, accept_errors, "cannot accept connections: %s (%zu open)", strerror(e),
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
			SERVER_COUNT_LOG(s, conns_refused_limit, "%s: refused, %d connections open already",
					 sockaddr_format(&addr.sa, a, sizeof(a)), SERVER_MAX_CONNECTIONS);
			close(fd);
			continue;
		}
		/* Before anything is allocated for it: one source holds a bounded share of slots. */
		struct srclimit_entry *src = srclimit_get(&s->src_conns, &addr.sa, now_ms);
		if (!src || src->held >= SERVER_SRC_HELD_MAX) {
			SERVER_COUNT_LOG(s, conns_refused_source,
					 "%s: refused, %s", sockaddr_format(&addr.sa, a, sizeof(a)),
					 src ? "too many unregistered connections from this address"
					     : "too many addresses handshaking at once");
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
		src->held++;
		c->src_held = true;
		conn_list_append(&s->short_list, c);
	}
}

static void on_signal(struct coord_server *s)
{
	struct signalfd_siginfo si;
	while (read(s->signal.fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGUSR1) {
			coord_server_log_counters(s);
		} else if (si.ssi_signo == SIGHUP) {
			coord_server_reload(s);
		} else {
			log_info("signal %u received, shutting down", si.ssi_signo);
			s->stop = true;
		}
	}
}

/* ---------------------------------------------------------------- timer */

static void on_tick(struct coord_server *s, uint64_t now_ms)
{
	uint64_t expirations;
	char a[ADDR_STR_MAX];

	while (read(s->timer.fd, &expirations, sizeof(expirations)) == (ssize_t)sizeof(expirations))
		;
	sdnotify_watchdog_tick(now_ms); /* the tick runs from the loop: a stuck loop misses it */
	if (db_changed(s->db)) {
		nodemap_reload(s);
		routes_reload(s); /* an admin approved or revoked a route */
		satellites_reload(s); /* or added or removed a satellite */
		publish_grants_reload(s); /* or allowed or revoked a published port */
		policy_push_tags_reload(s); /* or tagged a node */
	}
	dispatch_endpoints_due(s, now_ms);
	routes_tick(s, now_ms);
	policy_push_tick(s);
	publish_tick(s, now_ms);
	metrics_http_tick(s, now_ms);
	/* What a limiter held back is summed up when its window ends, even if no line follows. */
#define SERVER_LIMITER_EXPIRE(name, help)                                                              \
	{                                                                                              \
		unsigned int held_ = log_ratelimit_expire(&s->limiters.name, now_ms);                 \
		if (held_)                                                                             \
			log_warn("(%u more %s in %d s were not logged)", held_, #name,                 \
				 LOG_RATELIMIT_INTERVAL_MS / 1000);                                    \
	}
	SERVER_COUNTERS(SERVER_LIMITER_EXPIRE)
#undef SERVER_LIMITER_EXPIRE

	for (struct conn *c = s->short_list.head; c && c->deadline_ms <= now_ms; c = c->next) {
		if (c->dead)
			continue;
		if (c->state != CONN_CLOSING)
			SERVER_COUNT_LOG(s, handshake_timeouts,
					 "%s: no hello and REGISTER within %d s (half-open?), closing",
					 conn_addr(c, a, sizeof(a)), SERVER_HANDSHAKE_TIMEOUT_MS / 1000);
		conn_kill(s, c);
	}
	for (struct conn *c = s->active_list.head; c && c->deadline_ms + SERVER_IDLE_TIMEOUT_MS <= now_ms;
	     c = c->next) {
		if (c->dead)
			continue;
		SERVER_COUNT_LOG(s, idle_timeouts, "%s: node %s silent for %d s, closing", conn_addr(c, a, sizeof(a)),
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

int server_open_socket(const char *host_in, uint16_t port, int type, const char *what, int backlog, char *err,
		       size_t err_len)
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
	if (type == SOCK_STREAM && listen(fd, backlog) < 0) {
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
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= (rlim_t)SERVER_MAX_CONNECTIONS + 64)
		return;
	if (rl.rlim_cur < SERVER_FD_LIMIT_WARN)
		log_warn("open file limit is %llu: at most about that many nodes can connect (raise LimitNOFILE)",
			 (unsigned long long)rl.rlim_cur);
	else
		log_info("open file limit is %llu: at most about that many nodes can connect",
			 (unsigned long long)rl.rlim_cur);
}

/* The port a socket got (the configured one; getsockname in case it was 0). */
static uint16_t bound_port(int fd)
{
	union peer_addr a;
	socklen_t len = sizeof(a);

	if (getsockname(fd, &a.sa, &len) < 0)
		return 0;
	return ntohs(a.sa.sa_family == AF_INET6 ? a.in6.sin6_port : a.in.sin_port);
}

/* The STUN socket carries relayed traffic too: room for bursts between wake-ups. */
static void stun_socket_buffers(int fd)
{
	int size = SERVER_STUN_SOCKBUF;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
}

/* The second STUN port; a default one that cannot be bound is only a warning. */
static bool open_stun_alt(struct coord_server *s, const struct coord_config *cfg, char *err, size_t err_len)
{
	if (cfg->stun_alt_port == 0)
		return true;
	s->stun_alt.fd = server_open_socket(cfg->stun_alt_host, cfg->stun_alt_port, SOCK_DGRAM, "alternate STUN", 0, err,
					    err_len);
	if (s->stun_alt.fd >= 0) {
		s->stun_alt_port = bound_port(s->stun_alt.fd);
		return true;
	}
	if (cfg->stun_alt_explicit)
		return false;
	log_warn("%s; running without a second STUN port (set stun_listen_alt, or 'off')", err);
	err[0] = '\0';
	return true;
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
	s->stun_alt = (struct source){ SOURCE_STUN_ALT, -1 };
	s->signal = (struct source){ SOURCE_SIGNAL, -1 };
	s->timer = (struct source){ SOURCE_TIMER, -1 };
	s->epoll_fd = -1;
	s->db = db;
	memcpy(s->coord_private, coord_private, WIRE_KEY_LEN);
	if (!control_server_key_init(&s->coord_key, coord_private) ||
	    !srclimit_init(&s->src_conns, SERVER_SRC_TABLE_ENTRIES, SERVER_SRC_HELLO_RATE, SERVER_SRC_HELLO_BURST) ||
	    !srclimit_init(&s->src_stun, SERVER_STUN_TABLE_ENTRIES, SERVER_STUN_SRC_RATE, SERVER_STUN_SRC_BURST)) {
		snprintf(err, err_len, "cannot set up the coordinator's key or rate limits");
		goto fail;
	}
	ratelimit_init(&s->stun_overflow, SERVER_STUN_OVERFLOW_BURST, clock_monotonic_ms());
	randombytes_buf(s->nodes.hash_key, sizeof(s->nodes.hash_key));
	addrmap_init(&s->relay_addrs);
	s->relay_rate = cfg->relay_rate_limit;
	s->relay_burst = cfg->relay_burst;
	s->relay_bind_fresh_ms = (uint64_t)cfg->relay_bind_fresh_s * 1000u;

	raise_fd_limit();

	(void)db_changed(db); /* start from now: what we load is current */
	if (!nodemap_load(s)) {
		snprintf(err, err_len, "cannot load the node list from the registry");
		goto fail;
	}
	routes_reload(s);
	satellites_reload(s);
	policy_push_tags_reload(s);

	s->listener.fd = server_open_socket(cfg->listen_host, cfg->listen_port, SOCK_STREAM, "control",
					    SERVER_LISTEN_BACKLOG, err, err_len);
	if (s->listener.fd < 0)
		goto fail;
	s->stun.fd = server_open_socket(cfg->stun_host, cfg->stun_port, SOCK_DGRAM, "STUN", 0, err, err_len);
	if (s->stun.fd < 0)
		goto fail;
	stun_socket_buffers(s->stun.fd);
	s->stun_port = bound_port(s->stun.fd);
	if (!open_stun_alt(s, cfg, err, err_len))
		goto fail;

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGHUP);
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
	    !epoll_add_source(s, &s->timer) || (s->stun_alt.fd >= 0 && !epoll_add_source(s, &s->stun_alt))) {
		snprintf(err, err_len, "cannot set up the event loop: %s", strerror(errno));
		goto fail;
	}
	if (!metrics_http_open(s, cfg, err, err_len))
		goto fail;
	if (!policy_push_open(s, cfg->policy_file, err, err_len))
		goto fail;
	/* What publishing needs before coord_server_set_config copies the rest. */
	s->cfg.publish = cfg->publish;
	memcpy(s->cfg.state_dir, cfg->state_dir, sizeof(s->cfg.state_dir));
	if (!publish_open(s)) {
		snprintf(err, err_len, "cannot set up publishing");
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
	char alt[16] = "off", rate[32] = "unlimited";
	if (s->stun_alt_port)
		snprintf(alt, sizeof(alt), "port %u", (unsigned int)s->stun_alt_port);
	if (s->relay_rate)
		snprintf(rate, sizeof(rate), "%u bytes/s", (unsigned int)s->relay_rate);
	log_info("serving: control on TCP %s, STUN and relay on UDP %s (second STUN %s, relay limit %s per node), "
		 "%zu nodes registered, public key %s",
		 sockaddr_format((struct sockaddr *)&la, lbuf, sizeof(lbuf)),
		 sockaddr_format((struct sockaddr *)&sa, sbuf, sizeof(sbuf)), alt, rate, s->nodes.count, pub_b64);

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
			case SOURCE_STUN_ALT:
				stunserver_on_readable(s, src);
				break;
			case SOURCE_SIGNAL:
				on_signal(s);
				break;
			case SOURCE_TIMER:
				on_tick(s, now_ms);
				break;
			case SOURCE_METRICS:
			case SOURCE_METRICS_CONN:
				metrics_http_on_event(s, src, events[i].events, now_ms);
				break;
			case SOURCE_PUB_LISTEN:
				pubstream_on_listener(s, (struct pub_service *)src, now_ms);
				break;
			case SOURCE_PUB_UDP:
				pubstream_on_udp(s, (struct pub_service *)src, now_ms);
				break;
			case SOURCE_PUB_CLIENT:
			case SOURCE_PUB_WORK:
				pubstream_on_event(s, src, events[i].events, now_ms);
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
		conn_flush_and_reap(s);
		publish_reap(s); /* after conns: a dead session closed its node's services */
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
			conn_list_remove(lists[i], c);
			conn_free(s, c);
		}
	}
	struct source *srcs[] = { &s->listener, &s->stun, &s->stun_alt, &s->signal, &s->timer };
	for (size_t i = 0; i < sizeof(srcs) / sizeof(srcs[0]); i++)
		if (srcs[i]->fd >= 0)
			close(srcs[i]->fd);
	if (s->epoll_fd >= 0)
		close(s->epoll_fd);
	metrics_http_close(s);
	publish_close(s);
	nodemap_free(&s->nodes);
	relay_free(s);
	policy_push_close(s);
	srclimit_free(&s->src_conns);
	srclimit_free(&s->src_stun);
	control_server_key_clear(&s->coord_key);
	sodium_memzero(s->coord_private, sizeof(s->coord_private));
	sodium_memzero(s->scratch, sizeof(s->scratch));
	free(s);
}

void coord_server_log_counters(const struct coord_server *s)
{
	char line[LOG_LINE_MAX];
	size_t used = 0;

#define SERVER_COUNTER_PRINT(name, help)                                                               \
	if (used < sizeof(line))                                                                       \
		used += (size_t)snprintf(line + used, sizeof(line) - used, " %s=%" PRIu64, #name,      \
					 s->counters.name);
	SERVER_COUNTERS(SERVER_COUNTER_PRINT)
#undef SERVER_COUNTER_PRINT
	if (used < sizeof(line))
		snprintf(line + used, sizeof(line) - used, " connections=%zu sessions=%zu nodes=%zu tombstones=%zu",
			 s->n_conns, s->active_list.count, s->nodes.count, nodemap_tomb_count(&s->nodes));
	log_info("counters:%s", line);
}
