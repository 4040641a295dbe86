/* WireGuard's handshake messages (handshake.c): golden bytes from an independent implementation,
 * the full round trip into sessions, and rejection of every forged, truncated, misaddressed
 * or wrongly keyed message with *hs and the session left untouched. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "core/clock.h"
#include "core/handshake.h"

enum {
	TEST_NOW_MS = 1000,          /* arbitrary monotonic "now" given to session_init */
	TEST_INIT_INDEX = 0x01020304, /* initiator's local index in the golden vector */
	TEST_RESP_INDEX = 0xa1b2c3d4, /* responder's local index in the golden vector */
	TEST_EXTRA_BYTES = 32,       /* how far past the exact size the length tests go */
};

/* ---------------------------------------------------------------- golden vector
 *
 * Produced by tests/tools/gen_handshake_golden.py, a separate Python implementation (hashlib
 * BLAKE2s and hmac, python3-nacl's X25519 and ChaCha20-Poly1305) written from the Noise spec and
 * WireGuard's protocol page, which also reproduces the cacophony IKpsk2 BLAKE2s vector; `make check` runs its --check
 * (tests/tools/check-golden.sh) against this file. Keys are the byte sequences start, start+1, ...:
 * initiator static 0x10.., responder static 0x40.., ephemerals 0x70.. and 0xa0.., psk 0xd0..;
 * timestamp = handshake_tai64n(1700000000 s, 123456789 ns); indices as in the enum above.
 * It pins WireGuard's construction and identifier, the layout, mac1 and the key order.
 * (test_wireguard_capture.c checks the same code against bytes wireguard-go itself produced.) */
static const char golden_timestamp[] = "400000006553f10a07000000";
static const char golden_initiation[] =
	"010000000403020123b7bb8c91ae008711fb12846780bcdf1e065f821bdfec49f57e7c7dcd4c48237c9f087a47c77765"
	"66936c12f69cdefeb0172eed5225b21ffd5b64d7cbdcc06f5db9067ffb754a97052851ac628edb82dd2c601dbc2df93c"
	"6228bd967761c03b93fc460f78d1297a4437a3c7868d8e050993050c3817b1a061213856000000000000000000000000"
	"00000000";
static const char golden_response[] =
	"02000000d4c3b2a104030201605a725d2a4adfeeb1a29e17edd621c1b7593ee8cdbc44ac6c4ab6e2f805d23c56ade902"
	"2db5a664bd30339577a9c75ad5b96d421a298bd7446e8ca293cc5c1c00000000000000000000000000000000";
static const char golden_k1[] = "24538fbb2f7b0840790ff8bf90b1ba327f60abf80e70035d8814528477206e03";
static const char golden_k2[] = "5d2d3fc0fc221c39f0fa4884d050609578db6fd101c6eaf565603d96f46ac756";

static void unhex(uint8_t *out, size_t len, const char *hex)
{
	size_t bin_len = 0;

	assert_int_equal(strlen(hex), 2 * len);
	assert_int_equal(sodium_hex2bin(out, len, hex, strlen(hex), NULL, &bin_len, NULL), 0);
	assert_int_equal(bin_len, len);
}

static void seq_key(uint8_t out[WIRE_KEY_LEN], uint8_t start)
{
	size_t i;

	for (i = 0; i < WIRE_KEY_LEN; i++)
		out[i] = (uint8_t)(start + i);
}

/* ---------------------------------------------------------------- fixture */

struct fixture {
	struct handshake_identity ini_id, resp_id, other_id;
	uint8_t ini_e[WIRE_KEY_LEN], resp_e[WIRE_KEY_LEN];
	uint8_t psk[WIRE_KEY_LEN];
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];
	/* one handshake that got as far as each message */
	struct handshake ini, resp;
	uint8_t initiation[WIRE_INITIATION_LEN];
	uint8_t response[WIRE_RESPONSE_LEN];
	struct session ini_session, resp_session;
};

