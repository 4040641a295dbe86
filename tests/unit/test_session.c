/* Transport sessions: data message format, padding, authentication, replay and key limits. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include <sodium.h>

#include "core/session.h"

/* WireGuard's limits (whitepaper section 6.4, and its receive window of 8128), written out as
 * literals: the tests below use these, never session.h's names, so a changed constant breaks
 * a test instead of moving the expectation along with it. */
#define WG_REKEY_AFTER_TIME_MS UINT64_C(120000)                    /* 120 s */
#define WG_REJECT_AFTER_TIME_MS UINT64_C(180000)                   /* 180 s */
#define WG_REKEY_AFTER_MESSAGES UINT64_C(1152921504606846976)      /* 2^60 */
#define WG_REJECT_AFTER_MESSAGES UINT64_C(18446744073709543486)    /* 2^64 - 1 - 8128 - 1 */
#define WG_WINDOW UINT64_C(8128)

enum {
	IDX_A = 0x11223344, /* the index A receives on */
	IDX_B = 0x55667788, /* the index B receives on */
	T0 = 1000000,       /* session creation time; any non-zero monotonic value */
	BUF_LEN = WIRE_DATA_MIN_LEN + WIRE_MAX_INNER_PACKET + WIRE_DATA_PADDING,
	SENTINEL = 0xa5, /* fills buffers so writes past the end are visible */
};

static const uint8_t key_ab[WIRE_KEY_LEN] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
					      17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32 };
static const uint8_t key_ba[WIRE_KEY_LEN] = { 0xf0, 0xe1, 0xd2, 0xc3, 0xb4, 0xa5, 0x96, 0x87,
					      0x78, 0x69, 0x5a, 0x4b, 0x3c, 0x2d, 0x1e, 0x0f,
					      0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
					      0x13, 0x37, 0x13, 0x37, 0x13, 0x37, 0x13, 0x37 };

/* A deep copy of a replay window (its ring sits behind a pointer, allocated at the first
 * recorded counter), to check that nothing in it moved. */
struct snapshot {
	uint64_t greatest;
	bool any_seen;
	uint64_t ring[REPLAY_RING_WORDS];
};

static void snap(struct snapshot *s, const struct replay_window *w)
{
	memset(s, 0, sizeof(*s));
	s->greatest = w->greatest;
	s->any_seen = w->any_seen;
	if (w->ring)
		memcpy(s->ring, w->ring, sizeof(s->ring));
}

static void assert_unchanged(const struct snapshot *before, const struct replay_window *w)
{
	struct snapshot now;
	snap(&now, w);
	assert_memory_equal(before, &now, sizeof(now));
}

static uint8_t msg[BUF_LEN], plain[BUF_LEN], text[BUF_LEN];

/* A initiated; the keys are crossed as a handshake leaves them. */
static void make_pair(struct session *a, struct session *b, uint64_t now)
{
	session_init(a, key_ab, key_ba, IDX_A, IDX_B, true, now);
	session_init(b, key_ba, key_ab, IDX_B, IDX_A, false, now);
}

static void fill_text(size_t len)
{
	for (size_t i = 0; i < len; i++)
		text[i] = (uint8_t)(i * 7 + 1); /* never all zero, so padding is distinguishable */
}

static size_t padded_len(size_t len)
{
	return (len + WIRE_DATA_PADDING - 1) / WIRE_DATA_PADDING * WIRE_DATA_PADDING;
}

/* Seals a data message with an arbitrary counter, bypassing session_encrypt: what an attacker
 * holding the key, or a peer ignoring the limits, could send. */
static size_t forge_data(uint8_t *out, uint32_t receiver, uint64_t counter, const uint8_t key[WIRE_KEY_LEN],
			 const uint8_t *p, size_t len)
{
	uint8_t nonce[12] = { 0 };
	unsigned long long clen;

	wire_put_header(out, MSG_DATA);
	wire_put_u32(out + WIRE_DATA_OFF_RECEIVER, receiver);
	wire_put_u64(out + WIRE_DATA_OFF_COUNTER, counter);
	wire_put_u64(nonce + 4, counter);
	crypto_aead_chacha20poly1305_ietf_encrypt(out + WIRE_DATA_OFF_PAYLOAD, &clen, p, len, NULL, 0, NULL, nonce,
						  key);
	return WIRE_DATA_HEADER_LEN + (size_t)clen;
}

