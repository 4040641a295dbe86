/* Unit tests for core/relay: the UDP relay frames BIND, BIND_ACK and DATA. Sizes pinned with
 * literal numbers, the mac recomputed independently (keyed BLAKE2b-128 over everything before
 * it), every single-byte change, truncation and extra byte refused, and the DATA bounds. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/relay.h"

static const uint64_t counters[] = { 0, 1, 0x0102030405060708ULL, UINT64_MAX };

static void fill(uint8_t *p, size_t len, uint8_t start)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(start + i);
}

static void test_token(uint8_t token[RELAY_TOKEN_LEN], uint8_t start)
{
	fill(token, RELAY_TOKEN_LEN, start);
}

/* A heap copy of exactly len bytes, so ASan sees any read past the end. */
static uint8_t *exact_copy(const uint8_t *buf, size_t len)
{
	uint8_t *copy = malloc(len ? len : 1);

	assert_non_null(copy);
	if (len)
		memcpy(copy, buf, len);
	return copy;
}

static bool check_bind_exact(const uint8_t *buf, size_t len, const uint8_t *token, uint64_t *counter)
{
	uint8_t *copy = exact_copy(buf, len);
	bool ok = relay_check_bind(copy, len, token, counter);
	bool has_key = relay_bind_key(copy, len) != NULL;

	free(copy);
	if (ok)
		assert_true(has_key); /* a checked bind always has a key */
	return ok;
}

static bool check_ack_exact(const uint8_t *buf, size_t len, const uint8_t *token, uint64_t *counter)
{
	uint8_t *copy = exact_copy(buf, len);
	bool ok = relay_check_bind_ack(copy, len, token, counter);

	free(copy);
	return ok;
}

/* ---------------------------------------------------------------- sizes */

static void test_sizes(void **state)
{
	(void)state;
	assert_int_equal(RELAY_TOKEN_LEN, 32);
	assert_int_equal(RELAY_MAC_LEN, 16);
	assert_int_equal(RELAY_BIND_LEN, 60);
	assert_int_equal(RELAY_BIND_ACK_LEN, 28);
	assert_int_equal(RELAY_DATA_HEADER_LEN, 36);
	assert_int_equal(RELAY_MAX_PAYLOAD, 3968);
	assert_int_equal(RELAY_MAX_FRAME, 36 + 3968);
	assert_int_equal(RELAY_BIND_OFF_COUNTER, 36);
	assert_int_equal(RELAY_BIND_OFF_MAC, 44);
	assert_int_equal(RELAY_ACK_OFF_MAC, 12);
	assert_true(RELAY_BIND_ACK_LEN < RELAY_BIND_LEN); /* no amplification */
}

/* ---------------------------------------------------------------- BIND */

static void test_bind_round_trip(void **state)
{
	uint8_t token[RELAY_TOKEN_LEN], key[WIRE_KEY_LEN];

	(void)state;
	test_token(token, 0x40);
	fill(key, sizeof(key), 0x90);
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
		uint8_t buf[RELAY_BIND_LEN + 8], want_mac[RELAY_MAC_LEN];
		uint64_t got = 42;

		memset(buf, 0xa5, sizeof(buf));
		relay_build_bind(buf, key, counters[i], token);
		for (size_t j = RELAY_BIND_LEN; j < sizeof(buf); j++)
			assert_int_equal(buf[j], 0xa5); /* nothing written past the frame */
		assert_int_equal(buf[0], 0x81);
		assert_int_equal(buf[1], 0);
		assert_int_equal(buf[2], 0);
		assert_int_equal(buf[3], 0);
		assert_memory_equal(buf + 4, key, WIRE_KEY_LEN);
		for (size_t b = 0; b < 8; b++) /* little-endian */
			assert_int_equal(buf[36 + b], (uint8_t)(counters[i] >> (8 * b)));
		assert_int_equal(crypto_generichash(want_mac, sizeof(want_mac), buf, 44, token, sizeof(token)), 0);
		assert_memory_equal(buf + 44, want_mac, sizeof(want_mac));

		assert_ptr_equal(relay_bind_key(buf, RELAY_BIND_LEN), buf + 4);
		assert_true(check_bind_exact(buf, RELAY_BIND_LEN, token, &got));
		assert_true(got == counters[i]);
	}
}

