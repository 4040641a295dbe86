/* peerbench: what a peer map of N peers costs meshd's data path, measured on an offline
 * device (device_open_offline: no TUN, no socket, no root) in one process:
 *   - memory: RSS growth per added peer, as meshd holds a large map at start: every peer
 *     a coordinator peer with an announced endpoint and a probe round, and handshakes
 *     started ahead (device_initiate_ahead) with the first DEVICE_INITIATE_AHEAD_MAX of
 *     them only, so the rest are idle (no handshake, cookie jar or sessions),
 *   - a stranger's datagram: a data message with a random receiver index (no session has
 *     it), through rx_datagram, in ns each,
 *   - a route lookup: an overlay destination of the map to its peer (the TUN side), in ns,
 *   - a loop turn's timer work with nothing due (device_run_timers), in ns.
 * contrib/bench/peer-scale.sh runs it for several N and prints the table.
 *
 * Usage: peerbench --peers N [--packets M]; prints one line of key=value pairs.
 * Bounded: N <= PEERBENCH_MAX_PEERS, M <= PEERBENCH_MAX_PACKETS. */
#include <arpa/inet.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/ipaddr.h"
#include "core/keys.h"
#include "core/log.h"
#include "core/wire.h"
#include "meshd/device.h"
#include "meshd/path.h"
#include "meshd/peer.h"
#include "meshd/rx.h"
#include "meshd/tx.h"