static int setup(void **state)
{
	(void)state;
	return sodium_init() < 0 ? -1 : 0;
}

static void test_round_trip(void **state)
{
	static const size_t lens[] = { 0, 1, 15, 16, 17, 31, 32, 100, 1280, 1420, 1500, 9000, WIRE_MAX_INNER_PACKET };
	struct session a, b;
	uint64_t sent_ab = 0, sent_ba = 0;

	(void)state;
	make_pair(&a, &b, T0);
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		for (int dir = 0; dir < 2; dir++) {
			struct session *tx = dir ? &b : &a, *rx = dir ? &a : &b;
			uint64_t *sent = dir ? &sent_ba : &sent_ab;
			size_t len = lens[i], out_len = 0, plain_len = 0;

			fill_text(len);
			memset(msg, SENTINEL, sizeof(msg));
			assert_int_equal(session_encrypt(tx, T0 + 1, text, len, msg, sizeof(msg), &out_len), SESSION_OK);
			assert_int_equal(out_len, WIRE_DATA_HEADER_LEN + padded_len(len) + WIRE_AEAD_TAG_LEN);
			assert_int_equal(msg[WIRE_OFF_TYPE], MSG_DATA);
			assert_int_equal(msg[WIRE_OFF_RESERVED], 0);
			assert_int_equal(msg[2], 0);
			assert_int_equal(msg[3], 0);
			assert_int_equal(wire_get_u32(msg + WIRE_DATA_OFF_RECEIVER), rx->local_index);
			assert_int_equal(wire_get_u64(msg + WIRE_DATA_OFF_COUNTER), *sent);
			assert_int_equal(msg[out_len], SENTINEL);
			assert_int_equal(tx->send_counter, ++*sent);

			memset(plain, SENTINEL, sizeof(plain));
			assert_int_equal(session_decrypt(rx, T0 + 2, msg, out_len, plain, sizeof(plain), &plain_len),
					 SESSION_OK);
			assert_int_equal(plain_len, padded_len(len));
			assert_memory_equal(plain, text, len);
			for (size_t k = len; k < plain_len; k++)
				assert_int_equal(plain[k], 0);
			assert_int_equal(plain[plain_len], SENTINEL);
		}
	}
	session_clear(&a);
	session_clear(&b);
}

/* The exact bytes: header, receiver, counter, then the padded plaintext sealed under the
 * Noise nonce (4 zero bytes, counter little-endian) with no additional data. */
static void test_wire_format(void **state)
{
	static uint8_t expect[64], padded[32];
	struct session a, b;
	size_t len, expect_len;

	(void)state;
	make_pair(&a, &b, T0);
	a.send_counter = UINT64_C(0x0102030405060708);
	fill_text(20);
	memcpy(padded, text, 20);
	assert_int_equal(session_encrypt(&a, T0, text, 20, msg, sizeof(msg), &len), SESSION_OK);
	expect_len = forge_data(expect, IDX_B, UINT64_C(0x0102030405060708), key_ab, padded, 32);
	assert_int_equal(len, expect_len);
	assert_memory_equal(msg, expect, len);
	assert_memory_equal(msg + WIRE_DATA_OFF_RECEIVER, "\x88\x77\x66\x55\x08\x07\x06\x05\x04\x03\x02\x01", 12);
	session_clear(&a);
	session_clear(&b);
}

static void test_keepalive(void **state)
{
	struct session a, b;
	size_t out_len = 0, plain_len = 99;

	(void)state;
	make_pair(&a, &b, T0);
	assert_int_equal(session_encrypt(&a, T0, NULL, 0, msg, sizeof(msg), &out_len), SESSION_OK);
	assert_int_equal(out_len, WIRE_DATA_MIN_LEN);
	assert_int_equal(session_decrypt(&b, T0, msg, out_len, plain, sizeof(plain), &plain_len), SESSION_OK);
	assert_int_equal(plain_len, 0);
	/* a keepalive needs no plaintext room at all */
	assert_int_equal(session_encrypt(&a, T0, NULL, 0, msg, WIRE_DATA_MIN_LEN, &out_len), SESSION_OK);
	assert_int_equal(session_decrypt(&b, T0, msg, out_len, plain, 0, &plain_len), SESSION_OK);
	assert_int_equal(plain_len, 0);
	session_clear(&a);
	session_clear(&b);
}