static int fixture_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	uint8_t key[WIRE_KEY_LEN];

	if (!f)
		return -1;
	seq_key(key, 0x10);
	if (!handshake_identity_init(&f->ini_id, key))
		goto fail;
	seq_key(key, 0x40);
	if (!handshake_identity_init(&f->resp_id, key))
		goto fail;
	seq_key(key, 0x33);
	if (!handshake_identity_init(&f->other_id, key))
		goto fail;
	seq_key(f->ini_e, 0x70);
	seq_key(f->resp_e, 0xa0);
	seq_key(f->psk, 0xd0);
	handshake_tai64n(f->timestamp, (struct timespec){ .tv_sec = 1700000000, .tv_nsec = 123456789 });
	*state = f;
	return 0;
fail:
	free(f);
	return -1;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;

	handshake_identity_clear(&f->ini_id);
	handshake_identity_clear(&f->resp_id);
	handshake_identity_clear(&f->other_id);
	handshake_clear(&f->ini);
	handshake_clear(&f->resp);
	session_clear(&f->ini_session);
	session_clear(&f->resp_session);
	free(f);
	return 0;
}

/* Initiation created and consumed: f->ini waits for the response, f->resp is about to answer. */
static void run_initiation(struct fixture *f)
{
	assert_true(handshake_create_initiation(&f->ini, &f->ini_id, f->resp_id.public_key, TEST_INIT_INDEX,
						f->timestamp, f->ini_e, f->initiation));
	assert_true(handshake_consume_initiation(&f->resp, &f->resp_id, f->initiation, sizeof(f->initiation)));
}

/* ... and the response created: f->ini still waits, f->response is valid for it. */
static void run_to_response(struct fixture *f)
{
	run_initiation(f);
	assert_true(handshake_create_response(&f->resp, &f->resp_id, f->psk, TEST_RESP_INDEX, f->resp_e, TEST_NOW_MS,
					      f->response, &f->resp_session));
}

static void remac(uint8_t *msg, size_t mac1_off, const struct handshake_identity *receiver)
{
	handshake_mac(msg + mac1_off, receiver->mac1_key, WIRE_KEY_LEN, msg, mac1_off);
}

/* ---------------------------------------------------------------- tests */

static void test_golden_vector(void **state)
{
	struct fixture *f = *state;
	uint8_t expected_init[WIRE_INITIATION_LEN], expected_resp[WIRE_RESPONSE_LEN];
	uint8_t k1[WIRE_KEY_LEN], k2[WIRE_KEY_LEN], ts[WIRE_TIMESTAMP_LEN];

	unhex(ts, sizeof(ts), golden_timestamp);
	unhex(expected_init, sizeof(expected_init), golden_initiation);
	unhex(expected_resp, sizeof(expected_resp), golden_response);
	unhex(k1, sizeof(k1), golden_k1);
	unhex(k2, sizeof(k2), golden_k2);

	assert_memory_equal(f->timestamp, ts, sizeof(ts));
	run_to_response(f);
	assert_memory_equal(f->initiation, expected_init, sizeof(expected_init));
	assert_memory_equal(f->response, expected_resp, sizeof(expected_resp));
	assert_true(handshake_consume_response(&f->ini, &f->ini_id, f->psk, f->response, sizeof(f->response),
					       TEST_NOW_MS, &f->ini_session));

	assert_memory_equal(f->ini_session.send_key, k1, sizeof(k1));
	assert_memory_equal(f->ini_session.recv_key, k2, sizeof(k2));
	assert_memory_equal(f->resp_session.send_key, k2, sizeof(k2));
	assert_memory_equal(f->resp_session.recv_key, k1, sizeof(k1));
}

