/* Writes the seed corpus of fuzz_packet: valid messages made with the same fixed keys the
 * target uses, so the fuzzer starts deep inside the receive path. Run from the top of the
 * tree:  make tests/fuzz/gen_packet_seeds && tests/fuzz/gen_packet_seeds tests/fuzz/corpus/fuzz_packet */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cookie.h"
#include "core/handshake.h"
#include "core/session.h"
#include "seedfile.h"

enum { SEED_SESSION_INDEX = 0x01020304 }; /* FUZZ_SESSION_INDEX in fuzz_packet.c */

/* A minimal IPv4 ICMP echo from src to 100.64.0.1 (checksums are not checked by meshd). */
static size_t make_ipv4(uint8_t *pkt, uint8_t src_last_octet)
{
	static const uint8_t header[28] = {
		0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0, 0, 100, 64, 0, 2, 100, 64, 0, 1, 8, 0, 0, 0, 0, 1, 0, 1,
	};
	memcpy(pkt, header, sizeof(header));
	pkt[15] = src_last_octet;
	return sizeof(header);
}

static void write_data_seed(const char *dir, const char *name, struct session *s, const uint8_t *plain, size_t len)
{
	uint8_t out[256];
	size_t out_len;
	if (session_encrypt(s, 1000000, plain, len, out, sizeof(out), &out_len) != SESSION_OK)
		exit(1);
	seedfile_write(dir, name, out, out_len);
}

int main(int argc, char **argv)
{
	if (argc != 2 || sodium_init() < 0) {
		fprintf(stderr, "usage: gen_packet_seeds DIR\n");
		return 2;
	}
	const char *dir = argv[1];
	uint8_t key[WIRE_KEY_LEN], pkt[64];

	struct session s;
	memset(key, 0x03, sizeof(key));
	session_init(&s, key, key, 7, SEED_SESSION_INDEX, true, 1000000);
	write_data_seed(dir, "data-keepalive", &s, NULL, 0);
	write_data_seed(dir, "data-ipv4-from-peer", &s, pkt, make_ipv4(pkt, 2));
	write_data_seed(dir, "data-ipv4-bad-source", &s, pkt, make_ipv4(pkt, 9));
	static const uint8_t ipv6[40] = { 0x60, 0, 0, 0, 0, 0, 59, 64, 0xfd, [23] = 2, [24] = 0xfd, [39] = 1 };
	write_data_seed(dir, "data-ipv6-no-next-header", &s, ipv6, sizeof(ipv6));

	/* The peer (private key 32 x 0x02) initiates to the node (32 x 0x01). */
	struct handshake_identity peer_id, node_id;
	memset(key, 0x02, sizeof(key));
	handshake_identity_init(&peer_id, key);
	memset(key, 0x01, sizeof(key));
	handshake_identity_init(&node_id, key);
	uint8_t ephemeral[WIRE_KEY_LEN], timestamp[WIRE_TIMESTAMP_LEN] = { 0x40, 0, 0, 0, 0x60, 0, 0, 0 };
	memset(ephemeral, 0x05, sizeof(ephemeral));
	struct handshake hs;
	uint8_t init[WIRE_INITIATION_LEN];
	if (!handshake_create_initiation(&hs, &peer_id, node_id.public_key, 42, timestamp, ephemeral, init))
		return 1;
	seedfile_write(dir, "initiation-from-peer", init, sizeof(init));
	seedfile_write(dir, "initiation-truncated", init, 100);

	uint8_t response[WIRE_RESPONSE_LEN] = { MSG_HANDSHAKE_RESPONSE };
	seedfile_write(dir, "response-unsolicited", response, sizeof(response));
	static const uint8_t garbage[] = { 0x09, 0x01, 0, 0, 0xde, 0xad };
	seedfile_write(dir, "unknown-type", garbage, sizeof(garbage));
	static const uint8_t bad_reserved[] = { MSG_DATA, 0x7f, 0, 0 };
	seedfile_write(dir, "bad-reserved", bad_reserved, sizeof(bad_reserved));

	/* a cookie reply from the peer, as if we had initiated with index 42 */
	struct cookie_checker checker;
	uint8_t nonce[WIRE_COOKIE_NONCE_LEN], reply[WIRE_COOKIE_REPLY_LEN];
	static const uint8_t source[] = { 192, 0, 2, 1, 0xca, 0x6c };
	memset(nonce, 0x06, sizeof(nonce));
	cookie_checker_init(&checker, peer_id.public_key, 0);
	if (!handshake_create_initiation(&hs, &node_id, peer_id.public_key, 42, timestamp, ephemeral, init) ||
	    !cookie_reply_create(&checker, init, sizeof(init), source, sizeof(source), 1000, nonce, reply))
		return 1;
	seedfile_write(dir, "cookie-reply", reply, sizeof(reply));
	seedfile_write(dir, "cookie-reply-truncated", reply, sizeof(reply) - 1);
	cookie_checker_clear(&checker);
	seedfile_write(dir, "empty", garbage, 0);
	return 0;
}