/* Padding goes to the next multiple of WIRE_DATA_PADDING, but never past the buffer. */
static void test_padding(void **state)
{
	static const struct {
		size_t len, out_cap;
		enum session_result want;
		size_t want_len; /* total message size when accepted */
	} cases[] = {
		{ 0, WIRE_DATA_MIN_LEN, SESSION_OK, WIRE_DATA_MIN_LEN },
		{ 0, WIRE_DATA_MIN_LEN - 1, SESSION_ERR_MALFORMED, 0 },
		{ 1, WIRE_DATA_MIN_LEN + 1, SESSION_OK, WIRE_DATA_MIN_LEN + 1 },
		{ 1, WIRE_DATA_MIN_LEN + 9, SESSION_OK, WIRE_DATA_MIN_LEN + 9 },
		{ 1, WIRE_DATA_MIN_LEN + 16, SESSION_OK, WIRE_DATA_MIN_LEN + 16 },
		{ 1, 4096, SESSION_OK, WIRE_DATA_MIN_LEN + 16 },
		{ 16, WIRE_DATA_MIN_LEN + 16, SESSION_OK, WIRE_DATA_MIN_LEN + 16 },
		{ 17, WIRE_DATA_MIN_LEN + 16, SESSION_ERR_MALFORMED, 0 },
		{ 17, WIRE_DATA_MIN_LEN + 17, SESSION_OK, WIRE_DATA_MIN_LEN + 17 },
		{ 17, WIRE_DATA_MIN_LEN + 20, SESSION_OK, WIRE_DATA_MIN_LEN + 20 },
		{ 17, WIRE_DATA_MIN_LEN + 33, SESSION_OK, WIRE_DATA_MIN_LEN + 32 },
		{ 1420, 1500, SESSION_OK, WIRE_DATA_MIN_LEN + 1424 },
		{ 1421, WIRE_DATA_MIN_LEN + 1421, SESSION_OK, WIRE_DATA_MIN_LEN + 1421 },
		{ WIRE_MAX_INNER_PACKET, BUF_LEN, SESSION_OK, WIRE_DATA_MIN_LEN + 65536 },
		{ WIRE_MAX_INNER_PACKET + 1, BUF_LEN, SESSION_ERR_MALFORMED, 0 },
	};
	struct session a, b;

	(void)state;
	make_pair(&a, &b, T0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t out_len = 12345, plain_len = 0, len = cases[i].len;
		uint64_t before = a.send_counter;

		fill_text(len);
		memset(msg, SENTINEL, sizeof(msg));
		assert_int_equal(session_encrypt(&a, T0, text, len, msg, cases[i].out_cap, &out_len), cases[i].want);
		if (cases[i].want != SESSION_OK) {
			assert_int_equal(out_len, 0);
			assert_int_equal(a.send_counter, before); /* a refused message burns no counter */
			continue;
		}
		assert_int_equal(out_len, cases[i].want_len);
		if (cases[i].out_cap < sizeof(msg))
			assert_int_equal(msg[cases[i].out_cap], SENTINEL);
		assert_int_equal(session_decrypt(&b, T0, msg, out_len, plain, sizeof(plain), &plain_len), SESSION_OK);
		assert_int_equal(plain_len, out_len - WIRE_DATA_MIN_LEN);
		assert_memory_equal(plain, text, len);
		for (size_t k = len; k < plain_len; k++)
			assert_int_equal(plain[k], 0);
	}
	session_clear(&a);
	session_clear(&b);
}

/* Callers may build the packet where its ciphertext will go, and decrypt over the message. */
static void test_in_place(void **state)
{
	struct session a, b;
	size_t out_len = 0, plain_len = 0, len = 77;

	(void)state;
	make_pair(&a, &b, T0);
	fill_text(len);
	memcpy(msg + WIRE_DATA_OFF_PAYLOAD, text, len);
	assert_int_equal(session_encrypt(&a, T0, msg + WIRE_DATA_OFF_PAYLOAD, len, msg, sizeof(msg), &out_len),
			 SESSION_OK);
	assert_int_equal(session_decrypt(&b, T0, msg, out_len, msg + WIRE_DATA_OFF_PAYLOAD,
					 sizeof(msg) - WIRE_DATA_OFF_PAYLOAD, &plain_len),
			 SESSION_OK);
	assert_int_equal(plain_len, padded_len(len));
	assert_memory_equal(msg + WIRE_DATA_OFF_PAYLOAD, text, len);
	session_clear(&a);
	session_clear(&b);
}