static void session_carries(struct session *from, struct session *to, const char *text)
{
	uint8_t msg[WIRE_DATA_MIN_LEN + 64], plain[64];
	size_t msg_len, plain_len, len = strlen(text);

	assert_int_equal(session_encrypt(from, TEST_NOW_MS, (const uint8_t *)text, len, msg, sizeof(msg), &msg_len),
			 SESSION_OK);
	assert_int_equal(session_decrypt(to, TEST_NOW_MS, msg, msg_len, plain, sizeof(plain), &plain_len), SESSION_OK);
	assert_true(plain_len >= len);
	assert_memory_equal(plain, text, len);
}

/* Production path: fresh keys, generated ephemerals, no PSK configured on either side. */
static void test_round_trip(void **state)
{
	struct handshake_identity a, b;
	struct handshake ha, hb;
	struct session sa, sb;
	uint8_t key[WIRE_KEY_LEN], ts[WIRE_TIMESTAMP_LEN], init[WIRE_INITIATION_LEN], resp[WIRE_RESPONSE_LEN];
	uint8_t zero_psk[WIRE_KEY_LEN] = { 0 };

	(void)state;
	randombytes_buf(key, sizeof(key));
	assert_true(handshake_identity_init(&a, key));
	randombytes_buf(key, sizeof(key));
	assert_true(handshake_identity_init(&b, key));
	handshake_tai64n(ts, (struct timespec){ .tv_sec = 1234567890, .tv_nsec = 0 });

	assert_true(handshake_create_initiation(&ha, &a, b.public_key, 11, ts, NULL, init));
	assert_int_equal(ha.state, HANDSHAKE_INITIATION_SENT);
	assert_true(handshake_consume_initiation(&hb, &b, init, sizeof(init)));
	assert_int_equal(hb.state, HANDSHAKE_INITIATION_CONSUMED);
	assert_memory_equal(hb.remote_static, a.public_key, WIRE_KEY_LEN);
	assert_memory_equal(hb.remote_timestamp, ts, sizeof(ts));
	assert_int_equal(hb.remote_index, 11);
	/* both transcripts agree so far */
	assert_int_equal(ha.noise.hash_len, 32); /* BLAKE2s */
	assert_memory_equal(ha.noise.h, hb.noise.h, ha.noise.hash_len);

	/* "no PSK" is 32 zero bytes: NULL on one side and zeros on the other must agree */
	assert_true(handshake_create_response(&hb, &b, NULL, 22, NULL, TEST_NOW_MS, resp, &sb));
	assert_true(handshake_response_mac1_ok(&a, resp, sizeof(resp)));
	assert_true(handshake_consume_response(&ha, &a, zero_psk, resp, sizeof(resp), TEST_NOW_MS, &sa));

	assert_int_equal(ha.state, HANDSHAKE_NONE);
	assert_int_equal(hb.state, HANDSHAKE_NONE);
	assert_true(sodium_is_zero((const uint8_t *)&ha.noise, sizeof(ha.noise))); /* keys live in the session only */
	assert_true(sodium_is_zero((const uint8_t *)&hb.noise, sizeof(hb.noise)));
	assert_memory_equal(sa.send_key, sb.recv_key, WIRE_KEY_LEN);
	assert_memory_equal(sa.recv_key, sb.send_key, WIRE_KEY_LEN);
	assert_memory_not_equal(sa.send_key, sa.recv_key, WIRE_KEY_LEN);
	assert_int_equal(sa.local_index, 11);
	assert_int_equal(sa.remote_index, 22);
	assert_int_equal(sb.local_index, 22);
	assert_int_equal(sb.remote_index, 11);
	assert_true(sa.we_initiated);
	assert_false(sb.we_initiated);

	session_carries(&sa, &sb, "from the initiator");
	session_carries(&sb, &sa, "from the responder");

	handshake_identity_clear(&a);
	handshake_identity_clear(&b);
	session_clear(&sa);
	session_clear(&sb);
}

