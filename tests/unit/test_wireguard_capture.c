/* meshd's WireGuard code against bytes a stock wireguard-go produced: known answers for mac1,
 * mac2, cookie replies, handshake messages and transport data that do not come from our own code.
 *
 * tests/unit/wireguard-go-capture.json is made by tests/tools/wg-capture.sh (its "source" member
 * says when and from which wireguard-go), in network namespaces, between wireguard-go with a
 * fixed key and a WireGuard peer written in Python (tests/tools/wg_capture.py, fixed keys).
 *
 * "runs" (no PSK, then a PSK): wireguard-go initiates. The Python side answers the first
 * initiation with a cookie reply, the retry with a handshake response, and a ping through the
 * tunnel with an echo reply. wireguard-go's part is its own bytes: the two initiations (mac1; the
 * retry's mac2, which it could compute only by opening our cookie reply) and its data messages
 * (sent only after it accepted our response). Per run this test:
 *   - checks mac1 of both initiations and opens them as the responder (static key, timestamp);
 *   - remakes the cookie reply with cookie.c from the same secret and nonce, byte for byte, and
 *     checks the retry's mac2 as a responder (cookie_checker) and remakes it as an initiator
 *     would (cookie_jar) from the captured reply;
 *   - remakes the handshake response from the same ephemeral key, byte for byte;
 *   - opens wireguard-go's data messages with the session that response derived, and remakes
 *     the echo replies wireguard-go accepted.
 *
 * "wireguard_go_responds": the Python side initiates to a wireguard-go it has put under load;
 * wireguard-go answers with its own cookie replies, then its response and an echo reply. This
 * test remakes our initiations (the ones wireguard-go took), opens wireguard-go's cookie replies
 * with cookie_jar and stamps the mac2 wireguard-go accepted, consumes wireguard-go's response and
 * runs the session both ways.
 *
 * No network here: only the committed file is read.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <sodium.h>

#include "core/cookie.h"
#include "core/handshake.h"
#include "core/session.h"
#include "json_vectors.h"

#ifndef TEST_SRCDIR
#define TEST_SRCDIR "tests/unit"
#endif

#define CAPTURE_FILE TEST_SRCDIR "/wireguard-go-capture.json"
#define STR_AND_LEN(s) (s), (sizeof(s) - 1)

enum {
	CAPTURE_FILE_MAX = 1 << 18, /* the file is ~8 KB */
	CAPTURE_RUNS_MAX = 4,
	CAPTURE_DATA_MAX = 8,       /* data messages per direction in one run */
	CAPTURE_PACKET_MAX = 2048,  /* a ping's data message is 128 bytes */
	CAPTURE_NAME_MAX = 16,
	TEST_NOW_MS = 5000,         /* arbitrary monotonic "now" for sessions and cookies */
	/* Where the capture tool puts wireguard-go (tests/tools/wg_capture.py). */
	WG_GO_PORT = 51820,
	TAI64N_NSEC_LOW_BITS = 24,  /* WireGuard rounds the nanoseconds down to 2^24 ns */
};

static const char wg_go_underlay[] = "192.0.2.1";
static const uint8_t wg_go_overlay[4] = {100, 64, 0, 1};
static const uint8_t py_overlay[4] = {100, 64, 0, 2};

struct packet {
	uint8_t msg[CAPTURE_PACKET_MAX];
	size_t msg_len;
	uint8_t plain[CAPTURE_PACKET_MAX];
	size_t plain_len;
};

/* One run of the capture tool, decoded. */
struct capture {
	char name[CAPTURE_NAME_MAX];
	uint8_t wg_private[WIRE_KEY_LEN], wg_public[WIRE_KEY_LEN];
	uint8_t py_private[WIRE_KEY_LEN], py_public[WIRE_KEY_LEN], py_ephemeral[WIRE_KEY_LEN];
	uint8_t psk[WIRE_KEY_LEN];
	bool psk_configured;
	uint32_t responder_index;
	uint8_t cookie_secret[WIRE_KEY_LEN];
	uint8_t cookie_source[COOKIE_SOURCE_MAX];
	size_t cookie_source_len;
	uint8_t cookie[WIRE_COOKIE_LEN];
	uint8_t cookie_nonce[WIRE_COOKIE_NONCE_LEN];
	uint64_t initiation_unix_time;
	uint8_t initiation[WIRE_INITIATION_LEN], initiation_timestamp[WIRE_TIMESTAMP_LEN];
	uint8_t cookie_reply[WIRE_COOKIE_REPLY_LEN];
	uint8_t retry[WIRE_INITIATION_LEN], retry_timestamp[WIRE_TIMESTAMP_LEN];
	uint8_t response[WIRE_RESPONSE_LEN];
	uint8_t key_i2r[WIRE_KEY_LEN], key_r2i[WIRE_KEY_LEN]; /* the Python side's transport keys */
	struct packet from_wg[CAPTURE_DATA_MAX], to_wg[CAPTURE_DATA_MAX];
	size_t n_from_wg, n_to_wg;
};

