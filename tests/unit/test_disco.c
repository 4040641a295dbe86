/* Unit tests for core/disco: ping, pong and call-me-maybe sealed between two fixed node keys.
 * Round trips of every kind, sizes pinned with literal numbers (a ping is never smaller than
 * the pong it asks for), every single-byte change, truncation and extra byte refused, a box
 * for another key pair refused, and hand-sealed plaintexts that break one rule each (padding,
 * family, port 0, IPv4 tail bytes, counts, kinds, trailing bytes). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/disco.h"
#include "core/keys.h"

enum {
	KEY_A = 0x11, /* node A's private key is 32 x 0x11 */
	KEY_B = 0x22,
	KEY_C = 0x33,
	EP_LEN = 19,   /* family | address (16) | port */
	PLAIN_BODY = 13, /* kind | txid */
};

struct keys {
	uint8_t a_pub[WIRE_KEY_LEN], b_pub[WIRE_KEY_LEN], c_pub[WIRE_KEY_LEN];
	uint8_t ab[crypto_box_BEFORENMBYTES]; /* A's view of A<->B */
	uint8_t ba[crypto_box_BEFORENMBYTES]; /* B's view of A<->B */
	uint8_t ac[crypto_box_BEFORENMBYTES];
	uint8_t bc[crypto_box_BEFORENMBYTES];
};

static void make_keys(struct keys *k)
{
	uint8_t a[WIRE_KEY_LEN], b[WIRE_KEY_LEN], c[WIRE_KEY_LEN];

	memset(a, KEY_A, sizeof(a));
	memset(b, KEY_B, sizeof(b));
	memset(c, KEY_C, sizeof(c));
	assert_true(key_public_from_private(k->a_pub, a));
	assert_true(key_public_from_private(k->b_pub, b));
	assert_true(key_public_from_private(k->c_pub, c));
	assert_true(disco_shared_key(k->ab, a, k->b_pub));
	assert_true(disco_shared_key(k->ba, b, k->a_pub));
	assert_true(disco_shared_key(k->ac, a, k->c_pub));
	assert_true(disco_shared_key(k->bc, b, k->c_pub));
}

static void set_v4(struct control_endpoint *e, uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port)
{
	memset(e, 0, sizeof(*e));
	e->family = 4;
	e->addr[0] = a;
	e->addr[1] = b;
	e->addr[2] = c;
	e->addr[3] = d;
	e->port = port;
}

static void set_v6(struct control_endpoint *e, uint8_t last, uint16_t port)
{
	static const uint8_t net[] = { 0x20, 0x01, 0x0d, 0xb8 };

	memset(e, 0, sizeof(*e));
	e->family = 6;
	memcpy(e->addr, net, sizeof(net));
	e->addr[15] = last;
	e->port = port;
}

static void msg_ping(struct disco_message *m)
{
	memset(m, 0, sizeof(*m));
	m->kind = DISCO_PING;
	for (size_t i = 0; i < DISCO_TXID_LEN; i++)
		m->txid[i] = (uint8_t)(0xa0 + i);
}

static void msg_pong(struct disco_message *m, int v6)
{
	msg_ping(m);
	m->kind = DISCO_PONG;
	if (v6)
		set_v6(&m->observed, 7, 65535);
	else
		set_v4(&m->observed, 203, 0, 113, 9, 41641);
}

static void msg_cmm(struct disco_message *m, size_t n)
{
	msg_ping(m);
	m->kind = DISCO_CALL_ME_MAYBE;
	for (size_t i = 0; i < n && i < CONTROL_MAX_ENDPOINTS; i++) {
		if (i % 2)
			set_v6(&m->endpoints[i], (uint8_t)i, (uint16_t)(1 + i));
		else
			set_v4(&m->endpoints[i], 192, 0, 2, (uint8_t)i, (uint16_t)(51820 + i));
	}
	m->n_endpoints = n;
}

/* Opens from a heap copy of exactly len bytes, so ASan sees any read past the end. */
static bool open_exact(const uint8_t *buf, size_t len, const uint8_t *key, struct disco_message *out)
{
	uint8_t *copy = malloc(len ? len : 1);
	bool ok;

	assert_non_null(copy);
	if (len)
		memcpy(copy, buf, len);
	ok = disco_open(copy, len, key, out);
	free(copy);
	return ok;
}

