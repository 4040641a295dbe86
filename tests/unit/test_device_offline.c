/* Two whole meshd devices (device_open_offline: no TUN, no socket) configured as static
 * peers of each other, with an injected clock. Datagrams are carried by hand from one
 * device's outbox to the other's rx_datagram, and each device's "TUN" is a pipe, so what
 * it would hand the kernel is read back byte for byte.
 *
 * The promises are checked in literal numbers, not through the constants the code uses
 * (a changed constant must break a test here): a new handshake at 120 s under traffic,
 * keys refused for sending and receiving at 180 s, keys wiped after 540 s of silence,
 * a new handshake after 2^60 messages, and cryptokey routing (a packet whose inner source
 * is not the sender's address is counted once as rx_data_bad_source and never written),
 * WireGuard's cookie exchange under load, and preshared keys (the same on both sides
 * connects, different ones do not, one of zeros is none). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sodium.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/ipaddr.h"
#include "core/keys.h"
#include "core/wire.h"
#include "meshd/device.h"
#include "meshd/peer.h"
#include "meshd/rx.h"
#include "meshd/tx.h"

#define T0 UINT64_C(1000000) /* any start but 0 (0 means "never" for some timestamps) */
#define SEC UINT64_C(1000)

enum {
	MAX_SETTLE_ROUNDS = 8, /* a handshake and its confirmation take 3 trips */
	PKT_LEN = 84,          /* an IPv4 ping's size */
};

struct node {
	struct device dev;
	struct sockaddr_storage addr; /* where the other node sees it on the underlay */
	int tun_read;                 /* read end of the pipe that stands in for TUN */
	uint8_t ip[4];                /* its overlay address */
};

struct pair {
	struct node a, b;
	bool cut; /* the underlay drops everything */
};

/* ---------------------------------------------------------------- set-up */

static void underlay_addr(struct device *dev, const char *ip, struct sockaddr_storage *out)
{
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons(51820) };
	assert_int_equal(inet_pton(AF_INET, ip, &in.sin_addr), 1);
	assert_true(device_socket_address(dev, (const struct sockaddr *)&in, out));
}

static void node_open(struct node *n, uint8_t key_byte, const char *overlay, uint8_t peer_key_byte,
		      const char *peer_overlay_32, const uint8_t *psk)
{
	struct config cfg;
	struct config_peer cp;
	uint8_t priv[WIRE_KEY_LEN], peer_priv[WIRE_KEY_LEN];
	char err[256];
	char prefix[32];

	memset(&cfg, 0, sizeof(cfg));
	memset(&cp, 0, sizeof(cp));
	strcpy(cfg.interface, "offline0");
	cfg.mtu = 1420;
	cfg.cookie_threshold = CONFIG_DEFAULT_COOKIE_THRESHOLD;
	cfg.n_addresses = 1;
	snprintf(prefix, sizeof(prefix), "%s/10", overlay);
	assert_true(ip_prefix_parse(prefix, &cfg.addresses[0]));
	assert_int_equal(inet_pton(AF_INET, overlay, n->ip), 1);

	memset(peer_priv, peer_key_byte, sizeof(peer_priv));
	key_public_from_private(cp.public_key, peer_priv);
	strcpy(cp.name, "other");
	if (psk) {
		cp.has_psk = true;
		memcpy(cp.psk, psk, WIRE_KEY_LEN);
	}
	cp.n_allowed_ips = 1;
	assert_true(ip_prefix_parse(peer_overlay_32, &cp.allowed_ips[0]));
	cfg.peers = &cp;
	cfg.n_peers = 1;

	memset(priv, key_byte, sizeof(priv));
	assert_true(device_open_offline(&n->dev, &cfg, priv, err, sizeof(err)));
	sodium_memzero(priv, sizeof(priv));

	/* TUN writes go to a pipe: the device writes a packet only when it would deliver it. */
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	assert_int_equal(fcntl(fds[0], F_SETFL, O_NONBLOCK), 0);
	assert_int_equal(fcntl(fds[1], F_SETFL, O_NONBLOCK), 0);
	n->tun_read = fds[0];
	n->dev.tun_fd = fds[1]; /* device_close closes it */
}