/* The run where the Python side initiates and wireguard-go responds (under load: cookie replies). */
struct initiator_capture {
	uint8_t wg_private[WIRE_KEY_LEN], wg_public[WIRE_KEY_LEN];
	uint8_t py_private[WIRE_KEY_LEN], py_public[WIRE_KEY_LEN], psk[WIRE_KEY_LEN];
	uint8_t first_ephemeral[WIRE_KEY_LEN], second_ephemeral[WIRE_KEY_LEN];
	uint32_t first_index, second_index;
	uint8_t flood[WIRE_INITIATION_LEN];
	uint8_t first_timestamp[WIRE_TIMESTAMP_LEN], first[WIRE_INITIATION_LEN];
	uint8_t cookie_reply[WIRE_COOKIE_REPLY_LEN], cookie[WIRE_COOKIE_LEN];
	uint8_t second_timestamp[WIRE_TIMESTAMP_LEN], second[WIRE_INITIATION_LEN], second_wrong[WIRE_INITIATION_LEN];
	uint8_t second_cookie_reply[WIRE_COOKIE_REPLY_LEN];
	uint8_t response[WIRE_RESPONSE_LEN];
	uint8_t key_i2r[WIRE_KEY_LEN], key_r2i[WIRE_KEY_LEN];
	struct packet from_wg[CAPTURE_DATA_MAX], to_wg[CAPTURE_DATA_MAX];
	size_t n_from_wg, n_to_wg;
};

struct capture_file {
	struct capture runs[CAPTURE_RUNS_MAX];
	size_t n_runs;
	struct initiator_capture ini;
};

/* ---------------------------------------------------------------- reading the capture */

static void member(struct json_value obj, const char *key, struct json_value *out)
{
	if (!json_object_get(obj, key, strlen(key), out))
		fail_msg("%s: no member %s", CAPTURE_FILE, key);
}

static size_t member_hex(struct json_value obj, const char *key, uint8_t *out, size_t cap)
{
	struct json_value v;
	size_t len = 0;

	member(obj, key, &v);
	if (!json_hex(v, out, cap, &len))
		fail_msg("%s: member %s is no hex string of at most %zu bytes", CAPTURE_FILE, key, cap);
	return len;
}

static void member_exact(struct json_value obj, const char *key, uint8_t *out, size_t len)
{
	assert_int_equal(member_hex(obj, key, out, len), len);
}

/* A member that is a short string without escapes, copied with a terminating zero. */
static void member_text(struct json_value obj, const char *key, char *out, size_t cap)
{
	struct json_value v;
	const char *s;
	size_t len;

	member(obj, key, &v);
	assert_true(json_string(v, &s, &len));
	assert_true(len < cap);
	memcpy(out, s, len);
	out[len] = '\0';
}

static size_t member_packets(struct json_value obj, const char *key, struct packet *out)
{
	struct json_value list, elem;
	struct json_array_iter it;
	size_t n = 0;

	member(obj, key, &list);
	assert_true(json_array_iter_init(&it, list));
	while (json_array_next(&it, &elem)) {
		assert_true(n < CAPTURE_DATA_MAX);
		out[n].msg_len = member_hex(elem, "message", out[n].msg, sizeof(out[n].msg));
		out[n].plain_len = member_hex(elem, "plaintext", out[n].plain, sizeof(out[n].plain));
		n++;
	}
	assert_true(it.done);
	return n;
}

