/* A gateway's satellites (meshd/satellites.c) on an offline device: the coordinator's list
 * makes static peers owning the satellite's two addresses, with its preshared key and no
 * endpoint; the same list again changes nothing (sessions stay); a changed entry is replaced;
 * a missing one is removed; a key or address another peer has is refused and counted; and
 * only traffic for or from a satellite is forwarded. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "core/ipaddr.h"
#include "core/keys.h"
#include "meshd/device.h"
#include "meshd/peer.h"
#include "meshd/satellites.h"

static void open_gateway(struct device *dev, struct config_peer *static_peer)
{
	struct config cfg;
	uint8_t priv[WIRE_KEY_LEN];
	char err[256];

	memset(&cfg, 0, sizeof(cfg));
	strcpy(cfg.interface, "offline0");
	cfg.mtu = 1420;
	cfg.cookie_threshold = CONFIG_DEFAULT_COOKIE_THRESHOLD;
	cfg.n_addresses = 1;
	assert_true(ip_prefix_parse("100.64.0.1/10", &cfg.addresses[0]));
	if (static_peer) {
		cfg.peers = static_peer;
		cfg.n_peers = 1;
	}
	memset(priv, 0x11, sizeof(priv));
	assert_true(device_open_offline(dev, &cfg, priv, err, sizeof(err)));
}

static void make_sat(struct control_satellite *c, uint8_t key_byte, const char *name, uint8_t host, bool psk)
{
	memset(c, 0, sizeof(*c));
	memset(c->public_key, key_byte, WIRE_KEY_LEN);
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->ipv4[0] = 100, c->ipv4[1] = 64, c->ipv4[3] = host;
	c->ipv6[0] = 0xfd, c->ipv6[12] = 100, c->ipv6[13] = 64, c->ipv6[15] = host;
	c->has_psk = psk;
	if (psk)
		memset(c->psk, 0x77, WIRE_KEY_LEN);
}

static size_t count_satellites(const struct device *dev)
{
	size_t n = 0;
	for (size_t i = 0; i < dev->n_peers; i++)
		n += dev->peers[i]->satellite;
	return n;
}

static void test_apply(void **state)
{
	struct device dev;
	struct control_satellites list = { .n = 2 };
	uint8_t a4[4] = { 100, 64, 0, 5 };
	(void)state;

	open_gateway(&dev, NULL);
	make_sat(&list.list[0], 0x51, "phone", 5, true);
	make_sat(&list.list[1], 0x52, "tablet", 6, false);
	satellites_apply(&dev, &list);
	assert_int_equal(count_satellites(&dev), 2);
	assert_int_equal(dev.n_satellites, 2);
	struct peer *p = peer_by_public_key(&dev, list.list[0].public_key);
	assert_non_null(p);
	assert_true(p->satellite && !p->from_coordinator && !p->has_endpoint);
	assert_string_equal(p->name, "phone");
	assert_memory_equal(peer_psk(p), list.list[0].psk, WIRE_KEY_LEN);
	assert_ptr_equal(peer_by_address(&dev, AF_INET, a4), p);
	assert_ptr_equal(satellites_owner(&dev, AF_INET, a4), p);
	assert_ptr_equal(peer_by_address(&dev, AF_INET6, list.list[0].ipv6), p);

	/* the same list again: the very same peers */
	satellites_apply(&dev, &list);
	assert_ptr_equal(peer_by_public_key(&dev, list.list[0].public_key), p);
	assert_int_equal(dev.n_satellites, 2);

	/* a new preshared key replaces the peer; a missing satellite goes with its address */
	list.list[0].psk[0] ^= 1;
	list.n = 1;
	satellites_apply(&dev, &list);
	assert_int_equal(dev.n_satellites, 1);
	p = peer_by_public_key(&dev, list.list[0].public_key);
	assert_non_null(p);
	assert_memory_equal(peer_psk(p), list.list[0].psk, WIRE_KEY_LEN);
	uint8_t b4[4] = { 100, 64, 0, 6 };
	assert_null(peer_by_address(&dev, AF_INET, b4));

	/* none any more */
	list.n = 0;
	satellites_apply(&dev, &list);
	assert_int_equal(dev.n_satellites, 0);
	assert_int_equal(dev.n_peers, 0);
	assert_null(satellites_owner(&dev, AF_INET, a4));
	device_close(&dev);
}

static void test_refused(void **state)
{
	struct device dev;
	struct config_peer sp;
	struct control_satellites list = { .n = 3 };
	uint8_t priv[WIRE_KEY_LEN];
	(void)state;

	memset(&sp, 0, sizeof(sp));
	memset(priv, 0x22, sizeof(priv));
	key_public_from_private(sp.public_key, priv);
	strcpy(sp.name, "static");
	sp.n_allowed_ips = 1;
	assert_true(ip_prefix_parse("100.64.0.2/32", &sp.allowed_ips[0]));
	open_gateway(&dev, &sp);

	make_sat(&list.list[0], 0x51, "same-key", 7, false);
	memcpy(list.list[0].public_key, sp.public_key, WIRE_KEY_LEN); /* the static peer's key */
	make_sat(&list.list[1], 0x52, "same-addr", 2, false);         /* the static peer's address */
	make_sat(&list.list[2], 0x53, "fine", 8, false);
	satellites_apply(&dev, &list);
	assert_int_equal(dev.counters.satellites_refused, 2);
	assert_int_equal(dev.n_satellites, 1);
	struct peer *st = peer_by_public_key(&dev, sp.public_key);
	assert_non_null(st);
	assert_false(st->satellite); /* untouched */

	/* forwarding: only between a satellite and the mesh (a coordinator peer) */
	struct peer *fine = peer_by_public_key(&dev, list.list[2].public_key);
	uint8_t pkt[28] = { 0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0, 100, 64, 0, 2, 100, 64, 0, 8 };
	uint8_t back[28] = { 0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0, 100, 64, 0, 8, 100, 64, 0, 2 };
	struct ip_packet_info info;
	bool done;
	st->from_coordinator = true; /* as if the coordinator's map held it */
	assert_true(ip_packet_parse(pkt, sizeof(pkt), &info));
	assert_ptr_equal(satellites_rx(&dev, st, pkt, &info, 1000, &done), fine); /* mesh -> satellite */
	assert_false(done);
	assert_true(satellites_acl_here(st, fine)); /* the gateway holds the satellite's rules */
	assert_true(ip_packet_parse(back, sizeof(back), &info));
	assert_ptr_equal(satellites_rx(&dev, fine, back, &info, 1000, &done), st); /* satellite -> mesh */
	assert_false(satellites_acl_here(fine, st)); /* judged where it arrives */
	/* a static peer from the config is no one the rules know: dropped both ways */
	st->from_coordinator = false;
	assert_true(ip_packet_parse(pkt, sizeof(pkt), &info));
	assert_null(satellites_rx(&dev, st, pkt, &info, 1000, &done));
	assert_true(done);
	assert_true(ip_packet_parse(back, sizeof(back), &info));
	assert_null(satellites_rx(&dev, fine, back, &info, 1000, &done));
	assert_true(done);
	assert_int_equal(dev.counters.satellite_refused, 2);
	uint8_t self[28] = { 0x45, 0, 0, 28, 0, 0, 0, 0, 64, 1, 0, 0, 100, 64, 0, 8, 100, 64, 0, 1 };
	assert_true(ip_packet_parse(self, sizeof(self), &info));
	assert_null(satellites_rx(&dev, fine, self, &info, 1000, &done)); /* for us: to the TUN */
	device_close(&dev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_apply),
		cmocka_unit_test(test_refused),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
