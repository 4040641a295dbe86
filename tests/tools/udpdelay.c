/* udpdelay: a UDP relay that holds every datagram for a fixed delay, for the netns tests.
 *
 * The kernel of a test machine may have no netem, and a veth cable delivers in microseconds,
 * so two handshake initiations sent "at the same moment" never really cross in flight. This
 * relay sits in a namespace between two nodes, each configured with the relay as the other's
 * endpoint, and forwards each datagram after --delay-ms: what A sends to its side of the relay
 * leaves the relay's B side for B, and the other way round. Two initiations sent less than the
 * delay apart are then both in flight at once, deterministically.
 *
 *   udpdelay --a-bind IP:PORT --a-peer IP:PORT --b-bind IP:PORT --b-peer IP:PORT
 *            [--delay-ms N] [--max-seconds N] [--max-packets N]
 *
 * Datagrams from anyone but the configured peer of a side are dropped (counted). One line per
 * datagram received goes to stdout, so a test can see the order in which they came:
 *   rx <ms since start> <A>B|B>A> len=<bytes> type=<first byte>
 * "ready" is printed once both sockets are bound; "done ..." with the totals on exit.
 *
 * Bounded: it exits after --max-seconds (default 10, at most 120) or --max-packets forwarded
 * (default 1000, at most 100000), whichever comes first; at most RELAY_QUEUE datagrams wait at
 * once (more are dropped, counted). IPv4 only, and only to the documentation, CGNAT, 10/8 and
 * loopback ranges, so a typo in a test never sends anything to the internet.
 *
 * Only libc: the test must not depend on the code it is testing.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* SOCK_NONBLOCK, getopt_long */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
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
	RELAY_QUEUE = 256,
	RELAY_MAX_DATAGRAM = 2048, /* meshd's largest message is an MTU's worth of data */
	RELAY_MAX_SECONDS = 120,
	RELAY_MAX_PACKETS = 100000,
	RELAY_MAX_DELAY_MS = 10000,
};

struct held {
	uint64_t due_ms;
	int to_side; /* 0: send from side A's socket to A's peer; 1: from B's to B's peer */
	size_t len;
	uint8_t data[RELAY_MAX_DATAGRAM];
};

/* A constant delay keeps arrival order, so a FIFO ring is the whole scheduler. */
static struct held queue[RELAY_QUEUE];
static size_t q_head, q_count;

/* SIGTERM and SIGINT end the loop, so the "done" line with the totals still comes out. */
static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static bool allowed_address(uint32_t a)
{
	return (a >> 8) == 0xC00002u ||   /* 192.0.2.0/24 */
	       (a >> 8) == 0xC63364u ||   /* 198.51.100.0/24 */
	       (a >> 8) == 0xCB0071u ||   /* 203.0.113.0/24 */
	       (a >> 22) == (0x64400000u >> 22) || /* 100.64.0.0/10 */
	       (a >> 24) == 10u || (a >> 24) == 127u;
}

static bool parse_endpoint(const char *s, struct sockaddr_in *out)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return false;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	char *end;
	errno = 0;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (errno || *end || colon[1] == '\0' || port == 0 || port > 65535)
		return false;
	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	out->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &out->sin_addr) != 1)
		return false;
	if (!allowed_address(ntohl(out->sin_addr.s_addr))) {
		fprintf(stderr, "udpdelay: %s is outside the test ranges; refusing\n", s);
		return false;
	}
	return true;
}

static bool parse_number(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || s[0] == '\0' || v > max)
		return false;
	*out = v;
	return true;
}

static int bind_socket(const struct sockaddr_in *addr)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("udpdelay: socket");
		return -1;
	}
	if (bind(fd, (const struct sockaddr *)addr, sizeof(*addr)) != 0) {
		perror("udpdelay: bind");
		close(fd);
		return -1;
	}
	return fd;
}

