/* The control channel (control_channel.c): the Noise handshake and transport frames against
 * golden bytes from an independent implementation, tampered, replayed, reordered and
 * misaddressed frames, the nonce limit, a frame packed with records, and the frame splitter.
 * The messages and records themselves are in test_control_codec.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/control.h"

#include "control_fixtures.h"

enum {
	TEST_FRAMES = 5, /* transport frames sent each way in the round trip */
};

/* ---------------------------------------------------------------- channel
 *
 * Golden frames from a separate Python implementation written from the Noise spec and
 * control.h: tests/tools/gen_control_golden.py (hashlib BLAKE2b and hmac, python3-nacl's
 * X25519 and ChaCha20-Poly1305; the Noise code is tests/tools/noise_ref.py) prints them, and
 * its --check, run by make check through tests/tools/check-golden.sh, first replays the
 * cacophony Noise_IK_25519_ChaChaPoly_BLAKE2b vector and then compares them with this file.
 * Keys are the byte sequences start, start+1, ...: node static 0x10.., coordinator static
 * 0x40.., node ephemeral 0x70.., coordinator ephemeral 0xa0..; the timestamp is TAI64N
 * 1700000000.123456789 s (nanoseconds rounded down to a multiple of 2^24). They pin the
 * protocol name, the prologue "meshcoord v1", the framing and the key order; the sealed
 * frames are the "register" and "registered" samples (nonce 0) and a keepalive
 * (coordinator's nonce 1), each sealed bare, without a record header. */
static const char golden_timestamp[] = "400000006553f10a07000000";
static const char golden_hello[] =
	"00714d5348430123b7bb8c91ae008711fb12846780bcdf1e065f821bdfec49f57e7c7dcd4c4823a4294bbcb53c3af958"
	"2995ed0287a610dc6d7cdd36a4511d11803c6fbb3258358dea5ee5d517c24ae941b0677a3e4b0c8f48906fb16ba6dd16"
	"d7c65777d2c821f5f3e45a55ebbc4716215b81";
static const char golden_welcome[] =
	"0030605a725d2a4adfeeb1a29e17edd621c1b7593ee8cdbc44ac6c4ab6e2f805d23cfe1e78b4a7c5cbf034d93c372332"
	"3bee";
static const char golden_k1[] = "7ca8962d3b3d35feec7ba29d66746ba48e871aecc4cab3012d3d3d252034e99d";
static const char golden_k2[] = "c17810a8381c5ba73deb2397df4de75d76487161a5747f194f440eea458ba55a";
static const char golden_node_public[] = "d89e3bad79437dbed9f843418304f460ff05c7fe81fe4a9577a804cb9367ff66";
static const char golden_seal_node0[] =
	"005ad38b7f46fb43f47908d0b661ba096c87e8af3ef3eaa4da3977237bb32f81c54be8806c792aa0a46f868d5192c98c"
	"1dd50172edf1525204b7cb3425929ae1135566c90711a9c6894316e20d43055b85a0c9ab1df44871fec3fc79";
static const char golden_seal_coord0[] =
	"0030f0eb3b0ede5a1d20eb63fce93fd4a0c29bdff46dff26446639329775379a4fc4d795e5111280af569a4c4b09156a"
	"9c26";
static const char golden_seal_coord1[] = "001144ed294879c2c789a99ed24ef8349fc362";

struct fixture {
	uint8_t node_private[WIRE_KEY_LEN], coord_private[WIRE_KEY_LEN], coord_public[WIRE_KEY_LEN];
	uint8_t node_e[WIRE_KEY_LEN], coord_e[WIRE_KEY_LEN];
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];
	uint8_t hello[TEST_BUF_LEN], welcome[TEST_BUF_LEN];
	size_t hello_len, welcome_len;
	struct control_channel node, coord; /* after the hello, and after the accept */
};

