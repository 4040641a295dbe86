/* Fuzz target: one datagram from the network into the node's receive path (rx.c), the
 * parser every stranger can reach. The device is offline (no TUN, no socket) and has one
 * peer with an established session, so inputs can reach the handshake consumers, the
 * data decryption and the inner-packet checks.
 *
 * Keys are fixed so that seeds stay meaningful: the node's private key is 32 x 0x01, the
 * peer's 32 x 0x02, and the peer's session sends to local index FUZZ_SESSION_INDEX with
 * key 32 x 0x03 (see tests/fuzz/corpus/fuzz_packet/). */
#include <netinet/in.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/keys.h"
#include "meshd/device.h"
#include "meshd/peer.h"
#include "meshd/rx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum {
	FUZZ_SESSION_INDEX = 0x01020304,
	FUZZ_MAX_DATAGRAM = 2048, /* beyond the MTU-sized slots the device would see */
};

static void make_config(struct config *cfg, struct config_peer *peer)
{
	uint8_t peer_private[WIRE_KEY_LEN];

	memset(cfg, 0, sizeof(*cfg));
	memset(peer, 0, sizeof(*peer));
	strcpy(cfg->interface, "fuzz0");
	cfg->mtu = CONFIG_DEFAULT_MTU;
	cfg->cookie_threshold = CONFIG_DEFAULT_COOKIE_THRESHOLD;
	cfg->n_addresses = 1;
	ip_prefix_parse("100.64.0.1/10", &cfg->addresses[0]);

	memset(peer_private, 0x02, sizeof(peer_private));
	key_public_from_private(peer->public_key, peer_private);
	strcpy(peer->name, "fuzzpeer");
	peer->n_allowed_ips = 1;
	ip_prefix_parse("100.64.0.2/32", &peer->allowed_ips[0]);
	cfg->peers = peer;
	cfg->n_peers = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t now_ms = 1000000;
	struct config cfg;
	struct config_peer cpeer;
	struct device dev;
	char err[256];
	uint8_t private_key[WIRE_KEY_LEN], session_key[WIRE_KEY_LEN];

	if (size > FUZZ_MAX_DATAGRAM || sodium_init() < 0)
		return 0;
	make_config(&cfg, &cpeer);
	memset(private_key, 0x01, sizeof(private_key));
	if (!device_open_offline(&dev, &cfg, private_key, err, sizeof(err)))
		abort();

	memset(session_key, 0x03, sizeof(session_key));
	if (!peer_sessions_get(dev.peers[0]))
		abort();
	session_init(&dev.peers[0]->sessions->current, session_key, session_key, FUZZ_SESSION_INDEX, FUZZ_SESSION_INDEX, true,
		     now_ms);
	if (!peer_index_add(&dev, dev.peers[0], FUZZ_SESSION_INDEX)) /* as a handshake would */
		abort();

	struct sockaddr_storage from = { 0 };
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&from;
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(51820);

	/* A private copy, so a read past `size` is caught by ASan. */
	uint8_t *copy = malloc(size ? size : 1);
	if (copy) {
		memcpy(copy, data, size);
		rx_datagram(&dev, copy, size, &from, now_ms);
		device_outbox_flush(&dev);
		free(copy);
	}
	device_close(&dev);
	return 0;
}
