/* WireGuard's handshake messages: Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s, framed as in wire.h.
 *
 *   initiator -> responder:  e, es, s, ss, {timestamp}     (MSG_HANDSHAKE_INITIATION)
 *   responder -> initiator:  e, ee, se, psk, {}            (MSG_HANDSHAKE_RESPONSE)
 *
 * The Noise prologue is WireGuard's identifier string. A peer without a configured
 * pre-shared key uses 32 zero bytes (as WireGuard). mac1 (keyed BLAKE2s-128 with
 * BLAKE2s-256("mac1----" || receiver public key)) lets a receiver drop messages not meant for
 * it before any DH; mac2 and cookie replies are core/cookie.h's. A consumed initiation carries a TAI64N timestamp; the caller must
 * refuse one that is not newer than the last accepted from that peer.
 */
#ifndef MESHD_HANDSHAKE_H
#define MESHD_HANDSHAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "noise.h"
#include "session.h"
#include "wire.h"

/* Our long-term identity, shared by all handshakes of one node. */
struct handshake_identity {
	uint8_t private_key[WIRE_KEY_LEN];
	uint8_t public_key[WIRE_KEY_LEN];
	uint8_t mac1_key[WIRE_KEY_LEN]; /* key that others use for mac1 on messages to us */
};

enum {
	HANDSHAKE_LABEL_LEN = 8, /* "mac1----", "cookie--" */
};

enum handshake_state {
	HANDSHAKE_NONE = 0,
	HANDSHAKE_INITIATION_SENT,     /* we are the initiator, waiting for the response */
	HANDSHAKE_INITIATION_CONSUMED, /* we are the responder, about to answer */
};

/* One in-progress handshake with one peer. */
struct handshake {
	enum handshake_state state;
	uint8_t remote_static[WIRE_KEY_LEN];
	uint8_t remote_timestamp[WIRE_TIMESTAMP_LEN]; /* from a consumed initiation */
	uint32_t local_index;
	uint32_t remote_index;
	struct noise_handshake noise; /* symmetric state + ephemeral keys */
};

/* BLAKE2s-256(label || public key): the key of mac1 ("mac1----") or of cookie replies
 * ("cookie--") for messages to the owner of public_key. */
void handshake_label_key(uint8_t key[WIRE_KEY_LEN], const char label[HANDSHAKE_LABEL_LEN + 1],
			 const uint8_t public_key[WIRE_KEY_LEN]);

/* WireGuard's MAC: keyed BLAKE2s with a 16-byte output (keys: 32 bytes, or a 16-byte cookie). */
void handshake_mac(uint8_t mac[WIRE_MAC_LEN], const uint8_t *key, size_t key_len, const uint8_t *msg, size_t len);

/* Where mac1 sits in a well-formed initiation or response (mac2 follows it); 0 for any other
 * message or a wrong length. */
size_t handshake_mac1_offset(const uint8_t *msg, size_t len);

/* Computes public key and mac1 key from the private key. Returns false on a bad key. */
bool handshake_identity_init(struct handshake_identity *id, const uint8_t private_key[WIRE_KEY_LEN]);
void handshake_identity_clear(struct handshake_identity *id);

/* Encodes a wall-clock time as TAI64N (the value must only grow). */
void handshake_tai64n(uint8_t out[WIRE_TIMESTAMP_LEN], struct timespec realtime);

/* Builds an initiation to `remote_static` into out (exactly WIRE_INITIATION_LEN bytes).
 * `ephemeral_private` is NULL in production (a fresh key is generated); tests inject one. */
bool handshake_create_initiation(struct handshake *hs, const struct handshake_identity *id,
				 const uint8_t remote_static[WIRE_KEY_LEN], uint32_t local_index,
				 const uint8_t timestamp[WIRE_TIMESTAMP_LEN], const uint8_t *ephemeral_private,
				 uint8_t out[WIRE_INITIATION_LEN]);

/* Authenticates an initiation addressed to `id`. On success *hs holds the sender's static key
 * (hs->remote_static), its index and timestamp, state HANDSHAKE_INITIATION_CONSUMED. The caller
 * then looks the sender up by key, checks the timestamp, and answers with create_response. */
bool handshake_consume_initiation(struct handshake *hs, const struct handshake_identity *id,
				  const uint8_t *msg, size_t len);

/* Builds the response to a consumed initiation and derives the session (we are responder). */
bool handshake_create_response(struct handshake *hs, const struct handshake_identity *id,
			       const uint8_t psk[WIRE_KEY_LEN], uint32_t local_index,
			       const uint8_t *ephemeral_private, uint64_t now_ms,
			       uint8_t out[WIRE_RESPONSE_LEN], struct session *session_out);

/* Checks mac1 and the receiver index cheaply; the caller uses it to find the peer whose
 * handshake this answers (by hs->local_index) before calling consume_response. */
bool handshake_response_mac1_ok(const struct handshake_identity *id, const uint8_t *msg, size_t len);

/* Exact length, header and mac1 of an initiation addressed to `id` (no DH): what a receiver
 * under load checks before deciding between a cookie reply and the full handshake. */
bool handshake_initiation_mac1_ok(const struct handshake_identity *id, const uint8_t *msg, size_t len);

/* Authenticates a response to our initiation in *hs and derives the session (we are initiator). */
bool handshake_consume_response(struct handshake *hs, const struct handshake_identity *id,
				const uint8_t psk[WIRE_KEY_LEN], const uint8_t *msg, size_t len,
				uint64_t now_ms, struct session *session_out);

/* Wipes all secret state. */
void handshake_clear(struct handshake *hs);

#endif
