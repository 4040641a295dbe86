/* Unit tests of the control codec's messages for satellites (SATELLITES, PEER_SATELLITES)
 * and publishing (PUBLISH, PUBLISH_STATE, STREAM_OPEN, STREAM_REFUSE): round trips, limits
 * and the field rules a decoder must enforce. The codec's general tests are in
 * test_control_codec.c. */
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

static void make_satellites(struct control_message *m, size_t n)
{
	memset(m, 0, sizeof(*m));
	m->type = CONTROL_MSG_SATELLITES;
	for (size_t i = 0; i < n; i++) {
		struct control_satellite *s = &m->u.satellites.list[i];
		memset(s->public_key, (int)(0x40 + i), WIRE_KEY_LEN);
		snprintf(s->name, sizeof(s->name), "phone-%zu", i);
		s->ipv4[0] = 100, s->ipv4[1] = 64, s->ipv4[3] = (uint8_t)(10 + i);
		s->ipv6[0] = 0xfd, s->ipv6[15] = (uint8_t)(10 + i);
		s->has_psk = i % 2 == 0;
		if (s->has_psk)
			memset(s->psk, (int)(0x90 + i), WIRE_KEY_LEN);
	}
	m->u.satellites.n = n;
}

static void test_satellites(void **state)
{
	struct control_message m, back;
	uint8_t buf[TEST_BUF_LEN];
	size_t len;
	(void)state;

	/* none (a gateway whose last satellite was removed): the count alone */
	make_satellites(&m, 0);
	len = control_encode(&m, buf, sizeof(buf));
	assert_int_equal(len, 2);
	assert_memory_equal(buf, "\x0f\x00", 2);
	assert_int_equal(decode_exact(buf, len, &back), CONTROL_DECODE_OK);
	assert_memory_equal(&back, &m, sizeof(m));

	/* one with a preshared key: every field at its place */
	make_satellites(&m, 1);
	len = control_encode(&m, buf, sizeof(buf));
	assert_int_equal(len, 2 + WIRE_KEY_LEN + 1 + 7 + 4 + 16 + 1 + WIRE_KEY_LEN);
	assert_int_equal(buf[2 + WIRE_KEY_LEN], 7);
	assert_memory_equal(buf + 2 + WIRE_KEY_LEN + 1, "phone-0", 7);
	assert_int_equal(buf[2 + WIRE_KEY_LEN + 8 + 20], 1);
	assert_int_equal(decode_exact(buf, len, &back), CONTROL_DECODE_OK);
	assert_memory_equal(&back, &m, sizeof(m));
	/* every truncation, and a trailing byte, is malformed; the psk is wiped */
	for (size_t cut = 1; cut < len; cut++)
		assert_int_equal(decode_exact(buf, cut, &back), CONTROL_DECODE_MALFORMED);
	buf[len] = 0;
	assert_int_equal(decode_exact(buf, len + 1, &back), CONTROL_DECODE_MALFORMED);
	assert_int_equal(back.type, CONTROL_MSG_SATELLITES);
	for (size_t i = 0; i < WIRE_KEY_LEN; i++)
		assert_int_equal(back.u.satellites.list[0].psk[i], 0);
	/* has_psk is 0 or 1 only */
	buf[2 + WIRE_KEY_LEN + 8 + 20] = 2;
	assert_int_equal(decode_exact(buf, len, &back), CONTROL_DECODE_MALFORMED);

	/* the most a gateway serves: round trip, and it fits a frame as one record */
	make_satellites(&m, CONTROL_MAX_SATELLITES);
	for (size_t i = 0; i < CONTROL_MAX_SATELLITES; i++) {
		memset(m.u.satellites.list[i].name, 'a', CONTROL_NAME_MAX);
		m.u.satellites.list[i].name[CONTROL_NAME_MAX] = '\0';
		m.u.satellites.list[i].has_psk = true;
	}
	len = control_encode(&m, buf, sizeof(buf));
	assert_true(len > 0 && CONTROL_RECORD_HEADER_LEN + len <= CONTROL_MAX_PLAIN);
	assert_int_equal(decode_exact(buf, len, &back), CONTROL_DECODE_OK);
	assert_memory_equal(&back, &m, sizeof(m));

	/* one too many: refused both ways */
	buf[1] = CONTROL_MAX_SATELLITES + 1;
	assert_int_equal(decode_exact(buf, len, &back), CONTROL_DECODE_MALFORMED);
	m.u.satellites.n = CONTROL_MAX_SATELLITES + 1;
	assert_int_equal(control_encode(&m, buf, sizeof(buf)), 0);
	/* a bad name is refused by the encoder as by the decoder */
	make_satellites(&m, 1);
	strcpy(m.u.satellites.list[0].name, "a b");
	assert_int_equal(control_encode(&m, buf, sizeof(buf)), 0);
}