/* Changing any byte makes the message fail, moves no state, and leaves no plaintext behind;
 * afterwards the genuine message with the same counter is still accepted. */
static void test_tamper(void **state)
{
	static const uint8_t flips[] = { 0x01, 0x10, 0x80, 0xff };
	struct session a, b;
	struct snapshot window_before;
	uint8_t genuine[256], bad[256];
	size_t first_len, len = 0, plain_len;

	(void)state;
	make_pair(&a, &b, T0);
	/* B has seen counter 0; the message under attack carries counter 2. */
	fill_text(40);
	assert_int_equal(session_encrypt(&a, T0, text, 40, genuine, sizeof(genuine), &first_len), SESSION_OK);
	assert_int_equal(session_decrypt(&b, T0, genuine, first_len, plain, sizeof(plain), &plain_len), SESSION_OK);
	assert_int_equal(session_encrypt(&a, T0, text, 40, bad, sizeof(bad), &len), SESSION_OK); /* counter 1, kept back */
	assert_int_equal(session_encrypt(&a, T0, text, 40, genuine, sizeof(genuine), &len), SESSION_OK);
	assert_int_equal(wire_get_u64(genuine + WIRE_DATA_OFF_COUNTER), 2);
	snap(&window_before, &b.replay);

	for (size_t pos = 0; pos < len; pos++) {
		for (size_t f = 0; f < sizeof(flips); f++) {
			/* Header fields are rejected before the AEAD; everything from the counter on
			 * (the counter is the nonce) fails authentication. */
			enum session_result want = pos < WIRE_DATA_OFF_COUNTER ? SESSION_ERR_MALFORMED : SESSION_ERR_AUTH;
			enum session_result got;

			memcpy(bad, genuine, len);
			bad[pos] ^= flips[f];
			memset(plain, SENTINEL, sizeof(plain));
			plain_len = 99;
			got = session_decrypt(&b, T0, bad, len, plain, sizeof(plain), &plain_len);
			if (got != want)
				fail_msg("byte %zu ^ 0x%02x: got %d, want %d", pos, flips[f], got, want);
			assert_int_equal(plain_len, 0);
			assert_unchanged(&window_before, &b.replay);
			/* rejected before the AEAD: untouched; after it: wiped */
			for (size_t k = 0; k < len - WIRE_DATA_MIN_LEN; k++)
				if (plain[k] != (want == SESSION_ERR_AUTH ? 0 : SENTINEL))
					fail_msg("byte %zu ^ 0x%02x: plaintext byte %zu left behind", pos, flips[f], k);
		}
	}
	/* Cut or extended ciphertext, and a wrong key, fail the same way. */
	assert_int_equal(session_decrypt(&b, T0, genuine, len - 1, plain, sizeof(plain), &plain_len), SESSION_ERR_AUTH);
	memcpy(bad, genuine, len);
	bad[len] = 0;
	assert_int_equal(session_decrypt(&b, T0, bad, len + 1, plain, sizeof(plain), &plain_len), SESSION_ERR_AUTH);
	{
		struct session wrong;
		session_init(&wrong, key_ba, key_ba, IDX_B, IDX_A, false, T0);
		assert_int_equal(session_decrypt(&wrong, T0, genuine, len, plain, sizeof(plain), &plain_len),
				 SESSION_ERR_AUTH);
		session_clear(&wrong);
	}
	assert_unchanged(&window_before, &b.replay);

	/* The forgeries did not use up counter 2 (nor the older 1). */
	assert_int_equal(session_decrypt(&b, T0, genuine, len, plain, sizeof(plain), &plain_len), SESSION_OK);
	assert_memory_equal(plain, text, 40);
	assert_int_equal(session_encrypt(&a, T0, text, 40, bad, sizeof(bad), &len), SESSION_OK); /* counter 3 */
	assert_int_equal(session_decrypt(&b, T0, bad, len, plain, sizeof(plain), &plain_len), SESSION_OK);
	session_clear(&a);
	session_clear(&b);
}

