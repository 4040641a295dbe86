/* core/session_set: WireGuard's session rotation, walked as a table. Each row is a sequence of
 * events (I n: a handshake we initiated made session n; R n: we answered one and made n;
 * C: data arrived on next) and the local indices next / current / previous must hold after
 * the last (0: empty). Run under ASan, the rows also prove that no replay ring leaks or is
 * freed twice as sessions move. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include <sodium.h>

#include "core/session_set.h"

#define T0 UINT64_C(1000)

struct row {
	const char *events;
	uint32_t next, current, previous;
};

static const struct row rows[] = {
	{ "I1", 0, 1, 0 },
	{ "I1 I2", 0, 2, 1 },
	{ "I1 I2 I3", 0, 3, 2 },
	{ "R1", 1, 0, 0 },
	{ "R1 C", 0, 1, 0 },
	{ "I1 R2", 2, 1, 0 },          /* answering drops previous, keeps current for sending */
	{ "I1 I2 R3", 3, 2, 0 },
	{ "I1 R2 C", 0, 2, 1 },
	{ "I1 R2 I3", 0, 3, 2 },       /* crossing: the answered one stays receivable as previous */
	{ "R1 R2", 2, 0, 0 },          /* a newer answer replaces an unconfirmed one */
	{ "R1 C R2 C", 0, 2, 1 },
	{ "I1 R2 C I3", 0, 3, 2 },
	{ "R1 I2", 0, 2, 1 },
};

/* A session with local index n; its replay ring is allocated (a packet recorded) so that a
 * lost or doubled ring shows under ASan. */
static void make_session(struct session *s, uint32_t n, bool we_initiated)
{
	uint8_t key[32];

	memset(s, 0, sizeof(*s));
	memset(key, (int)n, sizeof(key));
	session_init(s, key, key, n, 100 + n, we_initiated, T0);
	uint8_t msg[WIRE_DATA_MIN_LEN + 16], plain[64];
	size_t len = 0, plain_len = 0;
	assert_int_equal(session_encrypt(s, T0, (const uint8_t *)"0123456789abcdef", 16, msg, sizeof(msg), &len),
			 SESSION_OK);
	wire_put_u32(msg + WIRE_DATA_OFF_RECEIVER, n);
	assert_int_equal(session_decrypt(s, T0, msg, len, plain, sizeof(plain), &plain_len), SESSION_OK);
}

static uint32_t index_of(const struct session *s)
{
	return s->valid ? s->local_index : 0;
}

static void run_row(const struct row *r)
{
	struct session_set ss;
	struct session s;
	const char *e = r->events;

	memset(&ss, 0, sizeof(ss));
	print_message("%s\n", r->events);
	while (*e) {
		char kind = *e++;
		uint32_t n = 0;
		while (*e >= '0' && *e <= '9')
			n = n * 10 + (uint32_t)(*e++ - '0');
		if (kind == 'I' || kind == 'R') {
			make_session(&s, n, kind == 'I');
			if (kind == 'I')
				session_set_install_initiator(&ss, &s);
			else
				session_set_install_responder(&ss, &s);
			assert_true(sodium_is_zero((const uint8_t *)&s, sizeof(s))); /* moved, wiped */
		} else {
			assert_int_equal(kind, 'C');
			session_set_confirm_next(&ss);
		}
		while (*e == ' ')
			e++;
	}
	assert_int_equal(index_of(&ss.next), r->next);
	assert_int_equal(index_of(&ss.current), r->current);
	assert_int_equal(index_of(&ss.previous), r->previous);
	/* an empty slot is wholly empty (no keys, no ring) */
	struct session *slots[] = { &ss.next, &ss.current, &ss.previous };
	for (size_t i = 0; i < 3; i++)
		if (!slots[i]->valid)
			assert_true(sodium_is_zero((const uint8_t *)slots[i], sizeof(*slots[i])));
	/* lookup by index finds exactly the sessions held */
	for (uint32_t n = 1; n <= 4; n++) {
		struct session *found = session_set_by_index(&ss, n);
		bool held = n == r->next || n == r->current || n == r->previous;
		assert_int_equal(found != NULL, held);
		if (found)
			assert_int_equal(found->local_index, n);
	}
	session_set_clear(&ss);
	assert_null(session_set_by_index(&ss, r->current));
}

static void test_rotation_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		run_row(&rows[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rotation_table),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
