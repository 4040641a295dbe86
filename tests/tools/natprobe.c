/* natprobe: a tiny STUN-like probe that tells what kind of NAT sits in front of a host.
 *
 * The NAT lab (tests/netns/natlab.sh) runs it before any scenario, so a router that does
 * not behave like the NAT type it claims is caught as "lab broken" instead of giving false
 * passes or failures.
 *
 *   natprobe server [--lifetime S] [--max N] [-v] PRIMARY SECONDARY OTHERPORT OTHERADDR
 *       Binds the four UDP addresses (ADDR:PORT) in this order, plus a TCP listener on
 *       PRIMARY. Conventionally OTHERPORT is PRIMARY's address with another port and
 *       OTHERADDR is a third address. Each request is answered, from the socket it came in
 *       on, with the source address:port the server saw ("SEEN"). A request may ask for an
 *       extra datagram from another of the four sockets first ("UNSOL"): to the client that
 *       one is unsolicited, so it tests the NAT's filtering. A TCP connection gets one line
 *       with the address:port seen, then the server closes it.
 *
 *   natprobe client [--bind ADDR:PORT] [--tries N] [--wait-ms MS] [--grace-ms MS] [--tcp]
 *                   PRIMARY SECONDARY
 *       From ONE UDP socket, in this order:
 *         1. asks PRIMARY what it sees                                   -> mapped_primary
 *         2. asks PRIMARY for an extra datagram from OTHERPORT (index 2)  -> unsol_port
 *         3. asks PRIMARY for an extra datagram from OTHERADDR (index 3)  -> unsol_addr
 *         4. asks PRIMARY for an extra datagram from SECONDARY (index 1), which this socket
 *            has not contacted yet                                       -> unsol_secondary
 *         5. asks SECONDARY what it sees                                 -> mapped_secondary
 *       Step 4 also reproduces the race DESIGN.md describes: on a router that lets the
 *       unsolicited datagram in to itself, conntrack records it and masquerade then picks
 *       another port in step 5, so a "cone" looks symmetric.
 *       With --tcp, also connects to PRIMARY over TCP                        -> tcp
 *       Prints key=value lines: local, mapped_primary, mapped_secondary (ADDR:PORT or none),
 *       mapping (independent, dependent or unknown), unsol_port, unsol_addr, unsol_secondary
 *       (arrived, blocked or unknown when the request itself got no answer; steps 2-4 are
 *       skipped when step 1 got none), tcp.
 *       Exit status 0 when it ran (whatever it measured), 2 on usage or system errors.
 *
 * Every loop is bounded: tries per request, a wait per try, the server's lifetime and
 * datagram count. Destinations are limited to the documentation ranges, 10/8 and loopback,
 * so a typo can never put traffic on the internet. Only libc: the lab must not depend on
 * the code it tests.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
	SERVER_SOCKETS = 4,       /* primary, secondary, other port, other address */
	IDX_PRIMARY = 0,
	IDX_SECONDARY = 1,
	IDX_OTHERPORT = 2,
	IDX_OTHERADDR = 3,
	MSG_MAX = 256,
	ADDR_STR_MAX = 32,        /* "255.255.255.255:65535" */
	MAX_TRIES = 20,
	MAX_WAIT_MS = 5000,
	MAX_LIFETIME_S = 600,
	DEFAULT_LIFETIME_S = 60,
	DEFAULT_MAX_DATAGRAMS = 10000,
	MAX_DATAGRAMS = 1000000,
	DEFAULT_TRIES = 4,
	DEFAULT_WAIT_MS = 250,
	DEFAULT_GRACE_MS = 200,
	TCP_TIMEOUT_MS = 2000,
	TCP_BACKLOG = 16,
};

static const char MAGIC[] = "NATPROBE1";

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: natprobe server [--lifetime S] [--max N] [-v] PRIMARY SECONDARY OTHERPORT OTHERADDR\n"
		   "       natprobe client [--bind ADDR:PORT] [--tries N] [--wait-ms MS] [--grace-ms MS] [--tcp]\n"
		   "                       PRIMARY SECONDARY\n"
		   "addresses are IPv4 ADDR:PORT\n");
}

static bool parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

