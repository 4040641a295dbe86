/* WireGuard's cookie replies and mac2 (cookie.h has the scheme). */
#include "cookie.h"

#include <string.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <sodium.h>

#include "handshake.h"

static const char cookie_label[] = "cookie--";

_Static_assert(WIRE_COOKIE_NONCE_LEN == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, "XChaCha20 nonce");
_Static_assert(WIRE_AEAD_TAG_LEN == crypto_aead_xchacha20poly1305_ietf_ABYTES, "Poly1305 tag");

size_t cookie_source_bytes(const void *sockaddr, uint8_t out[COOKIE_SOURCE_MAX])
{
	const struct sockaddr *sa = sockaddr;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = sockaddr;
		memcpy(out, &in->sin_addr, 4);
		memcpy(out + 4, &in->sin_port, 2);
		return 6;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = sockaddr;
		memcpy(out, &in6->sin6_addr, 16);
		memcpy(out + 16, &in6->sin6_port, 2);
		return 18;
	}
	return 0;
}

void cookie_checker_init(struct cookie_checker *c, const uint8_t our_public_key[WIRE_KEY_LEN], unsigned int threshold)
{
	memset(c, 0, sizeof(*c));
	handshake_label_key(c->reply_key, cookie_label, our_public_key);
	c->threshold = threshold;
}

bool cookie_checker_under_load(struct cookie_checker *c, uint64_t now_ms)
{
	if (c->threshold == 0)
		return true;
	if (c->window_count == 0 || now_ms - c->window_start_ms >= COOKIE_LOAD_WINDOW_MS) {
		c->window_start_ms = now_ms;
		c->window_count = 0;
	}
	if (c->window_count < UINT32_MAX)
		c->window_count++;
	if (c->window_count > c->threshold) {
		c->under_load_until_ms = now_ms + COOKIE_LOAD_HOLD_MS;
		c->loaded = true;
	}
	return c->loaded && now_ms < c->under_load_until_ms;
}

bool cookie_checker_reply_allowed(struct cookie_checker *c, uint64_t now_ms)
{
	if (c->replies_in_window == 0 || now_ms - c->reply_window_start_ms >= 1000) {
		c->reply_window_start_ms = now_ms;
		c->replies_in_window = 0;
	}
	if (c->replies_in_window >= COOKIE_REPLIES_PER_SECOND)
		return false;
	c->replies_in_window++;
	return true;
}

void cookie_checker_clear(struct cookie_checker *c)
{
	sodium_memzero(c, sizeof(*c));
}

static bool secret_fresh(const struct cookie_checker *c, uint64_t now_ms)
{
	return c->has_secret && now_ms - c->secret_born_ms < COOKIE_SECRET_MAX_AGE_MS;
}

/* cookie = MAC(secret, source) */
static void cookie_for(const struct cookie_checker *c, const uint8_t *source, size_t source_len,
		       uint8_t cookie[WIRE_COOKIE_LEN])
{
	handshake_mac(cookie, c->secret, sizeof(c->secret), source, source_len);
}

bool cookie_checker_mac2_ok(const struct cookie_checker *c, const uint8_t *msg, size_t len, const uint8_t *source,
			    size_t source_len, uint64_t now_ms)
{
	size_t mac2_off = handshake_mac1_offset(msg, len) + WIRE_MAC_LEN;
	uint8_t cookie[WIRE_COOKIE_LEN], mac2[WIRE_MAC_LEN];
	bool ok;

	if (mac2_off == WIRE_MAC_LEN || !secret_fresh(c, now_ms))
		return false;
	cookie_for(c, source, source_len, cookie);
	handshake_mac(mac2, cookie, sizeof(cookie), msg, mac2_off);
	ok = sodium_memcmp(mac2, msg + mac2_off, WIRE_MAC_LEN) == 0;
	sodium_memzero(cookie, sizeof(cookie));
	return ok;
}

