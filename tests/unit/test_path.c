/* Path choice (src/meshd/path.c) with an injected clock. The promises checked here are the
 * issue's, in literal numbers: a silent direct path hands traffic to the relay within 3 s,
 * an idle direct path is kept open at least every 25 s, probing is fast (1 s) for 10 s and
 * then every 5 s while traffic still wants a direct path, and stops when idle. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "meshd/path.h"

#define T0 UINT64_C(1000000)

static struct sockaddr_storage addr(const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	struct sockaddr_in *in = (struct sockaddr_in *)&ss;
	in->sin_family = AF_INET;
	in->sin_port = htons(port);
	assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
	return ss;
}

static const uint8_t txid_a[DISCO_TXID_LEN] = { 1 };
static const uint8_t txid_b[DISCO_TXID_LEN] = { 2 };

/* A path with two announced candidates, the first confirmed by a pong at `at` after 7 ms. */
static void confirmed_path(struct peer_path *pp, uint64_t at)
{
	struct sockaddr_storage list[2] = { addr("203.0.113.5", 41641), addr("10.0.0.5", 41641) };
	path_init(pp);
	path_set_announced(pp, list, 2, at - 7);
	path_ping_sent(pp, 0, txid_a, at - 7);
	assert_true(path_on_pong(pp, txid_a, &list[0], false, at));
}

static void test_new_candidates_start_probing(void **state)
{
	(void)state;
	struct peer_path pp;
	struct sockaddr_storage list[1] = { addr("203.0.113.5", 41641) };
	path_init(&pp);
	assert_int_equal(path_best(&pp, T0), -1);
	assert_int_equal(path_due(&pp, T0, false), 0);
	path_set_announced(&pp, list, 1, T0);
	assert_int_equal(path_due(&pp, T0, false), PATH_ACT_PROBE_ROUND);
	/* the same list again is no news */
	assert_int_equal(path_due(&pp, T0 + 1, false), 0);
	path_set_announced(&pp, list, 1, T0 + 2);
	assert_int_equal(path_due(&pp, T0 + 3, false), 0);
	path_free(&pp);
}

static void test_news_while_probing_probes_at_once(void **state)
{
	(void)state;
	struct peer_path pp;
	struct sockaddr_storage one[1] = { addr("10.0.0.5", 41641) };
	struct sockaddr_storage two[2] = { addr("10.0.0.5", 41641), addr("203.0.113.5", 41641) };
	path_init(&pp);
	path_set_announced(&pp, one, 1, T0);
	assert_int_equal(path_due(&pp, T0, false), PATH_ACT_PROBE_ROUND);
	path_note_activity(&pp, T0 + 100);
	/* a second round would be due at +1 s; the new candidate brings it forward */
	assert_int_equal(path_due(&pp, T0 + 200, false), 0);
	path_set_announced(&pp, two, 2, T0 + 300);
	assert_int_equal(path_due(&pp, T0 + 300, false), PATH_ACT_PROBE_ROUND);
	path_free(&pp);
}

static void test_pong_confirms_with_rtt(void **state)
{
	(void)state;
	struct peer_path pp;
	confirmed_path(&pp, T0);
	assert_int_equal(path_best(&pp, T0), 0);
	assert_int_equal(pp.cand[0].rtt_ms, 7);
	path_free(&pp);
}

static void test_pong_must_match(void **state)
{
	(void)state;
	struct peer_path pp;
	struct sockaddr_storage list[2] = { addr("203.0.113.5", 41641), addr("10.0.0.5", 41641) };
	path_init(&pp);
	path_set_announced(&pp, list, 2, T0);
	path_ping_sent(&pp, 0, txid_a, T0);
	/* wrong id, wrong address, a stranger's address, a second copy, too late */
	assert_false(path_on_pong(&pp, txid_b, &list[0], false, T0 + 1));
	assert_false(path_on_pong(&pp, txid_a, &list[1], false, T0 + 1));
	struct sockaddr_storage stranger = addr("192.0.2.9", 9);
	assert_false(path_on_pong(&pp, txid_a, &stranger, false, T0 + 1));
	assert_int_equal(path_best(&pp, T0 + 1), -1);
	assert_true(path_on_pong(&pp, txid_a, &list[0], false, T0 + 2));
	assert_false(path_on_pong(&pp, txid_a, &list[0], false, T0 + 3));
	path_ping_sent(&pp, 1, txid_b, T0);
	assert_false(path_on_pong(&pp, txid_b, &list[1], false, T0 + 5000 + 1));
	path_free(&pp);
}

