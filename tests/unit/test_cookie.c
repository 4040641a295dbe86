/* core/cookie: WireGuard's cookie replies and mac2. The bytes are recomputed here from the
 * definitions with libb2 and libsodium directly (cookie = BLAKE2s-128 keyed with the secret over
 * IP || port; reply = XChaCha20-Poly1305 under BLAKE2s-256("cookie--" || responder key) with
 * the message's mac1 as AD; mac2 = BLAKE2s-128 keyed with the cookie), every tampered or
 * misdirected reply is refused, and the time limits (secret 120 s, cookie use 115 s, load
 * window 1 s plus 1 s hold) are pinned in literal numbers. test_wireguard_capture.c checks
 * the same code against bytes wireguard-go produced. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <time.h>

#include <blake2.h>
#include <sodium.h>

#include "core/cookie.h"
#include "core/handshake.h"

#define T0 UINT64_C(5000000) /* any monotonic start */
#define SEC UINT64_C(1000)

static const uint8_t source_a[] = { 192, 0, 2, 1, 0xca, 0x6c };  /* 192.0.2.1:51820 */
static const uint8_t source_b[] = { 192, 0, 2, 1, 0xca, 0x6d };  /* the same host, port 51821 */

struct parties {
	struct handshake_identity ini, resp;
	struct handshake hs;
	struct cookie_checker checker; /* the responder's */
	struct cookie_jar jar;         /* the initiator's, for the responder */
	uint8_t msg[WIRE_INITIATION_LEN];
	uint32_t index;
};

static void parties_init(struct parties *p, unsigned int threshold)
{
	uint8_t key[WIRE_KEY_LEN];

	memset(p, 0, sizeof(*p));
	memset(key, 0x21, sizeof(key));
	assert_true(handshake_identity_init(&p->ini, key));
	memset(key, 0x42, sizeof(key));
	assert_true(handshake_identity_init(&p->resp, key));
	cookie_checker_init(&p->checker, p->resp.public_key, threshold);
}

/* A fresh initiation to the responder, stamped by the jar at `now`. */
static void initiate(struct parties *p, uint64_t now)
{
	uint8_t ts[WIRE_TIMESTAMP_LEN];

	handshake_tai64n(ts, (struct timespec){ .tv_sec = 1700000000 + (time_t)(now / SEC) });
	assert_true(handshake_create_initiation(&p->hs, &p->ini, p->resp.public_key, ++p->index, ts, NULL, p->msg));
	cookie_jar_stamp(&p->jar, p->msg, sizeof(p->msg), now);
	assert_true(handshake_initiation_mac1_ok(&p->resp, p->msg, sizeof(p->msg)));
}

static bool mac2_is_zero(const uint8_t *msg)
{
	return sodium_is_zero(msg + 132, 16);
}

static void parties_clear(struct parties *p)
{
	handshake_identity_clear(&p->ini);
	handshake_identity_clear(&p->resp);
	handshake_clear(&p->hs);
	cookie_checker_clear(&p->checker);
	cookie_jar_clear(&p->jar);
}

static void test_source_bytes(void **state)
{
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons(51820) };
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(443) };
	struct sockaddr other = { .sa_family = AF_UNIX };
	uint8_t out[COOKIE_SOURCE_MAX];

	(void)state;
	assert_int_equal(inet_pton(AF_INET, "192.0.2.1", &in.sin_addr), 1);
	assert_int_equal(cookie_source_bytes(&in, out), 6);
	assert_memory_equal(out, source_a, 6);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::7", &in6.sin6_addr), 1);
	assert_int_equal(cookie_source_bytes(&in6, out), 18);
	assert_int_equal(out[0], 0x20);
	assert_int_equal(out[1], 0x01);
	assert_int_equal(out[15], 0x07);
	assert_int_equal(out[16], 0x01); /* 443, big-endian */
	assert_int_equal(out[17], 0xbb);
	assert_int_equal(cookie_source_bytes(&other, out), 0);
}

