/* Join keys: "mshjoin1_" + base64url (no padding) of coordinator key | secret | "host:port" |
 * check.
 *
 * The string is pasted by people, so the parser explains what is wrong with it in terms of
 * copying and pasting (truncated, split, the wrong kind of key) and never echoes it: it holds
 * a secret. The check value comes before the contents are judged: a key that passes it was
 * copied whole, so what is wrong after that was wrong when the key was made. Every buffer that
 * held the secret (the check value is derived from it) is wiped on every path. */
#include "core/joinkey.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum {
	JOINKEY_PREFIX_LEN = sizeof(JOINKEY_PREFIX) - 1,
	JOINKEY_FIXED_LEN = WIRE_KEY_LEN + JOINKEY_SECRET_LEN,       /* before the endpoint */
	JOINKEY_ENDPOINT_MIN = 3,                                    /* "a:1" */
	JOINKEY_ENDPOINT_MAX = ENDPOINT_HOST_MAX + 8,                /* "[" host "]:" 65535 */
	JOINKEY_PAYLOAD_MAX = JOINKEY_FIXED_LEN + JOINKEY_ENDPOINT_MAX + JOINKEY_CHECK_LEN,
	JOINKEY_PAYLOAD_MIN = JOINKEY_FIXED_LEN + JOINKEY_ENDPOINT_MIN + JOINKEY_CHECK_LEN,
	JOINKEY_CHECK_HASH_LEN = 32,                                 /* BLAKE2b-256: the check is its first bytes */
	JOINKEY_BASE64_MAX = JOINKEY_MAX_LEN - JOINKEY_PREFIX_LEN,   /* characters after the prefix */
	JOINKEY_DECODED_MAX = JOINKEY_BASE64_MAX / 4 * 3 + 3,         /* what that many characters can hold */
};

/* The key for BLAKE2b: a hash of a join secret means nothing anywhere else. */
static const char joinkey_hash_domain[] = "meshd join key v1";
/* The key for the check value's BLAKE2b: its own domain, so a check value is never part of
 * another hash meshd makes (the database's hash of the secret above all). */
static const char joinkey_check_domain[] = "meshd join key check v1";

_Static_assert(sizeof(joinkey_check_domain) - 1 >= crypto_generichash_KEYBYTES_MIN &&
		       sizeof(joinkey_check_domain) - 1 <= crypto_generichash_KEYBYTES_MAX,
	       "BLAKE2b refuses a key of this length");

/* The check value of the payload bytes before it. */
static void payload_check(const uint8_t *payload, size_t len, uint8_t check[JOINKEY_CHECK_LEN])
{
	uint8_t h[JOINKEY_CHECK_HASH_LEN];

	crypto_generichash(h, sizeof(h), payload, len, (const unsigned char *)joinkey_check_domain,
			   sizeof(joinkey_check_domain) - 1);
	memcpy(check, h, JOINKEY_CHECK_LEN);
	sodium_memzero(h, sizeof(h));
}

/* Writes "host:port", bracketing an IPv6 literal; false if it does not fit or would not
 * parse back. */
static bool endpoint_string(const struct joinkey *k, char *out, size_t cap)
{
	char host[ENDPOINT_HOST_MAX];
	uint16_t port;
	size_t host_len = strnlen(k->host, sizeof(k->host));
	int n;

	if (host_len == 0 || host_len >= sizeof(k->host) || k->port == 0)
		return false;
	n = snprintf(out, cap, memchr(k->host, ':', host_len) ? "[%s]:%u" : "%s:%u", k->host, (unsigned int)k->port);
	if (n < 0 || (size_t)n >= cap)
		return false;
	return endpoint_parse(out, host, sizeof(host), &port) && port == k->port && strcmp(host, k->host) == 0;
}