static int fixture_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	size_t len;

	assert_non_null(f);
	assert_true(sodium_init() >= 0);
	seq_bytes(f->node_private, WIRE_KEY_LEN, 0x10);
	seq_bytes(f->coord_private, WIRE_KEY_LEN, 0x40);
	seq_bytes(f->node_e, WIRE_KEY_LEN, 0x70);
	seq_bytes(f->coord_e, WIRE_KEY_LEN, 0xa0);
	assert_int_equal(crypto_scalarmult_base(f->coord_public, f->coord_private), 0);
	unhex(f->timestamp, sizeof(f->timestamp), golden_timestamp, &len);
	assert_int_equal(len, WIRE_TIMESTAMP_LEN);

	assert_true(control_client_hello(&f->node, f->node_private, f->coord_public, f->timestamp, f->node_e, f->hello,
					 sizeof(f->hello), &f->hello_len));
	*state = f;
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;

	control_channel_clear(&f->node);
	control_channel_clear(&f->coord);
	free(f);
	return 0;
}

/* Frame 1 through the coordinator, frame 2 back: both ends established. */
static void handshake_complete(struct fixture *f)
{
	uint8_t ts[WIRE_TIMESTAMP_LEN];

	assert_true(control_server_accept(&f->coord, f->coord_private, f->hello + CONTROL_FRAME_HEADER_LEN,
					  f->hello_len - CONTROL_FRAME_HEADER_LEN, ts, f->coord_e, f->welcome,
					  sizeof(f->welcome), &f->welcome_len));
	assert_memory_equal(ts, f->timestamp, WIRE_TIMESTAMP_LEN);
	assert_true(control_client_finish(&f->node, f->welcome + CONTROL_FRAME_HEADER_LEN,
					  f->welcome_len - CONTROL_FRAME_HEADER_LEN));
}

static void expect_frame_hex(const uint8_t *frame, size_t len, const char *hex)
{
	uint8_t want[TEST_BUF_LEN];
	size_t want_len;

	unhex(want, sizeof(want), hex, &want_len);
	assert_int_equal(len, want_len);
	assert_memory_equal(frame, want, len);
}

static void test_handshake_golden(void **state)
{
	struct fixture *f = *state;
	uint8_t key[WIRE_KEY_LEN], plain[TEST_BUF_LEN], frame[TEST_BUF_LEN];
	size_t len, plain_len;

	assert_int_equal(f->hello_len, CONTROL_FRAME_HEADER_LEN + CONTROL_HELLO_LEN);
	expect_frame_hex(f->hello, f->hello_len, golden_hello);
	handshake_complete(f);
	assert_int_equal(f->welcome_len, CONTROL_FRAME_HEADER_LEN + CONTROL_WELCOME_LEN);
	expect_frame_hex(f->welcome, f->welcome_len, golden_welcome);

	unhex(key, sizeof(key), golden_node_public, &len);
	assert_memory_equal(f->coord.remote_static, key, WIRE_KEY_LEN);
	assert_memory_equal(f->node.remote_static, f->coord_public, WIRE_KEY_LEN);
	unhex(key, sizeof(key), golden_k1, &len);
	assert_memory_equal(f->node.send_key, key, WIRE_KEY_LEN);
	assert_memory_equal(f->coord.recv_key, key, WIRE_KEY_LEN);
	unhex(key, sizeof(key), golden_k2, &len);
	assert_memory_equal(f->node.recv_key, key, WIRE_KEY_LEN);
	assert_memory_equal(f->coord.send_key, key, WIRE_KEY_LEN);
	/* the handshake state is of no use once split, and holds secrets */
	assert_true(sodium_is_zero((const uint8_t *)&f->node.hs, sizeof(f->node.hs)));
	assert_true(sodium_is_zero((const uint8_t *)&f->coord.hs, sizeof(f->coord.hs)));

	/* sample 0 is "register", sample 1 "registered" */
	len = sample_encode(0, plain, sizeof(plain));
	assert_true(control_seal(&f->node, plain, len, frame, sizeof(frame), &len));
	expect_frame_hex(frame, len, golden_seal_node0);
	len = sample_encode(1, plain, sizeof(plain));
	assert_true(control_seal(&f->coord, plain, len, frame, sizeof(frame), &len));
	expect_frame_hex(frame, len, golden_seal_coord0);
	plain[0] = CONTROL_MSG_KEEPALIVE;
	assert_true(control_seal(&f->coord, plain, 1, frame, sizeof(frame), &len));
	expect_frame_hex(frame, len, golden_seal_coord1);
	/* the node opens frames in order only: this one is its second */
	assert_false(control_open(&f->node, frame + CONTROL_FRAME_HEADER_LEN, len - CONTROL_FRAME_HEADER_LEN, plain,
				  sizeof(plain), &plain_len));
}

