/* Disco messages (layout in disco.h). Every length is checked before a byte is read; the
 * parser is strict so that each message has one encoding. */
#include "disco.h"

#include <string.h>

enum {
	ENDPOINT_FAMILY_IPV4 = 4,
	ENDPOINT_FAMILY_IPV6 = 6,
	ENDPOINT_OFF_ADDR = 1,
	ENDPOINT_OFF_PORT = 1 + 16,
	PLAIN_OFF_KIND = 0,
	PLAIN_OFF_TXID = 1,
	PLAIN_OFF_BODY = 1 + DISCO_TXID_LEN,
};

_Static_assert(DISCO_MAX_LEN <= 512, "a disco message stays far below any path MTU");
_Static_assert(crypto_box_BEFORENMBYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES &&
		       crypto_box_NONCEBYTES == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES &&
		       crypto_box_MACBYTES == crypto_aead_xchacha20poly1305_ietf_ABYTES,
	       "the layout's sizes are the AEAD's");

static bool endpoint_valid(const struct control_endpoint *e)
{
	return (e->family == ENDPOINT_FAMILY_IPV4 || e->family == ENDPOINT_FAMILY_IPV6) && e->port != 0;
}

static void put_endpoint(uint8_t *p, const struct control_endpoint *e)
{
	memset(p, 0, DISCO_ENDPOINT_LEN);
	p[0] = e->family;
	memcpy(p + ENDPOINT_OFF_ADDR, e->addr, e->family == ENDPOINT_FAMILY_IPV4 ? 4 : 16);
	p[ENDPOINT_OFF_PORT] = (uint8_t)(e->port >> 8);
	p[ENDPOINT_OFF_PORT + 1] = (uint8_t)e->port;
}

static bool get_endpoint(const uint8_t *p, struct control_endpoint *e)
{
	static const uint8_t zeros[12];
	memset(e, 0, sizeof(*e));
	e->family = p[0];
	e->port = (uint16_t)(p[ENDPOINT_OFF_PORT] << 8 | p[ENDPOINT_OFF_PORT + 1]);
	if (!endpoint_valid(e))
		return false;
	/* IPv4 leaves 12 address bytes unused: they must be zero (one encoding per endpoint). */
	if (e->family == ENDPOINT_FAMILY_IPV4 && memcmp(p + ENDPOINT_OFF_ADDR + 4, zeros, sizeof(zeros)) != 0)
		return false;
	memcpy(e->addr, p + ENDPOINT_OFF_ADDR, e->family == ENDPOINT_FAMILY_IPV4 ? 4 : 16);
	return true;
}

bool disco_shared_key(uint8_t out[crypto_box_BEFORENMBYTES], const uint8_t our_private[WIRE_KEY_LEN],
		      const uint8_t their_public[WIRE_KEY_LEN])
{
	return crypto_box_beforenm(out, their_public, our_private) == 0;
}

/* The plaintext of m; 0 if m is invalid. */
static size_t encode_plain(const struct disco_message *m, uint8_t plain[DISCO_PLAIN_MAX])
{
	size_t len = PLAIN_OFF_BODY;

	memset(plain, 0, DISCO_PLAIN_MAX);
	plain[PLAIN_OFF_KIND] = (uint8_t)m->kind;
	memcpy(plain + PLAIN_OFF_TXID, m->txid, DISCO_TXID_LEN);
	switch (m->kind) {
	case DISCO_PING:
	case DISCO_PUNCH:
		return len + DISCO_ENDPOINT_LEN; /* zero padding */
	case DISCO_PONG:
		if (!endpoint_valid(&m->observed))
			return 0;
		put_endpoint(plain + len, &m->observed);
		return len + DISCO_ENDPOINT_LEN;
	case DISCO_CALL_ME_MAYBE:
		if (m->n_endpoints > CONTROL_MAX_ENDPOINTS)
			return 0;
		plain[len++] = (uint8_t)m->n_endpoints;
		for (size_t i = 0; i < m->n_endpoints; i++) {
			if (!endpoint_valid(&m->endpoints[i]))
				return 0;
			put_endpoint(plain + len, &m->endpoints[i]);
			len += DISCO_ENDPOINT_LEN;
		}
		/* A short call-me-maybe is padded like a ping, so no reply to it is ever larger. */
		return len < DISCO_PLAIN_MIN ? DISCO_PLAIN_MIN : len;
	}
	return 0;
}