bool joinkey_format(const struct joinkey *k, char *out, size_t cap)
{
	uint8_t payload[JOINKEY_PAYLOAD_MAX];
	char endpoint[JOINKEY_ENDPOINT_MAX];
	size_t endpoint_len, payload_len, need;

	if (!out || cap == 0)
		return false;
	out[0] = '\0';
	/* Never hand out a key that joinkey_parse would refuse. */
	if (!k || sodium_is_zero(k->coord_public, WIRE_KEY_LEN) || !endpoint_string(k, endpoint, sizeof(endpoint)))
		return false;
	endpoint_len = strlen(endpoint);
	payload_len = JOINKEY_FIXED_LEN + endpoint_len + JOINKEY_CHECK_LEN;
	/* The encoded length counts its NUL. */
	need = JOINKEY_PREFIX_LEN + sodium_base64_ENCODED_LEN(payload_len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	if (need > cap || need > JOINKEY_MAX_LEN + 1)
		return false;
	memcpy(payload, k->coord_public, WIRE_KEY_LEN);
	memcpy(payload + WIRE_KEY_LEN, k->secret, JOINKEY_SECRET_LEN);
	memcpy(payload + JOINKEY_FIXED_LEN, endpoint, endpoint_len);
	payload_check(payload, payload_len - JOINKEY_CHECK_LEN, payload + payload_len - JOINKEY_CHECK_LEN);
	memcpy(out, JOINKEY_PREFIX, JOINKEY_PREFIX_LEN);
	sodium_bin2base64(out + JOINKEY_PREFIX_LEN, cap - JOINKEY_PREFIX_LEN, payload, payload_len,
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(payload, sizeof(payload));
	return true;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_base64url(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static bool fail(char *err, size_t err_len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static bool fail(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	if (err && err_len) {
		va_start(ap, fmt);
		vsnprintf(err, err_len, fmt, ap);
		va_end(ap);
	}
	return false;
}

/* Checks the characters after the prefix, so that a damaged paste gets a message that says
 * where, rather than "invalid base64". */
static bool check_body(const char *b, size_t len, char *err, size_t err_len)
{
	for (size_t i = 0; i < len; i++) {
		if (is_base64url(b[i]))
			continue;
		if (is_space(b[i]))
			return fail(err, err_len,
				    "join key has a space or line break at character %zu (was it split across lines when copied?)",
				    JOINKEY_PREFIX_LEN + i + 1);
		if (b[i] == '=')
			return fail(err, err_len, "join key has '=' at character %zu (join keys have no padding; was it changed?)",
				    JOINKEY_PREFIX_LEN + i + 1);
		return fail(err, err_len, "join key has an invalid character at character %zu (only A-Z a-z 0-9 - _ after %s)",
			    JOINKEY_PREFIX_LEN + i + 1, JOINKEY_PREFIX);
	}
	return true;
}

/* Decodes the payload and fills out; the caller wipes bin whatever happens. */
static bool decode(const char *b, size_t len, uint8_t *bin, size_t bin_cap, struct joinkey *out, char *err,
		   size_t err_len)
{
	char endpoint[JOINKEY_ENDPOINT_MAX];
	uint8_t check[JOINKEY_CHECK_LEN];
	const char *end = NULL;
	size_t bin_len = 0, endpoint_len;
	bool check_ok;

	/* A base64 string of 4n+1 characters cannot be complete: a character was lost. */
	if (sodium_base642bin(bin, bin_cap, b, len, NULL, &bin_len, &end, sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
	    end != b + len)
		return fail(err, err_len, "join key is truncated or damaged (it does not decode; copy it again in one piece)");
	if (bin_len < JOINKEY_PAYLOAD_MIN)
		return fail(err, err_len, "join key is truncated (%zu characters; a complete one has at least %zu)",
			    JOINKEY_PREFIX_LEN + len,
			    (size_t)(JOINKEY_PREFIX_LEN +
				     sodium_base64_ENCODED_LEN(JOINKEY_PAYLOAD_MIN, sodium_base64_VARIANT_URLSAFE_NO_PADDING) - 1));
	/* Before anything is read from it: a cut or mistyped key must not read as another key. */
	payload_check(bin, bin_len - JOINKEY_CHECK_LEN, check);
	check_ok = sodium_memcmp(check, bin + bin_len - JOINKEY_CHECK_LEN, JOINKEY_CHECK_LEN) == 0;
	sodium_memzero(check, sizeof(check));
	if (!check_ok)
		return fail(err, err_len,
			    "join key is damaged or incomplete (its check value does not match); copy it again from "
			    "'meshcoord authkey create'");
	endpoint_len = bin_len - JOINKEY_FIXED_LEN - JOINKEY_CHECK_LEN;
	if (endpoint_len >= sizeof(endpoint) || memchr(bin + JOINKEY_FIXED_LEN, '\0', endpoint_len))
		return fail(err, err_len,
			    "join key holds no valid coordinator address (too long, or a NUL byte); the key was made wrongly");
	memcpy(endpoint, bin + JOINKEY_FIXED_LEN, endpoint_len);
	endpoint[endpoint_len] = '\0';
	if (!endpoint_parse(endpoint, out->host, sizeof(out->host), &out->port))
		return fail(err, err_len, "join key holds no valid coordinator address (host:port); the key was made wrongly");
	memcpy(out->coord_public, bin, WIRE_KEY_LEN);
	/* The all-zero X25519 key is never a real one: the key was made wrongly. */
	if (sodium_is_zero(out->coord_public, WIRE_KEY_LEN))
		return fail(err, err_len, "join key holds an invalid coordinator public key (all zero)");
	memcpy(out->secret, bin + WIRE_KEY_LEN, JOINKEY_SECRET_LEN);
	return true;
}

bool joinkey_parse(const char *s, size_t len, struct joinkey *out, char *err, size_t err_len)
{
	uint8_t bin[JOINKEY_DECODED_MAX];
	bool ok;

	if (err && err_len)
		err[0] = '\0';
	if (!out)
		return fail(err, err_len, "join key: no output");
	joinkey_clear(out);
	if (!s)
		len = 0;
	/* Pasted keys and key files come with spaces and line ends around them. */
	while (len > 0 && is_space(s[0])) {
		s++;
		len--;
	}
	while (len > 0 && is_space(s[len - 1]))
		len--;
	if (len == 0)
		return fail(err, err_len, "join key is empty");
	if (len < JOINKEY_PREFIX_LEN || memcmp(s, JOINKEY_PREFIX, JOINKEY_PREFIX_LEN) != 0) {
		/* "mshjoin2_..." from a newer coordinator deserves a better word than "not a key". */
		if (len > JOINKEY_PREFIX_LEN && memcmp(s, "mshjoin", JOINKEY_PREFIX_LEN - 2) == 0 &&
		    s[JOINKEY_PREFIX_LEN - 2] >= '0' && s[JOINKEY_PREFIX_LEN - 2] <= '9' && s[JOINKEY_PREFIX_LEN - 1] == '_')
			return fail(err, err_len,
				    "join key format mshjoin%c_ is not supported by this version (it reads %s keys); update meshd",
				    s[JOINKEY_PREFIX_LEN - 2], JOINKEY_PREFIX);
		if (len < JOINKEY_PREFIX_LEN && memcmp(s, JOINKEY_PREFIX, len) == 0)
			return fail(err, err_len, "join key is truncated (it ends inside the %s prefix)", JOINKEY_PREFIX);
		return fail(err, err_len,
			    "join key does not start with " JOINKEY_PREFIX
			    " \xe2\x80\x94 is it a join key from 'meshcoord authkey create'?");
	}
	if (len > JOINKEY_MAX_LEN)
		return fail(err, err_len, "join key is too long (%zu characters; at most %d)", len, JOINKEY_MAX_LEN);
	s += JOINKEY_PREFIX_LEN;
	len -= JOINKEY_PREFIX_LEN;
	if (len == 0)
		return fail(err, err_len, "join key is truncated (nothing after %s)", JOINKEY_PREFIX);
	if (!check_body(s, len, err, err_len))
		return false;
	ok = decode(s, len, bin, sizeof(bin), out, err, err_len);
	sodium_memzero(bin, sizeof(bin));
	if (!ok)
		joinkey_clear(out);
	return ok;
}

void joinkey_hash(const uint8_t *secret, size_t len, uint8_t out[JOINKEY_HASH_LEN])
{
	crypto_generichash(out, JOINKEY_HASH_LEN, secret, len, (const unsigned char *)joinkey_hash_domain,
			   sizeof(joinkey_hash_domain) - 1);
}

void joinkey_clear(struct joinkey *k)
{
	if (k)
		sodium_memzero(k, sizeof(*k));
}