/* Sends `count` frames from one side to the other through control_frame_next, frame i
 * holding i + 1 records of consecutive samples, and checks they arrive as sent. */
static void exchange(struct control_channel *from, struct control_channel *to, size_t count, size_t first_sample)
{
	uint8_t stream[TEST_FRAMES * (CONTROL_MAX_FRAME + CONTROL_FRAME_HEADER_LEN)];
	size_t stream_len = 0, off = 0, sample = first_sample;

	assert_true(count <= TEST_FRAMES);
	for (size_t i = 0; i < count; i++) {
		uint8_t plain[CONTROL_MAX_PLAIN];
		size_t len = 0, frame_len;

		for (size_t r = 0; r <= i; r++) {
			struct control_message m;

			memset(&m, 0, sizeof(m));
			samples[sample++ % N_SAMPLES].make(&m);
			assert_true(control_record_append(plain, sizeof(plain), &len, &m));
		}
		assert_true(control_seal(from, plain, len, stream + stream_len, sizeof(stream) - stream_len, &frame_len));
		assert_int_equal(frame_len, CONTROL_FRAME_HEADER_LEN + len + NOISE_TAG_LEN);
		stream_len += frame_len;
	}
	sample = first_sample;
	for (size_t i = 0; i < count; i++) {
		uint8_t plain[CONTROL_MAX_PLAIN], want[CONTROL_MAX_PLAIN];
		const uint8_t *body, *msg;
		size_t body_len, consumed, plain_len, want_len, msg_len, rec_off = 0;
		struct control_message m;

		assert_int_equal(control_frame_next(stream + off, stream_len - off, &body, &body_len, &consumed), 1);
		assert_true(control_open(to, body, body_len, plain, sizeof(plain), &plain_len));
		for (size_t r = 0; r <= i; r++) {
			assert_int_equal(control_record_next(plain, plain_len, &rec_off, &msg, &msg_len), 1);
			want_len = sample_encode(sample++ % N_SAMPLES, want, sizeof(want));
			assert_int_equal(msg_len, want_len);
			assert_memory_equal(msg, want, want_len);
			assert_int_equal(control_decode(msg, msg_len, &m), CONTROL_DECODE_OK);
		}
		assert_int_equal(control_record_next(plain, plain_len, &rec_off, &msg, &msg_len), 0);
		off += consumed;
	}
	assert_int_equal(off, stream_len);
}

static void test_handshake_and_transport(void **state)
{
	struct fixture *f = *state;

	assert_false(f->node.established);
	handshake_complete(f);
	assert_true(f->node.established);
	assert_true(f->coord.established);
	for (size_t round = 0; round < 3; round++) {
		exchange(&f->node, &f->coord, TEST_FRAMES, round);
		exchange(&f->coord, &f->node, TEST_FRAMES, round + 7);
	}
	assert_int_equal(f->node.send_nonce, 3 * TEST_FRAMES);
	assert_int_equal(f->coord.recv_nonce, 3 * TEST_FRAMES);
	assert_int_equal(f->coord.send_nonce, 3 * TEST_FRAMES);
	assert_int_equal(f->node.recv_nonce, 3 * TEST_FRAMES);
}

/* Fresh ephemerals (NULL) still agree; only the injected ones are fixed. */
static void test_handshake_random_ephemerals(void **state)
{
	struct fixture *f = *state;
	uint8_t ts[WIRE_TIMESTAMP_LEN];

	assert_true(control_client_hello(&f->node, f->node_private, f->coord_public, f->timestamp, NULL, f->hello,
					 sizeof(f->hello), &f->hello_len));
	assert_true(control_server_accept(&f->coord, f->coord_private, f->hello + CONTROL_FRAME_HEADER_LEN,
					  f->hello_len - CONTROL_FRAME_HEADER_LEN, ts, NULL, f->welcome,
					  sizeof(f->welcome), &f->welcome_len));
	assert_true(control_client_finish(&f->node, f->welcome + CONTROL_FRAME_HEADER_LEN,
					  f->welcome_len - CONTROL_FRAME_HEADER_LEN));
	exchange(&f->node, &f->coord, 2, 0);
	exchange(&f->coord, &f->node, 2, 3);
}

