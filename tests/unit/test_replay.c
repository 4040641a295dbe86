/* Anti-replay window: scripted edge cases, then a differential run against a naive model. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/replay.h"
#include "core/session.h"

/* A deep copy of a replay window (its ring sits behind a pointer, allocated at the first
 * recorded counter), to check that nothing in it moved. */
struct snapshot {
	uint64_t greatest;
	bool any_seen;
	uint64_t ring[REPLAY_RING_WORDS];
};

static void snap(struct snapshot *s, const struct replay_window *w)
{
	memset(s, 0, sizeof(*s));
	s->greatest = w->greatest;
	s->any_seen = w->any_seen;
	if (w->ring)
		memcpy(s->ring, w->ring, sizeof(s->ring));
}

static void assert_unchanged(const struct snapshot *before, const struct replay_window *w)
{
	struct snapshot now;
	snap(&now, w);
	assert_memory_equal(before, &now, sizeof(now));
}

/* Literals, not replay.h's and session.h's names, so a changed constant breaks the tests:
 * WireGuard's window of 8128 counters, and its REJECT_AFTER_MESSAGES, 2^64 - 1 - 8128 - 1. */
#define W UINT64_C(8128)
#define JUMP UINT64_C(1000000)
#define LIMIT UINT64_C(18446744073709543486)
#define LAP ((uint64_t)REPLAY_RING_WORDS * REPLAY_BITS_PER_WORD) /* counters per trip round the ring */

struct replay_step {
	uint64_t counter;
	bool accept;
};

/* Feeds each counter as the data path does (check, then update) and checks the verdict;
 * replay_check must leave the window byte-for-byte unchanged. */
static void run_steps(const struct replay_step *steps, size_t n)
{
	struct replay_window w;
	struct snapshot before;
	size_t i;

	replay_init(&w);
	for (i = 0; i < n; i++) {
		bool ok;

		snap(&before, &w);
		ok = replay_check(&w, steps[i].counter);
		assert_unchanged(&before, &w);
		if (ok != steps[i].accept)
			fail_msg("step %zu: counter %llu: check said %d, expected %d", i,
				 (unsigned long long)steps[i].counter, ok, steps[i].accept);
		ok = replay_update(&w, steps[i].counter);
		if (ok != steps[i].accept)
			fail_msg("step %zu: counter %llu: update said %d, expected %d", i,
				 (unsigned long long)steps[i].counter, ok, steps[i].accept);
		if (!ok)
			assert_unchanged(&before, &w);
	}
	replay_free(&w);
}

static const struct replay_step steps_in_order[] = {
	{ 0, true }, { 1, true }, { 2, true }, { 3, true }, { 63, true }, { 64, true }, { 65, true },
	{ 0, false }, { 64, false },
};

static const struct replay_step steps_reordered[] = {
	{ 0, true }, { 1, true }, { 1, false }, { 9, true }, { 8, true }, { 7, true }, { 7, false },
	{ 5, true }, { 6, true }, { 2, true }, { 2, false }, { 4, true }, { 3, true }, { 3, false },
	/* the whole window behind a new top is still open */
	{ W + 100, true }, { 101, true }, { 100, false }, { W + 99, true }, { 1000, true }, { W + 98, true },
	{ 1000, false },
};

/* With greatest G, G - (W - 1) is the oldest acceptable counter, G - W the first too old. */
static const struct replay_step steps_too_old[] = {
	{ 2 * W, true },
	{ 2 * W - W, false },          /* exactly one past the edge */
	{ 2 * W - W - 1, false },      /* beyond it */
	{ 0, false },                  /* far beyond it */
	{ 2 * W - (W - 1), true },     /* exactly at the edge: accepted once */
	{ 2 * W - (W - 1), false },
	{ 2 * W - (W - 2), true },     /* just inside */
	{ 2 * W - 1, true },
	{ 2 * W, false },
	/* moving the top slides the edge with it */
	{ 2 * W + 3, true },
	{ 2 * W + 3 - W, false },       /* never seen, but now one past the edge */
	{ 2 * W + 3 - (W - 1), true },  /* never seen, now exactly at the edge */
	{ 2 * W + 3 - (W - 2), true },
	{ 2 * W - (W - 1), false },     /* the old edge, seen and now outside */
};

