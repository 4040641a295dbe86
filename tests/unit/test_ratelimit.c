/* The relay's token bucket, driven by an injected clock. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/ratelimit.h"

static void test_burst_then_rate(void **state)
{
	struct ratelimit b;
	(void)state;

	ratelimit_init(&b, 10000, 1000);
	/* A full bucket: the burst passes at once, one more byte does not. */
	assert_true(ratelimit_take(&b, 1000, 10000, 1000, 6000));
	assert_true(ratelimit_take(&b, 1000, 10000, 1000, 4000));
	assert_false(ratelimit_take(&b, 1000, 10000, 1000, 1));
	/* 1,000 bytes/s: 1 byte per ms, counted even in 1 ms steps. */
	for (uint64_t t = 1001; t <= 1100; t++)
		assert_true(ratelimit_take(&b, 1000, 10000, t, 1));
	assert_false(ratelimit_take(&b, 1000, 10000, 1100, 1));
	/* A refused take leaves the tokens it did not take. */
	assert_false(ratelimit_take(&b, 1000, 10000, 1150, 51));
	assert_true(ratelimit_take(&b, 1000, 10000, 1150, 50));
}

static void test_refill_capped_at_burst(void **state)
{
	struct ratelimit b;
	(void)state;

	ratelimit_init(&b, 5000, 0);
	assert_true(ratelimit_take(&b, 1000, 5000, 0, 5000));
	/* An hour idle refills only the burst, and huge gaps do not overflow. */
	assert_true(ratelimit_take(&b, 1000, 5000, 3600000, 5000));
	assert_false(ratelimit_take(&b, 1000, 5000, 3600000, 1));
	assert_true(ratelimit_take(&b, UINT32_MAX, UINT32_MAX, UINT64_C(1) << 62, UINT32_MAX));
}

static void test_sustained_rate(void **state)
{
	struct ratelimit b;
	uint64_t passed = 0;
	(void)state;

	/* 10 s of 1,000-byte frames offered every ms (1 MB/s) against 100,000 bytes/s: what
	 * passes is the burst plus 10 s at the rate, to the frame. */
	ratelimit_init(&b, 20000, 0);
	for (uint64_t t = 0; t < 10000; t++)
		if (ratelimit_take(&b, 100000, 20000, t, 1000))
			passed += 1000;
	assert_true(passed >= 20000 + 999000 - 1000 && passed <= 20000 + 1000000);
}

static void test_unlimited_and_oversize(void **state)
{
	struct ratelimit b;
	(void)state;

	ratelimit_init(&b, 4004, 0);
	for (int i = 0; i < 1000; i++)
		assert_true(ratelimit_take(&b, 0, 4004, 0, 4004)); /* rate 0: no limit */
	/* A frame larger than the burst never passes, however long it waits. */
	assert_false(ratelimit_take(&b, 1000, 4004, 1000000, 4005));
	assert_true(ratelimit_take(&b, 1000, 4004, 1000000, 4004));
	/* The clock standing still or going back refills nothing. */
	assert_false(ratelimit_take(&b, 1000, 4004, 999999, 1));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_burst_then_rate),
		cmocka_unit_test(test_refill_capped_at_burst),
		cmocka_unit_test(test_sustained_rate),
		cmocka_unit_test(test_unlimited_and_oversize),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
