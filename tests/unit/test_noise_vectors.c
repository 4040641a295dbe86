/* Replays the public cacophony test vectors for Noise_IK and Noise_IKpsk2 over
 * 25519 / ChaChaPoly / BLAKE2s (WireGuard's suite, the data plane) and BLAKE2b (the control
 * channel) through noise.c, on both sides and byte for byte, and checks
 * the edges the vectors do not reach (forged and out-of-order messages, low-order points,
 * nonce limits) and the JSON reader the replay depends on. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/noise.h"
#include "json_vectors.h"

#ifndef TEST_SRCDIR
#define TEST_SRCDIR "tests/unit"
#endif

#define VECTOR_FILE TEST_SRCDIR "/noise-25519.json"

enum {
	VECTOR_FILE_MAX = 1 << 20, /* the file is ~43 KB; anything near this is not the vector file */
	VECTOR_MESSAGE_MAX = 1024, /* the longest vector message is ~170 bytes */
	VECTOR_PROLOGUE_MAX = 256, /* the vectors' prologues are a few bytes */
};

#define STR_AND_LEN(s) (s), (sizeof(s) - 1)

static const char ik_name[] = "Noise_IK_25519_ChaChaPoly_BLAKE2b";
static const char ikpsk2_name[] = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2b";
static const char ik_blake2s_name[] = "Noise_IK_25519_ChaChaPoly_BLAKE2s";
static const char ikpsk2_blake2s_name[] = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";

struct vector_file {
	char *text;
	size_t len;
	struct json_value root;
	struct json_value vectors;
};

static int vector_file_load(void **state)
{
	struct vector_file *vf = calloc(1, sizeof(*vf));
	FILE *f = fopen(VECTOR_FILE, "rb");

	if (!vf || !f) {
		fprintf(stderr, "cannot open %s\n", VECTOR_FILE);
		goto fail;
	}
	vf->text = malloc(VECTOR_FILE_MAX);
	if (!vf->text)
		goto fail;
	vf->len = fread(vf->text, 1, VECTOR_FILE_MAX, f);
	if (ferror(f) || vf->len == VECTOR_FILE_MAX)
		goto fail;
	if (!json_parse(vf->text, vf->len, &vf->root) ||
	    !json_object_get(vf->root, STR_AND_LEN("vectors"), &vf->vectors) || !json_is_array(vf->vectors)) {
		fprintf(stderr, "%s: not a vector file\n", VECTOR_FILE);
		goto fail;
	}
	fclose(f);
	*state = vf;
	return 0;
fail:
	if (f)
		fclose(f);
	if (vf)
		free(vf->text);
	free(vf);
	return -1;
}

static int vector_file_free(void **state)
{
	struct vector_file *vf = *state;

	if (vf) /* cmocka tears down even after a failed setup */
		free(vf->text);
	free(vf);
	return 0;
}

/* ---------------------------------------------------------------- vector replay */

static size_t field_hex(struct json_value obj, const char *key, uint8_t *out, size_t cap)
{
	struct json_value v;
	size_t len = 0;

	assert_true(json_object_get(obj, key, strlen(key), &v));
	assert_true(json_hex(v, out, cap, &len));
	return len;
}

static void field_key(struct json_value obj, const char *key, uint8_t out[NOISE_DH_LEN])
{
	assert_int_equal(field_hex(obj, key, out, NOISE_DH_LEN), NOISE_DH_LEN);
}

/* The one PSK of an IKpsk2 vector; false if the vector has no psk list (plain IK). */
static bool field_psk(struct json_value obj, const char *key, uint8_t out[NOISE_KEY_LEN])
{
	struct json_value list, elem;
	struct json_array_iter it;
	size_t len;

	if (!json_object_get(obj, key, strlen(key), &list))
		return false;
	assert_true(json_array_iter_init(&it, list));
	assert_true(json_array_next(&it, &elem));
	assert_true(json_hex(elem, out, NOISE_KEY_LEN, &len));
	assert_int_equal(len, NOISE_KEY_LEN);
	assert_false(json_array_next(&it, &elem)); /* IKpsk2 has exactly one psk */
	assert_true(it.done);
	return true;
}