static void seal_sample(struct control_channel *ch, size_t sample, uint8_t *frame, size_t cap, size_t *len)
{
	uint8_t plain[CONTROL_MAX_PLAIN];
	size_t plain_len = sample_encode(sample, plain, sizeof(plain));

	assert_true(control_seal(ch, plain, plain_len, frame, cap, len));
}

/* Every flipped bit of a frame (header aside) is refused without moving the nonce; the
 * genuine frame still opens afterwards. */
static void test_tampered_frame(void **state)
{
	struct fixture *f = *state;
	uint8_t frame[TEST_BUF_LEN], plain[TEST_BUF_LEN];
	size_t len, plain_len;
	struct control_channel before;

	handshake_complete(f);
	seal_sample(&f->node, 3, frame, sizeof(frame), &len);
	before = f->coord;
	for (size_t i = CONTROL_FRAME_HEADER_LEN; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			frame[i] ^= (uint8_t)(1u << bit);
			memset(plain, TEST_CANARY, sizeof(plain));
			assert_false(control_open(&f->coord, frame + CONTROL_FRAME_HEADER_LEN, len - CONTROL_FRAME_HEADER_LEN,
						  plain, sizeof(plain), &plain_len));
			assert_memory_equal(&f->coord, &before, sizeof(before));
			/* no unauthenticated plaintext reaches the caller */
			assert_true(sodium_is_zero(plain, len - CONTROL_FRAME_HEADER_LEN - NOISE_TAG_LEN));
			frame[i] ^= (uint8_t)(1u << bit);
		}
	}
	/* shorter and longer bodies too */
	assert_false(control_open(&f->coord, frame + CONTROL_FRAME_HEADER_LEN, len - CONTROL_FRAME_HEADER_LEN - 1, plain,
				  sizeof(plain), &plain_len));
	assert_false(control_open(&f->coord, frame + CONTROL_FRAME_HEADER_LEN, len - CONTROL_FRAME_HEADER_LEN + 1, plain,
				  sizeof(plain), &plain_len));
	assert_memory_equal(&f->coord, &before, sizeof(before));
	assert_true(control_open(&f->coord, frame + CONTROL_FRAME_HEADER_LEN, len - CONTROL_FRAME_HEADER_LEN, plain,
				 sizeof(plain), &plain_len));
	assert_int_equal(f->coord.recv_nonce, 1);
}

static bool open_frame(struct control_channel *ch, const uint8_t *frame, size_t len)
{
	uint8_t plain[TEST_BUF_LEN];
	size_t plain_len;

	return control_open(ch, frame + CONTROL_FRAME_HEADER_LEN, len - CONTROL_FRAME_HEADER_LEN, plain, sizeof(plain),
			    &plain_len);
}

static void test_replay_and_reorder(void **state)
{
	struct fixture *f = *state;
	uint8_t a[TEST_BUF_LEN], b[TEST_BUF_LEN], c[TEST_BUF_LEN];
	size_t a_len, b_len, c_len;

	handshake_complete(f);
	seal_sample(&f->coord, 0, a, sizeof(a), &a_len);
	seal_sample(&f->coord, 1, b, sizeof(b), &b_len);
	seal_sample(&f->coord, 2, c, sizeof(c), &c_len);

	assert_false(open_frame(&f->node, b, b_len)); /* reordered: b before a */
	assert_true(open_frame(&f->node, a, a_len));
	assert_false(open_frame(&f->node, a, a_len)); /* replayed */
	assert_true(open_frame(&f->node, b, b_len));
	assert_false(open_frame(&f->node, a, a_len));
	assert_false(open_frame(&f->node, b, b_len));
	assert_true(open_frame(&f->node, c, c_len));

	/* a frame sealed for the other direction does not open either */
	seal_sample(&f->node, 0, a, sizeof(a), &a_len);
	assert_false(open_frame(&f->node, a, a_len));
	assert_true(open_frame(&f->coord, a, a_len));
}