static uint32_t member_index(struct json_value obj, const char *key)
{
	uint8_t b[4];

	member_exact(obj, key, b, sizeof(b)); /* big-endian hex */
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static void capture_decode(struct json_value run, struct capture *c)
{
	char text[32], *end;

	member_text(run, "name", c->name, sizeof(c->name));
	member_exact(run, "wireguard_go_private", c->wg_private, WIRE_KEY_LEN);
	member_exact(run, "wireguard_go_public", c->wg_public, WIRE_KEY_LEN);
	member_exact(run, "python_private", c->py_private, WIRE_KEY_LEN);
	member_exact(run, "python_public", c->py_public, WIRE_KEY_LEN);
	member_exact(run, "python_ephemeral_private", c->py_ephemeral, WIRE_KEY_LEN);
	member_exact(run, "psk", c->psk, WIRE_KEY_LEN);
	member_text(run, "psk_configured", text, sizeof(text));
	assert_true(strcmp(text, "yes") == 0 || strcmp(text, "no") == 0);
	c->psk_configured = strcmp(text, "yes") == 0;
	c->responder_index = member_index(run, "responder_index");
	member_exact(run, "cookie_secret", c->cookie_secret, WIRE_KEY_LEN);
	c->cookie_source_len = member_hex(run, "cookie_source", c->cookie_source, sizeof(c->cookie_source));
	member_exact(run, "cookie", c->cookie, WIRE_COOKIE_LEN);
	member_exact(run, "cookie_nonce", c->cookie_nonce, WIRE_COOKIE_NONCE_LEN);
	member_text(run, "initiation_unix_time", text, sizeof(text));
	c->initiation_unix_time = strtoull(text, &end, 10);
	assert_true(end != text && *end == '\0');
	member_exact(run, "initiation", c->initiation, WIRE_INITIATION_LEN);
	member_exact(run, "initiation_timestamp", c->initiation_timestamp, WIRE_TIMESTAMP_LEN);
	member_exact(run, "cookie_reply", c->cookie_reply, WIRE_COOKIE_REPLY_LEN);
	member_exact(run, "retry_initiation", c->retry, WIRE_INITIATION_LEN);
	member_exact(run, "retry_timestamp", c->retry_timestamp, WIRE_TIMESTAMP_LEN);
	member_exact(run, "response", c->response, WIRE_RESPONSE_LEN);
	member_exact(run, "transport_initiator_to_responder", c->key_i2r, WIRE_KEY_LEN);
	member_exact(run, "transport_responder_to_initiator", c->key_r2i, WIRE_KEY_LEN);
	c->n_from_wg = member_packets(run, "data_from_wireguard_go", c->from_wg);
	c->n_to_wg = member_packets(run, "data_to_wireguard_go", c->to_wg);
}

static void initiator_decode(struct json_value run, struct initiator_capture *c)
{
	member_exact(run, "wireguard_go_private", c->wg_private, WIRE_KEY_LEN);
	member_exact(run, "wireguard_go_public", c->wg_public, WIRE_KEY_LEN);
	member_exact(run, "python_private", c->py_private, WIRE_KEY_LEN);
	member_exact(run, "python_public", c->py_public, WIRE_KEY_LEN);
	member_exact(run, "psk", c->psk, WIRE_KEY_LEN);
	member_exact(run, "first_ephemeral_private", c->first_ephemeral, WIRE_KEY_LEN);
	member_exact(run, "second_ephemeral_private", c->second_ephemeral, WIRE_KEY_LEN);
	c->first_index = member_index(run, "first_index");
	c->second_index = member_index(run, "second_index");
	member_exact(run, "flood_initiation", c->flood, WIRE_INITIATION_LEN);
	member_exact(run, "first_timestamp", c->first_timestamp, WIRE_TIMESTAMP_LEN);
	member_exact(run, "first_initiation", c->first, WIRE_INITIATION_LEN);
	member_exact(run, "cookie_reply", c->cookie_reply, WIRE_COOKIE_REPLY_LEN);
	member_exact(run, "cookie", c->cookie, WIRE_COOKIE_LEN);
	member_exact(run, "second_timestamp", c->second_timestamp, WIRE_TIMESTAMP_LEN);
	member_exact(run, "second_initiation", c->second, WIRE_INITIATION_LEN);
	member_exact(run, "second_initiation_wrong_mac2", c->second_wrong, WIRE_INITIATION_LEN);
	member_exact(run, "second_cookie_reply", c->second_cookie_reply, WIRE_COOKIE_REPLY_LEN);
	member_exact(run, "response", c->response, WIRE_RESPONSE_LEN);
	member_exact(run, "transport_initiator_to_responder", c->key_i2r, WIRE_KEY_LEN);
	member_exact(run, "transport_responder_to_initiator", c->key_r2i, WIRE_KEY_LEN);
	c->n_from_wg = member_packets(run, "data_from_wireguard_go", c->from_wg);
	c->n_to_wg = member_packets(run, "data_to_wireguard_go", c->to_wg);
}

static int capture_load(void **state)
{
	struct capture_file *cf = calloc(1, sizeof(*cf));
	char *text = malloc(CAPTURE_FILE_MAX);
	FILE *f = fopen(CAPTURE_FILE, "rb");
	struct json_value root, runs, run;
	struct json_array_iter it;
	size_t len;
	int rc = -1;

	if (!cf || !text || !f) {
		fprintf(stderr, "cannot open %s\n", CAPTURE_FILE);
		goto out;
	}
	len = fread(text, 1, CAPTURE_FILE_MAX, f);
	if (ferror(f) || len == CAPTURE_FILE_MAX || !json_parse(text, len, &root) ||
	    !json_object_get(root, STR_AND_LEN("runs"), &runs) || !json_array_iter_init(&it, runs)) {
		fprintf(stderr, "%s: not a capture file\n", CAPTURE_FILE);
		goto out;
	}
	while (json_array_next(&it, &run)) {
		if (cf->n_runs == CAPTURE_RUNS_MAX)
			goto out;
		capture_decode(run, &cf->runs[cf->n_runs++]);
	}
	if (!it.done || cf->n_runs == 0 || !json_object_get(root, STR_AND_LEN("wireguard_go_responds"), &run))
		goto out;
	initiator_decode(run, &cf->ini);
	*state = cf;
	cf = NULL;
	rc = 0;
out:
	if (f)
		fclose(f);
	free(text);
	free(cf);
	return rc;
}

static int capture_free(void **state)
{
	free(*state);
	return 0;
}

#define FOR_EACH_RUN(c, state)                                                                            \
	for (struct capture *c = ((struct capture_file *)*(state))->runs;                                     \
	     c < ((struct capture_file *)*(state))->runs + ((struct capture_file *)*(state))->n_runs; c++)

static void identities(const struct capture *c, struct handshake_identity *py, struct handshake_identity *wg)
{
	assert_true(handshake_identity_init(py, c->py_private));
	assert_true(handshake_identity_init(wg, c->wg_private));
}

/* ---------------------------------------------------------------- the tests */

/* Our X25519 gives the public keys wireguard-go and the Python side used. */
static void test_keys(void **state)
{
	FOR_EACH_RUN(c, state) {
		struct handshake_identity py, wg;

		identities(c, &py, &wg);
		assert_memory_equal(py.public_key, c->py_public, WIRE_KEY_LEN);
		assert_memory_equal(wg.public_key, c->wg_public, WIRE_KEY_LEN);
		assert_int_equal(c->psk_configured, !sodium_is_zero(c->psk, WIRE_KEY_LEN));
	}
}

/* wireguard-go's mac1 on both initiations, checked and recomputed. */
static void test_initiation_mac1(void **state)
{
	FOR_EACH_RUN(c, state) {
		const uint8_t *msgs[] = {c->initiation, c->retry};
		struct handshake_identity py, wg;
		uint8_t key[WIRE_KEY_LEN], mac[WIRE_MAC_LEN], bad[WIRE_INITIATION_LEN];

		identities(c, &py, &wg);
		for (size_t i = 0; i < 2; i++) {
			assert_true(handshake_initiation_mac1_ok(&py, msgs[i], WIRE_INITIATION_LEN));
			handshake_label_key(key, "mac1----", c->py_public);
			handshake_mac(mac, key, sizeof(key), msgs[i], WIRE_INIT_OFF_MAC1);
			assert_memory_equal(mac, msgs[i] + WIRE_INIT_OFF_MAC1, WIRE_MAC_LEN);
			assert_int_equal(handshake_mac1_offset(msgs[i], WIRE_INITIATION_LEN), WIRE_INIT_OFF_MAC1);
			/* not addressed to wireguard-go itself; one changed byte breaks it */
			assert_false(handshake_initiation_mac1_ok(&wg, msgs[i], WIRE_INITIATION_LEN));
			memcpy(bad, msgs[i], sizeof(bad));
			bad[WIRE_INIT_OFF_SENDER] ^= 1;
			assert_false(handshake_initiation_mac1_ok(&py, bad, sizeof(bad)));
		}
		/* the first had no cookie yet */
		assert_true(sodium_is_zero(c->initiation + WIRE_INIT_OFF_MAC2, WIRE_MAC_LEN));
		assert_false(sodium_is_zero(c->retry + WIRE_INIT_OFF_MAC2, WIRE_MAC_LEN));
	}
}

static uint64_t tai64_seconds(const uint8_t ts[WIRE_TIMESTAMP_LEN])
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | ts[i];
	return v;
}