struct party {
	struct noise_handshake hs;
	uint8_t ephemeral[NOISE_DH_LEN];
	uint8_t send_key[NOISE_KEY_LEN];
	uint8_t recv_key[NOISE_KEY_LEN];
	uint64_t send_n;
	uint64_t recv_n;
};

static void party_init(struct party *p, struct json_value v, const char *name, size_t name_len,
		       enum noise_role role, bool psk_expected)
{
	const char *prefix = role == NOISE_INITIATOR ? "init" : "resp";
	uint8_t prologue[VECTOR_PROLOGUE_MAX], static_private[NOISE_DH_LEN];
	uint8_t remote_static[NOISE_DH_LEN], psk[NOISE_KEY_LEN];
	char key[64];
	size_t prologue_len;
	bool has_psk;

	memset(p, 0, sizeof(*p));
	snprintf(key, sizeof(key), "%s_prologue", prefix);
	prologue_len = field_hex(v, key, prologue, sizeof(prologue));
	snprintf(key, sizeof(key), "%s_static", prefix);
	field_key(v, key, static_private);
	snprintf(key, sizeof(key), "%s_ephemeral", prefix);
	field_key(v, key, p->ephemeral);
	if (role == NOISE_INITIATOR)
		field_key(v, "init_remote_static", remote_static);
	snprintf(key, sizeof(key), "%s_psks", prefix);
	has_psk = field_psk(v, key, psk);
	assert_int_equal(has_psk, psk_expected);

	assert_true(noise_handshake_init(&p->hs, name, name_len, prologue, prologue_len, role, static_private,
					 role == NOISE_INITIATOR ? remote_static : NULL, has_psk ? psk : NULL));
}

/* Message i of a vector: sender writes (handshake) or encrypts (transport), the other side
 * reads or decrypts, and both the bytes on the wire and the payload must match. */
static void replay_message(struct party *ini, struct party *resp, size_t i, struct json_value msg)
{
	uint8_t payload[VECTOR_MESSAGE_MAX], expected[VECTOR_MESSAGE_MAX];
	uint8_t wire[VECTOR_MESSAGE_MAX], got[VECTOR_MESSAGE_MAX];
	size_t payload_len, expected_len, wire_len = 0, got_len = 0;
	struct party *from = i % 2 == 0 ? ini : resp, *to = i % 2 == 0 ? resp : ini;

	payload_len = field_hex(msg, "payload", payload, sizeof(payload));
	expected_len = field_hex(msg, "ciphertext", expected, sizeof(expected));

	if (i == 0) {
		/* -> e, es, s, ss */
		assert_true(noise_write_message1(&ini->hs, ini->ephemeral, payload, payload_len, wire,
						 sizeof(wire), &wire_len));
		assert_true(noise_read_message1(&resp->hs, expected, expected_len, got, sizeof(got), &got_len));
	} else if (i == 1) {
		/* <- e, ee, se [psk] */
		assert_true(noise_write_message2(&resp->hs, resp->ephemeral, payload, payload_len, wire,
						 sizeof(wire), &wire_len));
		assert_true(noise_read_message2(&ini->hs, expected, expected_len, got, sizeof(got), &got_len));
		assert_true(noise_split(&ini->hs, ini->send_key, ini->recv_key));
		assert_true(noise_split(&resp->hs, resp->recv_key, resp->send_key));
	} else {
		assert_true(noise_transport_encrypt(from->send_key, from->send_n++, NULL, 0, payload, payload_len,
						    wire, sizeof(wire), &wire_len));
		assert_true(noise_transport_decrypt(to->recv_key, to->recv_n++, NULL, 0, expected, expected_len,
						    got, sizeof(got), &got_len));
	}
	assert_memory_equal(wire, expected, expected_len);
	assert_int_equal(wire_len, expected_len);
	assert_int_equal(got_len, payload_len);
	assert_memory_equal(got, payload, payload_len);
}

