/* Subnet routes: the ROUTES and PEER_ROUTES codec (strict: host bits, lengths, counts, trailing
 * bytes) and the pure rules of core/routes.c (parsing, auto approval, collisions). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "core/control.h"
#include "core/routes.h"

static struct control_route R(const char *s)
{
	struct control_route r;

	assert_true(route_parse(s, &r));
	return r;
}

static void test_parse_and_format(void **state)
{
	(void)state;
	struct control_route r;
	char buf[ROUTE_STR_MAX];

	assert_true(route_parse("192.168.1.0/24", &r));
	assert_int_equal(r.family, 4);
	assert_int_equal(r.bits, 24);
	assert_string_equal(route_format(&r, buf, sizeof(buf)), "192.168.1.0/24");
	assert_true(route_parse("fd00:1::/64", &r));
	assert_int_equal(r.family, 6);
	assert_true(route_parse("0.0.0.0/0", &r));
	assert_true(route_is_exit(&r));
	assert_false(route_parse("192.168.1.1/24", &r)); /* host bits: a typo, not a wider net */
	assert_false(route_parse("192.168.1.0", &r));    /* the length is required */
	assert_false(route_parse("192.168.1.0/33", &r));
	assert_false(route_parse("nonsense/8", &r));
}

static void test_overlap_within(void **state)
{
	(void)state;
	struct control_route a = R("10.1.0.0/16"), b = R("10.1.2.0/24"), c = R("10.2.0.0/16"), d = R("fd00::/8");

	assert_true(route_within(&b, &a));
	assert_false(route_within(&a, &b));
	assert_true(route_overlaps(&a, &b));
	assert_true(route_overlaps(&b, &a));
	assert_false(route_overlaps(&a, &c));
	assert_false(route_overlaps(&a, &d)); /* families never overlap */
}

static void test_auto_approve(void **state)
{
	(void)state;
	struct route_auto_rule rules[2];

	memset(rules, 0, sizeof(rules));
	rules[0].prefix = R("192.168.0.0/16");
	strcpy(rules[0].nodes[0], "*");
	rules[0].n_nodes = 1;
	rules[1].prefix = R("0.0.0.0/0");
	strcpy(rules[1].nodes[0], "gw");
	rules[1].n_nodes = 1;

	struct control_route lan = R("192.168.7.0/24"), wide = R("192.0.0.0/8"), other = R("10.0.0.0/8");
	struct control_route exit4 = R("0.0.0.0/0"), exit6 = R("::/0");
	assert_true(route_auto_approves(rules, 1, "anyone", &lan));
	assert_false(route_auto_approves(rules, 1, "anyone", &wide)); /* wider than the rule */
	assert_false(route_auto_approves(rules, 1, "anyone", &other));
	assert_true(route_auto_approves(rules, 2, "gw", &other));     /* inside 0.0.0.0/0 */
	assert_true(route_auto_approves(rules, 2, "gw", &exit4));
	assert_false(route_auto_approves(rules, 2, "nas", &exit4));
	assert_false(route_auto_approves(rules, 2, "gw", &exit6));    /* ::/0 is not in 0/0 */
	assert_false(route_auto_approves(rules, 0, "gw", &lan));
}

static void test_collisions(void **state)
{
	(void)state;
	struct control_route ov4 = R("100.64.0.0/10"), ov6 = R("fd11:2233:4455::/48");
	struct control_route taken[3] = { R("192.168.1.0/24"), R("0.0.0.0/0"), R("fd99::/64") };

	struct control_route same = R("192.168.1.0/24"), inner = R("192.168.1.128/25"), outer = R("192.168.0.0/16");
	struct control_route free4 = R("192.168.2.0/24"), mesh = R("100.64.3.0/24"), wider = R("100.0.0.0/8");
	struct control_route mesh6 = R("fd11:2233:4455:1::/64"), exit = R("0.0.0.0/0");
	assert_int_equal(route_check_approval(&same, &ov4, &ov6, taken, 3), ROUTE_TAKEN);
	assert_int_equal(route_check_approval(&inner, &ov4, &ov6, taken, 3), ROUTE_TAKEN);
	assert_int_equal(route_check_approval(&outer, &ov4, &ov6, taken, 3), ROUTE_TAKEN);
	assert_int_equal(route_check_approval(&free4, &ov4, &ov6, taken, 3), ROUTE_OK); /* the 0/0 is an exit */
	assert_int_equal(route_check_approval(&mesh, &ov4, &ov6, taken, 3), ROUTE_OVERLAPS_OVERLAY);
	assert_int_equal(route_check_approval(&wider, &ov4, &ov6, taken, 3), ROUTE_OVERLAPS_OVERLAY);
	assert_int_equal(route_check_approval(&mesh6, &ov4, &ov6, taken, 3), ROUTE_OVERLAPS_OVERLAY);
	assert_int_equal(route_check_approval(&exit, &ov4, &ov6, taken, 3), ROUTE_OK); /* many exits */
	assert_string_not_equal(route_refusal_text(ROUTE_TAKEN), "ok");
}

/* ---------------------------------------------------------------- codec */