static bool parse_addr(const char *s, struct sockaddr_in *sa)
{
	char host[ADDR_STR_MAX];
	const char *colon = strrchr(s, ':');
	long port;
	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return false;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
		return false;
	if (!parse_long(colon + 1, 0, 65535, &port))
		return false;
	sa->sin_port = htons((uint16_t)port);
	return true;
}

static void format_addr(const struct sockaddr_in *sa, char *buf, size_t len)
{
	char host[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &sa->sin_addr, host, sizeof(host));
	snprintf(buf, len, "%s:%u", host, (unsigned)ntohs(sa->sin_port));
}

/* Only the documentation ranges, 10/8 and loopback: the lab never talks to anything else. */
static bool allowed_destination(const struct sockaddr_in *sa)
{
	uint32_t a = ntohl(sa->sin_addr.s_addr);
	return (a >> 8) == 0xc00002u         /* 192.0.2.0/24 */
	       || (a >> 8) == 0xc63364u      /* 198.51.100.0/24 */
	       || (a >> 8) == 0xcb0071u      /* 203.0.113.0/24 */
	       || (a >> 24) == 10u           /* 10.0.0.0/8 */
	       || (a >> 24) == 127u;         /* loopback */
}

static int udp_socket_bound(const struct sockaddr_in *sa)
{
	int one = 1;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* ------------------------------------------------------------------ server */

static void server_answer_udp(int fds[SERVER_SOCKETS], int idx, bool verbose)
{
	char buf[MSG_MAX + 1], who[ADDR_STR_MAX], out[MSG_MAX];
	struct sockaddr_in from;
	socklen_t fromlen = sizeof(from);
	ssize_t n = recvfrom(fds[idx], buf, MSG_MAX, 0, (struct sockaddr *)&from, &fromlen);
	if (n <= 0 || fromlen != sizeof(from))
		return;
	buf[n] = '\0';
	format_addr(&from, who, sizeof(who));

	/* "NATPROBE1 REQ <nonce> <from-index or ->" */
	char magic[16], verb[8], nonce[32], fromidx[8];
	if (sscanf(buf, "%15s %7s %31s %7s", magic, verb, nonce, fromidx) != 4 || strcmp(magic, MAGIC) != 0 ||
	    strcmp(verb, "REQ") != 0) {
		if (verbose)
			fprintf(stderr, "natprobe server: ignored a malformed datagram from %s\n", who);
		return;
	}
	if (!allowed_destination(&from))
		return;
	if (strcmp(fromidx, "-") != 0) {
		long k;
		if (parse_long(fromidx, 0, SERVER_SOCKETS - 1, &k)) {
			int len = snprintf(out, sizeof(out), "%s UNSOL %s %ld %s", MAGIC, nonce, k, who);
			sendto(fds[k], out, (size_t)len, 0, (const struct sockaddr *)&from, sizeof(from));
		}
	}
	int len = snprintf(out, sizeof(out), "%s SEEN %s %d %s", MAGIC, nonce, idx, who);
	sendto(fds[idx], out, (size_t)len, 0, (const struct sockaddr *)&from, sizeof(from));
	if (verbose)
		fprintf(stderr, "natprobe server: socket %d: request %s from %s (extra from %s)\n", idx, nonce, who,
			fromidx);
}

static void server_answer_tcp(int lfd, bool verbose)
{
	struct sockaddr_in from;
	socklen_t fromlen = sizeof(from);
	char who[ADDR_STR_MAX], out[MSG_MAX];
	int c = accept4(lfd, (struct sockaddr *)&from, &fromlen, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (c < 0)
		return;
	format_addr(&from, who, sizeof(who));
	int len = snprintf(out, sizeof(out), "%s TCP %s\n", MAGIC, who);
	/* A fresh connection's send buffer takes one short line without blocking. */
	if (send(c, out, (size_t)len, MSG_NOSIGNAL) != len && verbose)
		fprintf(stderr, "natprobe server: short TCP answer to %s\n", who);
	close(c);
	if (verbose)
		fprintf(stderr, "natprobe server: TCP from %s\n", who);
}

static int run_server(int argc, char **argv)
{
	long lifetime = DEFAULT_LIFETIME_S, maxdg = DEFAULT_MAX_DATAGRAMS;
	bool verbose = false;
	int i = 0;
	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "--lifetime") == 0 && i + 1 < argc) {
			if (!parse_long(argv[++i], 1, MAX_LIFETIME_S, &lifetime))
				goto bad;
		} else if (strcmp(argv[i], "--max") == 0 && i + 1 < argc) {
			if (!parse_long(argv[++i], 1, MAX_DATAGRAMS, &maxdg))
				goto bad;
		} else if (strcmp(argv[i], "-v") == 0) {
			verbose = true;
		} else {
			goto bad;
		}
		i++;
	}
	if (argc - i != SERVER_SOCKETS)
		goto bad;

	struct sockaddr_in sa[SERVER_SOCKETS];
	int fds[SERVER_SOCKETS];
	for (int k = 0; k < SERVER_SOCKETS; k++) {
		if (!parse_addr(argv[i + k], &sa[k]) || ntohs(sa[k].sin_port) == 0) {
			fprintf(stderr, "natprobe server: bad address '%s'\n", argv[i + k]);
			return 2;
		}
		fds[k] = udp_socket_bound(&sa[k]);
		if (fds[k] < 0) {
			fprintf(stderr, "natprobe server: cannot bind UDP %s: %s\n", argv[i + k], strerror(errno));
			return 2;
		}
	}
	int one = 1;
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(lfd, (const struct sockaddr *)&sa[IDX_PRIMARY], sizeof(sa[0])) < 0 || listen(lfd, TCP_BACKLOG) < 0) {
		fprintf(stderr, "natprobe server: cannot listen on TCP %s: %s\n", argv[i], strerror(errno));
		return 2;
	}

	struct sigaction act;
	memset(&act, 0, sizeof(act));
	act.sa_handler = on_signal;
	sigaction(SIGTERM, &act, NULL);
	sigaction(SIGINT, &act, NULL);

	struct pollfd pfd[SERVER_SOCKETS + 1];
	for (int k = 0; k < SERVER_SOCKETS; k++)
		pfd[k] = (struct pollfd){.fd = fds[k], .events = POLLIN};
	pfd[SERVER_SOCKETS] = (struct pollfd){.fd = lfd, .events = POLLIN};

	int64_t deadline = now_ms() + lifetime * 1000;
	long handled = 0;
	while (!stop_requested && handled < maxdg) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			break;
		int r = poll(pfd, SERVER_SOCKETS + 1, (int)(left > 1000 ? 1000 : left));
		if (r < 0 && errno != EINTR) {
			perror("natprobe server: poll");
			return 2;
		}
		for (int k = 0; r > 0 && k < SERVER_SOCKETS; k++) {
			if (pfd[k].revents & POLLIN) {
				server_answer_udp(fds, k, verbose);
				handled++;
			}
		}
		if (r > 0 && (pfd[SERVER_SOCKETS].revents & POLLIN)) {
			server_answer_tcp(lfd, verbose);
			handled++;
		}
	}
	if (verbose)
		fprintf(stderr, "natprobe server: done after %ld requests\n", handled);
	return 0;