static void replay_vector(struct json_value v, const char *name, size_t name_len)
{
	struct party *ini = calloc(1, sizeof(*ini)), *resp = calloc(1, sizeof(*resp));
	uint8_t expected_hash[NOISE_HASH_MAX_LEN], hash[NOISE_HASH_MAX_LEN];
	size_t hash_len = strstr(name, "BLAKE2s") ? 32 : 64;
	bool psk = strstr(name, "psk") != NULL;
	struct json_value messages, msg;
	struct json_array_iter it;
	size_t i = 0;

	assert_non_null(ini);
	assert_non_null(resp);
	party_init(ini, v, name, name_len, NOISE_INITIATOR, psk);
	party_init(resp, v, name, name_len, NOISE_RESPONDER, psk);
	assert_int_equal(field_hex(v, "handshake_hash", expected_hash, sizeof(expected_hash)), hash_len);

	assert_true(json_object_get(v, STR_AND_LEN("messages"), &messages));
	assert_true(json_array_iter_init(&it, messages));
	while (json_array_next(&it, &msg)) {
		replay_message(ini, resp, i, msg);
		if (i == 1) {
			assert_int_equal(noise_handshake_hash(&ini->hs, hash), hash_len);
			assert_memory_equal(hash, expected_hash, hash_len);
			assert_int_equal(noise_handshake_hash(&resp->hs, hash), hash_len);
			assert_memory_equal(hash, expected_hash, hash_len);
		}
		i++;
	}
	assert_true(it.done);
	assert_true(i > 2); /* both handshake messages and some transport */

	noise_handshake_clear(&ini->hs);
	noise_handshake_clear(&resp->hs);
	free(ini);
	free(resp);
}

static size_t replay_all_named(const struct vector_file *vf, const char *name, size_t name_len)
{
	struct json_array_iter it;
	struct json_value v, pn;
	size_t replayed = 0, seen = 0;

	assert_true(json_array_iter_init(&it, vf->vectors));
	while (json_array_next(&it, &v)) {
		seen++;
		assert_true(json_is_object(v));
		assert_true(json_object_get(v, STR_AND_LEN("protocol_name"), &pn));
		if (!json_string_equals(pn, name, name_len))
			continue;
		replay_vector(v, name, name_len);
		replayed++;
	}
	assert_true(it.done);
	assert_true(seen > replayed);
	print_message("%s: %zu of %zu vectors replayed\n", name, replayed, seen);
	return replayed;
}

static void test_vectors_ik(void **state)
{
	assert_true(replay_all_named(*state, STR_AND_LEN(ik_name)) > 0);
}

static void test_vectors_ikpsk2(void **state)
{
	assert_true(replay_all_named(*state, STR_AND_LEN(ikpsk2_name)) > 0);
}

static void test_vectors_ik_blake2s(void **state)
{
	assert_true(replay_all_named(*state, STR_AND_LEN(ik_blake2s_name)) > 0);
}

/* WireGuard's handshake is exactly this protocol. */
static void test_vectors_ikpsk2_blake2s(void **state)
{
	assert_true(replay_all_named(*state, STR_AND_LEN(ikpsk2_blake2s_name)) > 0);
}

/* A protocol name naming another hash is refused, not run with a default one. */
static void test_unknown_hash_refused(void **state)
{
	static const char sha256[] = "Noise_IK_25519_ChaChaPoly_SHA256", bare[] = "BLAKE2s";
	struct noise_handshake hs;
	uint8_t s[NOISE_DH_LEN], rs[NOISE_DH_LEN];

	(void)state;
	memset(s, 0x11, sizeof(s));
	memset(rs, 0x09, sizeof(rs));
	assert_false(noise_handshake_init(&hs, STR_AND_LEN(sha256), NULL, 0, NOISE_INITIATOR, s, rs, NULL));
	assert_false(noise_handshake_init(&hs, STR_AND_LEN(bare), NULL, 0, NOISE_INITIATOR, s, rs, NULL));
	assert_true(noise_handshake_init(&hs, STR_AND_LEN(ik_blake2s_name), NULL, 0, NOISE_INITIATOR, s, rs, NULL));
	assert_int_equal(hs.hash_len, 32);
	noise_handshake_clear(&hs);
}

/* ---------------------------------------------------------------- edges of noise.c */