static void test_wrong_responder_key(void **state)
{
	struct fixture *f = *state;
	struct handshake before;

	/* the initiator believes other_id is the responder */
	assert_true(handshake_create_initiation(&f->ini, &f->ini_id, f->other_id.public_key, TEST_INIT_INDEX,
						f->timestamp, f->ini_e, f->initiation));
	memset(&f->resp, 0x5a, sizeof(f->resp));
	memcpy(&before, &f->resp, sizeof(before));
	assert_false(handshake_consume_initiation(&f->resp, &f->resp_id, f->initiation, sizeof(f->initiation)));
	/* a sender who fixes mac1 up still fails at the Noise layer (es and {s}) */
	remac(f->initiation, WIRE_INIT_OFF_MAC1, &f->resp_id);
	assert_false(handshake_consume_initiation(&f->resp, &f->resp_id, f->initiation, sizeof(f->initiation)));
	assert_memory_equal(&f->resp, &before, sizeof(before));
	/* the intended receiver accepts it */
	remac(f->initiation, WIRE_INIT_OFF_MAC1, &f->other_id);
	assert_true(handshake_consume_initiation(&f->resp, &f->other_id, f->initiation, sizeof(f->initiation)));
}

/* Every bit of the initiation before mac2 matters; mac2 is reserved and ignored. With mac1
 * recomputed (anyone can: its key is public) the Noise part still fails, while the sender
 * index is covered by mac1 alone, as in WireGuard. */
static void test_initiation_bit_flips(void **state)
{
	struct fixture *f = *state;
	struct handshake before, hs;
	uint8_t msg[WIRE_INITIATION_LEN];
	size_t i;
	unsigned int bit;

	run_initiation(f);
	memset(&hs, 0x3c, sizeof(hs));
	memcpy(&before, &hs, sizeof(before));
	for (i = 0; i < WIRE_INITIATION_LEN; i++) {
		for (bit = 0; bit < 8; bit++) {
			memcpy(msg, f->initiation, sizeof(msg));
			msg[i] ^= (uint8_t)(1u << bit);
			if (i >= WIRE_INIT_OFF_MAC2) {
				assert_true(handshake_consume_initiation(&hs, &f->resp_id, msg, sizeof(msg)));
				memcpy(&hs, &before, sizeof(hs));
				continue;
			}
			if (handshake_consume_initiation(&hs, &f->resp_id, msg, sizeof(msg)))
				fail_msg("initiation with byte %zu bit %u flipped accepted", i, bit);
			assert_memory_equal(&hs, &before, sizeof(hs));

			remac(msg, WIRE_INIT_OFF_MAC1, &f->resp_id);
			if (i >= WIRE_INIT_OFF_SENDER && i < WIRE_INIT_OFF_EPHEMERAL) {
				assert_true(handshake_consume_initiation(&hs, &f->resp_id, msg, sizeof(msg)));
				assert_int_not_equal(hs.remote_index, TEST_INIT_INDEX);
				memcpy(&hs, &before, sizeof(hs));
			} else if (i < WIRE_INIT_OFF_MAC1) {
				if (handshake_consume_initiation(&hs, &f->resp_id, msg, sizeof(msg)))
					fail_msg("re-MACed initiation with byte %zu bit %u flipped accepted", i, bit);
				assert_memory_equal(&hs, &before, sizeof(hs));
			}
		}
	}
}