bad:
	usage(stderr);
	return 2;
}

/* ------------------------------------------------------------------ client */

struct client {
	int fd;
	unsigned tries;
	int wait_ms, grace_ms;
	uint32_t run_id;
	unsigned next_nonce;
	/* Unsolicited datagrams seen, by the nonce of the request that asked for them. */
	bool unsol_seen[8];
};

/* Reads everything waiting on the socket. Returns true (and the address it carried) if a
 * SEEN answer for want_nonce came; records every UNSOL along the way. */
static bool client_drain(struct client *c, unsigned want_nonce, char *seen, size_t seenlen)
{
	bool got = false;
	for (int guard = 0; guard < 64; guard++) {
		char buf[MSG_MAX + 1], magic[16], verb[8], nonce[32], who[ADDR_STR_MAX];
		int idx;
		ssize_t n = recv(c->fd, buf, MSG_MAX, 0);
		if (n <= 0)
			break;
		buf[n] = '\0';
		if (sscanf(buf, "%15s %7s %31s %d %31s", magic, verb, nonce, &idx, who) != 5 ||
		    strcmp(magic, MAGIC) != 0)
			continue;
		unsigned run, nn;
		if (sscanf(nonce, "%8x-%u", &run, &nn) != 2 || run != c->run_id)
			continue;
		if (strcmp(verb, "UNSOL") == 0 && nn < sizeof(c->unsol_seen) / sizeof(c->unsol_seen[0])) {
			c->unsol_seen[nn] = true;
		} else if (strcmp(verb, "SEEN") == 0 && nn == want_nonce) {
			snprintf(seen, seenlen, "%s", who);
			got = true;
		}
	}
	return got;
}