/* Fixed keys, so these tests are deterministic; the values are arbitrary. */
static void fixed_key(uint8_t out[NOISE_DH_LEN], uint8_t seed)
{
	size_t i;

	for (i = 0; i < NOISE_DH_LEN; i++)
		out[i] = (uint8_t)(seed + 7 * i);
}

struct pair {
	struct noise_handshake ini, resp;
	uint8_t ini_e[NOISE_DH_LEN], resp_e[NOISE_DH_LEN];
};

static void pair_init(struct pair *p, bool psk_mode)
{
	uint8_t ini_s[NOISE_DH_LEN], resp_s[NOISE_DH_LEN], resp_pub[NOISE_DH_LEN], psk[NOISE_KEY_LEN];
	const char *name = psk_mode ? ikpsk2_name : ik_name;

	fixed_key(ini_s, 1);
	fixed_key(resp_s, 2);
	fixed_key(p->ini_e, 3);
	fixed_key(p->resp_e, 4);
	fixed_key(psk, 5);
	assert_int_equal(crypto_scalarmult_base(resp_pub, resp_s), 0);
	assert_true(noise_handshake_init(&p->ini, name, strlen(name), NULL, 0, NOISE_INITIATOR, ini_s, resp_pub,
					 psk_mode ? psk : NULL));
	assert_true(noise_handshake_init(&p->resp, name, strlen(name), NULL, 0, NOISE_RESPONDER, resp_s, NULL,
					 psk_mode ? psk : NULL));
}

enum { TEST_PAYLOAD_LEN = 12 };

static void test_forged_message_changes_nothing(void **state)
{
	uint8_t payload[TEST_PAYLOAD_LEN] = "hello noise", got[TEST_PAYLOAD_LEN];
	uint8_t m1[NOISE_MESSAGE1_OVERHEAD + TEST_PAYLOAD_LEN], m2[NOISE_MESSAGE2_OVERHEAD];
	struct noise_handshake before;
	struct pair p;
	size_t len, got_len, i;

	pair_init(&p, true);
	assert_true(noise_write_message1(&p.ini, p.ini_e, payload, sizeof(payload), m1, sizeof(m1), &len));
	assert_int_equal(len, sizeof(m1));

	before = p.resp;
	for (i = 0; i < sizeof(m1); i++) {
		m1[i] ^= 0x01;
		assert_false(noise_read_message1(&p.resp, m1, sizeof(m1), got, sizeof(got), &got_len));
		assert_memory_equal(&p.resp, &before, sizeof(before));
		m1[i] ^= 0x01;
	}
	/* truncated or extended: the payload length moves, so the tag cannot match */
	assert_false(noise_read_message1(&p.resp, m1, sizeof(m1) - 1, got, sizeof(got), &got_len));
	assert_false(noise_read_message1(&p.resp, m1, NOISE_MESSAGE1_OVERHEAD - 1, got, sizeof(got), &got_len));
	/* a payload buffer too small is refused before any work */
	assert_false(noise_read_message1(&p.resp, m1, sizeof(m1), got, sizeof(got) - 1, &got_len));
	assert_memory_equal(&p.resp, &before, sizeof(before));

	assert_true(noise_read_message1(&p.resp, m1, sizeof(m1), got, sizeof(got), &got_len));
	assert_memory_equal(got, payload, sizeof(payload));

	assert_true(noise_write_message2(&p.resp, p.resp_e, NULL, 0, m2, sizeof(m2), &len));
	before = p.ini;
	for (i = 0; i < sizeof(m2); i++) {
		m2[i] ^= 0x80;
		assert_false(noise_read_message2(&p.ini, m2, sizeof(m2), NULL, 0, &got_len));
		assert_memory_equal(&p.ini, &before, sizeof(before));
		m2[i] ^= 0x80;
	}
	assert_true(noise_read_message2(&p.ini, m2, sizeof(m2), NULL, 0, &got_len));
	assert_int_equal(got_len, 0);
	noise_handshake_clear(&p.ini);
	noise_handshake_clear(&p.resp);
	noise_handshake_clear(&before);
}