/* psk_a, psk_b: each side's preshared key for the other, or NULL for none. */
static void pair_open_psk(struct pair *pr, const uint8_t *psk_a, const uint8_t *psk_b)
{
	memset(pr, 0, sizeof(*pr));
	node_open(&pr->a, 0x11, "100.64.0.1", 0x22, "100.64.0.2/32", psk_a);
	node_open(&pr->b, 0x22, "100.64.0.2", 0x11, "100.64.0.1/32", psk_b);
	underlay_addr(&pr->a.dev, "192.0.2.1", &pr->a.addr);
	underlay_addr(&pr->b.dev, "192.0.2.2", &pr->b.addr);
	/* Static endpoints, as `endpoint:` in each config would give. */
	sockaddr_inet_set(&pr->a.dev.peers[0]->endpoint, &pr->b.addr);
	pr->a.dev.peers[0]->has_endpoint = true;
	sockaddr_inet_set(&pr->b.dev.peers[0]->endpoint, &pr->a.addr);
	pr->b.dev.peers[0]->has_endpoint = true;
}

static void pair_open(struct pair *pr)
{
	pair_open_psk(pr, NULL, NULL);
}

static void pair_close(struct pair *pr)
{
	close(pr->a.tun_read);
	close(pr->b.tun_read);
	device_close(&pr->a.dev);
	device_close(&pr->b.dev);
}

/* ---------------------------------------------------------------- the wire */

/* Initiations carry a TAI64N timestamp from the real clock, coarsened to 2^24 ns; the
 * receiver refuses one not newer than the last. Simulated minutes pass in real
 * microseconds here, so after each completed handshake wait out one coarse tick. */
static void wait_timestamp_tick(void)
{
	struct timespec ts = { .tv_sec = 0, .tv_nsec = 20 * 1000 * 1000 };
	nanosleep(&ts, NULL);
}

/* Moves every datagram in from's outbox to `to` (unless the link is cut). Returns how
 * many were in the outbox. Each must be addressed to `to`. */
static unsigned int carry(struct pair *pr, struct node *from, struct node *to, uint64_t now)
{
	struct udp_outbox *ob = &from->dev.outbox;
	unsigned int n = ob->count;

	for (unsigned int i = 0; i < n; i++) {
		assert_true(sockaddr_equal(&ob->dest[i], &to->addr));
		if (!pr->cut)
			rx_datagram(&to->dev, ob->iov[i].iov_base, ob->iov[i].iov_len, &from->addr, now);
	}
	ob->count = 0;
	return n;
}

/* Carries datagrams both ways until both outboxes are empty. */
static void settle(struct pair *pr, uint64_t now)
{
	uint64_t done = pr->a.dev.counters.handshakes_completed + pr->b.dev.counters.handshakes_completed;
	int rounds = 0;

	while (pr->a.dev.outbox.count || pr->b.dev.outbox.count) {
		assert_true(++rounds <= MAX_SETTLE_ROUNDS);
		carry(pr, &pr->a, &pr->b, now);
		carry(pr, &pr->b, &pr->a, now);
	}
	if (pr->a.dev.counters.handshakes_completed + pr->b.dev.counters.handshakes_completed != done)
		wait_timestamp_tick();
}

static void run_timers(struct pair *pr, uint64_t now)
{
	device_run_timers(&pr->a.dev, now);
	device_run_timers(&pr->b.dev, now);
	settle(pr, now);
}

/* Counts the data messages waiting in a device's outbox. */
static unsigned int outbox_data_messages(const struct device *dev)
{
	unsigned int n = 0;
	for (unsigned int i = 0; i < dev->outbox.count; i++)
		if (((const uint8_t *)dev->outbox.iov[i].iov_base)[WIRE_OFF_TYPE] == MSG_DATA)
			n++;
	return n;
}

static unsigned int outbox_initiations(const struct device *dev)
{
	unsigned int n = 0;
	for (unsigned int i = 0; i < dev->outbox.count; i++)
		if (((const uint8_t *)dev->outbox.iov[i].iov_base)[WIRE_OFF_TYPE] == MSG_HANDSHAKE_INITIATION)
			n++;
	return n;
}

/* ---------------------------------------------------------------- packets */

