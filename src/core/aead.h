/* ChaCha20-Poly1305 (RFC 8439, IETF nonce) for data messages, the one cipher every packet
 * goes through. OpenSSL's libcrypto does the work when it can: its assembly (AVX-512 and
 * AVX2) seals 1,420-byte packets about 1.9 times as fast as libsodium 1.0.18 on the machines
 * we measure (tests/tools/aeadbench prints the ratio), and the cipher is ~60 % of meshd's CPU
 * under load. libcrypto is loaded on the first aead_cipher_new (aead.c says why), not linked.
 * libsodium (same algorithm, same bytes) takes over when libcrypto cannot give a context:
 * the library missing at run time (logged once), out of memory, an OpenSSL built without
 * ChaCha20, or meshd configured --without-libcrypto. Handshakes, cookies and the control
 * channel stay on libsodium: they are few and small. */
#ifndef MESHD_AEAD_H
#define MESHD_AEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
	AEAD_KEY_LEN = 32,
	AEAD_NONCE_LEN = 12,
	AEAD_TAG_LEN = 16,
};

/* A key prepared for one direction (libcrypto's context; opaque here). */
struct aead_cipher;

/* A context for sealing (seal = true) or opening with key; NULL when libcrypto cannot make
 * one, and then the calls below use libsodium with the raw key. */
struct aead_cipher *aead_cipher_new(const uint8_t key[AEAD_KEY_LEN], bool seal);
/* Wipes and frees (NULL is fine). */
void aead_cipher_free(struct aead_cipher *c);

/* Seals len bytes at buf in place and writes the tag at buf + len. c may be NULL; key is
 * the same key c was made with. Returns false only if libcrypto failed mid-way (then
 * nothing usable was written). */
bool aead_seal(struct aead_cipher *c, const uint8_t key[AEAD_KEY_LEN], const uint8_t nonce[AEAD_NONCE_LEN],
	       uint8_t *buf, size_t len);
/* Opens in_len bytes (ciphertext then tag) into out (in_len - AEAD_TAG_LEN bytes; out may
 * equal in). False when the tag does not match: out then holds nothing the caller may use
 * (it is wiped). */
bool aead_open(struct aead_cipher *c, const uint8_t key[AEAD_KEY_LEN], const uint8_t nonce[AEAD_NONCE_LEN],
	       const uint8_t *in, size_t in_len, uint8_t *out);

#endif