static void test_wrong_psk_fails_message2(void **state)
{
	uint8_t m1[NOISE_MESSAGE1_OVERHEAD], m2[NOISE_MESSAGE2_OVERHEAD], other[NOISE_KEY_LEN];
	struct pair p;
	size_t len;

	pair_init(&p, true);
	fixed_key(other, 99);
	noise_handshake_set_psk(&p.ini, other);
	assert_true(noise_write_message1(&p.ini, p.ini_e, NULL, 0, m1, sizeof(m1), &len));
	assert_true(noise_read_message1(&p.resp, m1, sizeof(m1), NULL, 0, &len));
	assert_true(noise_write_message2(&p.resp, p.resp_e, NULL, 0, m2, sizeof(m2), &len));
	assert_false(noise_read_message2(&p.ini, m2, sizeof(m2), NULL, 0, &len));
	noise_handshake_clear(&p.ini);
	noise_handshake_clear(&p.resp);
}

static void test_out_of_order_refused(void **state)
{
	uint8_t m1[NOISE_MESSAGE1_OVERHEAD], m2[NOISE_MESSAGE2_OVERHEAD], k1[NOISE_KEY_LEN], k2[NOISE_KEY_LEN];
	struct pair p;
	size_t len;

	pair_init(&p, false);
	assert_false(noise_split(&p.ini, k1, k2));
	assert_false(noise_write_message1(&p.resp, p.resp_e, NULL, 0, m1, sizeof(m1), &len));
	assert_false(noise_write_message2(&p.resp, p.resp_e, NULL, 0, m2, sizeof(m2), &len));
	assert_false(noise_write_message2(&p.ini, p.ini_e, NULL, 0, m2, sizeof(m2), &len));
	assert_true(noise_write_message1(&p.ini, p.ini_e, NULL, 0, m1, sizeof(m1), &len));
	assert_false(noise_write_message1(&p.ini, p.ini_e, NULL, 0, m1, sizeof(m1), &len)); /* only once */
	assert_false(noise_read_message1(&p.ini, m1, sizeof(m1), NULL, 0, &len));
	assert_true(noise_read_message1(&p.resp, m1, sizeof(m1), NULL, 0, &len));
	assert_false(noise_read_message1(&p.resp, m1, sizeof(m1), NULL, 0, &len));
	assert_false(noise_split(&p.resp, k1, k2));
	/* an output buffer one byte short is refused */
	assert_false(noise_write_message2(&p.resp, p.resp_e, NULL, 0, m2, sizeof(m2) - 1, &len));
	assert_true(noise_write_message2(&p.resp, p.resp_e, NULL, 0, m2, sizeof(m2), &len));
	assert_true(noise_split(&p.resp, k1, k2));
	noise_handshake_clear(&p.ini);
	noise_handshake_clear(&p.resp);
}

/* A DH with a low-order point gives an all-zero secret; the spec lets us abort, and we do. */
static void test_low_order_points_refused(void **state)
{
	uint8_t zero[NOISE_DH_LEN] = { 0 }, s[NOISE_DH_LEN], m1[NOISE_MESSAGE1_OVERHEAD];
	struct noise_handshake hs;
	struct pair p;
	size_t len;

	fixed_key(s, 1);
	assert_true(noise_handshake_init(&hs, STR_AND_LEN(ik_name), NULL, 0, NOISE_INITIATOR, s, zero, NULL));
	assert_false(noise_write_message1(&hs, NULL, NULL, 0, m1, sizeof(m1), &len));
	assert_true(sodium_is_zero(m1, sizeof(m1)));

	pair_init(&p, false);
	assert_true(noise_write_message1(&p.ini, p.ini_e, NULL, 0, m1, sizeof(m1), &len));
	memset(m1, 0, NOISE_DH_LEN); /* replace e by the zero point */
	assert_false(noise_read_message1(&p.resp, m1, sizeof(m1), NULL, 0, &len));
	noise_handshake_clear(&hs);
	noise_handshake_clear(&p.ini);
	noise_handshake_clear(&p.resp);
}