static void test_replayed(void **state)
{
	struct session a, b;
	uint8_t first[64];
	size_t first_len, len, plain_len = 99;

	(void)state;
	make_pair(&a, &b, T0);
	assert_int_equal(session_encrypt(&a, T0, text, 10, first, sizeof(first), &first_len), SESSION_OK);
	assert_int_equal(session_encrypt(&a, T0, text, 10, msg, sizeof(msg), &len), SESSION_OK);
	assert_int_equal(session_decrypt(&b, T0, msg, len, plain, sizeof(plain), &plain_len), SESSION_OK);
	assert_int_equal(session_decrypt(&b, T0, msg, len, plain, sizeof(plain), &plain_len), SESSION_ERR_REPLAY);
	assert_int_equal(plain_len, 0);
	/* a seen counter is dropped before the AEAD is even tried */
	msg[len - 1] ^= 1;
	assert_int_equal(session_decrypt(&b, T0, msg, len, plain, sizeof(plain), &plain_len), SESSION_ERR_REPLAY);
	/* reordered but fresh is fine, once */
	assert_int_equal(session_decrypt(&b, T0, first, first_len, plain, sizeof(plain), &plain_len), SESSION_OK);
	assert_int_equal(session_decrypt(&b, T0, first, first_len, plain, sizeof(plain), &plain_len),
			 SESSION_ERR_REPLAY);

	/* A message that fell out of the window is refused though never seen. */
	assert_int_equal(session_encrypt(&a, T0, text, 10, first, sizeof(first), &first_len), SESSION_OK);
	a.send_counter += WG_WINDOW;
	assert_int_equal(session_encrypt(&a, T0, text, 10, msg, sizeof(msg), &len), SESSION_OK);
	assert_int_equal(session_decrypt(&b, T0, msg, len, plain, sizeof(plain), &plain_len), SESSION_OK);
	assert_int_equal(session_decrypt(&b, T0, first, first_len, plain, sizeof(plain), &plain_len),
			 SESSION_ERR_REPLAY);
	session_clear(&a);
	session_clear(&b);
}

static void test_wrong_receiver(void **state)
{
	struct session a, b, c;
	size_t len, plain_len;

	(void)state;
	make_pair(&a, &b, T0);
	/* same keys, another index: the message names B, not C */
	session_init(&c, key_ba, key_ab, IDX_B + 1, IDX_A, false, T0);
	assert_int_equal(session_encrypt(&a, T0, text, 10, msg, sizeof(msg), &len), SESSION_OK);
	assert_int_equal(session_decrypt(&c, T0, msg, len, plain, sizeof(plain), &plain_len), SESSION_ERR_MALFORMED);
	assert_int_equal(session_decrypt(&a, T0, msg, len, plain, sizeof(plain), &plain_len), SESSION_ERR_MALFORMED);
	assert_false(c.replay.any_seen);
	assert_int_equal(session_decrypt(&b, T0, msg, len, plain, sizeof(plain), &plain_len), SESSION_OK);
	session_clear(&a);
	session_clear(&b);
	session_clear(&c);
}

static void test_malformed(void **state)
{
	struct session a, b;
	size_t len, plain_len = 99;

	(void)state;
	make_pair(&a, &b, T0);
	assert_int_equal(session_encrypt(&a, T0, text, 32, msg, sizeof(msg), &len), SESSION_OK);
	for (size_t cut = 0; cut < WIRE_DATA_MIN_LEN; cut++) {
		assert_int_equal(session_decrypt(&b, T0, msg, cut, plain, sizeof(plain), &plain_len),
				 SESSION_ERR_MALFORMED);
		assert_int_equal(plain_len, 0);
	}
	/* plaintext buffer one byte short of the padded payload */
	assert_int_equal(session_decrypt(&b, T0, msg, len, plain, 31, &plain_len), SESSION_ERR_MALFORMED);
	assert_false(b.replay.any_seen);
	/* missing arguments */
	assert_int_equal(session_decrypt(&b, T0, NULL, len, plain, sizeof(plain), &plain_len), SESSION_ERR_MALFORMED);
	assert_int_equal(session_decrypt(&b, T0, msg, len, NULL, sizeof(plain), &plain_len), SESSION_ERR_MALFORMED);
	assert_int_equal(session_encrypt(&a, T0, NULL, 5, plain, sizeof(plain), &plain_len), SESSION_ERR_MALFORMED);
	assert_int_equal(session_decrypt(&b, T0, msg, len, plain, 32, &plain_len), SESSION_OK);
	assert_int_equal(plain_len, 32);
	session_clear(&a);
	session_clear(&b);
}