/* Polls the socket for up to ms milliseconds, draining as datagrams come. */
static bool client_wait(struct client *c, int ms, unsigned want_nonce, char *seen, size_t seenlen)
{
	bool got = false;
	int64_t deadline = now_ms() + ms;
	for (;;) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			break;
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		int r = poll(&p, 1, (int)left);
		if (r > 0 && client_drain(c, want_nonce, seen, seenlen))
			got = true;
		if (got && want_nonce != UINT32_MAX)
			break;
	}
	return got;
}

/* One request with bounded retries. extra: server socket index for an extra unsolicited
 * datagram, or -1. Returns true with the address the server saw in seen. */
static bool client_request(struct client *c, const struct sockaddr_in *dst, int extra, unsigned *nonce_out,
			   char *seen, size_t seenlen)
{
	unsigned nonce = c->next_nonce++;
	char msg[MSG_MAX], idx[12]; /* room for any int: -O1 builds check the format */
	if (extra >= 0)
		snprintf(idx, sizeof(idx), "%d", extra);
	else
		snprintf(idx, sizeof(idx), "-");
	int len = snprintf(msg, sizeof(msg), "%s REQ %08x-%u %s", MAGIC, c->run_id, nonce, idx);
	*nonce_out = nonce;
	for (unsigned t = 0; t < c->tries; t++) {
		if (sendto(c->fd, msg, (size_t)len, 0, (const struct sockaddr *)dst, sizeof(*dst)) < 0 &&
		    errno != ECONNREFUSED && errno != EHOSTUNREACH && errno != ENETUNREACH)
			perror("natprobe client: sendto");
		if (client_wait(c, c->wait_ms, nonce, seen, seenlen))
			return true;
	}
	snprintf(seen, seenlen, "none");
	return false;
}

/* Asks dst for an extra datagram from server socket extra; prints key=arrived|blocked|unknown. */
static void client_unsolicited(struct client *c, const struct sockaddr_in *dst, int extra, const char *key)
{
	char seen[ADDR_STR_MAX];
	unsigned nonce;
	bool answered = client_request(c, dst, extra, &nonce, seen, sizeof(seen));
	/* The extra datagram was sent before the answer; give it a moment in case it is late. */
	if (answered && !c->unsol_seen[nonce])
		client_wait(c, c->grace_ms, UINT32_MAX, seen, sizeof(seen));
	printf("%s=%s\n", key, c->unsol_seen[nonce] ? "arrived" : answered ? "blocked" : "unknown");
}

static void client_tcp(const struct sockaddr_in *dst)
{
	char buf[MSG_MAX + 1], magic[16], verb[8], who[ADDR_STR_MAX];
	size_t have = 0;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int64_t deadline = now_ms() + TCP_TIMEOUT_MS;
	if (fd < 0)
		goto none;
	if (connect(fd, (const struct sockaddr *)dst, sizeof(*dst)) < 0 && errno != EINPROGRESS)
		goto none;
	while (have < MSG_MAX) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			goto none;
		struct pollfd p = {.fd = fd, .events = POLLIN};
		if (poll(&p, 1, (int)left) <= 0)
			continue;
		ssize_t n = recv(fd, buf + have, MSG_MAX - have, 0);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n <= 0)
			break;
		have += (size_t)n;
		if (memchr(buf, '\n', have))
			break;
	}
	buf[have] = '\0';
	if (sscanf(buf, "%15s %7s %31s", magic, verb, who) == 3 && strcmp(magic, MAGIC) == 0 &&
	    strcmp(verb, "TCP") == 0) {
		printf("tcp=%s\n", who);
		close(fd);
		return;
	}
none:
	printf("tcp=none\n");
	if (fd >= 0)
		close(fd);
}

