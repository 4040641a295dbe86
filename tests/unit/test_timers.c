/* Peer timers driven by an injected clock: plain uint64_t "now" values, so 540 s of protocol
 * time run in microseconds. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "core/timers.h"

/* Scenario times are relative to T0, so a deadline of 0 ("disarmed") never collides. */
#define T0 UINT64_C(1000000)
#define NEVER UINT64_MAX
#define S(x) ((uint64_t)(x) * 1000u)

/* WireGuard's timer values (whitepaper section 6), as literals: the tests use these, never
 * timers.h's names, so a changed constant breaks a test instead of moving with it. */
#define WG_REKEY_TIMEOUT_MS 5000u
#define WG_REKEY_TIMEOUT_JITTER_MS 333u
#define WG_REKEY_ATTEMPT_TIME_MS 90000u
#define WG_MAX_HANDSHAKE_ATTEMPTS 18u
#define WG_KEEPALIVE_TIMEOUT_MS 10000u
#define WG_ZERO_KEYS_AFTER_MS UINT64_C(540000)

enum step_op {
	EXPECT_EXPIRE,   /* arg: the exact action set timers_expire must return at `at` */
	EXPECT_NEXT,     /* arg: the next deadline (relative), or NEVER */
	DATA_SENT,
	DATA_RECEIVED,
	AUTH_SENT,
	AUTH_RECEIVED,
	INITIATED,       /* arg: jitter */
	RETRIED,         /* arg: jitter */
	COMPLETE,
	DERIVED,
};

struct step {
	uint64_t at; /* relative to T0 */
	enum step_op op;
	uint64_t arg;
};

struct scenario {
	const char *name;
	unsigned int persistent_keepalive_ms;
	const struct step *steps;
	size_t n;
};

static void run_scenario(const struct scenario *sc)
{
	struct peer_timers t;

	timers_init(&t, sc->persistent_keepalive_ms);
	for (size_t i = 0; i < sc->n; i++) {
		const struct step *st = &sc->steps[i];
		uint64_t now = T0 + st->at, got;

		switch (st->op) {
		case EXPECT_EXPIRE:
			got = timers_expire(&t, now);
			if (got != st->arg)
				fail_msg("%s step %zu (t=%llu ms): actions 0x%llx, want 0x%llx", sc->name, i,
					 (unsigned long long)st->at, (unsigned long long)got,
					 (unsigned long long)st->arg);
			/* whatever fired is disarmed or re-armed in the future */
			if (timers_expire(&t, now) != TIMER_ACTION_NONE)
				fail_msg("%s step %zu: fired twice", sc->name, i);
			break;
		case EXPECT_NEXT:
			got = timers_next_deadline(&t);
			if (got != (st->arg == NEVER ? NEVER : T0 + st->arg))
				fail_msg("%s step %zu: next deadline %llu, want %llu", sc->name, i,
					 (unsigned long long)(got == NEVER ? got : got - T0), (unsigned long long)st->arg);
			break;
		case DATA_SENT: timers_on_data_sent(&t, now); break;
		case DATA_RECEIVED: timers_on_data_received(&t, now); break;
		case AUTH_SENT: timers_on_authenticated_sent(&t, now); break;
		case AUTH_RECEIVED: timers_on_authenticated_received(&t, now); break;
		case INITIATED: timers_on_handshake_initiated(&t, now, (unsigned int)st->arg, false); break;
		case RETRIED: timers_on_handshake_initiated(&t, now, (unsigned int)st->arg, true); break;
		case COMPLETE: timers_on_handshake_complete(&t, now); break;
		case DERIVED: timers_on_session_derived(&t, now); break;
		}
	}
}

#define NONE TIMER_ACTION_NONE
#define INIT TIMER_ACTION_SEND_INITIATION
#define KEEP TIMER_ACTION_SEND_KEEPALIVE
#define WIPE TIMER_ACTION_WIPE_KEYS