/* Keys are refused for both directions from exactly 180 s on. */
static void test_expiry_by_time(void **state)
{
	const uint64_t edge = T0 + WG_REJECT_AFTER_TIME_MS;
	struct session a, b;
	uint8_t early[64];
	size_t early_len, len = 0, plain_len;

	(void)state;
	make_pair(&a, &b, T0);
	assert_true(session_usable(&a, edge - 1));
	assert_false(session_usable(&a, edge));
	assert_false(session_usable(&b, edge + 1000000));

	assert_int_equal(session_encrypt(&a, edge - 1, text, 10, early, sizeof(early), &early_len), SESSION_OK);
	assert_int_equal(session_encrypt(&a, edge, text, 10, msg, sizeof(msg), &len), SESSION_ERR_EXPIRED);
	assert_int_equal(len, 0);
	assert_int_equal(a.send_counter, 1);
	assert_int_equal(session_decrypt(&b, edge, early, early_len, plain, sizeof(plain), &plain_len),
			 SESSION_ERR_EXPIRED);
	assert_false(b.replay.any_seen);
	assert_int_equal(session_decrypt(&b, edge - 1, early, early_len, plain, sizeof(plain), &plain_len),
			 SESSION_OK);
	session_clear(&a);
	session_clear(&b);
}

static void test_expiry_by_messages(void **state)
{
	const uint64_t limit = WG_REJECT_AFTER_MESSAGES;
	static const uint64_t forged[] = { WG_REJECT_AFTER_MESSAGES, WG_REJECT_AFTER_MESSAGES + 1,
					   UINT64_MAX - 1, UINT64_MAX };
	struct session a, b;
	struct snapshot window_before;
	size_t len, plain_len;

	(void)state;
	make_pair(&a, &b, T0);
	a.send_counter = limit - 1;
	assert_true(session_usable(&a, T0));
	assert_int_equal(session_encrypt(&a, T0, text, 10, msg, sizeof(msg), &len), SESSION_OK);
	assert_int_equal(wire_get_u64(msg + WIRE_DATA_OFF_COUNTER), limit - 1);
	assert_int_equal(a.send_counter, limit);
	assert_false(session_usable(&a, T0));
	assert_int_equal(session_encrypt(&a, T0, text, 10, msg + 100, sizeof(msg) - 100, &len), SESSION_ERR_EXPIRED);
	assert_int_equal(session_encrypt(&a, T0, NULL, 0, msg + 100, sizeof(msg) - 100, &len), SESSION_ERR_EXPIRED);
	assert_int_equal(a.send_counter, limit);

	/* the last allowed counter is received normally */
	len = WIRE_DATA_MIN_LEN + 16;
	assert_int_equal(session_decrypt(&b, T0, msg, len, plain, sizeof(plain), &plain_len), SESSION_OK);
	assert_int_equal(b.replay.greatest, limit - 1);

	/* Properly sealed messages at or past the limit are refused anyway. The control case
	 * below the limit shows forge_data() makes otherwise valid messages. */
	len = forge_data(msg, IDX_B, limit - 2, key_ab, text, 16);
	assert_int_equal(session_decrypt(&b, T0, msg, len, plain, sizeof(plain), &plain_len), SESSION_OK);
	snap(&window_before, &b.replay);
	for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
		len = forge_data(msg, IDX_B, forged[i], key_ab, text, 16);
		assert_int_equal(session_decrypt(&b, T0, msg, len, plain, sizeof(plain), &plain_len),
				 SESSION_ERR_EXPIRED);
		assert_unchanged(&window_before, &b.replay);
	}
	/* also on a fresh receiver, where no window would stop it */
	session_clear(&a);
	session_clear(&b);
	make_pair(&a, &b, T0);
	len = forge_data(msg, IDX_B, limit, key_ab, text, 16);
	assert_int_equal(session_decrypt(&b, T0, msg, len, plain, sizeof(plain), &plain_len), SESSION_ERR_EXPIRED);
	assert_false(b.replay.any_seen);
	session_clear(&a);
	session_clear(&b);
}