static bool is_zero_message(const struct disco_message *m)
{
	return sodium_is_zero((const unsigned char *)m, sizeof(*m));
}

/* A raw plaintext sealed by A for B, as disco_seal would frame it. */
static size_t seal_plain(const struct keys *k, const uint8_t *plain, size_t plain_len, uint8_t *out, size_t cap)
{
	size_t total = DISCO_HEADER_LEN + crypto_box_MACBYTES + plain_len;

	assert_true(total <= cap);
	out[0] = MSG_DISCO;
	out[1] = 0;
	out[2] = 0;
	out[3] = 0;
	memcpy(out + DISCO_OFF_SENDER, k->a_pub, WIRE_KEY_LEN);
	randombytes_buf(out + DISCO_OFF_NONCE, crypto_box_NONCEBYTES);
	/* XChaCha20-Poly1305, the header and sender key as associated data */
	assert_int_equal(crypto_aead_xchacha20poly1305_ietf_encrypt(out + DISCO_OFF_BOX, NULL, plain, plain_len, out,
								    DISCO_OFF_NONCE, NULL, out + DISCO_OFF_NONCE,
								    k->ab),
			 0);
	return total;
}

/* ---------------------------------------------------------------- keys and sizes */

static void test_shared_key(void **state)
{
	struct keys k;
	uint8_t priv[WIRE_KEY_LEN], low_order[WIRE_KEY_LEN] = { 0 }, out[crypto_box_BEFORENMBYTES];

	(void)state;
	make_keys(&k);
	assert_memory_equal(k.ab, k.ba, sizeof(k.ab)); /* both sides derive the same key */
	assert_memory_not_equal(k.ab, k.ac, sizeof(k.ab));
	memset(priv, KEY_A, sizeof(priv));
	assert_false(disco_shared_key(out, priv, low_order)); /* the all-zero point */
	low_order[0] = 1;
	assert_false(disco_shared_key(out, priv, low_order)); /* the point of order 4 */
}

static void test_sizes(void **state)
{
	(void)state;
	assert_int_equal(DISCO_TXID_LEN, 12);
	assert_int_equal(DISCO_ENDPOINT_LEN, 19);
	assert_int_equal(DISCO_OFF_SENDER, 4);
	assert_int_equal(DISCO_OFF_NONCE, 36);
	assert_int_equal(DISCO_HEADER_LEN, 60);
	assert_int_equal(DISCO_PLAIN_MIN, 32);
	assert_int_equal(DISCO_PLAIN_MAX, 1 + 12 + 1 + 16 * 19); /* 318 */
	assert_int_equal(DISCO_MIN_LEN, 108);
	assert_int_equal(DISCO_MAX_LEN, 394);
}

/* The total length each message seals to, and the ping not smaller than the pong. */
static void test_sealed_lengths(void **state)
{
	struct keys k;
	struct disco_message m;
	uint8_t buf[DISCO_MAX_LEN];
	size_t ping, pong4, pong6;

	(void)state;
	make_keys(&k);
	msg_ping(&m);
	ping = disco_seal(&m, k.a_pub, k.ab, buf, sizeof(buf));
	msg_pong(&m, 0);
	pong4 = disco_seal(&m, k.a_pub, k.ab, buf, sizeof(buf));
	msg_pong(&m, 1);
	pong6 = disco_seal(&m, k.a_pub, k.ab, buf, sizeof(buf));
	assert_int_equal(ping, 108);
	assert_int_equal(pong4, 108);
	assert_int_equal(pong6, 108);
	assert_true(ping >= pong4 && ping >= pong6); /* a reflected ping amplifies nothing */

	static const struct {
		size_t n, len;
	} cmm[] = { { 0, 108 }, { 1, 109 }, { 2, 128 }, { 15, 375 }, { 16, 394 } };
	for (size_t i = 0; i < sizeof(cmm) / sizeof(cmm[0]); i++) {
		msg_cmm(&m, cmm[i].n);
		if (disco_seal(&m, k.a_pub, k.ab, buf, sizeof(buf)) != cmm[i].len)
			fail_msg("call-me-maybe with %zu endpoints is not %zu bytes", cmm[i].n, cmm[i].len);
	}
}

