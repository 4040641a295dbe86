/* Disco: path discovery between two nodes, before and beside any data session.
 *
 *   header (4: MSG_DISCO, version, 0, 0) | sender's node key (32) | nonce (24)
 *   | XChaCha20-Poly1305 under the X25519 key of the two node keys (crypto_box_beforenm),
 *     with the header and sender key as associated data, of:
 *       kind (1) | transaction id (12) | body
 *         PING           padding (DISCO_ENDPOINT_LEN zero bytes: a ping is never smaller
 *                        than the pong it asks for, so a ping reflected off us amplifies nothing)
 *         PONG           the source address the ping came from (one endpoint)
 *         CALL_ME_MAYBE  count (1, at most CONTROL_MAX_ENDPOINTS) | endpoints
 *         PUNCH          padding, as a ping: "my NAT is hard; probe my address's ports"
 *                        (the birthday punch, src/meshd/punch.h)
 *   an endpoint: family (4 or 6) | address (16; IPv4 in the first 4, rest zero) | port (u16 BE)
 *
 * Sealed with the node keys, so a disco message works before a Noise session exists and
 * through the relay, and only a known peer's message is ever acted on: the receiver looks
 * the sender key up among its peers and drops anything else without opening it.
 * The shared key is the same in both directions, so the clear sender key is authenticated
 * as associated data: a message of A's sent back to A with B's key in the header does not
 * open (else A would take its own ping for B's). The key is computed once per peer and
 * cached, so a message costs one XChaCha20-Poly1305, not a DH. */
#ifndef MESHD_DISCO_H
#define MESHD_DISCO_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control.h"
#include "wire.h"

enum disco_kind {
	DISCO_PING = 1,
	DISCO_PONG = 2,
	DISCO_CALL_ME_MAYBE = 3,
	DISCO_PUNCH = 4,
};

enum {
	DISCO_TXID_LEN = 12,
	DISCO_ENDPOINT_LEN = 1 + 16 + 2,
	DISCO_OFF_SENDER = WIRE_HEADER_LEN,
	DISCO_OFF_NONCE = DISCO_OFF_SENDER + WIRE_KEY_LEN,
	DISCO_OFF_BOX = DISCO_OFF_NONCE + crypto_box_NONCEBYTES,
	DISCO_HEADER_LEN = DISCO_OFF_BOX, /* 60: everything before the box */
	DISCO_PLAIN_MIN = 1 + DISCO_TXID_LEN + DISCO_ENDPOINT_LEN, /* ping and pong */
	DISCO_PLAIN_MAX = 1 + DISCO_TXID_LEN + 1 + CONTROL_MAX_ENDPOINTS * DISCO_ENDPOINT_LEN,
	DISCO_MIN_LEN = DISCO_HEADER_LEN + crypto_box_MACBYTES + DISCO_PLAIN_MIN,
	DISCO_MAX_LEN = DISCO_HEADER_LEN + crypto_box_MACBYTES + DISCO_PLAIN_MAX,
};

struct disco_message {
	enum disco_kind kind;
	uint8_t txid[DISCO_TXID_LEN];
	struct control_endpoint observed; /* PONG */
	struct control_endpoint endpoints[CONTROL_MAX_ENDPOINTS]; /* CALL_ME_MAYBE */
	size_t n_endpoints;
};

/* The key both sides derive for disco between them (crypto_box_beforenm). False if the
 * peer's key is a low-order point. */
bool disco_shared_key(uint8_t out[crypto_box_BEFORENMBYTES], const uint8_t our_private[WIRE_KEY_LEN],
		      const uint8_t their_public[WIRE_KEY_LEN]);

/* Seals m from the sender (its public key goes in the clear) into out. Returns the length, or
 * 0 if m is invalid (kind, family, port 0, too many endpoints) or cap is too small. */
size_t disco_seal(const struct disco_message *m, const uint8_t sender_public[WIRE_KEY_LEN],
		  const uint8_t shared_key[crypto_box_BEFORENMBYTES], uint8_t *out, size_t cap);

/* The claimed sender of a disco message, after checking the header and the length bounds;
 * NULL if it cannot be one. Nothing is authenticated yet. */
const uint8_t *disco_sender(const uint8_t *buf, size_t len);

/* Opens and parses a message whose sender the caller looked up (shared key with it). False
 * if it does not authenticate or does not parse strictly (unknown kind, trailing bytes, bad
 * endpoint, non-zero padding). */
bool disco_open(const uint8_t *buf, size_t len, const uint8_t shared_key[crypto_box_BEFORENMBYTES],
		struct disco_message *out);

#endif