static void test_wrong_coordinator_key(void **state)
{
	struct fixture *f = *state;
	uint8_t other_private[WIRE_KEY_LEN], other_public[WIRE_KEY_LEN], ts[WIRE_TIMESTAMP_LEN];

	seq_bytes(other_private, sizeof(other_private), 0x41);
	assert_int_equal(crypto_scalarmult_base(other_public, other_private), 0);
	assert_true(control_client_hello(&f->node, f->node_private, other_public, f->timestamp, f->node_e, f->hello,
					 sizeof(f->hello), &f->hello_len));
	memset(&f->coord, 0x5a, sizeof(f->coord));
	assert_false(control_server_accept(&f->coord, f->coord_private, f->hello + CONTROL_FRAME_HEADER_LEN,
					   f->hello_len - CONTROL_FRAME_HEADER_LEN, ts, f->coord_e, f->welcome,
					   sizeof(f->welcome), &f->welcome_len));
	/* a failed accept leaves an empty channel and no half-written welcome */
	assert_true(sodium_is_zero((const uint8_t *)&f->coord, sizeof(f->coord)));
	assert_true(sodium_is_zero(f->welcome, CONTROL_FRAME_HEADER_LEN + CONTROL_WELCOME_LEN));
	/* the key it was meant for accepts it */
	assert_true(control_server_accept(&f->coord, other_private, f->hello + CONTROL_FRAME_HEADER_LEN,
					  f->hello_len - CONTROL_FRAME_HEADER_LEN, ts, f->coord_e, f->welcome,
					  sizeof(f->welcome), &f->welcome_len));
}

static bool accept_body(struct fixture *f, const uint8_t *body, size_t len)
{
	uint8_t ts[WIRE_TIMESTAMP_LEN];

	return control_server_accept(&f->coord, f->coord_private, body, len, ts, f->coord_e, f->welcome,
				     sizeof(f->welcome), &f->welcome_len);
}

static void test_bad_hello(void **state)
{
	struct fixture *f = *state;
	uint8_t body[TEST_BUF_LEN], ts[WIRE_TIMESTAMP_LEN];
	const size_t len = f->hello_len - CONTROL_FRAME_HEADER_LEN;

	assert_int_equal(len, CONTROL_HELLO_LEN);
	memcpy(body, f->hello + CONTROL_FRAME_HEADER_LEN, len);
	body[len] = 0;

	assert_false(accept_body(f, body, len - 1));
	assert_false(accept_body(f, body, len + 1));
	assert_false(accept_body(f, body, 0));
	assert_false(accept_body(f, NULL, 0));
	/* every bit of magic, version and Noise message matters */
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			body[i] ^= (uint8_t)(1u << bit);
			if (accept_body(f, body, len))
				fail_msg("hello with byte %zu bit %d flipped was accepted", i, bit);
			body[i] ^= (uint8_t)(1u << bit);
		}
	}
	/* too small an output buffer for the welcome */
	assert_false(control_server_accept(&f->coord, f->coord_private, body, len, ts, f->coord_e, f->welcome,
					   CONTROL_FRAME_HEADER_LEN + CONTROL_WELCOME_LEN - 1, &f->welcome_len));
	assert_true(accept_body(f, body, len));

	/* a hello cannot be written into too small a buffer */
	assert_false(control_client_hello(&f->node, f->node_private, f->coord_public, f->timestamp, f->node_e, f->hello,
					  CONTROL_FRAME_HEADER_LEN + CONTROL_HELLO_LEN - 1, &f->hello_len));
	assert_true(sodium_is_zero((const uint8_t *)&f->node, sizeof(f->node)));
}