/* The reply and mac2, byte for byte from the definitions. */
static void test_reply_bytes(void **state)
{
	struct parties p;
	uint8_t nonce[24], reply[64], key[32], cookie[16], want_cookie[16], opened[16], want_mac2[16];
	static const char label[] = "cookie--";
	blake2s_state st;

	(void)state;
	parties_init(&p, 0);
	initiate(&p, T0);
	assert_true(mac2_is_zero(p.msg)); /* no cookie yet */
	assert_false(cookie_checker_mac2_ok(&p.checker, p.msg, sizeof(p.msg), source_a, sizeof(source_a), T0));

	for (size_t i = 0; i < sizeof(nonce); i++)
		nonce[i] = (uint8_t)(0x90 + i);
	assert_true(cookie_reply_create(&p.checker, p.msg, sizeof(p.msg), source_a, sizeof(source_a), T0, nonce,
					reply));
	assert_int_equal(reply[0], 3);
	assert_int_equal(reply[1], 0);
	assert_int_equal(reply[2], 0);
	assert_int_equal(reply[3], 0);
	assert_memory_equal(reply + 4, p.msg + 4, 4); /* receiver: the initiation's sender index */
	assert_memory_equal(reply + 8, nonce, 24);

	/* cookie = BLAKE2s-128(key = secret, 192.0.2.1 || 51820) */
	assert_int_equal(blake2s(want_cookie, source_a, p.checker.secret, 16, sizeof(source_a), 32), 0);
	/* key = BLAKE2s-256("cookie--" || responder public key) */
	blake2s_init(&st, 32);
	blake2s_update(&st, (const uint8_t *)label, 8);
	blake2s_update(&st, p.resp.public_key, 32);
	blake2s_final(&st, key, 32);
	assert_int_equal(crypto_aead_xchacha20poly1305_ietf_decrypt(opened, NULL, NULL, reply + 32, 32, p.msg + 116,
								    16, nonce, key), 0);
	assert_memory_equal(opened, want_cookie, 16);

	/* the initiator opens it and its next initiation carries mac2 = BLAKE2s-128(cookie, msg[0..132)) */
	assert_true(cookie_jar_consume_reply(&p.jar, p.resp.public_key, reply, sizeof(reply), T0));
	assert_memory_equal(p.jar.cookie, want_cookie, 16);
	initiate(&p, T0 + 5 * SEC);
	memcpy(cookie, p.jar.cookie, 16);
	assert_int_equal(blake2s(want_mac2, p.msg, cookie, 16, 132, 16), 0);
	assert_memory_equal(p.msg + 132, want_mac2, 16);
	assert_true(cookie_checker_mac2_ok(&p.checker, p.msg, sizeof(p.msg), source_a, sizeof(source_a), T0 + 5 * SEC));
	/* the cookie is bound to the address it was sent to */
	assert_false(cookie_checker_mac2_ok(&p.checker, p.msg, sizeof(p.msg), source_b, sizeof(source_b), T0 + 5 * SEC));
	/* and mac2 to every byte before it */
	p.msg[40] ^= 1;
	assert_false(cookie_checker_mac2_ok(&p.checker, p.msg, sizeof(p.msg), source_a, sizeof(source_a), T0 + 5 * SEC));
	parties_clear(&p);
}

/* Any changed byte, another message's mac1, another responder's key, or a wrong size: refused,
 * and the jar keeps no cookie. */