enum {
	PEERBENCH_MAX_PEERS = 100000,     /* the design's goal is 10,000; ten times that is plenty */
	PEERBENCH_MAX_PACKETS = 10000000, /* a few seconds at the slowest rate measured */
	PEERBENCH_DEFAULT_PACKETS = 200000,
	PEERBENCH_TIMER_TURNS = 20000,    /* loop turns timed (each with nothing due) */
	PEERBENCH_DATA_LEN = WIRE_DATA_MIN_LEN + 16, /* a small data message */
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* Peer i owns 100.64.0.0/10 + i + 2 and fd7a:115c:a1e0::(i + 2). */
static void peer_addr4(size_t i, uint8_t out[4])
{
	uint32_t a = 0x64400000u + (uint32_t)i + 2;
	out[0] = (uint8_t)(a >> 24);
	out[1] = (uint8_t)(a >> 16);
	out[2] = (uint8_t)(a >> 8);
	out[3] = (uint8_t)a;
}

static void make_config_peer(size_t i, struct config_peer *cp)
{
	uint8_t priv[WIRE_KEY_LEN];
	memset(cp, 0, sizeof(*cp));
	randombytes_buf(priv, sizeof(priv));
	key_public_from_private(cp->public_key, priv);
	sodium_memzero(priv, sizeof(priv));
	snprintf(cp->name, sizeof(cp->name), "p%zu", i);
	cp->allowed_ips[0] = (struct ip_prefix){ .family = AF_INET, .bits = 32 };
	peer_addr4(i, cp->allowed_ips[0].addr);
	cp->allowed_ips[1] = (struct ip_prefix){ .family = AF_INET6, .bits = 128 };
	static const uint8_t v6[6] = { 0xfd, 0x7a, 0x11, 0x5c, 0xa1, 0xe0 };
	memcpy(cp->allowed_ips[1].addr, v6, sizeof(v6));
	uint32_t n = (uint32_t)i + 2;
	cp->allowed_ips[1].addr[12] = (uint8_t)(n >> 24);
	cp->allowed_ips[1].addr[13] = (uint8_t)(n >> 16);
	cp->allowed_ips[1].addr[14] = (uint8_t)(n >> 8);
	cp->allowed_ips[1].addr[15] = (uint8_t)n;
	cp->n_allowed_ips = 2;
}

static bool parse_count(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (*s == '\0' || *end != '\0' || v > max)
		return false;
	*out = v;
	return true;
}

int main(int argc, char **argv)
{
	unsigned long n_peers = 0, n_packets = PEERBENCH_DEFAULT_PACKETS;
	static const struct option opts[] = { { "peers", required_argument, NULL, 'n' },
					      { "packets", required_argument, NULL, 'm' },
					      { NULL, 0, NULL, 0 } };
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'n' && parse_count(optarg, PEERBENCH_MAX_PEERS, &n_peers))
			continue;
		if (c == 'm' && parse_count(optarg, PEERBENCH_MAX_PACKETS, &n_packets) && n_packets > 0)
			continue;
		fprintf(stderr, "usage: peerbench --peers N (0..%d) [--packets M (1..%d)]\n", PEERBENCH_MAX_PEERS,
			PEERBENCH_MAX_PACKETS);
		return 2;
	}
	if (sodium_init() < 0)
		return 1;
	log_init("peerbench", LOG_LEVEL_ERROR);

	struct config cfg;
	memset(&cfg, 0, sizeof(cfg));
	strcpy(cfg.interface, "bench0");
	cfg.mtu = 1420;
	cfg.cookie_threshold = CONFIG_DEFAULT_COOKIE_THRESHOLD;
	cfg.n_addresses = 1;
	ip_prefix_parse("100.64.0.1/10", &cfg.addresses[0]);
	static struct device dev;
	uint8_t priv[WIRE_KEY_LEN];
	char err[256];
	randombytes_buf(priv, sizeof(priv));
	if (!device_open_offline(&dev, &cfg, priv, err, sizeof(err))) {
		fprintf(stderr, "peerbench: %s\n", err);
		return 1;
	}
	sodium_memzero(priv, sizeof(priv));

	/* Each peer gets an endpoint (TEST-NET-3, never reached: the device is offline) and a
	 * probe round; initiations then go to as many as meshd starts ahead of traffic. */
	uint64_t now_ms = 1000000;
	long rss0 = rss_kib();
	uint64_t t0 = now_ns();
	for (size_t i = 0; i < n_peers; i++) {
		struct config_peer cp;
		make_config_peer(i, &cp);
		struct peer *p = device_peer_add(&dev, &cp);
		if (!p) {
			fprintf(stderr, "peerbench: out of memory at peer %zu\n", i);
			return 1;
		}
		struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons(51820) };
		in.sin_addr.s_addr = htonl(0xcb007100u | (uint32_t)(i & 0xff));
		struct sockaddr_storage ep;
		device_socket_address(&dev, (const struct sockaddr *)&in, &ep);
		sockaddr_inet_set(&p->endpoint, &ep);
		p->has_endpoint = true;
		/* a coordinator peer, with the endpoint announced (its path table in use) */
		p->from_coordinator = true;
		path_set_announced(&p->path, &ep, 1, now_ms);
	}
	uint64_t add_ns = now_ns() - t0;
	device_initiate_ahead(&dev, now_ms); /* as device_run and a complete coordinator map do */
	device_outbox_flush(&dev);
	device_run_timers(&dev, now_ms);
	device_outbox_flush(&dev);
	long rss1 = rss_kib();

	/* A stranger's data messages: random receiver indices. */
	uint8_t msg[PEERBENCH_DATA_LEN];
	memset(msg, 0, sizeof(msg));
	wire_put_header(msg, MSG_DATA);
	struct sockaddr_storage from;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&from;
	memset(&from, 0, sizeof(from));
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(40000);
	inet_pton(AF_INET6, "::ffff:198.51.100.9", &sin6->sin6_addr);
	uint32_t *indices = malloc(n_packets * sizeof(*indices)); /* drawn before timing */
	if (!indices)
		return 1;
	randombytes_buf(indices, n_packets * sizeof(*indices));
	uint64_t unknown0 = dev.counters.rx_data_unknown_index;
	t0 = now_ns();
	for (unsigned long k = 0; k < n_packets; k++) {
		wire_put_u32(msg + WIRE_DATA_OFF_RECEIVER, indices[k]);
		rx_datagram(&dev, msg, sizeof(msg), &from, now_ms);
	}
	uint64_t stranger_ns = now_ns() - t0;
	uint64_t refused = dev.counters.rx_data_unknown_index - unknown0;
	free(indices);

	/* Route lookups: destinations spread over the map (or one miss without peers). */
	size_t found = 0;
	t0 = now_ns();
	for (unsigned long k = 0; k < n_packets; k++) {
		uint8_t a[4];
		peer_addr4(n_peers ? (size_t)(k * 2654435761u % n_peers) : 0, a);
		found += peer_by_address(&dev, AF_INET, a) != NULL;
	}
	uint64_t route_ns = now_ns() - t0;

	/* Loop turns with nothing due (1 ms apart, well before any peer's next deadline). */
	t0 = now_ns();
	for (unsigned int k = 0; k < PEERBENCH_TIMER_TURNS; k++)
		device_run_timers(&dev, now_ms + 1 + k % 100);
	uint64_t timers_ns = now_ns() - t0;
	device_outbox_flush(&dev);

	printf("peers=%lu add_us_per_peer=%.1f rss0_kib=%ld rss_kib=%ld kib_per_peer=%.2f stranger_ns=%.0f "
	       "refused=%" PRIu64 " route_ns=%.0f routed=%zu timer_turn_ns=%.0f\n",
	       n_peers, n_peers ? add_ns / 1000.0 / n_peers : 0.0, rss0, rss1,
	       n_peers ? (double)(rss1 - rss0) / n_peers : 0.0, (double)stranger_ns / n_packets, refused,
	       (double)route_ns / n_packets, found, (double)timers_ns / PEERBENCH_TIMER_TURNS);
	device_close(&dev);
	return refused == n_packets ? 0 : 1;
}