static void test_bad_welcome(void **state)
{
	struct fixture *f = *state;
	uint8_t ts[WIRE_TIMESTAMP_LEN], body[TEST_BUF_LEN];
	struct control_channel before;
	size_t len;

	assert_true(control_server_accept(&f->coord, f->coord_private, f->hello + CONTROL_FRAME_HEADER_LEN,
					  f->hello_len - CONTROL_FRAME_HEADER_LEN, ts, f->coord_e, f->welcome,
					  sizeof(f->welcome), &f->welcome_len));
	len = f->welcome_len - CONTROL_FRAME_HEADER_LEN;
	memcpy(body, f->welcome + CONTROL_FRAME_HEADER_LEN, len);
	body[len] = 0;
	before = f->node;

	assert_false(control_client_finish(&f->node, body, len - 1));
	assert_false(control_client_finish(&f->node, body, len + 1));
	assert_false(control_client_finish(&f->node, NULL, 0));
	for (size_t i = 0; i < len; i++) {
		body[i] ^= 0x01;
		assert_false(control_client_finish(&f->node, body, len));
		body[i] ^= 0x01;
	}
	/* a forged welcome changes nothing: the genuine one still completes */
	assert_memory_equal(&f->node, &before, sizeof(before));
	assert_true(control_client_finish(&f->node, body, len));
	/* and only once */
	assert_false(control_client_finish(&f->node, body, len));

	/* finish on a channel that never said hello */
	control_channel_clear(&f->node);
	assert_false(control_client_finish(&f->node, body, len));
	assert_false(f->node.established);
}

static void test_seal_limits(void **state)
{
	struct fixture *f = *state;
	static uint8_t plain[CONTROL_MAX_PLAIN + 1], frame[CONTROL_MAX_FRAME + CONTROL_FRAME_HEADER_LEN + 1];
	uint8_t out[TEST_BUF_LEN];
	size_t len, out_len;
	const uint8_t *body;
	size_t body_len, consumed;

	/* not before the handshake is done */
	assert_false(control_seal(&f->node, plain, 1, frame, sizeof(frame), &len));
	assert_false(control_open(&f->node, frame, NOISE_TAG_LEN, out, sizeof(out), &out_len));
	handshake_complete(f);

	memset(plain, 0x42, sizeof(plain));
	assert_false(control_seal(&f->node, plain, CONTROL_MAX_PLAIN + 1, frame, sizeof(frame), &len));
	assert_false(control_seal(&f->node, plain, 10, frame, CONTROL_FRAME_HEADER_LEN + 10 + NOISE_TAG_LEN - 1, &len));
	assert_false(control_seal(&f->node, NULL, 10, frame, sizeof(frame), &len));
	assert_int_equal(f->node.send_nonce, 0);

	/* the largest frame fits the limit exactly and opens */
	assert_true(control_seal(&f->node, plain, CONTROL_MAX_PLAIN, frame, sizeof(frame), &len));
	assert_int_equal(len, CONTROL_FRAME_HEADER_LEN + CONTROL_MAX_FRAME);
	assert_int_equal(control_frame_next(frame, len, &body, &body_len, &consumed), 1);
	assert_int_equal(body_len, CONTROL_MAX_FRAME);
	assert_false(control_open(&f->coord, body, body_len, out, CONTROL_MAX_PLAIN - 1, &out_len)); /* cap */
	assert_true(control_open(&f->coord, body, body_len, out, sizeof(out), &out_len));
	assert_int_equal(out_len, CONTROL_MAX_PLAIN);
	assert_memory_equal(out, plain, CONTROL_MAX_PLAIN);

	/* an empty plaintext is a valid frame of just the tag */
	assert_true(control_seal(&f->node, NULL, 0, frame, sizeof(frame), &len));
	assert_int_equal(len, CONTROL_FRAME_HEADER_LEN + NOISE_TAG_LEN);
	assert_true(control_open(&f->coord, frame + CONTROL_FRAME_HEADER_LEN, NOISE_TAG_LEN, NULL, 0, &out_len));
	assert_int_equal(out_len, 0);

	/* bodies no frame can carry */
	assert_false(control_open(&f->coord, frame, NOISE_TAG_LEN - 1, out, sizeof(out), &out_len));
	assert_false(control_open(&f->coord, frame, CONTROL_MAX_FRAME + 1, out, sizeof(out), &out_len));
	assert_false(control_open(&f->coord, NULL, NOISE_TAG_LEN, out, sizeof(out), &out_len));
}