static void test_codec_round_trip(void **state)
{
	(void)state;
	struct control_message m, back;
	uint8_t buf[CONTROL_MAX_PLAIN], again[CONTROL_MAX_PLAIN];

	memset(&m, 0, sizeof(m));
	m.type = CONTROL_MSG_PEER_ROUTES;
	memset(m.u.peer_routes.node_key, 0x5a, WIRE_KEY_LEN);
	m.u.peer_routes.routes.list[0] = R("192.168.1.0/24");
	m.u.peer_routes.routes.list[1] = R("fd00:1::/64");
	m.u.peer_routes.routes.list[2] = R("::/0");
	m.u.peer_routes.routes.n = 3;
	size_t len = control_encode(&m, buf, sizeof(buf));
	assert_int_equal(len, 1 + WIRE_KEY_LEN + 1 + (2 + 4) + (2 + 16) + (2 + 16));
	assert_int_equal(control_decode(buf, len, &back), CONTROL_DECODE_OK);
	assert_int_equal(back.type, CONTROL_MSG_PEER_ROUTES);
	assert_int_equal(back.u.peer_routes.routes.n, 3);
	assert_true(route_equal(&back.u.peer_routes.routes.list[1], &m.u.peer_routes.routes.list[1]));
	assert_int_equal(control_encode(&back, again, sizeof(again)), len);
	assert_memory_equal(buf, again, len);

	/* golden bytes of a ROUTES with one IPv4 prefix */
	memset(&m, 0, sizeof(m));
	m.type = CONTROL_MSG_ROUTES;
	m.u.routes.list[0] = R("10.1.0.0/16");
	m.u.routes.n = 1;
	static const uint8_t golden[] = { 11, 1, 4, 16, 10, 1, 0, 0 };
	len = control_encode(&m, buf, sizeof(buf));
	assert_int_equal(len, sizeof(golden));
	assert_memory_equal(buf, golden, sizeof(golden));
}

static void test_codec_strict(void **state)
{
	(void)state;
	struct control_message m;
	const uint8_t host_bits[] = { 11, 1, 4, 16, 10, 1, 0, 1 };
	const uint8_t too_long[] = { 11, 1, 4, 33, 10, 1, 0, 0 };
	const uint8_t bad_family[] = { 11, 1, 5, 16, 10, 1, 0, 0 };
	const uint8_t trailing[] = { 11, 1, 4, 16, 10, 1, 0, 0, 0 };
	const uint8_t short_addr[] = { 11, 1, 4, 16, 10, 1, 0 };
	const uint8_t count_over[] = { 11, CONTROL_MAX_ROUTES + 1 };
	const uint8_t empty_ok[] = { 11, 0 };

	assert_int_equal(control_decode(host_bits, sizeof(host_bits), &m), CONTROL_DECODE_MALFORMED);
	assert_int_equal(control_decode(too_long, sizeof(too_long), &m), CONTROL_DECODE_MALFORMED);
	assert_int_equal(control_decode(bad_family, sizeof(bad_family), &m), CONTROL_DECODE_MALFORMED);
	assert_int_equal(control_decode(trailing, sizeof(trailing), &m), CONTROL_DECODE_MALFORMED);
	assert_int_equal(control_decode(short_addr, sizeof(short_addr), &m), CONTROL_DECODE_MALFORMED);
	assert_int_equal(control_decode(count_over, sizeof(count_over), &m), CONTROL_DECODE_MALFORMED);
	assert_int_equal(control_decode(empty_ok, sizeof(empty_ok), &m), CONTROL_DECODE_OK);
	assert_int_equal(m.u.routes.n, 0);

	/* the encoder refuses what the decoder would */
	uint8_t buf[64];
	memset(&m, 0, sizeof(m));
	m.type = CONTROL_MSG_ROUTES;
	m.u.routes.list[0] = (struct control_route){ .family = 4, .bits = 8, .addr = { 10, 0, 0, 1 } };
	m.u.routes.n = 1;
	assert_int_equal(control_encode(&m, buf, sizeof(buf)), 0);
	m.u.routes.n = CONTROL_MAX_ROUTES + 1;
	assert_int_equal(control_encode(&m, buf, sizeof(buf)), 0);
}

/* The largest PEER_ROUTES fits an empty frame as one record. */
static void test_codec_max_fits(void **state)
{
	(void)state;
	struct control_message m;
	uint8_t plain[CONTROL_MAX_PLAIN];
	size_t used = 0;

	memset(&m, 0, sizeof(m));
	m.type = CONTROL_MSG_PEER_ROUTES;
	for (size_t i = 0; i < CONTROL_MAX_ROUTES; i++) {
		m.u.peer_routes.routes.list[i].family = 6;
		m.u.peer_routes.routes.list[i].bits = 128;
		memset(m.u.peer_routes.routes.list[i].addr, (int)i + 1, 16);
	}
	m.u.peer_routes.routes.n = CONTROL_MAX_ROUTES;
	assert_true(control_record_append(plain, sizeof(plain), &used, &m));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_and_format), cmocka_unit_test(test_overlap_within),
		cmocka_unit_test(test_auto_approve),     cmocka_unit_test(test_collisions),
		cmocka_unit_test(test_codec_round_trip), cmocka_unit_test(test_codec_strict),
		cmocka_unit_test(test_codec_max_fits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
