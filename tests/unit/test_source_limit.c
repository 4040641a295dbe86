/* Handshake rate per source address (core/source_limit.h): the bucket's rate and burst, what
 * counts as one source (IPv4 address, IPv6 /64, v4-mapped = IPv4), a table that stays bounded
 * under a flood of sources, and slots freed by idleness. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include <sodium.h>

#include "core/source_limit.h"

/* WireGuard's ratelimiter, written out: a changed constant breaks a test. */
#define WG_PER_SECOND 20
#define WG_BURST 5

enum {
	T0 = 1000000, /* any monotonic start */
};

static struct sockaddr_storage v4(const char *ip)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	in->sin_family = AF_INET;
	in->sin_port = htons(51820);
	assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
	return ss;
}

static struct sockaddr_storage v6(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
	in6->sin6_family = AF_INET6;
	in6->sin6_port = htons(port);
	assert_int_equal(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
	return ss;
}

static bool take(struct source_limit *l, const struct sockaddr_storage *ss, uint64_t now)
{
	return source_limit_take(l, (const struct sockaddr *)ss, now);
}

static void test_rate_and_burst(void **state)
{
	(void)state;
	struct source_limit l;
	source_limit_init(&l);
	struct sockaddr_storage a = v4("192.0.2.1");
	for (int i = 0; i < WG_BURST; i++)
		assert_true(take(&l, &a, T0));
	assert_false(take(&l, &a, T0));
	assert_false(take(&l, &a, T0 + 1000 / WG_PER_SECOND - 1));
	assert_true(take(&l, &a, T0 + 1000 / WG_PER_SECOND)); /* one more every 50 ms */
	assert_false(take(&l, &a, T0 + 1000 / WG_PER_SECOND));
	/* Over ten seconds of asking every millisecond, about rate x seconds get through. */
	unsigned int passed = 0;
	for (uint64_t t = T0 + 1000; t < T0 + 11000; t++)
		passed += take(&l, &a, t);
	assert_in_range(passed, 10 * WG_PER_SECOND, 10 * WG_PER_SECOND + WG_BURST);
	/* Idle for a second: the burst is back, no more. */
	for (int i = 0; i < WG_BURST; i++)
		assert_true(take(&l, &a, T0 + 12000));
	assert_false(take(&l, &a, T0 + 12000));
	source_limit_free(&l);
}

static void test_what_one_source_is(void **state)
{
	(void)state;
	struct source_limit l;
	source_limit_init(&l);
	struct sockaddr_storage a = v4("192.0.2.1"), a_mapped = v6("::ffff:192.0.2.1", 9),
				b = v4("192.0.2.2"), n1 = v6("2001:db8:1:2::1", 1), n1_other = v6("2001:db8:1:2:ffff::9", 2),
				n2 = v6("2001:db8:1:3::1", 1);
	for (int i = 0; i < WG_BURST; i++)
		assert_true(take(&l, &a, T0));
	assert_false(take(&l, &a_mapped, T0)); /* the same IPv4 sender on a dual-stack socket */
	assert_true(take(&l, &b, T0));         /* another address: its own bucket */
	for (int i = 0; i < WG_BURST; i++)
		assert_true(take(&l, &n1, T0));
	assert_false(take(&l, &n1_other, T0)); /* the same /64 */
	assert_true(take(&l, &n2, T0));        /* the next /64 */
	struct sockaddr_storage unix_like;
	memset(&unix_like, 0, sizeof(unix_like));
	unix_like.ss_family = AF_UNIX;
	assert_false(take(&l, &unix_like, T0));
	source_limit_free(&l);
}

/* A flood from a million sources at one instant: the table stays its size, most new sources
 * are refused once it is full (counted), and a second later it serves new sources again. */
static void test_table_bounded(void **state)
{
	(void)state;
	struct source_limit l;
	source_limit_init(&l);
	unsigned int admitted = 0;
	for (uint32_t i = 0; i < 1000000; i++) {
		struct sockaddr_storage ss = v4("10.0.0.0");
		uint32_t addr = htonl(0x0a000000u + i);
		memcpy(&((struct sockaddr_in *)&ss)->sin_addr, &addr, 4);
		admitted += take(&l, &ss, T0);
	}
	assert_in_range(admitted, SOURCE_LIMIT_SLOTS / 2, SOURCE_LIMIT_SLOTS);
	assert_true(l.refused_full >= 1000000 - SOURCE_LIMIT_SLOTS);
	struct sockaddr_storage late = v4("192.0.2.77");
	assert_true(take(&l, &late, T0 + SOURCE_LIMIT_IDLE_MS));
	source_limit_free(&l);
	source_limit_free(&l); /* twice is harmless */
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rate_and_burst),
		cmocka_unit_test(test_what_one_source_is),
		cmocka_unit_test(test_table_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
