/* Join keys: one string that holds everything a new node needs to join a network:
 * the coordinator's control address, its public key, and a secret.
 *
 *   mshjoin1_<base64url without padding of: pubkey (32) | secret (24) | "host:port" | check (4)>
 *
 * check is the first 4 bytes of BLAKE2b-256, keyed with "meshd join key check v1", of
 * everything before it. People copy and paste these keys; without it a key cut short could
 * still read as a key, for a different port (51821 cut to 5182). It is not a MAC: the secret
 * is what the coordinator checks.
 *
 * The coordinator stores only a hash of the secret. */
#ifndef MESHD_JOINKEY_H
#define MESHD_JOINKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ipaddr.h"
#include "wire.h"

#define JOINKEY_PREFIX "mshjoin1_"
enum {
	JOINKEY_SECRET_LEN = 24,   /* 192 bits: unguessable, short enough to paste */
	JOINKEY_MAX_LEN = 512,     /* the whole string, bounds the parser */
	JOINKEY_HASH_LEN = 32,     /* BLAKE2b-256 of the secret, what the database keeps */
	JOINKEY_CHECK_LEN = 4,     /* a damaged paste slips through once in 2^32; costs 5 or 6 characters */
};

struct joinkey {
	uint8_t coord_public[WIRE_KEY_LEN];
	uint8_t secret[JOINKEY_SECRET_LEN];
	char host[ENDPOINT_HOST_MAX];
	uint16_t port;
};

/* Writes the string form into out (NUL-terminated); false if it does not fit. */
bool joinkey_format(const struct joinkey *k, char *out, size_t cap);
/* Parses the string (explicit length; surrounding whitespace allowed). err gets one line. */
bool joinkey_parse(const char *s, size_t len, struct joinkey *out, char *err, size_t err_len);
void joinkey_hash(const uint8_t *secret, size_t len, uint8_t out[JOINKEY_HASH_LEN]);
void joinkey_clear(struct joinkey *k);

#endif