static uint16_t ipv4_checksum(const uint8_t *h, size_t len)
{
	uint32_t sum = 0;
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(h[i] << 8 | h[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* An ICMP echo request of PKT_LEN bytes from src to dst; `seq` makes each one distinct. */
static void make_ipv4(uint8_t pkt[PKT_LEN], const uint8_t src[4], const uint8_t dst[4], uint16_t seq)
{
	memset(pkt, 0, PKT_LEN);
	pkt[0] = 0x45;
	pkt[2] = PKT_LEN >> 8;
	pkt[3] = PKT_LEN & 0xff;
	pkt[4] = (uint8_t)(seq >> 8);
	pkt[5] = (uint8_t)seq;
	pkt[8] = 64; /* TTL */
	pkt[9] = 1;  /* ICMP */
	memcpy(pkt + 12, src, 4);
	memcpy(pkt + 16, dst, 4);
	uint16_t c = ipv4_checksum(pkt, 20);
	pkt[10] = (uint8_t)(c >> 8);
	pkt[11] = (uint8_t)c;
	pkt[20] = 8; /* echo request */
	pkt[26] = (uint8_t)(seq >> 8);
	pkt[27] = (uint8_t)seq;
	for (int i = 28; i < PKT_LEN; i++)
		pkt[i] = (uint8_t)i;

	struct ip_packet_info info;
	assert_true(ip_packet_parse(pkt, PKT_LEN, &info));
	assert_int_equal(info.total_len, PKT_LEN);
}

/* What the node wrote to its TUN since the last call: number of packets, each checked to
 * be a PKT_LEN packet (a pipe keeps the writes apart only by their lengths). */
static unsigned int tun_packets(struct node *n, uint8_t last[PKT_LEN])
{
	uint8_t buf[PKT_LEN];
	unsigned int count = 0;
	ssize_t r;

	while ((r = read(n->tun_read, buf, sizeof(buf))) > 0) {
		assert_int_equal(r, PKT_LEN);
		if (last)
			memcpy(last, buf, PKT_LEN);
		count++;
	}
	return count;
}

/* A sends one packet to B (from A's own address), then B one back; the wire settles.
 * Returns how many of the two arrived on the other's TUN. */
static unsigned int ping(struct pair *pr, uint16_t seq, uint64_t now)
{
	uint8_t pkt[PKT_LEN], got[PKT_LEN];
	unsigned int arrived = 0;

	make_ipv4(pkt, pr->a.ip, pr->b.ip, seq);
	tx_send_packet(&pr->a.dev, pr->a.dev.peers[0], pkt, PKT_LEN, now);
	settle(pr, now);
	if (tun_packets(&pr->b, got) == 1) {
		assert_memory_equal(got, pkt, PKT_LEN);
		arrived++;
	}
	make_ipv4(pkt, pr->b.ip, pr->a.ip, seq);
	tx_send_packet(&pr->b.dev, pr->b.dev.peers[0], pkt, PKT_LEN, now);
	settle(pr, now);
	if (tun_packets(&pr->a, got) == 1) {
		assert_memory_equal(got, pkt, PKT_LEN);
		arrived++;
	}
	return arrived;
}

/* A initiates at T0 (as device_run does at start) and the first ping goes both ways. */
static void connect_at_t0(struct pair *pr)
{
	tx_send_initiation(&pr->a.dev, pr->a.dev.peers[0], T0, false);
	settle(pr, T0);
	assert_int_equal(pr->a.dev.counters.handshakes_completed, 1);
	assert_int_equal(pr->b.dev.counters.handshakes_completed, 1);
	assert_true(pr->a.dev.peers[0]->sessions->current.valid);
	assert_true(pr->b.dev.peers[0]->sessions->current.valid); /* confirmed by A's keepalive */
	assert_int_equal(ping(pr, 0, T0), 2);
}

static void assert_no_drops(const struct device *dev)
{
	assert_int_equal(dev->counters.rx_handshake_invalid, 0);
	assert_int_equal(dev->counters.rx_handshake_replayed, 0);
	assert_int_equal(dev->counters.rx_data_auth_failed, 0);
	assert_int_equal(dev->counters.rx_data_unknown_index, 0);
	assert_int_equal(dev->counters.rx_data_replayed, 0);
	assert_int_equal(dev->counters.rx_data_bad_source, 0);
	assert_int_equal(dev->counters.tx_dropped, 0);
	assert_int_equal(dev->counters.rx_handshake_ratelimited, 0);
}

/* ---------------------------------------------------------------- the promises */

/* Under steady traffic (a ping each way every second) the initiator starts a new handshake
 * when its session is 120 s old, not a second earlier, and no packet is lost over it. */
static void test_rekey_at_120s_under_traffic(void **state)
{
	(void)state;
	struct pair pr;
	pair_open(&pr);
	connect_at_t0(&pr);

	uint64_t first_rekey_s = 0;
	for (uint64_t s = 1; s <= 130; s++) {
		uint64_t now = T0 + s * SEC;
		uint64_t before = pr.a.dev.counters.handshakes_completed;
		assert_int_equal(ping(&pr, (uint16_t)s, now), 2);
		run_timers(&pr, now);
		if (!first_rekey_s && pr.a.dev.counters.handshakes_completed > before)
			first_rekey_s = s;
	}
	assert_int_equal(first_rekey_s, 120);
	assert_int_equal(pr.a.dev.counters.handshakes_completed, 2); /* one rekey, not one per packet */
	assert_int_equal(pr.a.dev.peers[0]->sessions->current.created_ms, T0 + 120 * SEC);
	/* The responder followed: it now sends on the new session too. */
	assert_int_equal(pr.b.dev.peers[0]->sessions->current.local_index, pr.a.dev.peers[0]->sessions->current.remote_index);
	assert_no_drops(&pr.a.dev);
	assert_no_drops(&pr.b.dev);
	pair_close(&pr);
}

/* A session is never used for sending at 180 s: with the underlay down since just after
 * the handshake (so no rekey can complete), A still encrypts at 179.999 s and stages the
 * packet at 180 s. B refuses A's data from 180 s on as well, even a message A made in time. */
static void test_refused_at_180s(void **state)
{
	(void)state;
	struct pair pr;
	pair_open(&pr);
	connect_at_t0(&pr);
	struct peer *pa = pr.a.dev.peers[0];
	uint8_t pkt[PKT_LEN];

	pr.cut = true;
	make_ipv4(pkt, pr.a.ip, pr.b.ip, 1);
	tx_send_packet(&pr.a.dev, pa, pkt, PKT_LEN, T0 + 179 * SEC);
	assert_int_equal(outbox_data_messages(&pr.a.dev), 1);
	/* The old session is past 120 s, so a new handshake starts; it is lost on the cut. */
	assert_int_equal(outbox_initiations(&pr.a.dev), 1);
	settle(&pr, T0 + 179 * SEC);

	/* Two messages made 1 ms before the limit: one delivered before it, one after. */
	pr.cut = false;
	uint64_t late = T0 + 180 * SEC - 1;
	make_ipv4(pkt, pr.a.ip, pr.b.ip, 2);
	tx_send_packet(&pr.a.dev, pa, pkt, PKT_LEN, late);
	make_ipv4(pkt, pr.a.ip, pr.b.ip, 3);
	tx_send_packet(&pr.a.dev, pa, pkt, PKT_LEN, late);
	assert_int_equal(outbox_data_messages(&pr.a.dev), 2);
	assert_int_equal(outbox_initiations(&pr.a.dev), 0); /* one in flight since 179 s */
	struct udp_outbox *ob = &pr.a.dev.outbox;
	rx_datagram(&pr.b.dev, ob->iov[0].iov_base, ob->iov[0].iov_len, &pr.a.addr, late);
	assert_int_equal(tun_packets(&pr.b, NULL), 1);
	rx_datagram(&pr.b.dev, ob->iov[1].iov_base, ob->iov[1].iov_len, &pr.a.addr, T0 + 180 * SEC);
	assert_int_equal(tun_packets(&pr.b, NULL), 0);
	assert_int_equal(pr.b.dev.counters.rx_data_auth_failed, 1);
	ob->count = 0;

	/* At 180 s A does not encrypt with the old keys: the packet waits for a new session. */
	pr.cut = true;
	uint64_t tx_bytes = pa->tx_bytes;
	make_ipv4(pkt, pr.a.ip, pr.b.ip, 4);
	tx_send_packet(&pr.a.dev, pa, pkt, PKT_LEN, T0 + 180 * SEC);
	assert_int_equal(outbox_data_messages(&pr.a.dev), 0);
	assert_int_equal(pa->tx_bytes, tx_bytes);
	assert_int_equal(pa->staged.count, 1);
	settle(&pr, T0 + 180 * SEC);

	/* The underlay comes back: the retransmitted initiation gets through and the staged
	 * packet is delivered on the new session. */
	pr.cut = false;
	uint64_t done = pr.a.dev.counters.handshakes_completed;
	for (uint64_t ms = 180 * SEC; ms <= 200 * SEC && pr.a.dev.counters.handshakes_completed == done; ms += 100)
		run_timers(&pr, T0 + ms);
	assert_int_equal(pr.a.dev.counters.handshakes_completed, done + 1);
	assert_int_equal(pa->staged.count, 0);
	assert_int_equal(tun_packets(&pr.b, NULL), 1);
	pair_close(&pr);
}

/* After 540 s without a new session every key of the peer is wiped, on both sides; at
 * 539 s they are still there. Timers run every second; nothing is sent meanwhile. */
static void test_keys_wiped_at_540s(void **state)
{
	(void)state;
	struct pair pr;
	pair_open(&pr);
	connect_at_t0(&pr);
	struct peer *pa = pr.a.dev.peers[0], *pb = pr.b.dev.peers[0];

	for (uint64_t s = 1; s <= 539; s++)
		run_timers(&pr, T0 + s * SEC);
	assert_true(pa->sessions->current.valid && !sodium_is_zero(pa->sessions->current.send_key, WIRE_KEY_LEN));
	assert_true(pb->sessions->current.valid && !sodium_is_zero(pb->sessions->current.recv_key, WIRE_KEY_LEN));
	assert_int_equal(pr.a.dev.counters.handshakes_completed, 1); /* silence: no rekey meanwhile */

	run_timers(&pr, T0 + 540 * SEC);
	/* wiped and freed (peer_wipe_keys): an idle peer holds no sessions nor handshake */
	struct peer *peers[] = { pa, pb };
	for (size_t i = 0; i < 2; i++) {
		assert_null(peers[i]->sessions);
		assert_null(peers[i]->handshake);
		assert_false(peer_session_usable(peers[i], T0 + 540 * SEC));
	}
	assert_int_equal(pr.a.dev.outbox.count + pr.b.dev.outbox.count, 0);
	pair_close(&pr);
}

/* After 2^60 messages on one session its sender starts a new handshake, long before 120 s
 * and whichever side initiated the session. The counter is preset 2 short of 2^60. */
static void test_rekey_after_2_pow_60_messages(void **state)
{
	(void)state;
	struct pair pr;
	pair_open(&pr);
	connect_at_t0(&pr);
	const uint64_t limit = UINT64_C(1152921504606846976); /* 2^60 */
	struct node *sender[] = { &pr.b, &pr.a }; /* B (the responder) first, then A */
	uint8_t pkt[PKT_LEN];

	for (size_t i = 0; i < 2; i++) {
		struct node *from = sender[i], *to = from == &pr.a ? &pr.b : &pr.a;
		struct peer *p = from->dev.peers[0];
		uint64_t now = T0 + (10 + 10 * i) * SEC;
		uint64_t done = from->dev.counters.handshakes_completed + to->dev.counters.handshakes_completed;

		p->sessions->current.send_counter = limit - 2;
		make_ipv4(pkt, from->ip, to->ip, 1);
		tx_send_packet(&from->dev, p, pkt, PKT_LEN, now);
		assert_int_equal(outbox_initiations(&from->dev), 0); /* sent with counter 2^60 - 2 */
		settle(&pr, now);
		make_ipv4(pkt, from->ip, to->ip, 2);
		tx_send_packet(&from->dev, p, pkt, PKT_LEN, now);
		assert_int_equal(from->dev.outbox.count, 2);
		const uint8_t *data = from->dev.outbox.iov[0].iov_base;
		assert_int_equal(data[WIRE_OFF_TYPE], MSG_DATA);
		assert_int_equal(wire_get_u64(data + WIRE_DATA_OFF_COUNTER), limit - 1);
		assert_int_equal(outbox_initiations(&from->dev), 1); /* the 2^60th message: rekey */
		settle(&pr, now);
		assert_int_equal(tun_packets(to, NULL), 2);
		assert_int_equal(from->dev.counters.handshakes_completed + to->dev.counters.handshakes_completed,
				 done + 2);
		assert_int_equal(p->sessions->current.send_counter, 1); /* fresh keys: only the confirming keepalive */
		assert_int_equal(ping(&pr, (uint16_t)(100 + i), now), 2);
	}
	assert_no_drops(&pr.a.dev);
	assert_no_drops(&pr.b.dev);
	pair_close(&pr);
}

/* Cryptokey routing: A sends B a packet whose inner source (100.64.0.9) is not A's
 * address. B authenticates it, counts exactly one rx_data_bad_source and writes nothing;
 * the same packet from A's own address is delivered. */
static void test_spoofed_inner_source_dropped(void **state)
{
	(void)state;
	struct pair pr;
	pair_open(&pr);
	connect_at_t0(&pr);
	uint8_t pkt[PKT_LEN];
	const uint8_t spoofed[4] = { 100, 64, 0, 9 };
	uint64_t now = T0 + 1 * SEC;
	uint64_t rx_bytes = pr.b.dev.peers[0]->rx_bytes;

	make_ipv4(pkt, spoofed, pr.b.ip, 7);
	tx_send_packet(&pr.a.dev, pr.a.dev.peers[0], pkt, PKT_LEN, now);
	assert_int_equal(outbox_data_messages(&pr.a.dev), 1);
	settle(&pr, now);
	assert_int_equal(pr.b.dev.counters.rx_data_bad_source, 1);
	assert_int_equal(tun_packets(&pr.b, NULL), 0);
	assert_int_equal(pr.b.dev.peers[0]->rx_bytes, rx_bytes);

	make_ipv4(pkt, pr.a.ip, pr.b.ip, 8);
	tx_send_packet(&pr.a.dev, pr.a.dev.peers[0], pkt, PKT_LEN, now);
	settle(&pr, now);
	assert_int_equal(tun_packets(&pr.b, NULL), 1);
	assert_int_equal(pr.b.dev.peers[0]->rx_bytes, rx_bytes + PKT_LEN);
	assert_int_equal(pr.b.dev.counters.rx_data_bad_source, 1);
	pair_close(&pr);
}

/* B under load (cookie_threshold 0): A's first initiation earns a 64-byte cookie reply and no
 * handshake; A's retry 5 s later carries mac2 and completes it. When A's address changes between
 * cookie and retry, the cookie does not fit the new address and B asks again. */
static void test_cookie_under_load(void **state)
{
	(void)state;
	struct pair pr;
	pair_open(&pr);
	pr.b.dev.cookies.threshold = 0;

	tx_send_initiation(&pr.a.dev, pr.a.dev.peers[0], T0, false);
	carry(&pr, &pr.a, &pr.b, T0);
	assert_int_equal(pr.b.dev.outbox.count, 1);
	assert_int_equal(pr.b.dev.outbox.iov[0].iov_len, 64);
	assert_int_equal(((const uint8_t *)pr.b.dev.outbox.iov[0].iov_base)[0], MSG_COOKIE_REPLY);
	settle(&pr, T0);
	assert_int_equal(pr.b.dev.counters.tx_cookie_replies, 1);
	assert_int_equal(pr.a.dev.counters.rx_cookie_replies, 1);
	assert_int_equal(pr.a.dev.counters.handshakes_completed + pr.b.dev.counters.handshakes_completed, 0);

	/* A moved: its cookie was for 192.0.2.1:51820 */
	underlay_addr(&pr.a.dev, "192.0.2.9", &pr.a.addr);
	sockaddr_inet_set(&pr.b.dev.peers[0]->endpoint, &pr.a.addr);
	run_timers(&pr, T0 + 6 * SEC);
	assert_int_equal(pr.b.dev.counters.tx_cookie_replies, 2);
	assert_int_equal(pr.a.dev.counters.rx_cookie_replies, 2);
	assert_int_equal(pr.b.dev.counters.handshakes_completed, 0);

	run_timers(&pr, T0 + 12 * SEC);
	assert_int_equal(pr.b.dev.counters.tx_cookie_replies, 2);
	assert_int_equal(pr.a.dev.counters.handshakes_completed, 1);
	assert_int_equal(pr.b.dev.counters.handshakes_completed, 1);
	assert_int_equal(ping(&pr, 1, T0 + 12 * SEC), 2);
	assert_int_equal(pr.a.dev.counters.rx_cookie_invalid + pr.b.dev.counters.rx_cookie_invalid, 0);
	assert_no_drops(&pr.a.dev);
	assert_no_drops(&pr.b.dev);
	pair_close(&pr);
}

/* Under load, a sender that proved its address with a cookie still gets only its share:
 * 5 handshake messages at once, then 20 a second (DEVICE_HANDSHAKES_PER_SOURCE_PER_S, core/srclimit.h); the rest are dropped
 * before any Diffie-Hellman, and counted. */
static void test_handshake_rate_per_source(void **state)
{
	(void)state;
	struct pair pr;
	pair_open(&pr);
	pr.b.dev.cookies.threshold = 0;
	tx_send_initiation(&pr.a.dev, pr.a.dev.peers[0], T0, false);
	carry(&pr, &pr.a, &pr.b, T0);
	carry(&pr, &pr.b, &pr.a, T0); /* the cookie reply */
	assert_int_equal(pr.a.dev.counters.rx_cookie_replies, 1);

	for (int i = 0; i < 20; i++)
		tx_send_initiation(&pr.a.dev, pr.a.dev.peers[0], T0 + 1, true);
	carry(&pr, &pr.a, &pr.b, T0 + 1);
	assert_int_equal(pr.b.dev.counters.rx_handshake_ratelimited, 20 - 5);
	/* 250 ms later the burst is back: five more get through. */
	for (int i = 0; i < 6; i++)
		tx_send_initiation(&pr.a.dev, pr.a.dev.peers[0], T0 + 251, true);
	carry(&pr, &pr.a, &pr.b, T0 + 251);
	assert_int_equal(pr.b.dev.counters.rx_handshake_ratelimited, 20 - 5 + 1);
	pair_close(&pr);
}

/* The preshared key is mixed into the handshake: the same key on both sides connects,
 * different keys (or a key on one side only) never complete one, and a key of zeros is the
 * same as none (the peer then holds no copy). */
static void test_preshared_keys(void **state)
{
	(void)state;
	uint8_t k1[WIRE_KEY_LEN], k2[WIRE_KEY_LEN], zero[WIRE_KEY_LEN] = { 0 };
	memset(k1, 0x5a, sizeof(k1));
	memset(k2, 0xa5, sizeof(k2));
	struct pair pr;

	pair_open_psk(&pr, k1, k1);
	assert_non_null(pr.a.dev.peers[0]->psk);
	connect_at_t0(&pr);
	assert_no_drops(&pr.a.dev);
	pair_close(&pr);

	const uint8_t *mismatched[][2] = { { k1, k2 }, { k1, NULL }, { NULL, k2 } };
	for (size_t i = 0; i < sizeof(mismatched) / sizeof(mismatched[0]); i++) {
		pair_open_psk(&pr, mismatched[i][0], mismatched[i][1]);
		tx_send_initiation(&pr.a.dev, pr.a.dev.peers[0], T0, false);
		settle(&pr, T0);
		assert_int_equal(pr.a.dev.counters.handshakes_completed, 0);
		assert_int_equal(ping(&pr, 1, T0), 0);
		pair_close(&pr);
	}

	pair_open_psk(&pr, zero, NULL);
	assert_null(pr.a.dev.peers[0]->psk);
	connect_at_t0(&pr);
	pair_close(&pr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rekey_at_120s_under_traffic),
		cmocka_unit_test(test_refused_at_180s),
		cmocka_unit_test(test_keys_wiped_at_540s),
		cmocka_unit_test(test_rekey_after_2_pow_60_messages),
		cmocka_unit_test(test_spoofed_inner_source_dropped),
		cmocka_unit_test(test_cookie_under_load),
		cmocka_unit_test(test_handshake_rate_per_source),
		cmocka_unit_test(test_preshared_keys),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