/* Both initiations open as the responder: wireguard-go's static key, index and timestamp. */
static void test_consume_initiations(void **state)
{
	FOR_EACH_RUN(c, state) {
		const uint8_t *msgs[] = {c->initiation, c->retry};
		const uint8_t *stamps[] = {c->initiation_timestamp, c->retry_timestamp};
		struct handshake_identity py, wg;

		identities(c, &py, &wg);
		for (size_t i = 0; i < 2; i++) {
			struct handshake hs;

			memset(&hs, 0, sizeof(hs));
			assert_true(handshake_consume_initiation(&hs, &py, msgs[i], WIRE_INITIATION_LEN));
			assert_int_equal(hs.state, HANDSHAKE_INITIATION_CONSUMED);
			assert_memory_equal(hs.remote_static, c->wg_public, WIRE_KEY_LEN);
			assert_int_equal(hs.remote_index, wire_get_u32(msgs[i] + WIRE_INIT_OFF_SENDER));
			assert_memory_equal(hs.remote_timestamp, stamps[i], WIRE_TIMESTAMP_LEN);
			/* TAI64N: 2^62 + 10 + Unix seconds, nanoseconds rounded down to 2^24 ns */
			assert_true(tai64_seconds(hs.remote_timestamp) >= (UINT64_C(1) << 62) + 10);
			assert_true(hs.remote_timestamp[9] == 0 && hs.remote_timestamp[10] == 0 &&
				    hs.remote_timestamp[11] == 0);
			handshake_clear(&hs);
		}
		assert_int_equal(tai64_seconds(c->initiation_timestamp) - (UINT64_C(1) << 62) - 10,
				 c->initiation_unix_time);
		/* the retry comes later and its timestamp is newer, as a responder demands */
		assert_true(memcmp(c->retry_timestamp, c->initiation_timestamp, WIRE_TIMESTAMP_LEN) > 0);
	}
}