static const struct replay_step steps_far_ahead[] = {
	{ 0, true }, { 5, true }, { 100, true },
	{ JUMP, true },
	{ 100, false }, { 101, false }, { 6, false }, { JUMP - W, false },
	{ JUMP - W + 1, true }, { JUMP - 1, true }, { JUMP - 64, true }, { JUMP - 4096, true },
	{ JUMP - 1, false }, { JUMP, false },
	{ JUMP + 1, true },
	/* exactly one ring lap ahead: same slot and bit as JUMP + 1, so the stale word must be cleared */
	{ JUMP + 1 + LAP, true },
	{ JUMP + 1, false },
	{ JUMP + LAP, true },
	{ JUMP + 1 + LAP - (W - 1), true },
	{ JUMP + 1 + LAP - W, false },
	/* many laps ahead: only one lap of words is cleared, and that is enough */
	{ 5 * JUMP + 1, true }, { 5 * JUMP + 1 - 64, true }, { 5 * JUMP + 1 - LAP, false },
};

/* Every word of the ring gets reused several times; the first counter of each lap (same
 * slot, same bit as the lap before) must be seen as new. */
static const struct replay_step steps_ring_wrap[] = {
	{ 0, true }, { 64 * 127, true }, { 64 * 128, true }, { 0, false }, { 64, false },
	{ 64 * 128 + 1, true }, { 64 * 129, true }, { 64, false }, { 64 * 129 - W, false },
	{ 64 * 129 - W + 1, true }, { 64 * 255, true }, { 64 * 256, true }, { 64 * 256 + 64, true },
	{ 64 * 128 + 64, false }, { 64 * 256 + 63, true }, { 64 * 256 + 63, false },
	{ 64 * 384 + 65, true }, { 64 * 384 + 64, true }, { 64 * 256 + 65, false },
};

/* The window works over the whole 64-bit range; refusing counters at or past the message
 * limit is session_decrypt's job, not the window's. */
static const struct replay_step steps_near_limit[] = {
	{ LIMIT - 2 * W, true }, { LIMIT - 1, true }, { LIMIT - 2, true }, { LIMIT - 1, false },
	{ LIMIT - 1 - W, false }, { LIMIT - W, true }, { LIMIT - 2 * W, false },
	{ LIMIT, true }, { UINT64_MAX - 1, true }, { UINT64_MAX, true }, { UINT64_MAX, false },
	{ UINT64_MAX - W, false }, { UINT64_MAX - (W - 1), true }, { 0, false }, { LIMIT - 1, false },
};

#define STEPS_TEST(name)                                                                 \
	static void test_##name(void **state)                                            \
	{                                                                                \
		(void)state;                                                             \
		run_steps(steps_##name, sizeof(steps_##name) / sizeof(steps_##name[0])); \
	}

STEPS_TEST(in_order)
STEPS_TEST(reordered)
STEPS_TEST(too_old)
STEPS_TEST(far_ahead)
STEPS_TEST(ring_wrap)
STEPS_TEST(near_limit)

static void test_first_counter_zero(void **state)
{
	struct replay_window w;

	(void)state;
	replay_init(&w);
	assert_true(replay_check(&w, 0));
	assert_true(replay_update(&w, 0));
	assert_false(replay_check(&w, 0));
	assert_false(replay_update(&w, 0));
	assert_true(replay_update(&w, 1));
	replay_free(&w);
}

static void test_first_counter_high(void **state)
{
	struct replay_window w;

	(void)state;
	replay_init(&w);
	assert_true(replay_update(&w, UINT64_MAX));
	assert_false(replay_check(&w, 0));
	assert_true(replay_check(&w, UINT64_MAX - 1));
	replay_free(&w);
}

/* After a full window, jump ahead by each distance: inside the new window exactly the
 * counters above the old top are new, whatever words the jump skipped or lapped. */
static void test_jump_clears_stale_words(void **state)
{
	static const uint64_t jumps[] = {
		1, 63, 64, 65, W - 1, W, W + 1, LAP - 64, LAP - 1, LAP, LAP + 1, LAP + 64,
		2 * LAP + 5, 127 * LAP + 4321, JUMP, UINT64_C(1) << 40,
	};
	const uint64_t start = 1000; /* not word-aligned, so the window's edges fall mid-word */
	size_t j;

	(void)state;
	for (j = 0; j < sizeof(jumps) / sizeof(jumps[0]); j++) {
		struct replay_window w;
		uint64_t old_top = start + W - 1, new_top = old_top + jumps[j], c;

		replay_init(&w);
		for (c = start; c <= old_top; c++)
			assert_true(replay_update(&w, c));
		assert_true(replay_update(&w, new_top));
		for (c = new_top - (W - 1); c < new_top; c++)
			if (replay_check(&w, c) != (c > old_top))
				fail_msg("jump %llu: counter %llu misjudged", (unsigned long long)jumps[j],
					 (unsigned long long)c);
		assert_false(replay_check(&w, new_top - W));
		assert_false(replay_check(&w, new_top));
		replay_free(&w);
	}
}

/* ---- differential test against a naive model ---- */

/* Naive model: a bit per counter ever recorded, relative to a base so counters near the top
 * of the 64-bit range fit. Same acceptance rule, written the obvious way. */
struct naive {
	uint64_t base;
	uint8_t *seen; /* one bit per counter offset */
	bool any;
	uint64_t greatest;
};

static bool naive_accepts(const struct naive *m, uint64_t off)
{
	if (!m->any || off > m->greatest)
		return true;
	if (m->greatest - off >= W)
		return false;
	return !(m->seen[off / 8] & (1u << (off % 8)));
}

static void naive_record(struct naive *m, uint64_t off)
{
	m->seen[off / 8] |= (uint8_t)(1u << (off % 8));
	if (!m->any || off > m->greatest)
		m->greatest = off;
	m->any = true;
}

/* xorshift64*: fixed seed, so a failure reproduces exactly. */
static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * UINT64_C(2685821657736338717);
}

