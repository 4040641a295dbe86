/* When a coordinator-managed node writes its state file (coordmap_save_due_ms): our own
 * registration a second after it changes; map changes a second after the first of a burst,
 * and then no more often than every 30 s, so a node flooding the coordinator with endpoint
 * changes cannot make every node rewrite and fsync its map in its packet loop each second. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "meshd/coordclient_internal.h"

/* The intended cadence, written out: a changed constant breaks the test. */
#define DELAY_MS 1000u
#define INTERVAL_MS 30000u
#define T0 UINT64_C(5000000)

static void test_save_cadence(void **state)
{
	(void)state;
	static struct coordclient cc; /* large: not on the stack */
	memset(&cc, 0, sizeof(cc));
	assert_true(coordmap_save_due_ms(&cc) == UINT64_MAX); /* nothing to save */

	/* The first change: saved a second later. */
	coordmap_mark_dirty(&cc, T0);
	coordmap_mark_dirty(&cc, T0 + 500); /* the burst goes into the same write */
	assert_true(coordmap_save_due_ms(&cc) == T0 + DELAY_MS);

	/* Pretend that save happened (what coordmap_save records). */
	cc.state_dirty = false;
	cc.state_saved_once = true;
	cc.state_saved_ms = T0 + DELAY_MS;

	/* A churning map: every change waits for the interval since the last save. */
	coordmap_mark_dirty(&cc, T0 + 2000);
	assert_true(coordmap_save_due_ms(&cc) == T0 + DELAY_MS + INTERVAL_MS);
	/* After a quiet spell longer than the interval, the delay alone. */
	cc.state_dirty = false;
	coordmap_mark_dirty(&cc, T0 + 100000);
	assert_true(coordmap_save_due_ms(&cc) == T0 + 100000 + DELAY_MS);

	/* Our registration (addresses, the pinned overlay) does not wait for the interval. */
	cc.state_dirty = false;
	cc.state_saved_ms = T0 + 200000;
	coordmap_mark_dirty_urgent(&cc, T0 + 200100);
	assert_true(coordmap_save_due_ms(&cc) == T0 + 200100 + DELAY_MS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_save_cadence),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
