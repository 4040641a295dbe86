/* The meshd data-plane wire format: every message type, size and limit in one place.
 *
 * Types 1-4 are WireGuard's messages, byte for byte (https://www.wireguard.com/protocol/), so a
 * stock WireGuard peer talks to meshd. All messages start with a 4-byte header: the type and
 * three zero bytes (WireGuard reads the four as one little-endian type, so a non-zero byte there
 * is an unknown type to it). meshd's own messages use types WireGuard does not; an incompatible
 * change to one of them takes a new type number, as there is no version byte.
 * Integers on the wire are little-endian (matching the Noise nonce encoding).
 * A receiver checks the length against the exact size of the type before reading
 * any other field (handshakes must match exactly; data must be at least the minimum).
 */
#ifndef MESHD_WIRE_H
#define MESHD_WIRE_H

#include <stdint.h>
#include <stddef.h>

enum wire_message_type {
	MSG_HANDSHAKE_INITIATION = 1,
	MSG_HANDSHAKE_RESPONSE = 2,
	MSG_COOKIE_REPLY = 3, /* under load: "prove your address first" (core/cookie.h) */
	MSG_DATA = 4,
	/* meshd's own messages, in a range WireGuard does not use (a WireGuard peer drops them). */
	MSG_DISCO = 0x80,          /* path discovery, sealed between node keys: core/disco.h */
	MSG_RELAY_BIND = 0x81,     /* node -> coordinator: this UDP source is me (core/relay.h) */
	MSG_RELAY_BIND_ACK = 0x82, /* coordinator -> node: bound; UDP to the relay works */
	MSG_RELAY_DATA = 0x83,     /* node <-> coordinator: a datagram for / from another node */
};

enum {
	WIRE_KEY_LEN = 32,       /* X25519 public/private key and symmetric key length */
	WIRE_AEAD_TAG_LEN = 16,  /* ChaCha20-Poly1305 tag */
	WIRE_MAC_LEN = 16,       /* mac1 / mac2: keyed BLAKE2s-128 over the message */
	WIRE_COOKIE_LEN = 16,    /* the cookie a responder hands out: keyed BLAKE2s-128 of an address */
	WIRE_COOKIE_NONCE_LEN = 24, /* XChaCha20-Poly1305 nonce of a cookie reply */
	WIRE_TIMESTAMP_LEN = 12, /* TAI64N: 8-byte seconds + 4-byte nanoseconds, big-endian */
	WIRE_HEADER_LEN = 4,

	/* header | sender index | e | enc(s) | enc(timestamp) | mac1 | mac2 */
	WIRE_INITIATION_LEN = WIRE_HEADER_LEN + 4 + WIRE_KEY_LEN + (WIRE_KEY_LEN + WIRE_AEAD_TAG_LEN) +
			      (WIRE_TIMESTAMP_LEN + WIRE_AEAD_TAG_LEN) + 2 * WIRE_MAC_LEN, /* 148 */
	/* header | sender index | receiver index | e | enc(empty) | mac1 | mac2 */
	WIRE_RESPONSE_LEN = WIRE_HEADER_LEN + 4 + 4 + WIRE_KEY_LEN + WIRE_AEAD_TAG_LEN + 2 * WIRE_MAC_LEN, /* 92 */
	/* header | receiver index | nonce | enc(cookie) */
	WIRE_COOKIE_REPLY_LEN = WIRE_HEADER_LEN + 4 + WIRE_COOKIE_NONCE_LEN + WIRE_COOKIE_LEN + WIRE_AEAD_TAG_LEN, /* 64 */
	/* header | receiver index | 64-bit counter | ciphertext (>= tag) */
	WIRE_DATA_HEADER_LEN = WIRE_HEADER_LEN + 4 + 8, /* 16 */
	WIRE_DATA_MIN_LEN = WIRE_DATA_HEADER_LEN + WIRE_AEAD_TAG_LEN, /* a keepalive: empty plaintext */

	/* Plaintext is zero-padded to this multiple so lengths leak less (as WireGuard does). */
	WIRE_DATA_PADDING = 16,
	/* Largest inner packet we carry; TUN MTU is bounded by this. */
	WIRE_MAX_INNER_PACKET = 65535,
};

/* Offsets inside each message, so code never uses a bare number. */
enum {
	WIRE_OFF_TYPE = 0,
	WIRE_OFF_RESERVED = 1, /* three zero bytes */

	WIRE_INIT_OFF_SENDER = 4,
	WIRE_INIT_OFF_EPHEMERAL = 8,
	WIRE_INIT_OFF_STATIC = 40,
	WIRE_INIT_OFF_TIMESTAMP = 88,
	WIRE_INIT_OFF_MAC1 = 116,
	WIRE_INIT_OFF_MAC2 = 132,

	WIRE_RESP_OFF_SENDER = 4,
	WIRE_RESP_OFF_RECEIVER = 8,
	WIRE_RESP_OFF_EPHEMERAL = 12,
	WIRE_RESP_OFF_EMPTY = 44,
	WIRE_RESP_OFF_MAC1 = 60,
	WIRE_RESP_OFF_MAC2 = 76,

	WIRE_COOKIE_OFF_RECEIVER = 4,
	WIRE_COOKIE_OFF_NONCE = 8,
	WIRE_COOKIE_OFF_COOKIE = 32,

	WIRE_DATA_OFF_RECEIVER = 4,
	WIRE_DATA_OFF_COUNTER = 8,
	WIRE_DATA_OFF_PAYLOAD = 16,
};

_Static_assert(WIRE_INITIATION_LEN == 148, "initiation layout");
_Static_assert(WIRE_RESPONSE_LEN == 92, "response layout");
_Static_assert(WIRE_INIT_OFF_MAC2 + WIRE_MAC_LEN == WIRE_INITIATION_LEN, "initiation offsets");
_Static_assert(WIRE_RESP_OFF_MAC2 + WIRE_MAC_LEN == WIRE_RESPONSE_LEN, "response offsets");
_Static_assert(WIRE_COOKIE_REPLY_LEN == 64, "cookie reply layout");
_Static_assert(WIRE_COOKIE_OFF_COOKIE + WIRE_COOKIE_LEN + WIRE_AEAD_TAG_LEN == WIRE_COOKIE_REPLY_LEN,
	       "cookie reply offsets");

static inline void wire_put_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

static inline uint32_t wire_get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void wire_put_u64(uint8_t *p, uint64_t v)
{
	wire_put_u32(p, (uint32_t)v);
	wire_put_u32(p + 4, (uint32_t)(v >> 32));
}

static inline uint64_t wire_get_u64(const uint8_t *p)
{
	return (uint64_t)wire_get_u32(p) | (uint64_t)wire_get_u32(p + 4) << 32;
}

static inline void wire_put_header(uint8_t *p, enum wire_message_type type)
{
	p[WIRE_OFF_TYPE] = (uint8_t)type;
	p[WIRE_OFF_RESERVED] = 0;
	p[WIRE_OFF_RESERVED + 1] = 0;
	p[WIRE_OFF_RESERVED + 2] = 0;
}

/* The type of a message whose header is well formed (reserved bytes zero), else 0. */
static inline uint8_t wire_header_type(const uint8_t *p, size_t len)
{
	if (len < WIRE_HEADER_LEN || p[WIRE_OFF_RESERVED] != 0 || p[WIRE_OFF_RESERVED + 1] != 0 ||
	    p[WIRE_OFF_RESERVED + 2] != 0)
		return 0;
	return p[WIRE_OFF_TYPE];
}

#endif