/* ---------------------------------------------------------------- round trips */

static void round_trip(const struct keys *k, const struct disco_message *m, size_t want_len)
{
	uint8_t buf[DISCO_MAX_LEN + 16], again[DISCO_MAX_LEN];
	struct disco_message back, back2;
	size_t len;

	memset(buf, 0xa5, sizeof(buf));
	len = disco_seal(m, k->a_pub, k->ab, buf, sizeof(buf));
	assert_int_equal(len, want_len);
	for (size_t i = len; i < sizeof(buf); i++)
		assert_int_equal(buf[i], 0xa5);
	assert_int_equal(buf[0], 0x80);
	assert_int_equal(buf[1], 0);
	assert_int_equal(buf[2], 0);
	assert_int_equal(buf[3], 0);
	assert_ptr_equal(disco_sender(buf, len), buf + 4);
	assert_memory_equal(buf + 4, k->a_pub, WIRE_KEY_LEN);

	assert_true(open_exact(buf, len, k->ba, &back)); /* B opens what A sealed */
	assert_int_equal(back.kind, m->kind);
	assert_memory_equal(back.txid, m->txid, DISCO_TXID_LEN);
	if (m->kind == DISCO_PONG)
		assert_memory_equal(&back.observed, &m->observed, sizeof(m->observed));
	if (m->kind == DISCO_CALL_ME_MAYBE) {
		assert_int_equal(back.n_endpoints, m->n_endpoints);
		for (size_t i = 0; i < m->n_endpoints; i++)
			assert_memory_equal(&back.endpoints[i], &m->endpoints[i], sizeof(m->endpoints[i]));
	}
	/* the builders start from zero, as open does: the whole message comes back */
	assert_memory_equal(&back, m, sizeof(back));

	/* sealed again (a new nonce): different bytes, the same message */
	assert_int_equal(disco_seal(&back, k->b_pub, k->ba, again, sizeof(again)), len);
	assert_memory_not_equal(again + DISCO_OFF_NONCE, buf + DISCO_OFF_NONCE, crypto_box_NONCEBYTES);
	assert_true(open_exact(again, len, k->ab, &back2));
	assert_memory_equal(&back2, m, sizeof(back2));
}

static void test_round_trip_ping(void **state)
{
	struct keys k;
	struct disco_message m;

	(void)state;
	make_keys(&k);
	msg_ping(&m);
	round_trip(&k, &m, 108);
	memset(m.txid, 0, sizeof(m.txid));
	round_trip(&k, &m, 108);
	memset(m.txid, 0xff, sizeof(m.txid));
	round_trip(&k, &m, 108);
}

static void test_round_trip_pong(void **state)
{
	struct keys k;
	struct disco_message m;

	(void)state;
	make_keys(&k);
	msg_pong(&m, 0);
	round_trip(&k, &m, 108);
	msg_pong(&m, 1);
	round_trip(&k, &m, 108);
	set_v4(&m.observed, 255, 255, 255, 255, 1);
	round_trip(&k, &m, 108);
	m.observed.family = 6;
	memset(m.observed.addr, 0xff, sizeof(m.observed.addr));
	round_trip(&k, &m, 108);
}

static void test_round_trip_call_me_maybe(void **state)
{
	struct keys k;
	struct disco_message m;

	(void)state;
	make_keys(&k);
	msg_cmm(&m, 0);
	round_trip(&k, &m, 108);
	msg_cmm(&m, 1);
	round_trip(&k, &m, 109);
	msg_cmm(&m, 16);
	round_trip(&k, &m, 394);
	for (size_t n = 0; n <= CONTROL_MAX_ENDPOINTS; n++) {
		msg_cmm(&m, n);
		round_trip(&k, &m, n == 0 ? 108 : 60 + 16 + 14 + 19 * n);
	}
}

/* ---------------------------------------------------------------- seal refuses */

