/* WireGuard's cookies: how a responder under load makes an initiator prove its address before
 * the responder spends any Diffie-Hellman on it (whitepaper section 5.4.7).
 *
 *   responder, under load, mac1 valid, mac2 not:  cookie reply, no handshake
 *     cookie = MAC(secret, source IP || source port)       secret: random, replaced every 2 min
 *     reply  = type 3 | receiver = the message's sender index | nonce (24 random bytes)
 *              | XChaCha20-Poly1305(key = HASH("cookie--" || responder's public key),
 *                                   nonce, plaintext = cookie, ad = the message's mac1)
 *   initiator: opens the reply with the mac1 it last sent, keeps the cookie, and for 2 minutes
 *     puts mac2 = MAC(cookie, every byte before mac2) on its handshake messages to that peer.
 *
 * MAC is keyed BLAKE2s-128 and HASH BLAKE2s-256 (handshake.h). The checker lives once per
 * device; a jar lives in each peer (it is small: an idle peer carries ~50 bytes of it).
 */
#ifndef MESHD_COOKIE_H
#define MESHD_COOKIE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

enum {
	/* The responder's secret is replaced this often (WireGuard's COOKIE_SECRET_MAX_AGE), so a
	 * cookie is worth at most two minutes. */
	COOKIE_SECRET_MAX_AGE_MS = 120 * 1000,
	/* An initiator stops using a cookie this much earlier than the secret ages, so one sent
	 * just before the responder changes secrets still arrives valid (the kernel's
	 * COOKIE_SECRET_LATENCY). */
	COOKIE_SECRET_LATENCY_MS = 5 * 1000,
	/* Longest source address a cookie covers: IPv6 (16) and a port (2). */
	COOKIE_SOURCE_MAX = 18,
	/* Initiations are counted per window of this length to decide "under load". */
	COOKIE_LOAD_WINDOW_MS = 1000,
	/* Once under load, a responder stays so this long after the rate falls (as wireguard-go's
	 * UnderLoadAfterTime), so a flood that pulses cannot slip through between windows. */
	COOKIE_LOAD_HOLD_MS = 1000,
	/* Cookie replies a device sends per second at most; the rest of a flood is dropped
	 * unanswered. Each reply costs a MAC, a seal and a send (~5 us here): this bounds a
	 * flood's cost to a few % of a CPU, so the socket keeps draining and tunnels next to it
	 * keep working (tests/netns/handshake-flood.sh: 8 % ping loss answering every one of
	 * 78,000 a second, under 1 % with the bound). WireGuard bounds the same work with its
	 * queue of 4,096 handshakes. A real peer that misses one retries in 5 s. */
	COOKIE_REPLIES_PER_SECOND = 4096,
};

/* Responder side: one per device. */
struct cookie_checker {
	uint8_t secret[WIRE_KEY_LEN];
	uint64_t secret_born_ms;
	bool has_secret; /* made at the first cookie reply */
	uint8_t reply_key[WIRE_KEY_LEN]; /* HASH("cookie--" || our public key) */
	/* Under load: more than `threshold` initiations in one window (0: always under load). */
	unsigned int threshold;
	uint64_t window_start_ms;
	unsigned int window_count;
	uint64_t under_load_until_ms;
	bool loaded; /* under_load_until_ms is set */
	/* Cookie replies left in the current second (COOKIE_REPLIES_PER_SECOND). */
	uint64_t reply_window_start_ms;
	unsigned int replies_in_window;
};

/* Initiator side: one per peer. */
struct cookie_jar {
	uint8_t cookie[WIRE_COOKIE_LEN];
	uint64_t cookie_received_ms;
	bool has_cookie;
	uint8_t last_mac1[WIRE_MAC_LEN]; /* of our latest handshake message to the peer */
	bool has_last_mac1;
};

/* A source address in the bytes a cookie covers: the IP in network order, then the port in
 * network order (as the Linux implementation hashes them). Returns the length, 0 if the family
 * is neither IPv4 nor IPv6. */
size_t cookie_source_bytes(const void *sockaddr, uint8_t out[COOKIE_SOURCE_MAX]);

/* threshold: initiations per second above which we answer with cookie replies; 0 = always. */
void cookie_checker_init(struct cookie_checker *c, const uint8_t our_public_key[WIRE_KEY_LEN], unsigned int threshold);

/* Counts one handshake message with a valid mac1 and says whether we are under load (then
 * only a valid mac2 earns a handshake; the rest get a cookie reply). */
bool cookie_checker_under_load(struct cookie_checker *c, uint64_t now_ms);
void cookie_checker_clear(struct cookie_checker *c);
/* True when one more cookie reply fits this second's budget (and counts it). */
bool cookie_checker_reply_allowed(struct cookie_checker *c, uint64_t now_ms);

/* Whether the handshake message (initiation or response, mac1 already checked) carries the mac2
 * of a cookie we handed to `source` under the current secret. */
bool cookie_checker_mac2_ok(const struct cookie_checker *c, const uint8_t *msg, size_t len, const uint8_t *source,
			    size_t source_len, uint64_t now_ms);

/* Builds the cookie reply to the handshake message msg (mac1 already checked) from `source`.
 * nonce is NULL in production (random); tests inject one. Returns false for a message that is
 * not a handshake message. */
bool cookie_reply_create(struct cookie_checker *c, const uint8_t *msg, size_t len, const uint8_t *source,
			 size_t source_len, uint64_t now_ms, const uint8_t *nonce, uint8_t out[WIRE_COOKIE_REPLY_LEN]);

/* The receiver index of a well-formed cookie reply (which of our handshakes it answers). */
bool cookie_reply_receiver(const uint8_t *msg, size_t len, uint32_t *receiver_index);

/* Stamps mac2 on our handshake message to the peer when the jar holds a fresh cookie (mac1 must
 * already be set), and remembers mac1 so a cookie reply to this message can be opened. */
void cookie_jar_stamp(struct cookie_jar *j, uint8_t *msg, size_t len, uint64_t now_ms);

/* Opens a cookie reply from the peer whose public key is given, answering our latest message.
 * On success the jar holds the cookie. Everything else is refused and changes nothing. */
bool cookie_jar_consume_reply(struct cookie_jar *j, const uint8_t peer_public_key[WIRE_KEY_LEN],
			      const uint8_t *msg, size_t len, uint64_t now_ms);

/* Whether mac2 goes on our next message: a cookie arrived less than 115 s ago. */
bool cookie_jar_fresh(const struct cookie_jar *j, uint64_t now_ms);

void cookie_jar_clear(struct cookie_jar *j);

#endif
