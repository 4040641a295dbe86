/* coord/srclimit: per-source buckets in a bounded table, driven by an injected clock. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/srclimit.h"

static struct sockaddr_in v4(uint32_t host_order)
{
	struct sockaddr_in a;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(host_order);
	a.sin_port = htons(1000);
	return a;
}

static struct sockaddr_in6 v6(const char *s)
{
	struct sockaddr_in6 a;
	memset(&a, 0, sizeof(a));
	a.sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, s, &a.sin6_addr), 1);
	return a;
}

static void test_rate_per_source(void **state)
{
	struct srclimit t;
	struct sockaddr_in a = v4(0xc0000201), b = v4(0xc0000202);
	(void)state;

	assert_true(srclimit_init(&t, 64, 10, 5));
	struct srclimit_entry *ea = srclimit_get(&t, (struct sockaddr *)&a, 1000);
	assert_non_null(ea);
	for (int i = 0; i < 5; i++)
		assert_true(srclimit_take(&t, ea, 1000));
	assert_false(srclimit_take(&t, ea, 1000)); /* the burst is spent */
	/* another source has its own bucket */
	struct srclimit_entry *eb = srclimit_get(&t, (struct sockaddr *)&b, 1000);
	assert_non_null(eb);
	assert_ptr_not_equal(ea, eb);
	assert_true(srclimit_take(&t, eb, 1000));
	/* 10 per second: one more after 100 ms, the same entry found again */
	assert_ptr_equal(srclimit_get(&t, (struct sockaddr *)&a, 1100), ea);
	assert_true(srclimit_take(&t, ea, 1100));
	assert_false(srclimit_take(&t, ea, 1100));
	srclimit_free(&t);
}

static void test_mapped_and_v6_prefix(void **state)
{
	struct srclimit t;
	struct sockaddr_in a = v4(0xcb007107);
	struct sockaddr_in6 mapped = v6("::ffff:203.0.113.7");
	struct sockaddr_in6 h1 = v6("2001:db8:1:2::1"), h2 = v6("2001:db8:1:2::ffff"), other = v6("2001:db8:1:3::1");
	(void)state;

	assert_true(srclimit_init(&t, 64, 10, 5));
	struct srclimit_entry *e = srclimit_get(&t, (struct sockaddr *)&a, 0);
	assert_ptr_equal(srclimit_get(&t, (struct sockaddr *)&mapped, 0), e);
	struct srclimit_entry *p = srclimit_get(&t, (struct sockaddr *)&h1, 0);
	assert_ptr_equal(srclimit_get(&t, (struct sockaddr *)&h2, 0), p); /* same /64 */
	assert_ptr_not_equal(srclimit_get(&t, (struct sockaddr *)&other, 0), p);
	assert_ptr_equal(srclimit_find(&t, (struct sockaddr *)&h2), p);
	struct sockaddr un = { .sa_family = AF_UNIX };
	assert_null(srclimit_get(&t, &un, 0));
	srclimit_free(&t);
}

/* A full table never evicts a busy source: newcomers get NULL until entries go idle. */
static void test_bounded_busy_never_evicted(void **state)
{
	struct srclimit t;
	size_t got = 0, refused = 0;
	(void)state;

	assert_true(srclimit_init(&t, 16, 10, 5)); /* 4 sets of 4 */
	struct sockaddr_in victim = v4(0xc6336401);
	struct srclimit_entry *ve = srclimit_get(&t, (struct sockaddr *)&victim, 0);
	assert_non_null(ve);
	for (int i = 0; i < 5; i++)
		assert_true(srclimit_take(&t, ve, 0));
	ve->held = 1;
	/* 10,000 other sources at the same moment: each takes a token, so none is idle */
	for (uint32_t i = 0; i < 10000; i++) {
		struct sockaddr_in a = v4(0x0a000000u + i);
		struct srclimit_entry *e = srclimit_get(&t, (struct sockaddr *)&a, 0);
		if (e) {
			got++;
			assert_true(srclimit_take(&t, e, 0));
		} else {
			refused++;
		}
	}
	assert_true(got <= 15);
	assert_true(refused >= 10000 - 15);
	/* the victim's bucket is still empty: not reset by eviction */
	assert_ptr_equal(srclimit_get(&t, (struct sockaddr *)&victim, 0), ve);
	assert_false(srclimit_take(&t, ve, 0));
	/* once idle (burst/rate = 500 ms, nothing held), entries are reused */
	ve->held = 0;
	struct sockaddr_in late = v4(0x0b000001);
	assert_non_null(srclimit_get(&t, (struct sockaddr *)&late, 600));
	srclimit_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rate_per_source),
		cmocka_unit_test(test_mapped_and_v6_prefix),
		cmocka_unit_test(test_bounded_busy_never_evicted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