static void test_bind_refused(void **state)
{
	uint8_t token[RELAY_TOKEN_LEN], other[RELAY_TOKEN_LEN], key[WIRE_KEY_LEN], buf[RELAY_BIND_LEN + 1];
	uint64_t got;

	(void)state;
	test_token(token, 0x40);
	test_token(other, 0x41);
	fill(key, sizeof(key), 0x90);
	relay_build_bind(buf, key, 1234, token);

	/* the wrong token: another node's, or one bit away */
	assert_false(check_bind_exact(buf, RELAY_BIND_LEN, other, &got));
	for (size_t i = 0; i < RELAY_TOKEN_LEN; i++) {
		memcpy(other, token, sizeof(other));
		other[i] ^= 0x01;
		assert_false(check_bind_exact(buf, RELAY_BIND_LEN, other, &got));
	}

	/* every byte changed, two ways */
	for (size_t i = 0; i < RELAY_BIND_LEN; i++) {
		static const uint8_t flips[] = { 0x01, 0x80, 0xff };

		for (size_t f = 0; f < sizeof(flips); f++) {
			buf[i] ^= flips[f];
			if (check_bind_exact(buf, RELAY_BIND_LEN, token, &got))
				fail_msg("bind byte %zu ^ 0x%02x accepted", i, flips[f]);
			if (i < 4)
				assert_null(relay_bind_key(buf, RELAY_BIND_LEN)); /* header checked before the key */
			buf[i] ^= flips[f];
		}
	}
	assert_true(check_bind_exact(buf, RELAY_BIND_LEN, token, &got)); /* restored */

	/* every truncation and one extra byte */
	for (size_t cut = 0; cut < RELAY_BIND_LEN; cut++) {
		uint8_t *copy = exact_copy(buf, cut);

		assert_null(relay_bind_key(copy, cut));
		assert_false(relay_check_bind(copy, cut, token, &got));
		free(copy);
	}
	buf[RELAY_BIND_LEN] = 0;
	assert_null(relay_bind_key(buf, RELAY_BIND_LEN + 1));
	assert_false(check_bind_exact(buf, RELAY_BIND_LEN + 1, token, &got));
	assert_null(relay_bind_key(NULL, RELAY_BIND_LEN));
	assert_false(relay_check_bind(NULL, RELAY_BIND_LEN, token, &got));
}

/* ---------------------------------------------------------------- BIND_ACK */

static void test_ack_round_trip(void **state)
{
	uint8_t token[RELAY_TOKEN_LEN];

	(void)state;
	test_token(token, 0x07);
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
		uint8_t buf[RELAY_BIND_ACK_LEN + 8], want_mac[RELAY_MAC_LEN];
		uint64_t got = 42;

		memset(buf, 0xa5, sizeof(buf));
		relay_build_bind_ack(buf, counters[i], token);
		for (size_t j = RELAY_BIND_ACK_LEN; j < sizeof(buf); j++)
			assert_int_equal(buf[j], 0xa5);
		assert_int_equal(buf[0], 0x82);
		assert_int_equal(buf[1], 0);
		assert_int_equal(buf[2], 0);
		assert_int_equal(buf[3], 0);
		for (size_t b = 0; b < 8; b++)
			assert_int_equal(buf[4 + b], (uint8_t)(counters[i] >> (8 * b)));
		assert_int_equal(crypto_generichash(want_mac, sizeof(want_mac), buf, 12, token, sizeof(token)), 0);
		assert_memory_equal(buf + 12, want_mac, sizeof(want_mac));
		assert_true(check_ack_exact(buf, RELAY_BIND_ACK_LEN, token, &got));
		assert_true(got == counters[i]);
	}
}

static void test_ack_refused(void **state)
{
	uint8_t token[RELAY_TOKEN_LEN], other[RELAY_TOKEN_LEN], buf[RELAY_BIND_ACK_LEN + 1];
	uint64_t got;

	(void)state;
	test_token(token, 0x07);
	test_token(other, 0x08);
	relay_build_bind_ack(buf, 99, token);
	assert_false(check_ack_exact(buf, RELAY_BIND_ACK_LEN, other, &got));
	for (size_t i = 0; i < RELAY_BIND_ACK_LEN; i++) {
		buf[i] ^= 0x01;
		if (check_ack_exact(buf, RELAY_BIND_ACK_LEN, token, &got))
			fail_msg("ack byte %zu changed, accepted", i);
		buf[i] ^= 0x01;
	}
	for (size_t cut = 0; cut < RELAY_BIND_ACK_LEN; cut++)
		assert_false(check_ack_exact(buf, cut, token, &got));
	buf[RELAY_BIND_ACK_LEN] = 0;
	assert_false(check_ack_exact(buf, RELAY_BIND_ACK_LEN + 1, token, &got));
	assert_false(relay_check_bind_ack(NULL, RELAY_BIND_ACK_LEN, token, &got));
	assert_true(check_ack_exact(buf, RELAY_BIND_ACK_LEN, token, &got));
	assert_true(got == 99);
}