static void test_seal_refused(void **state)
{
	struct keys k;
	struct disco_message m;
	uint8_t buf[DISCO_MAX_LEN + 32];

	(void)state;
	make_keys(&k);

	msg_cmm(&m, 16);
	m.n_endpoints = 17;
	assert_int_equal(disco_seal(&m, k.a_pub, k.ab, buf, sizeof(buf)), 0);
	m.n_endpoints = SIZE_MAX;
	assert_int_equal(disco_seal(&m, k.a_pub, k.ab, buf, sizeof(buf)), 0);

	msg_cmm(&m, 3);
	m.endpoints[2].port = 0;
	assert_int_equal(disco_seal(&m, k.a_pub, k.ab, buf, sizeof(buf)), 0);
	msg_cmm(&m, 3);
	m.endpoints[1].family = 5;
	assert_int_equal(disco_seal(&m, k.a_pub, k.ab, buf, sizeof(buf)), 0);

	msg_pong(&m, 0);
	m.observed.port = 0;
	assert_int_equal(disco_seal(&m, k.a_pub, k.ab, buf, sizeof(buf)), 0);
	msg_pong(&m, 0);
	m.observed.family = 0;
	assert_int_equal(disco_seal(&m, k.a_pub, k.ab, buf, sizeof(buf)), 0);
	msg_pong(&m, 0);
	m.observed.family = 5;
	assert_int_equal(disco_seal(&m, k.a_pub, k.ab, buf, sizeof(buf)), 0);

	msg_ping(&m);
	m.kind = (enum disco_kind)0;
	assert_int_equal(disco_seal(&m, k.a_pub, k.ab, buf, sizeof(buf)), 0);
	m.kind = (enum disco_kind)5;
	assert_int_equal(disco_seal(&m, k.a_pub, k.ab, buf, sizeof(buf)), 0);

	/* the buffer: one byte short fails without writing past it, exact fits */
	msg_cmm(&m, 16);
	for (size_t cap = 0; cap < 394; cap += cap < 120 ? 1 : 37) {
		memset(buf, 0xa5, sizeof(buf));
		assert_int_equal(disco_seal(&m, k.a_pub, k.ab, buf, cap), 0);
		for (size_t i = cap; i < sizeof(buf); i++)
			assert_int_equal(buf[i], 0xa5);
	}
	assert_int_equal(disco_seal(&m, k.a_pub, k.ab, buf, 393), 0);
	assert_int_equal(disco_seal(&m, k.a_pub, k.ab, buf, 394), 394);
	assert_int_equal(disco_seal(&m, k.a_pub, k.ab, NULL, 394), 0);
	msg_ping(&m);
	assert_int_equal(disco_seal(&m, k.a_pub, k.ab, buf, 107), 0);
	assert_int_equal(disco_seal(&m, k.a_pub, k.ab, buf, 108), 108);
}

/* ---------------------------------------------------------------- open refuses */

/* The receiver's path: the claimed sender is looked up among its peers (here A and C), the
 * message is opened with that peer's key, and nothing else is acted on. */
static bool receive(const struct keys *k, const uint8_t *buf, size_t len, struct disco_message *out)
{
	const uint8_t *sender = disco_sender(buf, len);
	bool ok;

	memset(out, 0, sizeof(*out));
	if (!sender)
		return false;
	if (memcmp(sender, k->a_pub, WIRE_KEY_LEN) == 0)
		ok = open_exact(buf, len, k->ba, out);
	else if (memcmp(sender, k->c_pub, WIRE_KEY_LEN) == 0)
		ok = open_exact(buf, len, k->bc, out);
	else
		return false;
	if (!ok)
		assert_true(is_zero_message(out)); /* a failed open leaves nothing behind */
	return ok;
}

static void test_every_byte_flipped(void **state)
{
	struct keys k;
	struct disco_message m, out;
	uint8_t buf[DISCO_MAX_LEN];

	(void)state;
	make_keys(&k);
	for (int kind = 0; kind < 5; kind++) {
		size_t len;

		switch (kind) {
		case 0: msg_ping(&m); break;
		case 1: msg_pong(&m, 0); break;
		case 2: msg_cmm(&m, 0); break;
		case 3: msg_cmm(&m, 1); break;
		default: msg_cmm(&m, 16); break;
		}
		len = disco_seal(&m, k.a_pub, k.ab, buf, sizeof(buf));
		assert_true(len > 0);
		assert_true(receive(&k, buf, len, &out));
		for (size_t i = 0; i < len; i++) {
			static const uint8_t flips[] = { 0x01, 0x80, 0xff };

			for (size_t f = 0; f < sizeof(flips); f++) {
				buf[i] ^= flips[f];
				if (receive(&k, buf, len, &out))
					fail_msg("kind %d: byte %zu ^ 0x%02x accepted", kind, i, flips[f]);
				/* the clear sender key is associated data: the box itself refuses
				 * every flip, the key's included */
				assert_false(open_exact(buf, len, k.ba, &out));
				buf[i] ^= flips[f];
			}
		}
		assert_true(receive(&k, buf, len, &out));
	}
}

