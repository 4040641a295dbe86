/* The Noise protocol framework (revision 34), restricted to what meshd needs: the handshake
 * patterns IK and IKpsk2 over 25519 / ChaChaPoly with BLAKE2s (the data plane: WireGuard's
 * suite) or BLAKE2b (the control channel to meshcoord). The protocol name picks the hash.
 * libsodium supplies X25519, ChaChaPoly and BLAKE2b; libb2 supplies BLAKE2s.
 *
 *   IK:                         IKpsk2:
 *     <- s                        <- s
 *     ...                         ...
 *     -> e, es, s, ss             -> e, es, s, ss
 *     <- e, ee, se                <- e, ee, se, psk
 *
 * The caller knows the pattern, so each message has its own write/read function instead of a
 * token interpreter. Every read works on a copy of the state and commits it only after the
 * whole message authenticated: a forged message changes nothing.
 */
#ifndef MESHD_NOISE_H
#define MESHD_NOISE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
	NOISE_HASH_MAX_LEN = 64, /* the larger HASHLEN: BLAKE2b-512 (BLAKE2s-256 is 32) */
	NOISE_KEY_LEN = 32,    /* ChaChaPoly key (and PSK) length */
	NOISE_DH_LEN = 32,     /* DHLEN: X25519 keys and shared secrets */
	NOISE_TAG_LEN = 16,    /* Poly1305 tag appended by every encryption */
	NOISE_NONCE_LEN = 12,  /* ChaChaPoly IETF nonce: 4 zero bytes || 64-bit little-endian n */

	/* In IK every static key and payload is encrypted (k is set from the first DH on). */
	NOISE_MESSAGE1_OVERHEAD = NOISE_DH_LEN + (NOISE_DH_LEN + NOISE_TAG_LEN) + NOISE_TAG_LEN, /* e, s, payload tag */
	NOISE_MESSAGE2_OVERHEAD = NOISE_DH_LEN + NOISE_TAG_LEN, /* e, payload tag */
};

/* The HASH function of a protocol, named by the last part of its protocol name. */
enum noise_hash {
	NOISE_HASH_BLAKE2S, /* HASHLEN 32, BLOCKLEN 64 */
	NOISE_HASH_BLAKE2B, /* HASHLEN 64, BLOCKLEN 128 */
};

enum noise_role {
	NOISE_INITIATOR,
	NOISE_RESPONDER,
};

/* Which message comes next; each operation refuses to run out of order. */
enum noise_step {
	NOISE_STEP_MESSAGE1 = 0,
	NOISE_STEP_MESSAGE2,
	NOISE_STEP_DONE, /* ready for noise_split() */
};

struct noise_keypair {
	uint8_t private_key[NOISE_DH_LEN];
	uint8_t public_key[NOISE_DH_LEN];
};

/* HandshakeState with its SymmetricState and CipherState (Noise spec sections 5.1-5.3). */
struct noise_handshake {
	enum noise_hash hash;
	size_t hash_len; /* HASHLEN of `hash`: the used prefix of h and ck */
	enum noise_role role;
	enum noise_step step;
	bool psk_mode; /* every "e" also does MixKey(e.public_key) (spec section 9.2) */
	bool has_key;  /* false while the spec's k is "empty" */
	uint64_t n;
	uint8_t h[NOISE_HASH_MAX_LEN];
	uint8_t ck[NOISE_HASH_MAX_LEN];
	uint8_t k[NOISE_KEY_LEN];
	struct noise_keypair s; /* local static */
	struct noise_keypair e; /* local ephemeral */
	uint8_t rs[NOISE_DH_LEN];
	uint8_t re[NOISE_DH_LEN];
	uint8_t psk[NOISE_KEY_LEN];
};

/* Initialize(): protocol name and prologue are hashed in, then the pre-message "<- s".
 * The name must end in "_BLAKE2s" or "_BLAKE2b" (the hash this state then uses).
 * The initiator must pass the responder's static key; the responder passes NULL. psk NULL
 * selects IK, non-NULL IKpsk2 (noise_handshake_set_psk() may replace it before message 2).
 * Returns false if libsodium cannot start or the static key is unusable. */
bool noise_handshake_init(struct noise_handshake *hs, const char *protocol_name, size_t protocol_name_len,
			  const uint8_t *prologue, size_t prologue_len, enum noise_role role,
			  const uint8_t static_private[NOISE_DH_LEN], const uint8_t *remote_static,
			  const uint8_t *psk);

/* The PSK is only used by the "psk" token of message 2, so a caller may learn it late. */
void noise_handshake_set_psk(struct noise_handshake *hs, const uint8_t psk[NOISE_KEY_LEN]);

/* Message 1 (initiator -> responder): NOISE_MESSAGE1_OVERHEAD + payload_len bytes.
 * ephemeral_private NULL generates a fresh ephemeral key; tests inject a fixed one.
 * Reads need msg and payload not to overlap. */
bool noise_write_message1(struct noise_handshake *hs, const uint8_t *ephemeral_private,
			  const uint8_t *payload, size_t payload_len,
			  uint8_t *out, size_t out_cap, size_t *out_len);
bool noise_read_message1(struct noise_handshake *hs, const uint8_t *msg, size_t msg_len,
			 uint8_t *payload, size_t payload_cap, size_t *payload_len);

/* Message 2 (responder -> initiator): NOISE_MESSAGE2_OVERHEAD + payload_len bytes. */
bool noise_write_message2(struct noise_handshake *hs, const uint8_t *ephemeral_private,
			  const uint8_t *payload, size_t payload_len,
			  uint8_t *out, size_t out_cap, size_t *out_len);
bool noise_read_message2(struct noise_handshake *hs, const uint8_t *msg, size_t msg_len,
			 uint8_t *payload, size_t payload_cap, size_t *payload_len);

/* The handshake hash h, the channel binding value (valid once the handshake is done).
 * Writes hs->hash_len bytes and returns that length. */
size_t noise_handshake_hash(const struct noise_handshake *hs, uint8_t out[NOISE_HASH_MAX_LEN]);

/* HASH(data) with the given function into out (its HASHLEN bytes); returns that length. */
size_t noise_hash(enum noise_hash hash, const uint8_t *data, size_t len, uint8_t out[NOISE_HASH_MAX_LEN]);

/* Split(): k1 encrypts initiator -> responder, k2 responder -> initiator. Only after message 2. */
bool noise_split(const struct noise_handshake *hs, uint8_t k1[NOISE_KEY_LEN], uint8_t k2[NOISE_KEY_LEN]);

/* Transport messages: ChaChaPoly with the caller's explicit nonce (a counter it never repeats).
 * n = 2^64-1 is refused, as the spec reserves it. out needs plain_len + NOISE_TAG_LEN bytes. */
bool noise_transport_encrypt(const uint8_t key[NOISE_KEY_LEN], uint64_t n, const uint8_t *ad, size_t ad_len,
			     const uint8_t *plain, size_t plain_len, uint8_t *out, size_t out_cap, size_t *out_len);
bool noise_transport_decrypt(const uint8_t key[NOISE_KEY_LEN], uint64_t n, const uint8_t *ad, size_t ad_len,
			     const uint8_t *cipher, size_t cipher_len, uint8_t *out, size_t out_cap, size_t *out_len);

/* Wipes every key and hash. */
void noise_handshake_clear(struct noise_handshake *hs);

#endif