size_t disco_seal(const struct disco_message *m, const uint8_t sender_public[WIRE_KEY_LEN],
		  const uint8_t shared_key[crypto_box_BEFORENMBYTES], uint8_t *out, size_t cap)
{
	uint8_t plain[DISCO_PLAIN_MAX];
	size_t plain_len = encode_plain(m, plain);
	size_t total = DISCO_HEADER_LEN + crypto_box_MACBYTES + plain_len;

	if (plain_len == 0 || !out || cap < total)
		return 0;
	wire_put_header(out, MSG_DISCO);
	memcpy(out + DISCO_OFF_SENDER, sender_public, WIRE_KEY_LEN);
	randombytes_buf(out + DISCO_OFF_NONCE, crypto_box_NONCEBYTES);
	unsigned long long sealed_len;
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + DISCO_OFF_BOX, &sealed_len, plain, plain_len, out,
						   DISCO_OFF_NONCE, NULL, out + DISCO_OFF_NONCE, shared_key);
	sodium_memzero(plain, sizeof(plain));
	return total;
}

const uint8_t *disco_sender(const uint8_t *buf, size_t len)
{
	if (!buf || len < DISCO_MIN_LEN || len > DISCO_MAX_LEN || wire_header_type(buf, len) != MSG_DISCO)
		return NULL;
	return buf + DISCO_OFF_SENDER;
}

static bool decode_plain(const uint8_t *plain, size_t len, struct disco_message *out)
{
	static const uint8_t zeros[DISCO_ENDPOINT_LEN];
	const uint8_t *body = plain + PLAIN_OFF_BODY;
	size_t body_len = len - PLAIN_OFF_BODY; /* len >= DISCO_PLAIN_MIN, checked by the caller */

	out->kind = (enum disco_kind)plain[PLAIN_OFF_KIND];
	memcpy(out->txid, plain + PLAIN_OFF_TXID, DISCO_TXID_LEN);
	switch (plain[PLAIN_OFF_KIND]) {
	case DISCO_PING:
	case DISCO_PUNCH:
		return body_len == DISCO_ENDPOINT_LEN && memcmp(body, zeros, DISCO_ENDPOINT_LEN) == 0;
	case DISCO_PONG:
		return body_len == DISCO_ENDPOINT_LEN && get_endpoint(body, &out->observed);
	case DISCO_CALL_ME_MAYBE: {
		size_t n = body[0];
		size_t used = 1 + n * DISCO_ENDPOINT_LEN;
		if (n > CONTROL_MAX_ENDPOINTS || used > body_len)
			return false;
		/* Exactly the endpoints, or the minimum size with zero padding after them. */
		size_t padded = used + PLAIN_OFF_BODY < DISCO_PLAIN_MIN ? DISCO_PLAIN_MIN - PLAIN_OFF_BODY : used;
		if (body_len != padded || memcmp(body + used, zeros, body_len - used) != 0)
			return false;
		for (size_t i = 0; i < n; i++)
			if (!get_endpoint(body + 1 + i * DISCO_ENDPOINT_LEN, &out->endpoints[i]))
				return false;
		out->n_endpoints = n;
		return true;
	}
	default:
		return false;
	}
}

bool disco_open(const uint8_t *buf, size_t len, const uint8_t shared_key[crypto_box_BEFORENMBYTES],
		struct disco_message *out)
{
	uint8_t plain[DISCO_PLAIN_MAX];

	memset(out, 0, sizeof(*out));
	if (!disco_sender(buf, len))
		return false;
	size_t plain_len = len - DISCO_HEADER_LEN - crypto_box_MACBYTES;
	unsigned long long opened_len;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &opened_len, NULL, buf + DISCO_OFF_BOX,
						       len - DISCO_HEADER_LEN, buf, DISCO_OFF_NONCE,
						       buf + DISCO_OFF_NONCE, shared_key) != 0)
		return false;
	bool ok = decode_plain(plain, plain_len, out);
	if (!ok)
		memset(out, 0, sizeof(*out));
	return ok;
}