static void test_peer_satellites(void **state)
{
	struct control_message m, back;
	uint8_t buf[TEST_BUF_LEN];
	size_t len;
	(void)state;

	memset(&m, 0, sizeof(m));
	m.type = CONTROL_MSG_PEER_SATELLITES;
	memset(m.u.peer_satellites.node_key, 0x61, WIRE_KEY_LEN);
	len = control_encode(&m, buf, sizeof(buf));
	assert_int_equal(len, 1 + WIRE_KEY_LEN + 1); /* none (any more) */
	assert_int_equal(buf[0], 16);
	assert_int_equal(decode_exact(buf, len, &back), CONTROL_DECODE_OK);
	assert_memory_equal(&back, &m, sizeof(m));

	strcpy(m.u.peer_satellites.list[0].name, "phone");
	m.u.peer_satellites.list[0].ipv4[0] = 100;
	m.u.peer_satellites.list[0].ipv6[0] = 0xfd;
	m.u.peer_satellites.n = 1;
	len = control_encode(&m, buf, sizeof(buf));
	assert_int_equal(len, 1 + WIRE_KEY_LEN + 1 + 1 + 5 + 4 + 16);
	assert_memory_equal(buf + 1 + WIRE_KEY_LEN, "\x01\x05phone\x64", 8);
	assert_int_equal(decode_exact(buf, len, &back), CONTROL_DECODE_OK);
	assert_memory_equal(&back, &m, sizeof(m));
	for (size_t cut = 1; cut < len; cut++)
		assert_int_equal(decode_exact(buf, cut, &back), CONTROL_DECODE_MALFORMED);
	buf[len] = 0;
	assert_int_equal(decode_exact(buf, len + 1, &back), CONTROL_DECODE_MALFORMED);

	/* the most, and one too many */
	for (size_t i = 0; i < CONTROL_MAX_SATELLITES; i++) {
		memset(m.u.peer_satellites.list[i].name, 'a' + (int)i, CONTROL_NAME_MAX);
		m.u.peer_satellites.list[i].name[CONTROL_NAME_MAX] = '\0';
	}
	m.u.peer_satellites.n = CONTROL_MAX_SATELLITES;
	len = control_encode(&m, buf, sizeof(buf));
	assert_true(len > 0 && CONTROL_RECORD_HEADER_LEN + len <= CONTROL_MAX_PLAIN);
	assert_int_equal(decode_exact(buf, len, &back), CONTROL_DECODE_OK);
	assert_memory_equal(&back, &m, sizeof(m));
	buf[1 + WIRE_KEY_LEN] = CONTROL_MAX_SATELLITES + 1;
	assert_int_equal(decode_exact(buf, len, &back), CONTROL_DECODE_MALFORMED);
	m.u.peer_satellites.n = CONTROL_MAX_SATELLITES + 1;
	assert_int_equal(control_encode(&m, buf, sizeof(buf)), 0);
}

/* ---------------------------------------------------------------- relay messages */