static int run_client(int argc, char **argv)
{
	struct client c = {.tries = DEFAULT_TRIES, .wait_ms = DEFAULT_WAIT_MS, .grace_ms = DEFAULT_GRACE_MS};
	struct sockaddr_in bind_sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_ANY)};
	bool tcp = false;
	long v;
	int i = 0;
	while (i < argc && argv[i][0] == '-') {
		if (strcmp(argv[i], "--bind") == 0 && i + 1 < argc) {
			if (!parse_addr(argv[++i], &bind_sa))
				goto bad;
		} else if (strcmp(argv[i], "--tries") == 0 && i + 1 < argc) {
			if (!parse_long(argv[++i], 1, MAX_TRIES, &v))
				goto bad;
			c.tries = (unsigned)v;
		} else if (strcmp(argv[i], "--wait-ms") == 0 && i + 1 < argc) {
			if (!parse_long(argv[++i], 1, MAX_WAIT_MS, &v))
				goto bad;
			c.wait_ms = (int)v;
		} else if (strcmp(argv[i], "--grace-ms") == 0 && i + 1 < argc) {
			if (!parse_long(argv[++i], 0, MAX_WAIT_MS, &v))
				goto bad;
			c.grace_ms = (int)v;
		} else if (strcmp(argv[i], "--tcp") == 0) {
			tcp = true;
		} else {
			goto bad;
		}
		i++;
	}
	if (argc - i != 2)
		goto bad;
	struct sockaddr_in primary, secondary;
	if (!parse_addr(argv[i], &primary) || !parse_addr(argv[i + 1], &secondary)) {
		fprintf(stderr, "natprobe client: bad address\n");
		return 2;
	}
	if (!allowed_destination(&primary) || !allowed_destination(&secondary)) {
		fprintf(stderr, "natprobe client: refusing a destination outside the lab's ranges\n");
		return 2;
	}

	c.fd = udp_socket_bound(&bind_sa);
	if (c.fd < 0) {
		perror("natprobe client: bind");
		return 2;
	}
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	c.run_id = (uint32_t)ts.tv_nsec ^ ((uint32_t)getpid() << 12);

	/* The local address: the port from the socket, the address from a route lookup (a
	 * connected scratch socket) when the socket is bound to the wildcard. */
	struct sockaddr_in local;
	socklen_t ll = sizeof(local);
	char buf[ADDR_STR_MAX];
	getsockname(c.fd, (struct sockaddr *)&local, &ll);
	if (local.sin_addr.s_addr == htonl(INADDR_ANY)) {
		int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		struct sockaddr_in r;
		socklen_t rl = sizeof(r);
		if (s >= 0 && connect(s, (const struct sockaddr *)&primary, sizeof(primary)) == 0 &&
		    getsockname(s, (struct sockaddr *)&r, &rl) == 0)
			local.sin_addr = r.sin_addr;
		if (s >= 0)
			close(s);
	}
	format_addr(&local, buf, sizeof(buf));
	printf("local=%s\n", buf);

	char mp[ADDR_STR_MAX], ms[ADDR_STR_MAX];
	unsigned nonce;
	bool gp = client_request(&c, &primary, -1, &nonce, mp, sizeof(mp));
	printf("mapped_primary=%s\n", mp);
	if (gp) {
		client_unsolicited(&c, &primary, IDX_OTHERPORT, "unsol_port");
		client_unsolicited(&c, &primary, IDX_OTHERADDR, "unsol_addr");
		client_unsolicited(&c, &primary, IDX_SECONDARY, "unsol_secondary");
	} else {
		/* PRIMARY does not answer: nothing to ask it for, and no time to waste. */
		printf("unsol_port=unknown\nunsol_addr=unknown\nunsol_secondary=unknown\n");
	}
	bool gs = client_request(&c, &secondary, -1, &nonce, ms, sizeof(ms));
	printf("mapped_secondary=%s\n", ms);
	printf("mapping=%s\n", !(gp && gs) ? "unknown" : strcmp(mp, ms) == 0 ? "independent" : "dependent");
	if (tcp)
		client_tcp(&primary);
	fflush(stdout);
	close(c.fd);
	return 0;
bad:
	usage(stderr);
	return 2;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "server") == 0)
		return run_server(argc - 2, argv + 2);
	if (argc >= 2 && strcmp(argv[1], "client") == 0)
		return run_client(argc - 2, argv + 2);
	if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		usage(stdout);
		return 0;
	}
	usage(stderr);
	return 2;
}