/* A responder whose secret is the capture's (cookie.c makes a random one; a test may set it). */
static void checker_with_secret(struct cookie_checker *ck, const struct capture *c)
{
	cookie_checker_init(ck, c->py_public, 0);
	memcpy(ck->secret, c->cookie_secret, WIRE_KEY_LEN);
	ck->secret_born_ms = TEST_NOW_MS;
	ck->has_secret = true;
}

static size_t wg_go_source(uint16_t port, uint8_t out[COOKIE_SOURCE_MAX])
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	assert_int_equal(inet_pton(AF_INET, wg_go_underlay, &sin.sin_addr), 1);
	return cookie_source_bytes(&sin, out);
}

/* cookie.c, as the responder, remakes the cookie reply wireguard-go accepted and recognises the
 * mac2 wireguard-go computed from it. */
static void test_cookie_reply_and_mac2_check(void **state)
{
	FOR_EACH_RUN(c, state) {
		struct cookie_checker ck;
		uint8_t source[COOKIE_SOURCE_MAX], cookie[WIRE_COOKIE_LEN], reply[WIRE_COOKIE_REPLY_LEN];
		size_t source_len = wg_go_source(WG_GO_PORT, source);
		uint32_t receiver;

		assert_int_equal(source_len, c->cookie_source_len);
		assert_memory_equal(source, c->cookie_source, source_len);
		handshake_mac(cookie, c->cookie_secret, WIRE_KEY_LEN, source, source_len);
		assert_memory_equal(cookie, c->cookie, WIRE_COOKIE_LEN);

		checker_with_secret(&ck, c);
		assert_true(cookie_reply_create(&ck, c->initiation, WIRE_INITIATION_LEN, source, source_len, TEST_NOW_MS,
						c->cookie_nonce, reply));
		assert_memory_equal(reply, c->cookie_reply, WIRE_COOKIE_REPLY_LEN);
		assert_true(cookie_reply_receiver(reply, sizeof(reply), &receiver));
		assert_int_equal(receiver, wire_get_u32(c->initiation + WIRE_INIT_OFF_SENDER));

		assert_true(cookie_checker_mac2_ok(&ck, c->retry, WIRE_INITIATION_LEN, source, source_len, TEST_NOW_MS));
		/* no mac2 on the first; the cookie is bound to wireguard-go's port */
		assert_false(cookie_checker_mac2_ok(&ck, c->initiation, WIRE_INITIATION_LEN, source, source_len,
						    TEST_NOW_MS));
		source_len = wg_go_source(WG_GO_PORT + 1, source);
		assert_false(cookie_checker_mac2_ok(&ck, c->retry, WIRE_INITIATION_LEN, source, source_len, TEST_NOW_MS));
		cookie_checker_clear(&ck);
	}
}

/* cookie.c, as the initiator, opens the captured cookie reply and stamps the retry with the exact
 * mac2 wireguard-go put on it. */
static void test_cookie_jar_mac2(void **state)
{
	FOR_EACH_RUN(c, state) {
		struct cookie_jar jar;
		uint8_t mac2[WIRE_MAC_LEN], msg[WIRE_INITIATION_LEN], wrong_key[WIRE_KEY_LEN];

		handshake_mac(mac2, c->cookie, WIRE_COOKIE_LEN, c->retry, WIRE_INIT_OFF_MAC2);
		assert_memory_equal(mac2, c->retry + WIRE_INIT_OFF_MAC2, WIRE_MAC_LEN);

		memset(&jar, 0, sizeof(jar));
		/* without a cookie the first initiation goes out as wireguard-go sent it */
		memcpy(msg, c->initiation, sizeof(msg));
		cookie_jar_stamp(&jar, msg, sizeof(msg), TEST_NOW_MS);
		assert_memory_equal(msg, c->initiation, sizeof(msg));

		memcpy(wrong_key, c->wg_public, sizeof(wrong_key));
		assert_false(cookie_jar_consume_reply(&jar, wrong_key, c->cookie_reply, WIRE_COOKIE_REPLY_LEN, TEST_NOW_MS));
		assert_true(cookie_jar_consume_reply(&jar, c->py_public, c->cookie_reply, WIRE_COOKIE_REPLY_LEN,
						     TEST_NOW_MS));
		assert_true(jar.has_cookie);
		assert_memory_equal(jar.cookie, c->cookie, WIRE_COOKIE_LEN);

		memcpy(msg, c->retry, sizeof(msg));
		memset(msg + WIRE_INIT_OFF_MAC2, 0, WIRE_MAC_LEN);
		cookie_jar_stamp(&jar, msg, sizeof(msg), TEST_NOW_MS + 5000);
		assert_memory_equal(msg, c->retry, sizeof(msg));
		/* the reply answered the first initiation's mac1: it no longer opens after the retry */
		assert_false(cookie_jar_consume_reply(&jar, c->py_public, c->cookie_reply, WIRE_COOKIE_REPLY_LEN,
						      TEST_NOW_MS + 5000));
		cookie_jar_clear(&jar);
	}
}