static void test_silent_direct_path_falls_back_within_3s(void **state)
{
	(void)state;
	struct peer_path pp;
	confirmed_path(&pp, T0);
	path_note_activity(&pp, T0);
	assert_int_equal(path_best(&pp, T0 + 2499), 0);
	assert_int_equal(path_best(&pp, T0 + 3000), -1);
	/* the loop wakes when trust ends, so the change is seen (and logged) on time */
	assert_true(path_next_deadline(&pp, T0 + 1, true) <= T0 + 3000);
	path_free(&pp);
}

/* A confirmation that lapses while the peer is idle is not silence (no traffic, so no
 * heartbeats): the last direct path stays reported; once traffic resumes, a ping has one
 * trust window to confirm it before silence counts. */
static void test_idle_lapse_is_not_silence(void **state)
{
	(void)state;
	struct peer_path pp;
	confirmed_path(&pp, T0);
	path_note_activity(&pp, T0);
	assert_true(path_silence_counts(&pp, T0 + 3000)); /* in use: a silent path */
	assert_int_equal(path_best(&pp, T0 + 60000), -1);
	assert_false(path_silence_counts(&pp, T0 + 60000)); /* idle for a minute */
	path_note_activity(&pp, T0 + 60000);
	assert_false(path_silence_counts(&pp, T0 + 60000 + PATH_TRUST_MS - 1));
	path_note_activity(&pp, T0 + 61000); /* still the same spell of traffic */
	assert_true(path_silence_counts(&pp, T0 + 60000 + PATH_TRUST_MS));
	path_free(&pp);
}

static void test_heartbeat_while_active(void **state)
{
	(void)state;
	struct peer_path pp;
	confirmed_path(&pp, T0);
	path_note_activity(&pp, T0);
	unsigned int beats = 0;
	struct sockaddr_storage cand0 = sockaddr_inet_get(&pp.cand[0].addr);
	for (uint64_t t = T0; t <= T0 + 4000; t += 100)
		if (path_due(&pp, t, true) & PATH_ACT_HEARTBEAT) {
			beats++;
			path_ping_sent(&pp, 0, txid_a, t);
			assert_true(path_on_pong(&pp, txid_a, &cand0, false, t + 1));
		}
	/* one a second: at 0, 1, 2, 3, 4 s */
	assert_int_equal(beats, 5);
	assert_int_equal(path_best(&pp, T0 + 4001), 0);
	path_free(&pp);
}

static void test_idle_keepalive_every_25s(void **state)
{
	(void)state;
	struct peer_path pp;
	confirmed_path(&pp, T0);
	pp.reported_best = 0; /* the path was in use */
	uint64_t last = 0;
	unsigned int beats = 0;
	for (uint64_t t = T0; t <= T0 + 100000; t += 500) {
		if (path_due(&pp, t, true) & PATH_ACT_HEARTBEAT) {
			if (last)
				assert_true(t - last <= 25000);
			last = t;
			beats++;
		}
	}
	assert_true(beats >= 4);
	/* no session: an idle path is left to close */
	path_free(&pp);
	confirmed_path(&pp, T0);
	pp.reported_best = 0;
	assert_int_equal(path_due(&pp, T0 + 30000, false), 0);
	path_free(&pp);
}

static void test_probe_rounds_fast_then_slow_then_stop(void **state)
{
	(void)state;
	struct peer_path pp;
	struct sockaddr_storage list[1] = { addr("203.0.113.5", 41641) };
	path_init(&pp);
	path_set_announced(&pp, list, 1, T0);
	uint64_t rounds_first_10s = 0, rounds_next_20s = 0;
	for (uint64_t t = T0; t < T0 + 30000; t += 100) {
		path_note_activity(&pp, t); /* traffic all along, never a pong */
		if (path_due(&pp, t, false) & PATH_ACT_PROBE_ROUND) {
			if (t < T0 + 10000)
				rounds_first_10s++;
			else
				rounds_next_20s++;
		}
	}
	assert_int_equal(rounds_first_10s, 10); /* every 1 s */
	assert_int_equal(rounds_next_20s, 4);   /* every 5 s */
	/* traffic stops: after the fast window no more rounds */
	unsigned int later = 0;
	for (uint64_t t = T0 + 30000; t < T0 + 90000; t += 100)
		if (path_due(&pp, t, false) & PATH_ACT_PROBE_ROUND)
			later++;
	assert_true(later <= 1);
	path_free(&pp);
}