bool cookie_reply_create(struct cookie_checker *c, const uint8_t *msg, size_t len, const uint8_t *source,
			 size_t source_len, uint64_t now_ms, const uint8_t *nonce, uint8_t out[WIRE_COOKIE_REPLY_LEN])
{
	size_t mac1_off = handshake_mac1_offset(msg, len);
	uint8_t cookie[WIRE_COOKIE_LEN];

	if (mac1_off == 0)
		return false;
	if (!secret_fresh(c, now_ms)) {
		randombytes_buf(c->secret, sizeof(c->secret));
		c->secret_born_ms = now_ms;
		c->has_secret = true;
	}
	cookie_for(c, source, source_len, cookie);

	wire_put_header(out, MSG_COOKIE_REPLY);
	/* the sender index of either handshake message sits right after the header */
	memcpy(out + WIRE_COOKIE_OFF_RECEIVER, msg + WIRE_INIT_OFF_SENDER, 4);
	if (nonce)
		memcpy(out + WIRE_COOKIE_OFF_NONCE, nonce, WIRE_COOKIE_NONCE_LEN);
	else
		randombytes_buf(out + WIRE_COOKIE_OFF_NONCE, WIRE_COOKIE_NONCE_LEN);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + WIRE_COOKIE_OFF_COOKIE, NULL, cookie, sizeof(cookie),
						   msg + mac1_off, WIRE_MAC_LEN, NULL, out + WIRE_COOKIE_OFF_NONCE,
						   c->reply_key);
	sodium_memzero(cookie, sizeof(cookie));
	return true;
}

bool cookie_reply_receiver(const uint8_t *msg, size_t len, uint32_t *receiver_index)
{
	if (!msg || len != WIRE_COOKIE_REPLY_LEN || wire_header_type(msg, len) != MSG_COOKIE_REPLY)
		return false;
	*receiver_index = wire_get_u32(msg + WIRE_COOKIE_OFF_RECEIVER);
	return true;
}

bool cookie_jar_fresh(const struct cookie_jar *j, uint64_t now_ms)
{
	return j->has_cookie && now_ms - j->cookie_received_ms < COOKIE_SECRET_MAX_AGE_MS - COOKIE_SECRET_LATENCY_MS;
}

void cookie_jar_stamp(struct cookie_jar *j, uint8_t *msg, size_t len, uint64_t now_ms)
{
	size_t mac1_off = handshake_mac1_offset(msg, len);

	if (mac1_off == 0)
		return;
	memcpy(j->last_mac1, msg + mac1_off, WIRE_MAC_LEN);
	j->has_last_mac1 = true;
	if (cookie_jar_fresh(j, now_ms))
		handshake_mac(msg + mac1_off + WIRE_MAC_LEN, j->cookie, sizeof(j->cookie), msg, mac1_off + WIRE_MAC_LEN);
	else
		memset(msg + mac1_off + WIRE_MAC_LEN, 0, WIRE_MAC_LEN);
}

bool cookie_jar_consume_reply(struct cookie_jar *j, const uint8_t peer_public_key[WIRE_KEY_LEN],
			      const uint8_t *msg, size_t len, uint64_t now_ms)
{
	uint8_t key[WIRE_KEY_LEN], cookie[WIRE_COOKIE_LEN];
	uint32_t receiver;
	bool ok;

	if (!cookie_reply_receiver(msg, len, &receiver) || !j->has_last_mac1)
		return false;
	handshake_label_key(key, cookie_label, peer_public_key);
	ok = crypto_aead_xchacha20poly1305_ietf_decrypt(cookie, NULL, NULL, msg + WIRE_COOKIE_OFF_COOKIE,
							WIRE_COOKIE_LEN + WIRE_AEAD_TAG_LEN, j->last_mac1,
							WIRE_MAC_LEN, msg + WIRE_COOKIE_OFF_NONCE, key) == 0;
	if (ok) {
		memcpy(j->cookie, cookie, sizeof(cookie));
		j->cookie_received_ms = now_ms;
		j->has_cookie = true;
	}
	sodium_memzero(key, sizeof(key));
	sodium_memzero(cookie, sizeof(cookie));
	return ok;
}

void cookie_jar_clear(struct cookie_jar *j)
{
	sodium_memzero(j, sizeof(*j));
}