static void test_response_bit_flips(void **state)
{
	struct fixture *f = *state;
	struct handshake hs;
	struct session s, s_before;
	uint8_t msg[WIRE_RESPONSE_LEN];
	size_t i;
	unsigned int bit;

	run_to_response(f);
	memset(&s_before, 0xa5, sizeof(s_before));
	for (i = 0; i < WIRE_RESPONSE_LEN; i++) {
		for (bit = 0; bit < 8; bit++) {
			memcpy(msg, f->response, sizeof(msg));
			msg[i] ^= (uint8_t)(1u << bit);
			memcpy(&hs, &f->ini, sizeof(hs));
			memcpy(&s, &s_before, sizeof(s));
			if (i >= WIRE_RESP_OFF_MAC2) {
				assert_true(handshake_consume_response(&hs, &f->ini_id, f->psk, msg, sizeof(msg),
								       TEST_NOW_MS, &s));
				session_clear(&s); /* an accepted response made a session */
				continue;
			}
			if (handshake_response_mac1_ok(&f->ini_id, msg, sizeof(msg)) ||
			    handshake_consume_response(&hs, &f->ini_id, f->psk, msg, sizeof(msg), TEST_NOW_MS, &s))
				fail_msg("response with byte %zu bit %u flipped accepted", i, bit);
			assert_memory_equal(&hs, &f->ini, sizeof(hs));
			assert_memory_equal(&s, &s_before, sizeof(s));

			remac(msg, WIRE_RESP_OFF_MAC1, &f->ini_id);
			if (i >= WIRE_RESP_OFF_SENDER && i < WIRE_RESP_OFF_RECEIVER) {
				assert_true(handshake_consume_response(&hs, &f->ini_id, f->psk, msg, sizeof(msg),
								       TEST_NOW_MS, &s));
				session_clear(&s); /* an accepted response made a session */
				assert_int_not_equal(hs.remote_index, TEST_RESP_INDEX);
			} else if (i < WIRE_RESP_OFF_MAC1) {
				if (handshake_consume_response(&hs, &f->ini_id, f->psk, msg, sizeof(msg), TEST_NOW_MS,
							       &s))
					fail_msg("re-MACed response with byte %zu bit %u flipped accepted", i, bit);
				assert_memory_equal(&hs, &f->ini, sizeof(hs));
				assert_memory_equal(&s, &s_before, sizeof(s));
			}
		}
	}
	/* the untouched response still works */
	assert_true(handshake_consume_response(&f->ini, &f->ini_id, f->psk, f->response, sizeof(f->response),
					       TEST_NOW_MS, &f->ini_session));
}

/* Each length from 0 to well past the exact size, in an exact-size heap buffer so ASan sees
 * any read beyond it; extra bytes are the valid message's prefix followed by zeros. */
static void test_truncated_and_overlong(void **state)
{
	struct fixture *f = *state;
	struct handshake hs;
	struct session s;
	size_t len;

	run_to_response(f);
	for (len = 0; len <= WIRE_INITIATION_LEN + TEST_EXTRA_BYTES; len++) {
		uint8_t *buf = calloc(1, len ? len : 1);

		assert_non_null(buf);
		memcpy(buf, f->initiation, len < WIRE_INITIATION_LEN ? len : WIRE_INITIATION_LEN);
		memset(&hs, 0, sizeof(hs));
		assert_int_equal(handshake_consume_initiation(&hs, &f->resp_id, buf, len), len == WIRE_INITIATION_LEN);
		handshake_clear(&hs);
		free(buf);
	}
	for (len = 0; len <= WIRE_RESPONSE_LEN + TEST_EXTRA_BYTES; len++) {
		uint8_t *buf = calloc(1, len ? len : 1);

		assert_non_null(buf);
		memcpy(buf, f->response, len < WIRE_RESPONSE_LEN ? len : WIRE_RESPONSE_LEN);
		memcpy(&hs, &f->ini, sizeof(hs));
		assert_int_equal(handshake_response_mac1_ok(&f->ini_id, buf, len), len == WIRE_RESPONSE_LEN);
		assert_int_equal(handshake_consume_response(&hs, &f->ini_id, f->psk, buf, len, TEST_NOW_MS, &s),
				 len == WIRE_RESPONSE_LEN);
		if (len == WIRE_RESPONSE_LEN)
			session_clear(&s);
		handshake_clear(&hs);
		free(buf);
	}
	assert_false(handshake_consume_initiation(&hs, &f->resp_id, NULL, 0));
	assert_false(handshake_response_mac1_ok(&f->ini_id, NULL, WIRE_RESPONSE_LEN));
}

/* A PSK mismatch surfaces only at the response; the initiator's state survives the failure,
 * so the right response still completes afterwards. */