enum {
	DIFF_STEPS = 400000,
	DIFF_SPACE = 1 << 26, /* counter offsets used; the model's bitmap is DIFF_SPACE / 8 bytes */
};

static void differential(uint64_t base, uint64_t seed)
{
	struct naive m = { .base = base };
	struct replay_window w;
	struct snapshot before;
	uint64_t rng = seed, top = 0;
	size_t step;
	unsigned int accepted = 0, rejected = 0;

	m.seen = calloc(DIFF_SPACE / 8, 1);
	assert_non_null(m.seen);
	replay_init(&w);

	for (step = 0; step < DIFF_STEPS; step++) {
		uint64_t r = rng_next(&rng), pick = r % 100, off;
		bool want, got, authentic;

		if (pick < 35) /* in order or slightly ahead */
			off = top + 1 + (r >> 8) % 64;
		else if (pick < 65) /* reordered, inside the window or just around its edge */
			off = top - (r >> 8) % (W + 256);
		else if (pick < 75) /* exact edge cases */
			off = top - (W - 2) + (r >> 8) % 4;
		else if (pick < 85) /* recent duplicates */
			off = top - (r >> 8) % 8;
		else if (pick < 86) /* a jump, sometimes past a whole ring lap */
			off = top + 1 + (r >> 8) % (3 * W);
		else /* far too old */
			off = (r >> 8) % (top + 1);

		if (off >= DIFF_SPACE)
			off = top; /* stay inside the model's space; also catches top - x underflowing */
		if (off > top)
			top = off;

		want = naive_accepts(&m, off);
		snap(&before, &w);
		got = replay_check(&w, base + off);
		if (got != want)
			fail_msg("step %zu: check(%llu) = %d, model says %d", step, (unsigned long long)off, got, want);
		assert_unchanged(&before, &w);

		/* One in ten packets fails authentication: only the check runs, nothing is recorded. */
		authentic = rng_next(&rng) % 10 != 0;
		if (!authentic)
			continue;
		got = replay_update(&w, base + off);
		if (got != want)
			fail_msg("step %zu: update(%llu) = %d, model says %d", step, (unsigned long long)off, got, want);
		if (!want)
			assert_unchanged(&before, &w);
		if (want) {
			naive_record(&m, off);
			accepted++;
		} else {
			rejected++;
		}
	}
	/* The mix must really exercise both outcomes. */
	assert_true(accepted > DIFF_STEPS / 10);
	assert_true(rejected > DIFF_STEPS / 10);
	/* Finally, every offset in the last window agrees too. */
	for (uint64_t off = top > 2 * W ? top - 2 * W : 0; off <= top + 2; off++)
		assert_int_equal(replay_check(&w, base + off), naive_accepts(&m, off));
	free(m.seen);
	replay_free(&w);
}

static void test_differential_low(void **state)
{
	(void)state;
	differential(0, UINT64_C(0x9e3779b97f4a7c15));
}

static void test_differential_near_limit(void **state)
{
	(void)state;
	/* The run ends close to, but below, the point where a counter would wrap. */
	differential(UINT64_MAX - DIFF_SPACE, UINT64_C(0x2545f4914f6cdd1d));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_counter_zero),
		cmocka_unit_test(test_first_counter_high),
		cmocka_unit_test(test_in_order),
		cmocka_unit_test(test_reordered),
		cmocka_unit_test(test_too_old),
		cmocka_unit_test(test_far_ahead),
		cmocka_unit_test(test_ring_wrap),
		cmocka_unit_test(test_near_limit),
		cmocka_unit_test(test_jump_clears_stale_words),
		cmocka_unit_test(test_differential_low),
		cmocka_unit_test(test_differential_near_limit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