/* The last nonce Noise allows is 2^64-2; past it both directions stop for good. */
static void test_nonce_limit(void **state)
{
	static const uint8_t keepalive[] = { CONTROL_MSG_KEEPALIVE };
	struct fixture *f = *state;
	uint8_t frame[TEST_BUF_LEN];
	size_t len;

	handshake_complete(f);
	f->node.send_nonce = UINT64_MAX - 1;
	f->coord.recv_nonce = UINT64_MAX - 1;
	seal_sample(&f->node, 7, frame, sizeof(frame), &len);
	assert_true(f->node.send_nonce == UINT64_MAX);
	assert_true(open_frame(&f->coord, frame, len));
	assert_true(f->coord.recv_nonce == UINT64_MAX);

	assert_false(control_seal(&f->node, keepalive, sizeof(keepalive), frame, sizeof(frame), &len));
	assert_true(f->node.send_nonce == UINT64_MAX);
	/* a frame sealed under 2^64-1 by anyone still does not open */
	f->coord.send_nonce = UINT64_MAX - 1;
	f->node.recv_nonce = UINT64_MAX;
	seal_sample(&f->coord, 7, frame, sizeof(frame), &len);
	assert_false(open_frame(&f->node, frame, len));
}

static void test_channel_clear(void **state)
{
	struct fixture *f = *state;

	handshake_complete(f);
	control_channel_clear(&f->node);
	assert_true(sodium_is_zero((const uint8_t *)&f->node, sizeof(f->node)));
	assert_false(f->node.established);
}

/* ---------------------------------------------------------------- records in frames */

/* A frame packed with PEER records as the coordinator streams a map: sealed, split off the
 * stream, opened and walked, every peer arrives as sent. */
static void test_frame_full_of_records(void **state)
{
	struct fixture *f = *state;
	uint8_t plain[CONTROL_MAX_PLAIN], frame[CONTROL_FRAME_HEADER_LEN + CONTROL_MAX_FRAME];
	uint8_t opened[CONTROL_MAX_PLAIN];
	size_t used = 0, n = 0, frame_len, body_len, consumed, opened_len, off = 0, msg_len, peer_len;
	const uint8_t *body, *msg;
	struct control_message m;

	handshake_complete(f);
	for (;;) {
		memset(&m, 0, sizeof(m));
		make_peer(&m);
		m.u.peer.node_key[0] = (uint8_t)n;
		m.u.peer.node_key[1] = (uint8_t)(n >> 8);
		if (!control_record_append(plain, sizeof(plain), &used, &m))
			break;
		n++;
	}
	peer_len = CONTROL_RECORD_HEADER_LEN + control_encode(&m, opened, sizeof(opened));
	assert_int_equal(used, n * peer_len);
	assert_true(used + peer_len > CONTROL_MAX_PLAIN); /* full: the next one did not fit */
	assert_true(n > 20);
	assert_true(control_seal(&f->coord, plain, used, frame, sizeof(frame), &frame_len));
	assert_true(frame_len <= sizeof(frame));

	assert_int_equal(control_frame_next(frame, frame_len, &body, &body_len, &consumed), 1);
	assert_int_equal(consumed, frame_len);
	assert_true(control_open(&f->node, body, body_len, opened, sizeof(opened), &opened_len));
	assert_int_equal(opened_len, used);
	for (size_t i = 0; i < n; i++) {
		struct control_message want;

		assert_int_equal(control_record_next(opened, opened_len, &off, &msg, &msg_len), 1);
		assert_int_equal(control_decode(msg, msg_len, &m), CONTROL_DECODE_OK);
		memset(&want, 0, sizeof(want));
		make_peer(&want);
		want.u.peer.node_key[0] = (uint8_t)i;
		want.u.peer.node_key[1] = (uint8_t)(i >> 8);
		assert_memory_equal(&m, &want, sizeof(m));
	}
	assert_int_equal(control_record_next(opened, opened_len, &off, &msg, &msg_len), 0);
}

/* ---------------------------------------------------------------- frame splitter */