static void test_publish_rules(void **state)
{
	struct control_message m;
	uint8_t buf[TEST_BUF_LEN];
	size_t len;
	(void)state;

	memset(&m, 0, sizeof(m));
	make_publish_for_test(&m);
	len = control_encode(&m, buf, sizeof(buf));
	assert_true(len > 0);
	/* a protocol other than tcp (6) or udp (17), port 0, a bad name, too many services */
	buf[1 + 1 + 1 + 3] = 7;
	assert_int_equal(decode_exact(buf, len, &m), CONTROL_DECODE_MALFORMED);
	memset(&m, 0, sizeof(m));
	make_publish_for_test(&m);
	m.u.publish.list[0].port = 0;
	assert_int_equal(control_encode(&m, buf, sizeof(buf)), 0);
	m.u.publish.list[0].port = 1;
	m.u.publish.list[0].proto = 1;
	assert_int_equal(control_encode(&m, buf, sizeof(buf)), 0);
	m.u.publish.list[0].proto = CONTROL_PROTO_UDP;
	strcpy(m.u.publish.list[0].name, "a b");
	assert_int_equal(control_encode(&m, buf, sizeof(buf)), 0);
	strcpy(m.u.publish.list[0].name, "ok");
	m.u.publish.n = CONTROL_MAX_PUBLISH + 1;
	assert_int_equal(control_encode(&m, buf, sizeof(buf)), 0);
	uint8_t over[] = { CONTROL_MSG_PUBLISH, CONTROL_MAX_PUBLISH + 1 };
	assert_int_equal(decode_exact(over, sizeof(over), &m), CONTROL_DECODE_MALFORMED);

	/* a state outside 1..CONTROL_PUBLISH_STATE_MAX */
	uint8_t st[] = { CONTROL_MSG_PUBLISH_STATE, 1, 'w', CONTROL_PROTO_TCP, 0x4e, 0x70, 0 };
	assert_int_equal(decode_exact(st, sizeof(st), &m), CONTROL_DECODE_MALFORMED);
	st[sizeof(st) - 1] = CONTROL_PUBLISH_STATE_MAX + 1;
	assert_int_equal(decode_exact(st, sizeof(st), &m), CONTROL_DECODE_MALFORMED);
	st[sizeof(st) - 1] = CONTROL_PUBLISH_NOT_GRANTED;
	assert_int_equal(decode_exact(st, sizeof(st), &m), CONTROL_DECODE_OK);
	assert_int_equal(m.u.publish_state.state, CONTROL_PUBLISH_NOT_GRANTED);
	assert_int_equal(m.u.publish_state.service.port, 20080);

	/* STREAM_OPEN: the client's family and port are checked, the secret carried whole */
	memset(&m, 0, sizeof(m));
	m.type = CONTROL_MSG_STREAM_OPEN;
	m.u.stream_open.stream_id = 42;
	m.u.stream_open.proto = CONTROL_PROTO_TCP;
	m.u.stream_open.port = 80;
	m.u.stream_open.client.family = 5;
	m.u.stream_open.client.port = 1;
	assert_int_equal(control_encode(&m, buf, sizeof(buf)), 0);
	m.u.stream_open.client.family = 4;
	m.u.stream_open.client.port = 0;
	assert_int_equal(control_encode(&m, buf, sizeof(buf)), 0);
	m.u.stream_open.client.port = 1;
	memset(m.u.stream_open.secret, 0xab, CONTROL_STREAM_SECRET_LEN);
	len = control_encode(&m, buf, sizeof(buf));
	assert_int_equal(len, 1 + 8 + CONTROL_STREAM_SECRET_LEN + 1 + 2 + 1 + 4 + 2);
	struct control_message back;
	assert_int_equal(decode_exact(buf, len, &back), CONTROL_DECODE_OK);
	assert_int_equal(back.u.stream_open.stream_id, 42);
	assert_memory_equal(back.u.stream_open.secret, m.u.stream_open.secret, CONTROL_STREAM_SECRET_LEN);
	buf[1 + 8 + CONTROL_STREAM_SECRET_LEN + 1 + 2] = 6; /* says IPv6 but carries 4 bytes */
	assert_int_equal(decode_exact(buf, len, &back), CONTROL_DECODE_MALFORMED);
}


int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_satellites),
		cmocka_unit_test(test_peer_satellites),
		cmocka_unit_test(test_publish_rules),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