/* Received data is acknowledged within 10 s; anything we send in between does it. */
static const struct step passive_keepalive[] = {
	{ 0, EXPECT_NEXT, NEVER },
	{ 0, EXPECT_EXPIRE, NONE },
	{ 0, DATA_RECEIVED, 0 },
	{ 0, EXPECT_NEXT, S(10) },
	{ S(10) - 1, EXPECT_EXPIRE, NONE },
	{ S(10), EXPECT_EXPIRE, KEEP },
	{ S(10), EXPECT_NEXT, NEVER },
	/* answered by our own traffic: no keepalive */
	{ S(20), DATA_RECEIVED, 0 },
	{ S(25), AUTH_SENT, 0 },
	{ S(25), EXPECT_NEXT, NEVER },
	{ S(40), EXPECT_EXPIRE, NONE },
	/* more data while one is owed: the timer keeps its deadline, and one more follows */
	{ S(50), DATA_RECEIVED, 0 },
	{ S(55), DATA_RECEIVED, 0 },
	{ S(55), EXPECT_NEXT, S(60) },
	{ S(60) - 1, EXPECT_EXPIRE, NONE },
	{ S(60), EXPECT_EXPIRE, KEEP },
	{ S(60), EXPECT_NEXT, S(70) },
	{ S(70) - 1, EXPECT_EXPIRE, NONE },
	{ S(70), EXPECT_EXPIRE, KEEP },
	{ S(70), EXPECT_NEXT, NEVER },
	/* a late check fires once, with the same action */
	{ S(80), DATA_RECEIVED, 0 },
	{ S(300), EXPECT_EXPIRE, KEEP },
};

/* Sent data with no authenticated reply for 15 s: suspect the keys, handshake again. */
static const struct step new_handshake[] = {
	{ 0, DATA_SENT, 0 },
	{ S(5), DATA_SENT, 0 }, /* does not postpone it */
	{ S(5), EXPECT_NEXT, S(15) },
	{ S(15) - 1, EXPECT_EXPIRE, NONE },
	{ S(15), EXPECT_EXPIRE, INIT },
	{ S(15), EXPECT_NEXT, NEVER },
	/* an authenticated reply (even a keepalive) clears the suspicion */
	{ S(20), DATA_SENT, 0 },
	{ S(34), AUTH_RECEIVED, 0 },
	{ S(34), EXPECT_NEXT, NEVER },
	{ S(60), EXPECT_EXPIRE, NONE },
	/* and the next send starts a fresh 15 s */
	{ S(61), DATA_SENT, 0 },
	{ S(61), EXPECT_NEXT, S(76) },
	{ S(76), EXPECT_EXPIRE, INIT },
};

/* Keys live 540 s past the newest session, never longer. */
static const struct step zero_keys[] = {
	{ 0, DERIVED, 0 },
	{ 0, EXPECT_NEXT, S(540) },
	{ S(540) - 1, EXPECT_EXPIRE, NONE },
	{ S(540), EXPECT_EXPIRE, WIPE },
	{ S(540), EXPECT_NEXT, NEVER },
	{ S(600), DERIVED, 0 },
	{ S(700), DERIVED, 0 }, /* re-armed by every new session */
	{ S(700), EXPECT_NEXT, S(1240) },
	{ S(1140), EXPECT_EXPIRE, NONE },
	{ S(1240) - 1, EXPECT_EXPIRE, NONE },
	{ S(1240), EXPECT_EXPIRE, WIPE },
};

/* With a 25 s interval: a keepalive after 25 s of sending nothing. */
static const struct step persistent_keepalive[] = {
	{ 0, EXPECT_NEXT, NEVER }, /* armed by the first packet sent */
	{ 0, AUTH_SENT, 0 },
	{ 0, EXPECT_NEXT, S(25) },
	{ S(25) - 1, EXPECT_EXPIRE, NONE },
	{ S(25), EXPECT_EXPIRE, KEEP },
	{ S(25), EXPECT_NEXT, NEVER },
	{ S(25), AUTH_SENT, 0 }, /* the keepalive went out */
	{ S(25), EXPECT_NEXT, S(50) },
	{ S(40), AUTH_SENT, 0 }, /* so did other traffic: postpone */
	{ S(40), EXPECT_NEXT, S(65) },
	{ S(50), EXPECT_EXPIRE, NONE },
	{ S(64), AUTH_RECEIVED, 0 }, /* receiving does not count: the NAT needs outbound packets */
	{ S(65), EXPECT_EXPIRE, KEEP },
	/* the passive keepalive is cancelled by our sending, the persistent one moves */
	{ S(65), AUTH_SENT, 0 },
	{ S(70), DATA_RECEIVED, 0 },
	{ S(70), EXPECT_NEXT, S(80) },
	{ S(75), AUTH_SENT, 0 },
	{ S(75), EXPECT_NEXT, S(100) },
	{ S(100), EXPECT_EXPIRE, KEEP },
};

static const struct step persistent_keepalive_off[] = {
	{ 0, AUTH_SENT, 0 },
	{ 0, EXPECT_NEXT, NEVER },
	{ S(1000), EXPECT_EXPIRE, NONE },
};