/* A's message sent back to A with B's key in the header must not open at A (the shared key
 * is the same both ways; only the authenticated sender key tells the directions apart). */
static void test_reflection_refused(void **state)
{
	struct keys k;
	struct disco_message m, out;
	uint8_t buf[DISCO_MAX_LEN];

	(void)state;
	make_keys(&k);
	msg_ping(&m);
	size_t len = disco_seal(&m, k.a_pub, k.ab, buf, sizeof(buf));
	assert_true(len > 0);
	memcpy(buf + DISCO_OFF_SENDER, k.b_pub, WIRE_KEY_LEN);
	assert_false(open_exact(buf, len, k.ab, &out));
	assert_false(open_exact(buf, len, k.ba, &out));
}

static void test_other_key_pair(void **state)
{
	struct keys k;
	struct disco_message m, out;
	uint8_t buf[DISCO_MAX_LEN];
	size_t len;

	(void)state;
	make_keys(&k);
	msg_pong(&m, 1);

	/* A sealed for C: B cannot open it, with either of its keys */
	len = disco_seal(&m, k.a_pub, k.ac, buf, sizeof(buf));
	assert_true(len > 0);
	assert_false(open_exact(buf, len, k.ba, &out));
	assert_false(open_exact(buf, len, k.bc, &out));
	assert_false(receive(&k, buf, len, &out));

	/* C sealed for B but claims to be A: opened with A's key, it fails */
	len = disco_seal(&m, k.a_pub, k.bc, buf, sizeof(buf));
	assert_false(receive(&k, buf, len, &out));
	/* and with its key swapped in afterwards it still fails (the key is authenticated) */
	memcpy(buf + DISCO_OFF_SENDER, k.c_pub, WIRE_KEY_LEN);
	assert_false(receive(&k, buf, len, &out));
	/* sealed under its own key in the clear, it is C's message */
	len = disco_seal(&m, k.c_pub, k.bc, buf, sizeof(buf));
	assert_true(receive(&k, buf, len, &out));
	assert_int_equal(out.kind, DISCO_PONG);

	/* an unknown sender is not opened at all */
	len = disco_seal(&m, k.b_pub, k.ab, buf, sizeof(buf));
	assert_false(receive(&k, buf, len, &out));
}

static void test_truncated_and_extended(void **state)
{
	struct keys k;
	struct disco_message m, out;
	uint8_t buf[DISCO_MAX_LEN + 1];

	(void)state;
	make_keys(&k);
	for (int kind = 0; kind < 3; kind++) {
		size_t len;

		switch (kind) {
		case 0: msg_ping(&m); break;
		case 1: msg_cmm(&m, 1); break;
		default: msg_cmm(&m, 16); break;
		}
		len = disco_seal(&m, k.a_pub, k.ab, buf, sizeof(buf));
		for (size_t cut = 0; cut < len; cut++) {
			if (open_exact(buf, cut, k.ba, &out))
				fail_msg("kind %d cut to %zu bytes accepted", kind, cut);
			assert_true(is_zero_message(&out));
		}
		buf[len] = 0;
		assert_false(open_exact(buf, len + 1, k.ba, &out));
		assert_true(open_exact(buf, len, k.ba, &out));
	}
	assert_null(disco_sender(NULL, 108));
	assert_false(disco_open(NULL, 108, k.ba, &out));
}

static void test_sender_bounds(void **state)
{
	uint8_t buf[DISCO_MAX_LEN + 1];

	(void)state;
	memset(buf, 0, sizeof(buf));
	buf[0] = 0x80;
	buf[1] = 0;
	assert_null(disco_sender(buf, 107));
	assert_ptr_equal(disco_sender(buf, 108), buf + 4);
	assert_ptr_equal(disco_sender(buf, 394), buf + 4);
	assert_null(disco_sender(buf, 395));
	for (size_t i = 0; i < 4; i++) {
		buf[i] ^= 0x01;
		assert_null(disco_sender(buf, 108));
		buf[i] ^= 0x01;
	}
	buf[0] = MSG_RELAY_DATA;
	assert_null(disco_sender(buf, 108));
}