/* The response to the retry, from the same ephemeral key and index: the bytes wireguard-go
 * accepted. Leaves the derived session in *session. */
static void make_response(const struct capture *c, struct session *session)
{
	struct handshake_identity py, wg;
	struct handshake hs;
	uint8_t out[WIRE_RESPONSE_LEN];

	identities(c, &py, &wg);
	memset(&hs, 0, sizeof(hs));
	assert_true(handshake_consume_initiation(&hs, &py, c->retry, WIRE_INITIATION_LEN));
	assert_true(handshake_create_response(&hs, &py, c->psk_configured ? c->psk : NULL, c->responder_index,
					      c->py_ephemeral, TEST_NOW_MS, out, session));
	if (memcmp(out, c->response, sizeof(out)) != 0) {
		for (size_t i = 0; i < sizeof(out); i++)
			if (out[i] != c->response[i])
				fail_msg("run %s: response differs from byte %zu on", c->name, i);
	}
	assert_true(handshake_response_mac1_ok(&wg, out, sizeof(out)));
	assert_true(sodium_is_zero(out + WIRE_RESP_OFF_MAC2, WIRE_MAC_LEN));
	handshake_clear(&hs);
}

static void test_response(void **state)
{
	FOR_EACH_RUN(c, state) {
		struct session s;

		make_response(c, &s);
		assert_true(s.valid);
		assert_false(s.we_initiated);
		assert_int_equal(s.local_index, c->responder_index);
		assert_int_equal(s.remote_index, wire_get_u32(c->retry + WIRE_INIT_OFF_SENDER));
		assert_memory_equal(s.recv_key, c->key_i2r, WIRE_KEY_LEN);
		assert_memory_equal(s.send_key, c->key_r2i, WIRE_KEY_LEN);
		session_clear(&s);
	}
}

/* An IPv4 ICMP echo request from wireguard-go's overlay address to the Python side's. */
static void assert_echo_request(const uint8_t *p, size_t len)
{
	size_t ihl;

	assert_true(len >= 28 && p[0] >> 4 == 4);
	ihl = (size_t)(p[0] & 15) * 4;
	assert_int_equal(p[9], 1); /* ICMP */
	assert_memory_equal(p + 12, wg_go_overlay, 4);
	assert_memory_equal(p + 16, py_overlay, 4);
	assert_true((size_t)(p[2] << 8 | p[3]) <= len && len % WIRE_DATA_PADDING == 0);
	assert_int_equal(p[ihl], 8); /* echo request */
}

/* wireguard-go's data messages open with our session; our echo replies are the bytes it took. */
static void test_data(void **state)
{
	FOR_EACH_RUN(c, state) {
		struct session s;
		uint8_t *buf = malloc(CAPTURE_PACKET_MAX);
		size_t len;

		assert_non_null(buf);
		make_response(c, &s);
		assert_true(c->n_from_wg >= 2);
		for (size_t i = 0; i < c->n_from_wg; i++) {
			const struct packet *p = &c->from_wg[i];

			assert_int_equal(session_decrypt(&s, TEST_NOW_MS, p->msg, p->msg_len, buf, CAPTURE_PACKET_MAX, &len),
					 SESSION_OK);
			assert_int_equal(len, p->plain_len);
			if (len)
				assert_memory_equal(buf, p->plain, len);
			/* a message is taken once */
			assert_int_equal(session_decrypt(&s, TEST_NOW_MS, p->msg, p->msg_len, buf, CAPTURE_PACKET_MAX, &len),
					 SESSION_ERR_REPLAY);
		}
		assert_echo_request(c->from_wg[0].plain, c->from_wg[0].plain_len);
		assert_int_equal(c->from_wg[c->n_from_wg - 1].plain_len, 0); /* the keepalive ends a run */

		assert_true(c->n_to_wg >= 1);
		for (size_t i = 0; i < c->n_to_wg; i++) {
			const struct packet *p = &c->to_wg[i];

			assert_int_equal(session_encrypt(&s, TEST_NOW_MS, p->plain, p->plain_len, buf, CAPTURE_PACKET_MAX, &len),
					 SESSION_OK);
			assert_int_equal(len, p->msg_len);
			assert_memory_equal(buf, p->msg, len);
		}
		session_clear(&s);
		free(buf);
	}
}