/* A handshake that completes stops the retries; a new one starts counting again. */
static const struct step retransmit[] = {
	{ 0, INITIATED, 100 },
	{ 0, EXPECT_NEXT, S(5) + 100 },
	{ S(5) + 99, EXPECT_EXPIRE, NONE },
	{ S(5) + 100, EXPECT_EXPIRE, INIT },
	{ S(5) + 100, EXPECT_NEXT, NEVER }, /* until the caller reports the retry */
	{ S(5) + 100, RETRIED, 333 },
	{ S(5) + 100, EXPECT_NEXT, S(10) + 433 },
	{ S(7), COMPLETE, 0 },
	{ S(7), EXPECT_NEXT, NEVER },
	{ S(20), EXPECT_EXPIRE, NONE },
	/* jitter beyond the allowed spread is clamped */
	{ S(30), INITIATED, 100000 },
	{ S(30), EXPECT_NEXT, S(35) + WG_REKEY_TIMEOUT_JITTER_MS },
	/* a second initiation (say, new data) moves the deadline */
	{ S(31), INITIATED, 0 },
	{ S(31), EXPECT_NEXT, S(36) },
	{ S(36), EXPECT_EXPIRE, INIT },
};

/* Every timer armed at once: the deadlines come out in order, and one late call returns them all. */
static const struct step all_timers[] = {
	{ 0, AUTH_SENT, 0 },     /* persistent keepalive at 25 s */
	{ 0, DERIVED, 0 },       /* zero keys at 540 s */
	{ 0, DATA_SENT, 0 },     /* new handshake at 15 s */
	{ 0, DATA_RECEIVED, 0 }, /* keepalive at 10 s */
	{ 0, INITIATED, 7 },     /* retransmit at 5.007 s */
	{ 0, EXPECT_NEXT, S(5) + 7 },
	{ S(5) + 7, EXPECT_EXPIRE, INIT },
	{ S(5) + 7, EXPECT_NEXT, S(10) },
	{ S(10), EXPECT_EXPIRE, KEEP },
	{ S(10), EXPECT_NEXT, S(15) },
	{ S(15), EXPECT_EXPIRE, INIT },
	{ S(15), EXPECT_NEXT, S(25) },
	{ S(25), EXPECT_EXPIRE, KEEP },
	{ S(25), EXPECT_NEXT, S(540) },
	{ S(540), EXPECT_EXPIRE, WIPE },
	{ S(540), EXPECT_NEXT, NEVER },
	/* again, but the caller only looks after everything expired */
	{ S(1000), AUTH_SENT, 0 },
	{ S(1000), DERIVED, 0 },
	{ S(1000), DATA_SENT, 0 },
	{ S(1000), DATA_RECEIVED, 0 },
	{ S(1000), INITIATED, 0 },
	{ S(2000), EXPECT_EXPIRE, INIT | KEEP | WIPE },
	{ S(2000), EXPECT_NEXT, NEVER },
};

#define SCENARIO(name, pk) { #name, pk, name, sizeof(name) / sizeof(name[0]) }

static void test_scenarios(void **state)
{
	static const struct scenario scenarios[] = {
		SCENARIO(passive_keepalive, 0),
		SCENARIO(new_handshake, 0),
		SCENARIO(zero_keys, 0),
		SCENARIO(persistent_keepalive, 25000),
		SCENARIO(persistent_keepalive_off, 0),
		SCENARIO(retransmit, 0),
		SCENARIO(all_timers, 25000),
	};

	(void)state;
	for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
		run_scenario(&scenarios[i]);
}

/* The caller's side of the retry loop: on SEND_INITIATION, send and report a retry. Returns
 * the number of retries before GIVE_UP; *now ends at the give-up time. */
static unsigned int retry_until_give_up(struct peer_timers *t, uint64_t *now, unsigned int seed)
{
	unsigned int retries = 0, jitter = seed % (WG_REKEY_TIMEOUT_JITTER_MS + 1);
	unsigned int actions;

	for (;;) {
		uint64_t next = timers_next_deadline(t);

		assert_int_equal(next, *now + WG_REKEY_TIMEOUT_MS + jitter);
		assert_int_equal(timers_expire(t, next - 1), TIMER_ACTION_NONE);
		*now = next;
		actions = timers_expire(t, *now);
		if (actions != TIMER_ACTION_SEND_INITIATION)
			break;
		retries++;
		assert_true(retries <= WG_MAX_HANDSHAKE_ATTEMPTS);
		jitter = (seed + retries * 97) % (WG_REKEY_TIMEOUT_JITTER_MS + 1);
		timers_on_handshake_initiated(t, *now, jitter, true);
	}
	assert_int_equal(actions, TIMER_ACTION_GIVE_UP);
	return retries;
}