/* Two fresh ephemerals: production handshakes never repeat message bytes. */
static void test_generated_ephemerals_differ(void **state)
{
	uint8_t a[NOISE_MESSAGE1_OVERHEAD], b[NOISE_MESSAGE1_OVERHEAD];
	struct pair p, q;
	size_t len;

	pair_init(&p, false);
	pair_init(&q, false);
	assert_true(noise_write_message1(&p.ini, NULL, NULL, 0, a, sizeof(a), &len));
	assert_true(noise_write_message1(&q.ini, NULL, NULL, 0, b, sizeof(b), &len));
	assert_memory_not_equal(a, b, NOISE_DH_LEN);
	assert_true(noise_read_message1(&p.resp, a, sizeof(a), NULL, 0, &len));
	noise_handshake_clear(&p.ini);
	noise_handshake_clear(&p.resp);
	noise_handshake_clear(&q.ini);
	noise_handshake_clear(&q.resp);
}

static void test_transport_limits(void **state)
{
	uint8_t key[NOISE_KEY_LEN], plain[4] = { 1, 2, 3, 4 }, ad[3] = { 9, 9, 9 };
	uint8_t c[sizeof(plain) + NOISE_TAG_LEN], out[sizeof(plain)];
	size_t len;

	fixed_key(key, 42);
	assert_false(noise_transport_encrypt(key, UINT64_MAX, NULL, 0, plain, sizeof(plain), c, sizeof(c), &len));
	assert_false(noise_transport_encrypt(key, 0, NULL, 0, plain, sizeof(plain), c, sizeof(c) - 1, &len));
	assert_true(noise_transport_encrypt(key, 7, ad, sizeof(ad), plain, sizeof(plain), c, sizeof(c), &len));
	assert_int_equal(len, sizeof(c));
	assert_false(noise_transport_decrypt(key, 6, ad, sizeof(ad), c, sizeof(c), out, sizeof(out), &len));
	assert_false(noise_transport_decrypt(key, 7, NULL, 0, c, sizeof(c), out, sizeof(out), &len));
	assert_false(noise_transport_decrypt(key, 7, ad, sizeof(ad), c, sizeof(c), out, sizeof(out) - 1, &len));
	assert_false(noise_transport_decrypt(key, 7, ad, sizeof(ad), c, NOISE_TAG_LEN - 1, out, sizeof(out), &len));
	assert_false(noise_transport_decrypt(key, UINT64_MAX, ad, sizeof(ad), c, sizeof(c), out, sizeof(out), &len));
	assert_true(noise_transport_decrypt(key, 7, ad, sizeof(ad), c, sizeof(c), out, sizeof(out), &len));
	assert_int_equal(len, sizeof(plain));
	assert_memory_equal(out, plain, sizeof(plain));
	/* the nonce is 4 zero bytes || little-endian n: n = 2^32 must differ from n = 0 and 1 */
	assert_true(noise_transport_encrypt(key, UINT64_C(1) << 32, NULL, 0, plain, sizeof(plain), c, sizeof(c), &len));
	assert_false(noise_transport_decrypt(key, 0, NULL, 0, c, sizeof(c), out, sizeof(out), &len));
	assert_false(noise_transport_decrypt(key, 1, NULL, 0, c, sizeof(c), out, sizeof(out), &len));
	assert_true(noise_transport_decrypt(key, UINT64_C(1) << 32, NULL, 0, c, sizeof(c), out, sizeof(out), &len));
}

/* ---------------------------------------------------------------- the JSON reader */