/* Plaintexts that each break one rule, sealed properly: only the parser can refuse them. */
static void test_bad_plaintexts(void **state)
{
	struct keys k;
	struct disco_message out;
	uint8_t plain[DISCO_PLAIN_MAX + EP_LEN], buf[DISCO_MAX_LEN + EP_LEN + 64];
	size_t len;

	(void)state;
	make_keys(&k);

#define PLAIN_RESET(kind_byte)                                                                                         \
	do {                                                                                                           \
		memset(plain, 0, sizeof(plain));                                                                       \
		plain[0] = (kind_byte);                                                                                \
		memset(plain + 1, 0x77, DISCO_TXID_LEN);                                                               \
	} while (0)
#define EXPECT(ok_want, plen, why)                                                                                     \
	do {                                                                                                           \
		len = seal_plain(&k, plain, (plen), buf, sizeof(buf));                                                 \
		if (open_exact(buf, len, k.ba, &out) != (ok_want))                                                    \
			fail_msg("%s: want %s", why, (ok_want) ? "accepted" : "refused");                              \
		if (!(ok_want))                                                                                        \
			assert_true(is_zero_message(&out));                                                            \
	} while (0)

	/* ping: 19 zero bytes of padding, no more, no fewer */
	PLAIN_RESET(DISCO_PING);
	EXPECT(true, 32, "near miss: a ping");
	for (size_t i = 0; i < EP_LEN; i++) {
		PLAIN_RESET(DISCO_PING);
		plain[PLAIN_BODY + i] = 0x01;
		EXPECT(false, 32, "ping with non-zero padding");
	}
	PLAIN_RESET(DISCO_PING);
	EXPECT(false, 33, "ping with an extra byte");
	EXPECT(false, 31, "ping a byte short");
	EXPECT(false, 13 + 2 * EP_LEN, "ping of a pong and a half");

	/* unknown kinds */
	static const uint8_t kinds[] = { 0, 5, 0x7f, 0x80, 0xff };
	for (size_t i = 0; i < sizeof(kinds); i++) {
		PLAIN_RESET(kinds[i]);
		EXPECT(false, 32, "unknown kind");
	}

	/* pong: one valid endpoint */
	static const uint8_t pong_v4[EP_LEN] = { 4, 192, 0, 2, 1, [17] = 0xca, [18] = 0x6c };
	PLAIN_RESET(DISCO_PONG);
	memcpy(plain + PLAIN_BODY, pong_v4, EP_LEN);
	EXPECT(true, 32, "near miss: a pong");
	assert_int_equal(out.observed.port, 51820);
	EXPECT(false, 33, "pong with an extra byte");
	static const uint8_t bad_families[] = { 0, 5, 1, 2, 10, 0x46, 0xff };
	for (size_t i = 0; i < sizeof(bad_families); i++) {
		PLAIN_RESET(DISCO_PONG);
		memcpy(plain + PLAIN_BODY, pong_v4, EP_LEN);
		plain[PLAIN_BODY] = bad_families[i];
		EXPECT(false, 32, "pong with a bad family");
	}
	PLAIN_RESET(DISCO_PONG);
	memcpy(plain + PLAIN_BODY, pong_v4, EP_LEN);
	plain[PLAIN_BODY + 17] = 0;
	plain[PLAIN_BODY + 18] = 0;
	EXPECT(false, 32, "pong with port 0");
	plain[PLAIN_BODY + 18] = 1;
	EXPECT(true, 32, "near miss: pong with port 1");
	for (size_t i = 0; i < 12; i++) {
		PLAIN_RESET(DISCO_PONG);
		memcpy(plain + PLAIN_BODY, pong_v4, EP_LEN);
		plain[PLAIN_BODY + 1 + 4 + i] = 0x01;
		EXPECT(false, 32, "pong: IPv4 with a non-zero tail byte");
		plain[PLAIN_BODY] = 6; /* the same bytes as IPv6 are fine */
		EXPECT(true, 32, "near miss: IPv6 with those bytes");
	}

	/* call-me-maybe */
	PLAIN_RESET(DISCO_CALL_ME_MAYBE);
	EXPECT(true, 32, "near miss: call-me-maybe 0, padded");
	assert_int_equal(out.n_endpoints, 0);
	EXPECT(false, 14, "call-me-maybe 0, not padded");
	EXPECT(false, 33, "call-me-maybe 0, padded one too many");
	for (size_t i = 1; i < EP_LEN; i++) {
		PLAIN_RESET(DISCO_CALL_ME_MAYBE);
		plain[PLAIN_BODY + i] = 0x80;
		EXPECT(false, 32, "call-me-maybe 0 with non-zero padding");
	}
	PLAIN_RESET(DISCO_CALL_ME_MAYBE);
	plain[PLAIN_BODY] = 1;
	memcpy(plain + PLAIN_BODY + 1, pong_v4, EP_LEN);
	EXPECT(true, 33, "near miss: call-me-maybe 1");
	EXPECT(false, 32, "call-me-maybe 1 cut");
	EXPECT(false, 34, "call-me-maybe 1 with a zero byte after it");
	plain[PLAIN_BODY] = 2;
	EXPECT(false, 33, "call-me-maybe 2 with one endpoint");
	EXPECT(false, 33 + EP_LEN, "call-me-maybe 2 with a zero second endpoint");
	plain[PLAIN_BODY] = 0;
	EXPECT(false, 33, "call-me-maybe 0 followed by an endpoint");

	/* 16 endpoints, then the same claiming 17 (a 17th endpoint does not fit a disco message) */
	PLAIN_RESET(DISCO_CALL_ME_MAYBE);
	plain[PLAIN_BODY] = 16;
	for (size_t i = 0; i < 16; i++) {
		memcpy(plain + PLAIN_BODY + 1 + i * EP_LEN, pong_v4, EP_LEN);
		plain[PLAIN_BODY + 1 + i * EP_LEN + 4] = (uint8_t)i;
	}
	EXPECT(true, 318, "near miss: call-me-maybe 16");
	assert_int_equal(out.n_endpoints, 16);
	assert_int_equal(out.endpoints[15].addr[3], 15);
	plain[PLAIN_BODY] = 17;
	EXPECT(false, 318, "call-me-maybe claiming 17 of 16");
	memcpy(plain + PLAIN_BODY + 1 + 16 * EP_LEN, pong_v4, EP_LEN);
	EXPECT(false, 318 + EP_LEN, "call-me-maybe with 17");
	plain[PLAIN_BODY] = 0xff;
	EXPECT(false, 318, "call-me-maybe claiming 255");
	/* one bad endpoint among good ones */
	plain[PLAIN_BODY] = 16;
	plain[PLAIN_BODY + 1 + 9 * EP_LEN] = 5;
	EXPECT(false, 318, "call-me-maybe with a bad family in the 10th");
	plain[PLAIN_BODY + 1 + 9 * EP_LEN] = 4;
	plain[PLAIN_BODY + 1 + 15 * EP_LEN + 17] = 0;
	plain[PLAIN_BODY + 1 + 15 * EP_LEN + 18] = 0;
	EXPECT(false, 318, "call-me-maybe with port 0 in the last");
	plain[PLAIN_BODY + 1 + 15 * EP_LEN + 18] = 9;
	plain[PLAIN_BODY + 1 + 3 * EP_LEN + 16] = 1;
	EXPECT(false, 318, "call-me-maybe with an IPv4 tail byte in the 4th");
#undef EXPECT
#undef PLAIN_RESET
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shared_key),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_sealed_lengths),
		cmocka_unit_test(test_round_trip_ping),
		cmocka_unit_test(test_round_trip_pong),
		cmocka_unit_test(test_round_trip_call_me_maybe),
		cmocka_unit_test(test_seal_refused),
		cmocka_unit_test(test_every_byte_flipped),
		cmocka_unit_test(test_reflection_refused),
		cmocka_unit_test(test_other_key_pair),
		cmocka_unit_test(test_truncated_and_extended),
		cmocka_unit_test(test_sender_bounds),
		cmocka_unit_test(test_bad_plaintexts),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