/* Retried every 5 s (+ jitter); after 18 retries, the last one sent 90 s or more after the
 * first initiation, the next expiry gives up. */
static void test_handshake_gives_up(void **state)
{
	static const unsigned int seeds[] = { 0, 1, 200, 333, 334 };

	(void)state;
	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
		struct peer_timers t;
		uint64_t now = T0;
		unsigned int retries;

		timers_init(&t, 0);
		timers_on_handshake_initiated(&t, now, seeds[i] % (WG_REKEY_TIMEOUT_JITTER_MS + 1), false);
		retries = retry_until_give_up(&t, &now, seeds[i]);
		assert_int_equal(retries, 18);
		assert_int_equal(retries, WG_MAX_HANDSHAKE_ATTEMPTS);
		assert_true(now - T0 >= 19 * WG_REKEY_TIMEOUT_MS);
		assert_true(now - T0 <= 19 * (WG_REKEY_TIMEOUT_MS + WG_REKEY_TIMEOUT_JITTER_MS));
		assert_true(now - T0 > WG_REKEY_ATTEMPT_TIME_MS);

		/* given up: nothing retransmits, keys go in 540 s */
		assert_int_equal(t.retransmit_handshake_at, 0);
		assert_int_equal(timers_next_deadline(&t), now + WG_ZERO_KEYS_AFTER_MS);
		assert_int_equal(timers_expire(&t, now + WG_ZERO_KEYS_AFTER_MS - 1), TIMER_ACTION_NONE);
		assert_int_equal(timers_expire(&t, now + WG_ZERO_KEYS_AFTER_MS), TIMER_ACTION_WIPE_KEYS);
		assert_int_equal(timers_next_deadline(&t), NEVER);
	}
}

/* Giving up does not postpone a wipe that is already due sooner. */
static void test_give_up_keeps_earlier_wipe(void **state)
{
	struct peer_timers t;
	uint64_t now = T0, wipe_at;

	(void)state;
	timers_init(&t, 0);
	timers_on_session_derived(&t, now - S(400)); /* wipe due at 140 s, after the give-up */
	wipe_at = t.zero_keys_at;
	timers_on_handshake_initiated(&t, now, 0, false);
	assert_int_equal(retry_until_give_up(&t, &now, 0), 18);
	assert_int_equal(t.zero_keys_at, wipe_at);
}

/* As WireGuard: once the handshake is given up there is no session to answer on, so a
 * passive keepalive that was owed is dropped too. */
static void test_give_up_drops_keepalive(void **state)
{
	struct peer_timers t;

	(void)state;
	timers_init(&t, 0);
	timers_on_handshake_initiated(&t, T0, 0, false);
	t.handshake_attempts = WG_MAX_HANDSHAKE_ATTEMPTS; /* as after the last retry */
	timers_on_data_received(&t, T0 + 1);
	timers_on_data_received(&t, T0 + 2);
	assert_int_equal(timers_expire(&t, T0 + WG_REKEY_TIMEOUT_MS), TIMER_ACTION_GIVE_UP);
	assert_int_equal(t.send_keepalive_at, 0);
	assert_false(t.another_keepalive_needed);
	assert_int_equal(timers_next_deadline(&t), T0 + WG_REKEY_TIMEOUT_MS + WG_ZERO_KEYS_AFTER_MS);
}

/* A fresh initiation (not a retry) or a completed handshake restarts the count. */
static void test_attempts_reset(void **state)
{
	struct peer_timers t;
	uint64_t now = T0;

	(void)state;
	timers_init(&t, 0);
	timers_on_handshake_initiated(&t, now, 0, false);
	for (int i = 0; i < 10; i++) {
		now = timers_next_deadline(&t);
		assert_int_equal(timers_expire(&t, now), TIMER_ACTION_SEND_INITIATION);
		timers_on_handshake_initiated(&t, now, 0, true);
	}
	assert_int_equal(t.handshake_attempts, 10);
	timers_on_handshake_initiated(&t, now, 0, false);
	assert_int_equal(t.handshake_attempts, 0);
	assert_int_equal(retry_until_give_up(&t, &now, 0), 18);

	timers_on_handshake_initiated(&t, now, 0, false);
	for (int i = 0; i < 17; i++) {
		now = timers_next_deadline(&t);
		assert_int_equal(timers_expire(&t, now), TIMER_ACTION_SEND_INITIATION);
		timers_on_handshake_initiated(&t, now, 0, true);
	}
	timers_on_handshake_complete(&t, now + 1);
	assert_int_equal(t.handshake_attempts, 0);
	assert_int_equal(t.retransmit_handshake_at, 0);
	now += 2;
	timers_on_handshake_initiated(&t, now, 0, false);
	assert_int_equal(retry_until_give_up(&t, &now, 0), 18);
}