/* A flipped bit anywhere in a captured data message is refused and leaves the window alone. */
static void test_data_tampered(void **state)
{
	FOR_EACH_RUN(c, state) {
		const struct packet *p = &c->from_wg[0];
		struct session s;
		uint8_t *buf = malloc(CAPTURE_PACKET_MAX), *bad = malloc(CAPTURE_PACKET_MAX);
		size_t len;

		assert_non_null(buf);
		assert_non_null(bad);
		make_response(c, &s);
		memcpy(bad, p->msg, p->msg_len);
		bad[p->msg_len - 1] ^= 0x80;
		assert_int_equal(session_decrypt(&s, TEST_NOW_MS, bad, p->msg_len, buf, CAPTURE_PACKET_MAX, &len),
				 SESSION_ERR_AUTH);
		assert_int_equal(session_decrypt(&s, TEST_NOW_MS, p->msg, p->msg_len, buf, CAPTURE_PACKET_MAX, &len),
				 SESSION_OK);
		session_clear(&s);
		free(bad);
		free(buf);
	}
}

/* The capture holds a run without a PSK and one with. */
static void test_runs_present(void **state)
{
	bool plain = false, psk = false;

	FOR_EACH_RUN(c, state) {
		plain |= !c->psk_configured;
		psk |= c->psk_configured;
	}
	assert_true(plain);
	assert_true(psk);
}

/* ---------------------------------------------------------------- wireguard-go responds
 *
 * The Python side initiated, after flooding wireguard-go with initiations that open for nobody
 * until it was under load: wireguard-go answered our first initiation with a cookie reply (its
 * bytes, its secret and random nonce), and of our second initiation sent twice it answered the
 * copy with a wrong mac2 with another cookie reply and the copy with mac2 = MAC(cookie, ...) with
 * its handshake response. */

/* Our initiations, from the same inputs, are the ones wireguard-go took (mac1 and all). */
static void make_initiation(const struct initiator_capture *c, struct handshake *hs, bool second,
			    uint8_t out[WIRE_INITIATION_LEN])
{
	struct handshake_identity py;

	assert_true(handshake_identity_init(&py, c->py_private));
	memset(hs, 0, sizeof(*hs));
	assert_true(handshake_create_initiation(hs, &py, c->wg_public, second ? c->second_index : c->first_index,
						second ? c->second_timestamp : c->first_timestamp,
						second ? c->second_ephemeral : c->first_ephemeral, out));
	handshake_identity_clear(&py);
}

static void test_initiator_initiations(void **state)
{
	const struct initiator_capture *c = &((struct capture_file *)*state)->ini;
	struct handshake_identity py, wg;
	struct handshake hs;
	uint8_t out[WIRE_INITIATION_LEN];

	assert_true(handshake_identity_init(&py, c->py_private));
	assert_true(handshake_identity_init(&wg, c->wg_private));
	assert_memory_equal(py.public_key, c->py_public, WIRE_KEY_LEN);
	assert_memory_equal(wg.public_key, c->wg_public, WIRE_KEY_LEN);

	make_initiation(c, &hs, false, out);
	assert_memory_equal(out, c->first, WIRE_INITIATION_LEN);
	make_initiation(c, &hs, true, out);
	assert_memory_equal(out, c->second, WIRE_INIT_OFF_MAC2);
	assert_true(sodium_is_zero(out + WIRE_INIT_OFF_MAC2, WIRE_MAC_LEN));
	assert_memory_equal(c->second_wrong, c->second, WIRE_INIT_OFF_MAC2);

	/* the flood: a valid mac1 (what made wireguard-go spend a DH on it) and nothing behind it */
	assert_true(handshake_initiation_mac1_ok(&wg, c->flood, WIRE_INITIATION_LEN));
	assert_false(handshake_consume_initiation(&hs, &wg, c->flood, WIRE_INITIATION_LEN));
	handshake_clear(&hs);
}