static void test_lowest_rtt_wins(void **state)
{
	(void)state;
	struct peer_path pp;
	confirmed_path(&pp, T0);
	path_ping_sent(&pp, 1, txid_b, T0);
	struct sockaddr_storage cand1 = sockaddr_inet_get(&pp.cand[1].addr);
	assert_true(path_on_pong(&pp, txid_b, &cand1, false, T0 + 2));
	assert_int_equal(path_best(&pp, T0 + 2), 1);
	path_free(&pp);
}

static void test_authenticated_packet_confirms_and_roams(void **state)
{
	(void)state;
	struct peer_path pp;
	confirmed_path(&pp, T0);
	pp.reported_best = 0;
	struct sockaddr_storage roamed = addr("198.51.100.7", 5555);
	path_confirm_from(&pp, &roamed, false, T0 + 100);
	assert_int_equal(pp.n, 3);
	/* both trusted; the measured one ranks first until it goes silent */
	assert_int_equal(path_best(&pp, T0 + 100), 0);
	path_confirm_from(&pp, &roamed, false, T0 + 2600);
	assert_int_equal(path_best(&pp, T0 + 2600), 2);
	path_free(&pp);
}

static void test_learned_candidates_bounded(void **state)
{
	(void)state;
	struct peer_path pp;
	path_init(&pp);
	char ip[32];
	for (unsigned int i = 0; i < 100; i++) {
		snprintf(ip, sizeof(ip), "192.0.2.%u", i + 1);
		struct sockaddr_storage a = addr(ip, 1000);
		path_learn(&pp, &a, false, T0 + i);
		assert_true(pp.n <= PATH_MAX_CANDIDATES);
	}
	assert_int_equal(pp.n, PATH_MAX_CANDIDATES);
	/* an announced list still finds room, replacing learned ones */
	struct sockaddr_storage list[2] = { addr("203.0.113.5", 41641), addr("203.0.113.6", 41641) };
	path_set_announced(&pp, list, 2, T0 + 200);
	unsigned int announced = 0;
	for (size_t i = 0; i < pp.n; i++)
		announced += pp.cand[i].from_map;
	assert_int_equal(announced, 2);
	path_free(&pp);
}

static void test_dropped_candidates_go_unless_working(void **state)
{
	(void)state;
	struct peer_path pp;
	confirmed_path(&pp, T0);
	struct sockaddr_storage none[1];
	path_set_announced(&pp, none, 0, T0 + 1);
	/* the confirmed one stays, the unconfirmed one is gone */
	assert_int_equal(pp.n, 1);
	assert_int_equal(path_best(&pp, T0 + 1), 0);
	path_free(&pp);
}

/* The same address through the punch socket is another path: a pong through one does not
 * confirm the other. */
static void test_punch_socket_is_another_path(void **state)
{
	(void)state;
	struct peer_path pp;
	struct sockaddr_storage a = addr("203.0.113.5", 41641);
	path_init(&pp);
	size_t plain = path_learn(&pp, &a, false, T0);
	size_t punched = path_learn(&pp, &a, true, T0);
	assert_int_not_equal(plain, punched);
	assert_true(pp.cand[punched].via_punch);
	path_ping_sent(&pp, punched, txid_a, T0);
	assert_false(path_on_pong(&pp, txid_a, &a, false, T0 + 1));
	assert_true(path_on_pong(&pp, txid_a, &a, true, T0 + 1));
	assert_int_equal(path_best(&pp, T0 + 1), (int)punched);
	path_free(&pp);
}

static void test_cmm_answer_rate_limited(void **state)
{
	(void)state;
	struct peer_path pp;
	path_init(&pp);
	assert_true(path_answer_cmm(&pp, T0));
	assert_false(path_answer_cmm(&pp, T0 + 499));
	assert_true(path_answer_cmm(&pp, T0 + 500));
	path_free(&pp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_candidates_start_probing),
		cmocka_unit_test(test_news_while_probing_probes_at_once),
		cmocka_unit_test(test_pong_confirms_with_rtt),
		cmocka_unit_test(test_pong_must_match),
		cmocka_unit_test(test_silent_direct_path_falls_back_within_3s),
		cmocka_unit_test(test_idle_lapse_is_not_silence),
		cmocka_unit_test(test_heartbeat_while_active),
		cmocka_unit_test(test_idle_keepalive_every_25s),
		cmocka_unit_test(test_probe_rounds_fast_then_slow_then_stop),
		cmocka_unit_test(test_lowest_rtt_wins),
		cmocka_unit_test(test_authenticated_packet_confirms_and_roams),
		cmocka_unit_test(test_learned_candidates_bounded),
		cmocka_unit_test(test_dropped_candidates_go_unless_working),
		cmocka_unit_test(test_punch_socket_is_another_path),
		cmocka_unit_test(test_cmm_answer_rate_limited),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