static void usage(void)
{
	fprintf(stderr, "usage: udpdelay --a-bind IP:PORT --a-peer IP:PORT --b-bind IP:PORT --b-peer IP:PORT\n"
			"                [--delay-ms N] [--max-seconds N] [--max-packets N]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "a-bind", required_argument, NULL, 'a' },	 { "a-peer", required_argument, NULL, 'A' },
		{ "b-bind", required_argument, NULL, 'b' },	 { "b-peer", required_argument, NULL, 'B' },
		{ "delay-ms", required_argument, NULL, 'd' },	 { "max-seconds", required_argument, NULL, 's' },
		{ "max-packets", required_argument, NULL, 'n' }, { NULL, 0, NULL, 0 },
	};
	struct sockaddr_in bind_addr[2], peer_addr[2];
	bool have[4] = { false, false, false, false };
	unsigned long delay_ms = 300, max_seconds = 10, max_packets = 1000;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		bool ok;
		switch (c) {
		case 'a': ok = have[0] = parse_endpoint(optarg, &bind_addr[0]); break;
		case 'A': ok = have[1] = parse_endpoint(optarg, &peer_addr[0]); break;
		case 'b': ok = have[2] = parse_endpoint(optarg, &bind_addr[1]); break;
		case 'B': ok = have[3] = parse_endpoint(optarg, &peer_addr[1]); break;
		case 'd': ok = parse_number(optarg, RELAY_MAX_DELAY_MS, &delay_ms); break;
		case 's': ok = parse_number(optarg, RELAY_MAX_SECONDS, &max_seconds) && max_seconds > 0; break;
		case 'n': ok = parse_number(optarg, RELAY_MAX_PACKETS, &max_packets) && max_packets > 0; break;
		default: ok = false; break;
		}
		if (!ok) {
			fprintf(stderr, "udpdelay: bad value for an option\n");
			usage();
			return 2;
		}
	}
	if (optind != argc || !have[0] || !have[1] || !have[2] || !have[3]) {
		usage();
		return 2;
	}

	setvbuf(stdout, NULL, _IOLBF, 0);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	int fd[2];
	fd[0] = bind_socket(&bind_addr[0]);
	if (fd[0] < 0)
		return 1;
	fd[1] = bind_socket(&bind_addr[1]);
	if (fd[1] < 0) {
		close(fd[0]);
		return 1;
	}

	const uint64_t start = now_ms();
	const uint64_t deadline = start + max_seconds * 1000u;
	unsigned long forwarded = 0, dropped_stranger = 0, dropped_full = 0, send_errors = 0;
	int rc = 0;
	printf("ready delay_ms=%lu\n", delay_ms);

	while (forwarded < max_packets && !stop_requested) {
		uint64_t now = now_ms();
		if (now >= deadline)
			break;

		/* Send everything that is due. */
		while (q_count > 0 && queue[q_head].due_ms <= now && forwarded < max_packets) {
			struct held *h = &queue[q_head];
			if (sendto(fd[h->to_side], h->data, h->len, 0, (const struct sockaddr *)&peer_addr[h->to_side],
				   sizeof(peer_addr[h->to_side])) < 0)
				send_errors++;
			else
				forwarded++;
			q_head = (q_head + 1) % RELAY_QUEUE;
			q_count--;
		}
		if (forwarded >= max_packets)
			break;

		uint64_t wake = deadline;
		if (q_count > 0 && queue[q_head].due_ms < wake)
			wake = queue[q_head].due_ms;
		/* At most 100 ms, so a signal that lands just before poll still ends us soon. */
		int timeout = wake <= now ? 0 : wake - now > 100 ? 100 : (int)(wake - now);
		struct pollfd pfd[2] = { { .fd = fd[0], .events = POLLIN }, { .fd = fd[1], .events = POLLIN } };
		int n = poll(pfd, 2, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("udpdelay: poll");
			rc = 1;
			break;
		}
		for (int side = 0; side < 2; side++) {
			if (!(pfd[side].revents & POLLIN))
				continue;
			/* A bounded number of reads per wake-up, so one side cannot starve the clock. */
			for (int i = 0; i < 64; i++) {
				uint8_t buf[RELAY_MAX_DATAGRAM];
				struct sockaddr_in from;
				socklen_t fromlen = sizeof(from);
				ssize_t len = recvfrom(fd[side], buf, sizeof(buf), MSG_TRUNC, (struct sockaddr *)&from,
						       &fromlen);
				if (len < 0)
					break;
				uint64_t t = now_ms();
				if (fromlen != sizeof(from) || from.sin_addr.s_addr != peer_addr[side].sin_addr.s_addr ||
				    from.sin_port != peer_addr[side].sin_port) {
					dropped_stranger++;
					continue;
				}
				if ((size_t)len > sizeof(buf) || q_count == RELAY_QUEUE) {
					dropped_full++;
					continue;
				}
				printf("rx %" PRIu64 " %s len=%zd type=%u\n", t - start, side == 0 ? "A>B" : "B>A", len,
				       len > 0 ? buf[0] : 0u);
				struct held *h = &queue[(q_head + q_count) % RELAY_QUEUE];
				h->due_ms = t + delay_ms;
				h->to_side = 1 - side;
				h->len = (size_t)len;
				memcpy(h->data, buf, (size_t)len);
				q_count++;
			}
		}
	}

	printf("done forwarded=%lu still_held=%zu dropped_stranger=%lu dropped_full=%lu send_errors=%lu ms=%" PRIu64
	       "\n",
	       forwarded, q_count, dropped_stranger, dropped_full, send_errors, now_ms() - start);
	close(fd[0]);
	close(fd[1]);
	return rc;
}