static void test_reply_refused(void **state)
{
	struct parties p;
	uint8_t reply[64], bigger[65];
	uint32_t receiver;

	(void)state;
	parties_init(&p, 0);
	initiate(&p, T0);
	assert_true(cookie_reply_create(&p.checker, p.msg, sizeof(p.msg), source_a, sizeof(source_a), T0, NULL, reply));

	for (size_t i = 0; i < sizeof(reply); i++) {
		if (i >= 4 && i < 8)
			continue; /* the receiver index only routes the reply; the caller matches it */
		reply[i] ^= 0x20;
		assert_false(cookie_jar_consume_reply(&p.jar, p.resp.public_key, reply, sizeof(reply), T0));
		reply[i] ^= 0x20;
	}
	assert_false(p.jar.has_cookie);
	assert_false(cookie_jar_consume_reply(&p.jar, p.resp.public_key, reply, sizeof(reply) - 1, T0));
	memcpy(bigger, reply, sizeof(reply));
	bigger[64] = 0;
	assert_false(cookie_jar_consume_reply(&p.jar, p.resp.public_key, bigger, sizeof(bigger), T0));
	assert_false(cookie_reply_receiver(reply, sizeof(reply) - 1, &receiver));
	assert_true(cookie_reply_receiver(reply, sizeof(reply), &receiver));
	assert_int_equal(receiver, p.index);
	/* sealed for someone else's key */
	assert_false(cookie_jar_consume_reply(&p.jar, p.ini.public_key, reply, sizeof(reply), T0));
	/* an answer to an older message: we sent another since, with another mac1 */
	initiate(&p, T0 + 1);
	assert_false(cookie_jar_consume_reply(&p.jar, p.resp.public_key, reply, sizeof(reply), T0 + 1));
	/* a jar that sent nothing opens nothing */
	struct cookie_jar empty;
	memset(&empty, 0, sizeof(empty));
	assert_false(cookie_jar_consume_reply(&empty, p.resp.public_key, reply, sizeof(reply), T0));
	assert_false(p.jar.has_cookie);
	/* a reply is only made for handshake messages */
	uint8_t data[32] = { 4 };
	assert_false(cookie_reply_create(&p.checker, data, sizeof(data), source_a, sizeof(source_a), T0, NULL, reply));
	parties_clear(&p);
}

/* The secret lives 120 s: a cookie made at T0 is good until then and not after, and the
 * initiator stops using a cookie 115 s after it arrived. */
static void test_lifetimes(void **state)
{
	struct parties p;
	uint8_t reply[64];

	(void)state;
	parties_init(&p, 0);
	initiate(&p, T0);
	assert_true(cookie_reply_create(&p.checker, p.msg, sizeof(p.msg), source_a, sizeof(source_a), T0, NULL, reply));
	assert_true(cookie_jar_consume_reply(&p.jar, p.resp.public_key, reply, sizeof(reply), T0));

	initiate(&p, T0 + 114999);
	assert_false(mac2_is_zero(p.msg));
	assert_true(cookie_checker_mac2_ok(&p.checker, p.msg, sizeof(p.msg), source_a, sizeof(source_a), T0 + 119999));
	assert_false(cookie_checker_mac2_ok(&p.checker, p.msg, sizeof(p.msg), source_a, sizeof(source_a), T0 + 120000));
	initiate(&p, T0 + 115000);
	assert_true(mac2_is_zero(p.msg));

	/* a new secret at 120 s: the old cookie no longer passes */
	uint8_t old_secret[32];
	memcpy(old_secret, p.checker.secret, 32);
	initiate(&p, T0 + 120 * SEC);
	assert_true(cookie_reply_create(&p.checker, p.msg, sizeof(p.msg), source_a, sizeof(source_a), T0 + 120 * SEC,
					NULL, reply));
	assert_memory_not_equal(old_secret, p.checker.secret, 32);
	parties_clear(&p);
}

/* "Under load": more than `threshold` mac1-valid messages in a 1 s window, and 1 s after the
 * last window that went over. */