/* A bind is not an ack and an ack is not a bind, even under the same token. */
static void test_no_type_confusion(void **state)
{
	uint8_t token[RELAY_TOKEN_LEN], key[WIRE_KEY_LEN], bind[RELAY_BIND_LEN], ack[RELAY_BIND_ACK_LEN];
	uint64_t got;

	(void)state;
	test_token(token, 0x33);
	fill(key, sizeof(key), 0x01);
	relay_build_bind(bind, key, 5, token);
	relay_build_bind_ack(ack, 5, token);
	assert_false(check_ack_exact(bind, sizeof(bind), token, &got));
	assert_false(check_ack_exact(bind, RELAY_BIND_ACK_LEN, token, &got));
	assert_null(relay_bind_key(ack, sizeof(ack)));
	assert_false(check_bind_exact(ack, sizeof(ack), token, &got));
	/* the ack's type byte in a bind (mac recomputed would be needed: it is not) */
	bind[0] = 0x82;
	assert_null(relay_bind_key(bind, sizeof(bind)));
	{
		const uint8_t *k, *p;
		size_t n;

		assert_false(relay_parse_data(ack, sizeof(ack), &k, &p, &n));
		relay_build_bind(bind, key, 5, token);
		assert_false(relay_parse_data(bind, sizeof(bind), &k, &p, &n));
	}
}

/* ---------------------------------------------------------------- DATA */

static void test_wrap_data(void **state)
{
	static uint8_t frame[RELAY_MAX_FRAME + 64];
	uint8_t key[WIRE_KEY_LEN];
	const uint8_t *k, *p;
	size_t n;

	(void)state;
	fill(key, sizeof(key), 0xc0);
	memset(frame, 0xa5, sizeof(frame));
	fill(frame + RELAY_DATA_OFF_PAYLOAD, RELAY_MAX_PAYLOAD, 0x11);

	assert_int_equal(relay_wrap_data(frame, key, 0), 0);
	assert_int_equal(relay_wrap_data(frame, key, RELAY_MAX_PAYLOAD + 1), 0);
	assert_int_equal(frame[0], 0xa5); /* a refusal writes nothing */

	assert_int_equal(relay_wrap_data(frame, key, 1), 37);
	assert_int_equal(relay_wrap_data(frame, key, RELAY_MAX_PAYLOAD), 36 + 3968);
	assert_int_equal(frame[0], 0x83);
	assert_int_equal(frame[1], 0);
	assert_int_equal(frame[2], 0);
	assert_int_equal(frame[3], 0);
	assert_memory_equal(frame + 4, key, WIRE_KEY_LEN);
	for (size_t i = 0; i < RELAY_MAX_PAYLOAD; i++) /* the payload is untouched */
		assert_int_equal(frame[36 + i], (uint8_t)(0x11 + i));
	assert_int_equal(frame[RELAY_MAX_FRAME], 0xa5);

	assert_true(relay_parse_data(frame, RELAY_MAX_FRAME, &k, &p, &n));
	assert_ptr_equal(k, frame + 4);
	assert_ptr_equal(p, frame + 36);
	assert_int_equal(n, RELAY_MAX_PAYLOAD);

	/* the coordinator rewrites the key of a received frame in place */
	assert_int_equal(relay_wrap_data(frame, frame + RELAY_DATA_OFF_KEY, 100), 136);
	assert_memory_equal(frame + 4, key, WIRE_KEY_LEN);
}

static void test_parse_data_bounds(void **state)
{
	static uint8_t frame[RELAY_MAX_FRAME + 1];
	uint8_t key[WIRE_KEY_LEN];
	const uint8_t *k, *p;
	size_t n;

	(void)state;
	fill(key, sizeof(key), 0xc0);
	memset(frame, 0x5a, sizeof(frame));
	assert_int_equal(relay_wrap_data(frame, key, 1), 37);

	/* header only (empty payload) and anything shorter */
	for (size_t len = 0; len <= RELAY_DATA_HEADER_LEN; len++) {
		uint8_t *copy = exact_copy(frame, len);

		assert_false(relay_parse_data(copy, len, &k, &p, &n));
		free(copy);
	}
	for (size_t len = 37; len <= RELAY_MAX_FRAME; len += len < 100 ? 1 : 397) {
		uint8_t *copy = exact_copy(frame, len);

		assert_true(relay_parse_data(copy, len, &k, &p, &n));
		assert_ptr_equal(k, copy + 4);
		assert_ptr_equal(p, copy + 36);
		assert_int_equal(n, len - 36);
		free(copy);
	}
	assert_true(relay_parse_data(frame, RELAY_MAX_FRAME, &k, &p, &n));
	assert_int_equal(n, RELAY_MAX_PAYLOAD);
	assert_false(relay_parse_data(frame, RELAY_MAX_FRAME + 1, &k, &p, &n));
	assert_false(relay_parse_data(NULL, 100, &k, &p, &n));

	/* the header: type, version and the two reserved bytes */
	for (size_t i = 0; i < 4; i++) {
		frame[i] ^= 0x01;
		assert_false(relay_parse_data(frame, 100, &k, &p, &n));
		frame[i] ^= 0x01;
	}
	assert_true(relay_parse_data(frame, 100, &k, &p, &n));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_bind_round_trip),
		cmocka_unit_test(test_bind_refused),
		cmocka_unit_test(test_ack_round_trip),
		cmocka_unit_test(test_ack_refused),
		cmocka_unit_test(test_no_type_confusion),
		cmocka_unit_test(test_wrap_data),
		cmocka_unit_test(test_parse_data_bounds),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