static void test_json_reads_what_it_should(void **state)
{
	static const char doc[] =
		" {\"a\": [1, -2.5e3, true, false, null, {}, [], \"x\\\"y\\u00e9\"],\n"
		"  \"hex\": \"00ff7F\", \"nested\": {\"k\": \"v\"}, \"k\": \"outer\"} ";
	struct json_value root, v, elem;
	struct json_array_iter it;
	uint8_t bytes[3];
	size_t len, n = 0;

	assert_true(json_parse(doc, sizeof(doc) - 1, &root));
	assert_true(json_is_object(root));
	assert_true(json_object_get(root, STR_AND_LEN("a"), &v));
	assert_true(json_array_iter_init(&it, v));
	while (json_array_next(&it, &elem))
		n++;
	assert_true(it.done);
	assert_false(it.malformed);
	assert_int_equal(n, 8);
	assert_false(json_string(elem, &(const char *){ NULL }, &len)); /* has escapes */

	assert_true(json_object_get(root, STR_AND_LEN("hex"), &v));
	assert_true(json_hex(v, bytes, sizeof(bytes), &len));
	assert_int_equal(len, 3);
	assert_int_equal(bytes[0], 0x00);
	assert_int_equal(bytes[1], 0xff);
	assert_int_equal(bytes[2], 0x7f);
	assert_false(json_hex(v, bytes, 2, &len)); /* too little room */

	/* a member of a nested object is not a member of the outer one */
	assert_true(json_object_get(root, STR_AND_LEN("k"), &v));
	assert_true(json_string_equals(v, STR_AND_LEN("outer")));
	assert_false(json_object_get(root, STR_AND_LEN("missing"), &v));
	assert_false(json_object_get(root, STR_AND_LEN("he"), &v)); /* prefixes do not match */

	assert_true(json_parse(STR_AND_LEN("[]"), &v));
	assert_true(json_array_iter_init(&it, v));
	assert_false(json_array_next(&it, &elem));
	assert_true(it.done);
}

static void test_json_refuses_malformed(void **state)
{
	static const char *const bad[] = {
		"", " ", "{", "}", "[", "[1,]", "[1 2]", "[1] [2]", "{\"a\":1}}",
		"{\"a\"}", "{\"a\":}", "{\"a\" 1}", "{a:1}", "{\"a\":1,}",
		"\"abc", "\"a\\\"", "\"\\x\"", "\"\\u12g4\"", "\"\\u12\"", "\"a\nb\"",
		"tru", "nul", "-", "1.", "1e", "-x", ".5", "+1",
		/* deeper than JSON_MAX_DEPTH */
		"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
	};
	struct json_value v;
	uint8_t out[4];
	size_t i, len;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		/* copy to an exact-size heap buffer so ASan catches any read past the end */
		size_t n = strlen(bad[i]);
		char *copy = malloc(n ? n : 1);

		assert_non_null(copy);
		memcpy(copy, bad[i], n);
		if (json_parse(copy, n, &v))
			fail_msg("accepted malformed JSON #%zu: %s", i, bad[i]);
		free(copy);
	}

	assert_true(json_parse(STR_AND_LEN("\"abc\""), &v));
	assert_false(json_hex(v, out, sizeof(out), &len)); /* odd length */
	assert_true(json_parse(STR_AND_LEN("\"zz\""), &v));
	assert_false(json_hex(v, out, sizeof(out), &len)); /* not hex */
	assert_true(json_parse(STR_AND_LEN("12"), &v));
	assert_false(json_hex(v, out, sizeof(out), &len)); /* not a string */
	assert_false(json_object_get(v, STR_AND_LEN("a"), &v)); /* not an object */
}

int main(void)
{
	const struct CMUnitTest vector_tests[] = {
		cmocka_unit_test(test_vectors_ik),
		cmocka_unit_test(test_vectors_ikpsk2),
		cmocka_unit_test(test_vectors_ik_blake2s),
		cmocka_unit_test(test_vectors_ikpsk2_blake2s),
		cmocka_unit_test(test_unknown_hash_refused),
	};
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_forged_message_changes_nothing),
		cmocka_unit_test(test_wrong_psk_fails_message2),
		cmocka_unit_test(test_out_of_order_refused),
		cmocka_unit_test(test_low_order_points_refused),
		cmocka_unit_test(test_generated_ephemerals_differ),
		cmocka_unit_test(test_transport_limits),
		cmocka_unit_test(test_json_reads_what_it_should),
		cmocka_unit_test(test_json_refuses_malformed),
	};
	int failed;

	if (sodium_init() < 0)
		return 1;
	failed = cmocka_run_group_tests_name("noise_vectors", vector_tests, vector_file_load, vector_file_free);
	failed += cmocka_run_group_tests_name("noise", tests, NULL, NULL);
	return failed ? 1 : 0;
}