static void test_load_table(void **state)
{
	static const struct {
		uint64_t at_ms;
		bool under_load;
	} steps[] = {
		{ 0, false }, { 10, false }, { 20, false }, /* 3 in the window: at the threshold */
		{ 30, true },                              /* the 4th: over it, until 1030 */
		{ 999, true },                             /* 5th, still the first window: until 1999 */
		{ 1500, true },                            /* new window (1 message), held until 1999 */
		{ 1998, true },
		{ 2000, false },                           /* 3 in the window from 1500, hold over */
		{ 2100, true },                            /* 4 in the window from 1500 */
		{ 3099, true },                            /* held until 3100 */
		{ 3100, false },                           /* a new window, nothing held */
	};
	struct cookie_checker c;
	uint8_t pub[32] = { 9 };

	(void)state;
	cookie_checker_init(&c, pub, 3);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		print_message("at %llu ms\n", (unsigned long long)steps[i].at_ms);
		assert_int_equal(cookie_checker_under_load(&c, T0 + steps[i].at_ms), steps[i].under_load);
	}
	/* threshold 0: always */
	cookie_checker_init(&c, pub, 0);
	assert_true(cookie_checker_under_load(&c, T0));
	assert_true(cookie_checker_under_load(&c, T0 + 3600 * SEC));
	cookie_checker_clear(&c);
}

/* At most 4,096 cookie replies a second, the rest of a flood unanswered; the budget is back
 * the next second. */
static void test_reply_budget(void **state)
{
	struct cookie_checker c;
	uint8_t pub[32] = { 9 };
	(void)state;
	cookie_checker_init(&c, pub, 0);
	for (unsigned int i = 0; i < 4096; i++)
		assert_true(cookie_checker_reply_allowed(&c, T0 + i / 8));
	assert_false(cookie_checker_reply_allowed(&c, T0 + 600));
	assert_false(cookie_checker_reply_allowed(&c, T0 + 999));
	assert_true(cookie_checker_reply_allowed(&c, T0 + 1000));
	cookie_checker_clear(&c);
}

/* Responses carry mac2 the same way (at offset 76). */
static void test_mac2_on_response(void **state)
{
	struct parties p;
	struct handshake resp_hs;
	struct session s;
	uint8_t response[WIRE_RESPONSE_LEN], reply[64], want[16];

	(void)state;
	parties_init(&p, 0);
	initiate(&p, T0);
	assert_true(handshake_consume_initiation(&resp_hs, &p.resp, p.msg, sizeof(p.msg)));
	assert_true(handshake_create_response(&resp_hs, &p.resp, NULL, 77, NULL, T0, response, &s));
	assert_int_equal(handshake_mac1_offset(response, sizeof(response)), 60);
	/* here the initiator is the one under load: it hands the responder a cookie */
	struct cookie_checker ini_checker;
	struct cookie_jar resp_jar;
	memset(&resp_jar, 0, sizeof(resp_jar));
	cookie_checker_init(&ini_checker, p.ini.public_key, 0);
	cookie_jar_stamp(&resp_jar, response, sizeof(response), T0);
	assert_true(cookie_reply_create(&ini_checker, response, sizeof(response), source_b, sizeof(source_b), T0, NULL,
					reply));
	assert_int_equal(wire_get_u32(reply + 4), 77);
	assert_true(cookie_jar_consume_reply(&resp_jar, p.ini.public_key, reply, sizeof(reply), T0));
	cookie_jar_stamp(&resp_jar, response, sizeof(response), T0 + 1);
	assert_int_equal(blake2s(want, response, resp_jar.cookie, 16, 76, 16), 0);
	assert_memory_equal(response + 76, want, 16);
	assert_true(cookie_checker_mac2_ok(&ini_checker, response, sizeof(response), source_b, sizeof(source_b), T0 + 1));
	cookie_checker_clear(&ini_checker);
	session_clear(&s);
	handshake_clear(&resp_hs);
	parties_clear(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_source_bytes),
		cmocka_unit_test(test_reply_bytes),
		cmocka_unit_test(test_reply_refused),
		cmocka_unit_test(test_lifetimes),
		cmocka_unit_test(test_load_table),
		cmocka_unit_test(test_reply_budget),
		cmocka_unit_test(test_mac2_on_response),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