static void test_wrong_psk(void **state)
{
	struct fixture *f = *state;
	struct handshake before;
	struct session s;
	uint8_t wrong[WIRE_KEY_LEN];

	run_to_response(f);
	memcpy(wrong, f->psk, sizeof(wrong));
	wrong[WIRE_KEY_LEN - 1] ^= 1;
	memcpy(&before, &f->ini, sizeof(before));
	assert_true(handshake_response_mac1_ok(&f->ini_id, f->response, sizeof(f->response)));
	assert_false(handshake_consume_response(&f->ini, &f->ini_id, wrong, f->response, sizeof(f->response),
						TEST_NOW_MS, &s));
	assert_false(handshake_consume_response(&f->ini, &f->ini_id, NULL, f->response, sizeof(f->response),
						TEST_NOW_MS, &s));
	assert_memory_equal(&f->ini, &before, sizeof(before));
	assert_true(handshake_consume_response(&f->ini, &f->ini_id, f->psk, f->response, sizeof(f->response),
					       TEST_NOW_MS, &f->ini_session));
}

static void test_mac1_wrong(void **state)
{
	struct fixture *f = *state;
	struct handshake hs;
	struct session s;
	uint8_t msg[WIRE_INITIATION_LEN];
	uint8_t resp[WIRE_RESPONSE_LEN];

	run_to_response(f);
	memset(&hs, 0, sizeof(hs));

	memcpy(msg, f->initiation, sizeof(msg));
	memset(msg + WIRE_INIT_OFF_MAC1, 0, WIRE_MAC_LEN);
	assert_false(handshake_consume_initiation(&hs, &f->resp_id, msg, sizeof(msg)));
	remac(msg, WIRE_INIT_OFF_MAC1, &f->other_id); /* a valid mac1 for someone else */
	assert_false(handshake_consume_initiation(&hs, &f->resp_id, msg, sizeof(msg)));
	assert_true(sodium_is_zero((const uint8_t *)&hs, sizeof(hs)));

	memcpy(resp, f->response, sizeof(resp));
	remac(resp, WIRE_RESP_OFF_MAC1, &f->resp_id); /* addressed to the responder itself */
	assert_false(handshake_response_mac1_ok(&f->ini_id, resp, sizeof(resp)));
	memcpy(&hs, &f->ini, sizeof(hs));
	assert_false(handshake_consume_response(&hs, &f->ini_id, f->psk, resp, sizeof(resp), TEST_NOW_MS, &s));
	assert_memory_equal(&hs, &f->ini, sizeof(hs));
}

/* Consuming cannot tell a replayed initiation from the original: both give the same
 * timestamp, and the caller's "newer than the last one" check is what refuses the copy. */
static void test_same_initiation_twice(void **state)
{
	struct fixture *f = *state;
	struct handshake again;

	run_initiation(f);
	assert_true(handshake_consume_initiation(&again, &f->resp_id, f->initiation, sizeof(f->initiation)));
	assert_memory_equal(again.remote_timestamp, f->resp.remote_timestamp, WIRE_TIMESTAMP_LEN);
	assert_memory_equal(again.remote_timestamp, f->timestamp, WIRE_TIMESTAMP_LEN);
	assert_memory_equal(again.remote_static, f->resp.remote_static, WIRE_KEY_LEN);
	assert_int_equal(again.remote_index, f->resp.remote_index);
	handshake_clear(&again);
}