/* Sweep every millisecond: each armed timer fires exactly once, exactly at its deadline. */
static void test_no_early_or_double_fire(void **state)
{
	static const struct {
		uint64_t at;
		unsigned int actions;
	} want[] = {
		{ S(5) + 250, TIMER_ACTION_SEND_INITIATION }, /* retransmit */
		{ S(10), TIMER_ACTION_SEND_KEEPALIVE },       /* passive keepalive */
		{ S(15), TIMER_ACTION_SEND_INITIATION },      /* new handshake */
		{ S(20), TIMER_ACTION_SEND_KEEPALIVE },       /* persistent keepalive */
		{ S(540), TIMER_ACTION_WIPE_KEYS },           /* zero keys */
	};
	struct peer_timers t;
	size_t seen = 0;

	(void)state;
	timers_init(&t, 20000);
	timers_on_authenticated_sent(&t, T0);
	timers_on_session_derived(&t, T0);
	timers_on_data_sent(&t, T0);
	timers_on_data_received(&t, T0);
	timers_on_handshake_initiated(&t, T0, 250, false);
	for (uint64_t ms = 0; ms <= S(600); ms++) {
		unsigned int got = timers_expire(&t, T0 + ms);

		if (got == TIMER_ACTION_NONE)
			continue;
		assert_true(seen < sizeof(want) / sizeof(want[0]));
		if (ms != want[seen].at || got != want[seen].actions)
			fail_msg("at %llu ms: 0x%x, want 0x%x at %llu ms", (unsigned long long)ms, got,
				 want[seen].actions, (unsigned long long)want[seen].at);
		seen++;
	}
	assert_int_equal(seen, sizeof(want) / sizeof(want[0]));
}

/* 0 means disarmed, so no armed deadline may be 0; and deadlines saturate instead of wrapping. */
static void test_deadline_edges(void **state)
{
	struct peer_timers t;

	(void)state;
	timers_init(&t, 0);
	assert_int_equal(timers_expire(&t, 0), TIMER_ACTION_NONE);
	assert_int_equal(timers_expire(&t, UINT64_MAX), TIMER_ACTION_NONE);
	timers_on_data_received(&t, 0);
	assert_int_equal(t.send_keepalive_at, WG_KEEPALIVE_TIMEOUT_MS);
	assert_int_equal(timers_expire(&t, 0), TIMER_ACTION_NONE);

	timers_init(&t, 0);
	timers_on_session_derived(&t, UINT64_MAX - 10);
	assert_int_equal(t.zero_keys_at, UINT64_MAX);
	assert_int_equal(timers_expire(&t, UINT64_MAX - 1), TIMER_ACTION_NONE);
	assert_int_equal(timers_expire(&t, UINT64_MAX), TIMER_ACTION_WIPE_KEYS);
}

/* The code's names hold WireGuard's values (the scenarios above check what they do). */
static void test_constants_are_wireguards(void **state)
{
	(void)state;
	assert_int_equal(SESSION_REKEY_AFTER_TIME_MS, 120000);
	assert_int_equal(SESSION_REJECT_AFTER_TIME_MS, 180000);
	assert_int_equal(TIMER_REKEY_TIMEOUT_MS, 5000);
	assert_int_equal(TIMER_REKEY_TIMEOUT_JITTER_MS, 333);
	assert_int_equal(TIMER_REKEY_ATTEMPT_TIME_MS, 90000);
	assert_int_equal(TIMER_MAX_HANDSHAKE_ATTEMPTS, 18);
	assert_int_equal(TIMER_KEEPALIVE_TIMEOUT_MS, 10000);
	assert_int_equal(TIMER_NEW_HANDSHAKE_AFTER_MS, 15000);
	assert_int_equal(TIMER_ZERO_KEYS_AFTER_MS, 540000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_constants_are_wireguards),
		cmocka_unit_test(test_scenarios),
		cmocka_unit_test(test_handshake_gives_up),
		cmocka_unit_test(test_give_up_keeps_earlier_wipe),
		cmocka_unit_test(test_give_up_drops_keepalive),
		cmocka_unit_test(test_attempts_reset),
		cmocka_unit_test(test_no_early_or_double_fire),
		cmocka_unit_test(test_deadline_edges),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