static void test_frame_next(void **state)
{
	static const struct {
		const char *why;
		const char *hex;
		int want;
		size_t body_len;
	} cases[] = {
		{ "nothing", "", 0, 0 },
		{ "half a header", "00", 0, 0 },
		{ "header only", "0003", 0, 0 },
		{ "partial body", "0003aabb", 0, 0 },
		{ "exact frame", "0003aabbcc", 1, 3 },
		{ "one-byte frame", "0001ff", 1, 1 },
		{ "frame and the start of the next", "0001ff00", 1, 1 },
		{ "two frames", "0002aabb0001cc", 1, 2 },
		{ "zero length", "0000", -1, 0 },
		{ "zero length with bytes after it", "0000aabb", -1, 0 },
		{ "one over the limit, header only", "1001", -1, 0 },
		{ "largest length", "ffff", -1, 0 },
		{ "limit exactly, body missing", "1000", 0, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t buf[64];
		size_t len, body_len = 0, consumed = 0;
		const uint8_t *body = NULL;
		uint8_t *exact;
		int r;

		unhex(buf, sizeof(buf), cases[i].hex, &len);
		exact = malloc(len ? len : 1);
		assert_non_null(exact);
		memcpy(exact, buf, len);
		r = control_frame_next(exact, len, &body, &body_len, &consumed);
		if (r != cases[i].want)
			fail_msg("%s: got %d, want %d", cases[i].why, r, cases[i].want);
		if (r == 1) {
			assert_int_equal(body_len, cases[i].body_len);
			assert_ptr_equal(body, exact + CONTROL_FRAME_HEADER_LEN);
			assert_int_equal(consumed, CONTROL_FRAME_HEADER_LEN + body_len);
		}
		free(exact);
	}
}

/* A stream of two frames is split in order, whatever the byte boundaries it arrives in. */
static void test_frame_next_stream(void **state)
{
	static uint8_t stream[2 * CONTROL_FRAME_HEADER_LEN + CONTROL_MAX_FRAME + 1];
	const size_t total = sizeof(stream);
	const uint8_t *body;
	size_t body_len, consumed;

	memset(stream, 0x77, sizeof(stream));
	stream[0] = CONTROL_MAX_FRAME >> 8;
	stream[1] = CONTROL_MAX_FRAME & 0xff;
	stream[CONTROL_FRAME_HEADER_LEN + CONTROL_MAX_FRAME] = 0;
	stream[CONTROL_FRAME_HEADER_LEN + CONTROL_MAX_FRAME + 1] = 1;

	for (size_t have = 0; have < CONTROL_FRAME_HEADER_LEN + CONTROL_MAX_FRAME; have++)
		assert_int_equal(control_frame_next(stream, have, &body, &body_len, &consumed), 0);
	assert_int_equal(control_frame_next(stream, total, &body, &body_len, &consumed), 1);
	assert_int_equal(body_len, CONTROL_MAX_FRAME);
	assert_int_equal(consumed, CONTROL_FRAME_HEADER_LEN + CONTROL_MAX_FRAME);
	assert_int_equal(control_frame_next(stream + consumed, total - consumed, &body, &body_len, &consumed), 1);
	assert_int_equal(body_len, 1);
	assert_ptr_equal(body, stream + total - 1);
	assert_int_equal(consumed, 3);
}

int main(void)
{
#define FIXTURE_TEST(t) cmocka_unit_test_setup_teardown(t, fixture_setup, fixture_teardown)
	const struct CMUnitTest tests[] = {
		FIXTURE_TEST(test_handshake_golden),
		FIXTURE_TEST(test_handshake_and_transport),
		FIXTURE_TEST(test_handshake_random_ephemerals),
		FIXTURE_TEST(test_tampered_frame),
		FIXTURE_TEST(test_replay_and_reorder),
		FIXTURE_TEST(test_wrong_coordinator_key),
		FIXTURE_TEST(test_bad_hello),
		FIXTURE_TEST(test_bad_welcome),
		FIXTURE_TEST(test_seal_limits),
		FIXTURE_TEST(test_nonce_limit),
		FIXTURE_TEST(test_channel_clear),
		FIXTURE_TEST(test_frame_full_of_records),
		cmocka_unit_test(test_frame_next),
		cmocka_unit_test(test_frame_next_stream),
	};
#undef FIXTURE_TEST

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