static void test_wants_rekey(void **state)
{
	static const struct {
		bool initiator;
		uint64_t age_ms, send_counter;
		bool want;
	} cases[] = {
		{ true, 0, 0, false },
		{ true, WG_REKEY_AFTER_TIME_MS - 1, 0, false },
		{ true, WG_REKEY_AFTER_TIME_MS, 0, true },
		{ true, WG_REJECT_AFTER_TIME_MS + 1, 0, true },
		{ false, WG_REKEY_AFTER_TIME_MS, 0, false }, /* the responder never rekeys by time */
		{ false, WG_REJECT_AFTER_TIME_MS - 1, 0, false },
		{ true, 0, WG_REKEY_AFTER_MESSAGES - 1, false },
		{ true, 0, WG_REKEY_AFTER_MESSAGES, true },
		{ false, 0, WG_REKEY_AFTER_MESSAGES - 1, false },
		{ false, 0, WG_REKEY_AFTER_MESSAGES, true }, /* but both rekey by count */
		{ false, 0, WG_REJECT_AFTER_MESSAGES, true },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct session s;

		session_init(&s, key_ab, key_ba, IDX_A, IDX_B, cases[i].initiator, T0);
		s.send_counter = cases[i].send_counter;
		if (session_wants_rekey(&s, T0 + cases[i].age_ms) != cases[i].want)
			fail_msg("case %zu: wants_rekey != %d", i, cases[i].want);
		session_clear(&s);
		assert_false(session_wants_rekey(&s, T0 + cases[i].age_ms));
	}
}

static void test_clear(void **state)
{
	static const uint8_t zero[WIRE_KEY_LEN];
	struct session a, b;
	size_t len, refused_len, plain_len;

	(void)state;
	make_pair(&a, &b, T0);
	assert_int_equal(session_encrypt(&a, T0, text, 10, msg, sizeof(msg), &len), SESSION_OK);
	session_clear(&a);
	session_clear(&b);
	assert_false(a.valid);
	assert_memory_equal(a.send_key, zero, WIRE_KEY_LEN);
	assert_memory_equal(a.recv_key, zero, WIRE_KEY_LEN);
	assert_false(session_usable(&a, T0));
	assert_int_equal(session_encrypt(&a, T0, text, 10, plain, sizeof(plain), &refused_len), SESSION_ERR_EXPIRED);
	assert_int_equal(refused_len, 0);
	b.local_index = IDX_B; /* even if the index still matched */
	assert_int_equal(session_decrypt(&b, T0, msg, len, plain, sizeof(plain), &plain_len), SESSION_ERR_EXPIRED);
	session_clear(&a);
	session_clear(&b);
}

/* The code's names hold WireGuard's values (the behaviour tests above check what they do). */
static void test_limits_are_wireguards(void **state)
{
	(void)state;
	assert_int_equal(SESSION_REKEY_AFTER_TIME_MS, 120000);
	assert_int_equal(SESSION_REJECT_AFTER_TIME_MS, 180000);
	assert_true(SESSION_REKEY_AFTER_MESSAGES == UINT64_C(1152921504606846976));
	assert_true(SESSION_REJECT_AFTER_MESSAGES == UINT64_C(18446744073709543486));
	assert_int_equal(REPLAY_WINDOW_SIZE, 8128);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_limits_are_wireguards),
		cmocka_unit_test(test_wire_format),
		cmocka_unit_test(test_keepalive),
		cmocka_unit_test(test_padding),
		cmocka_unit_test(test_in_place),
		cmocka_unit_test(test_tamper),
		cmocka_unit_test(test_replayed),
		cmocka_unit_test(test_wrong_receiver),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_expiry_by_time),
		cmocka_unit_test(test_expiry_by_messages),
		cmocka_unit_test(test_wants_rekey),
		cmocka_unit_test(test_clear),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