/* cookie.c opens wireguard-go's cookie replies and stamps the mac2 wireguard-go accepted. */
static void test_initiator_cookie_jar(void **state)
{
	const struct initiator_capture *c = &((struct capture_file *)*state)->ini;
	struct cookie_jar jar;
	struct handshake hs;
	uint8_t msg[WIRE_INITIATION_LEN];
	uint32_t receiver;

	assert_true(cookie_reply_receiver(c->cookie_reply, WIRE_COOKIE_REPLY_LEN, &receiver));
	assert_int_equal(receiver, c->first_index);
	memset(&jar, 0, sizeof(jar));
	make_initiation(c, &hs, false, msg);
	cookie_jar_stamp(&jar, msg, sizeof(msg), TEST_NOW_MS);
	assert_memory_equal(msg, c->first, sizeof(msg));
	assert_false(cookie_jar_consume_reply(&jar, c->py_public, c->cookie_reply, WIRE_COOKIE_REPLY_LEN, TEST_NOW_MS));
	assert_true(cookie_jar_consume_reply(&jar, c->wg_public, c->cookie_reply, WIRE_COOKIE_REPLY_LEN, TEST_NOW_MS));
	assert_memory_equal(jar.cookie, c->cookie, WIRE_COOKIE_LEN);

	make_initiation(c, &hs, true, msg);
	cookie_jar_stamp(&jar, msg, sizeof(msg), TEST_NOW_MS + 20);
	assert_memory_equal(msg, c->second, sizeof(msg));
	/* the first reply answered the first mac1; the second answers the second, same cookie */
	assert_false(cookie_jar_consume_reply(&jar, c->wg_public, c->cookie_reply, WIRE_COOKIE_REPLY_LEN,
					      TEST_NOW_MS + 20));
	memset(jar.cookie, 0, sizeof(jar.cookie));
	assert_true(cookie_jar_consume_reply(&jar, c->wg_public, c->second_cookie_reply, WIRE_COOKIE_REPLY_LEN,
					     TEST_NOW_MS + 20));
	assert_memory_equal(jar.cookie, c->cookie, WIRE_COOKIE_LEN);
	cookie_jar_clear(&jar);
	handshake_clear(&hs);
}

/* wireguard-go's response: its mac1, then the session both ways. */
static void test_initiator_response_and_data(void **state)
{
	const struct initiator_capture *c = &((struct capture_file *)*state)->ini;
	struct handshake_identity py;
	struct handshake hs;
	struct session s;
	uint8_t msg[WIRE_INITIATION_LEN], *buf = malloc(CAPTURE_PACKET_MAX);
	size_t len;

	assert_non_null(buf);
	assert_true(handshake_identity_init(&py, c->py_private));
	assert_true(handshake_response_mac1_ok(&py, c->response, WIRE_RESPONSE_LEN));
	assert_true(sodium_is_zero(c->response + WIRE_RESP_OFF_MAC2, WIRE_MAC_LEN));

	make_initiation(c, &hs, true, msg);
	memset(&s, 0, sizeof(s));
	assert_true(handshake_consume_response(&hs, &py, c->psk, c->response, WIRE_RESPONSE_LEN, TEST_NOW_MS, &s));
	assert_true(s.we_initiated);
	assert_int_equal(s.local_index, c->second_index);
	assert_int_equal(s.remote_index, wire_get_u32(c->response + WIRE_RESP_OFF_SENDER));
	assert_memory_equal(s.send_key, c->key_i2r, WIRE_KEY_LEN);
	assert_memory_equal(s.recv_key, c->key_r2i, WIRE_KEY_LEN);

	assert_true(c->n_to_wg == 1 && c->n_from_wg >= 1);
	assert_int_equal(session_encrypt(&s, TEST_NOW_MS, c->to_wg[0].plain, c->to_wg[0].plain_len, buf,
					 CAPTURE_PACKET_MAX, &len), SESSION_OK);
	assert_int_equal(len, c->to_wg[0].msg_len);
	assert_memory_equal(buf, c->to_wg[0].msg, len);
	for (size_t i = 0; i < c->n_from_wg; i++) {
		const struct packet *p = &c->from_wg[i];

		assert_int_equal(session_decrypt(&s, TEST_NOW_MS, p->msg, p->msg_len, buf, CAPTURE_PACKET_MAX, &len),
				 SESSION_OK);
		assert_int_equal(len, p->plain_len);
		if (len)
			assert_memory_equal(buf, p->plain, len);
	}
	/* the last is the kernel's echo reply to our request, from 100.64.0.1 to 100.64.0.2 */
	len = c->from_wg[c->n_from_wg - 1].plain_len;
	assert_true(len >= 28 && len % WIRE_DATA_PADDING == 0);
	assert_memory_equal(c->from_wg[c->n_from_wg - 1].plain + 12, wg_go_overlay, 4);
	assert_memory_equal(c->from_wg[c->n_from_wg - 1].plain + 16, py_overlay, 4);
	assert_int_equal(c->from_wg[c->n_from_wg - 1].plain[20], 0); /* ICMP echo reply */

	session_clear(&s);
	handshake_clear(&hs);
	handshake_identity_clear(&py);
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_runs_present),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_initiation_mac1),
		cmocka_unit_test(test_consume_initiations),
		cmocka_unit_test(test_cookie_reply_and_mac2_check),
		cmocka_unit_test(test_cookie_jar_mac2),
		cmocka_unit_test(test_response),
		cmocka_unit_test(test_data),
		cmocka_unit_test(test_data_tampered),
		cmocka_unit_test(test_initiator_initiations),
		cmocka_unit_test(test_initiator_cookie_jar),
		cmocka_unit_test(test_initiator_response_and_data),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests_name("wireguard_capture", tests, capture_load, capture_free) ? 1 : 0;
}