static void test_state_machine(void **state)
{
	struct fixture *f = *state;
	struct handshake idle, hs;
	struct session s;
	uint8_t resp[WIRE_RESPONSE_LEN], zero[WIRE_KEY_LEN] = { 0 };
	struct handshake_identity id;

	memset(&idle, 0, sizeof(idle));
	assert_false(handshake_create_response(&idle, &f->resp_id, f->psk, 1, NULL, TEST_NOW_MS, resp, &s));
	assert_true(sodium_is_zero(resp, sizeof(resp)));

	run_to_response(f);
	/* the responder's handshake is finished and cannot answer twice */
	assert_false(handshake_create_response(&f->resp, &f->resp_id, f->psk, 1, NULL, TEST_NOW_MS, resp, &s));
	/* a response is for an initiator only */
	assert_false(handshake_consume_response(&idle, &f->ini_id, f->psk, f->response, sizeof(f->response),
						TEST_NOW_MS, &s));
	/* a response to another of our handshakes (different local index) */
	memcpy(&hs, &f->ini, sizeof(hs));
	hs.local_index ^= 1;
	assert_false(handshake_consume_response(&hs, &f->ini_id, f->psk, f->response, sizeof(f->response),
						TEST_NOW_MS, &s));
	/* accepted once, then the handshake is over */
	assert_true(handshake_consume_response(&f->ini, &f->ini_id, f->psk, f->response, sizeof(f->response),
					       TEST_NOW_MS, &f->ini_session));
	assert_false(handshake_consume_response(&f->ini, &f->ini_id, f->psk, f->response, sizeof(f->response),
						TEST_NOW_MS, &s));
	/* a response is not an initiation and vice versa */
	assert_false(handshake_consume_initiation(&hs, &f->ini_id, f->response, sizeof(f->response)));
	assert_false(handshake_response_mac1_ok(&f->resp_id, f->initiation, sizeof(f->initiation)));

	assert_false(handshake_identity_init(&id, zero));
}

/* TAI64N must order like time (big-endian, so memcmp order), coarsened to 2^24 ns. */
static void test_tai64n(void **state)
{
	static const struct {
		time_t sec;
		long nsec;
		const char *hex;
	} table[] = {
		{ 0, 0, "400000000000000a00000000" },
		{ 0, (1L << 24) - 1, "400000000000000a00000000" }, /* same granule */
		{ 0, 1L << 24, "400000000000000a01000000" },
		{ 0, 999999999, "400000000000000a3b000000" },
		{ 1, 0, "400000000000000b00000000" },
		{ 1700000000, 123456789, "400000006553f10a07000000" },
		{ 4102444800, 500000000, "40000000f486570a1d000000" }, /* year 2100 */
	};
	uint8_t prev[WIRE_TIMESTAMP_LEN] = { 0 }, ts[WIRE_TIMESTAMP_LEN], want[WIRE_TIMESTAMP_LEN];
	struct timespec pause = { .tv_sec = 0, .tv_nsec = 40 * 1000 * 1000 }; /* > 2 granules */
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		handshake_tai64n(ts, (struct timespec){ .tv_sec = table[i].sec, .tv_nsec = table[i].nsec });
		unhex(want, sizeof(want), table[i].hex);
		assert_memory_equal(ts, want, sizeof(want));
		assert_true(memcmp(prev, ts, sizeof(ts)) <= 0);
		memcpy(prev, ts, sizeof(ts));
	}

	/* the real clock moves the timestamp forward */
	handshake_tai64n(prev, clock_realtime());
	assert_int_equal(nanosleep(&pause, NULL), 0);
	handshake_tai64n(ts, clock_realtime());
	assert_true(memcmp(prev, ts, sizeof(ts)) < 0);
}

int main(void)
{
#define FIXTURE_TEST(t) cmocka_unit_test_setup_teardown(t, fixture_setup, fixture_teardown)
	const struct CMUnitTest tests[] = {
		FIXTURE_TEST(test_golden_vector),
		cmocka_unit_test(test_round_trip),
		FIXTURE_TEST(test_wrong_responder_key),
		FIXTURE_TEST(test_initiation_bit_flips),
		FIXTURE_TEST(test_response_bit_flips),
		FIXTURE_TEST(test_truncated_and_overlong),
		FIXTURE_TEST(test_wrong_psk),
		FIXTURE_TEST(test_mac1_wrong),
		FIXTURE_TEST(test_same_initiation_twice),
		FIXTURE_TEST(test_state_machine),
		cmocka_unit_test(test_tai64n),
	};
#undef FIXTURE_TEST

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("handshake", tests, NULL, NULL);
}
