/* The device's peer tables stay consistent while peers come and go (src/meshd/peertable.c,
 * timerq.c, stage.c, and their use in peer.c/device.c):
 *   - the index and key hash tables against a naive list, through random adds and removes
 *     (backward-shift deletion must never lose an entry behind the hole);
 *   - the timer heap hands out exactly the peers due, whatever order deadlines moved in;
 *   - the staging pool keeps each peer's share and the shared bound, oldest dropped first;
 *   - a device with 2,000 peers, half removed at random: nothing finds a removed peer (key,
 *     address, receiver index), everything finds the rest, and indices follow handshakes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "core/keys.h"
#include "core/log.h"
#include "meshd/device.h"
#include "meshd/peer.h"
#include "meshd/peertable.h"
#include "meshd/stage.h"
#include "meshd/timerq.h"
#include "meshd/tx.h"

enum {
	TABLE_PEERS = 512,     /* fake peers for the table tests */
	TABLE_OPS = 50000,     /* random adds and removes */
	DEVICE_PEERS = 2000,   /* peers of the device test */
};

static uint64_t rng_state = 88172645463325252u;

static uint64_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static struct peer *fake_peers(size_t n)
{
	struct peer *peers = calloc(n, sizeof(*peers));
	assert_non_null(peers);
	for (size_t i = 0; i < n; i++) {
		randombytes_buf(peers[i].public_key, WIRE_KEY_LEN);
		peers[i].timer_pos = TIMERQ_NOT_QUEUED;
		peers[i].due_ms = UINT64_MAX;
	}
	return peers;
}

static void test_index_table_random(void **state)
{
	(void)state;
	struct peer *peers = fake_peers(TABLE_PEERS);
	/* naive: which index each of a few thousand slots holds, and for whom */
	enum { SLOTS = 4096 };
	static uint32_t idx[SLOTS];
	static struct peer *who[SLOTS];
	struct index_table t;
	index_table_init(&t);
	memset(who, 0, sizeof(who));

	for (int op = 0; op < TABLE_OPS; op++) {
		size_t s = rng() % SLOTS;
		if (!who[s]) {
			uint32_t index;
			do
				index = (uint32_t)rng() & 0xffff; /* a small range: many collisions in the hash */
			while (index_table_find(&t, index));
			idx[s] = index;
			who[s] = &peers[rng() % TABLE_PEERS];
			assert_true(index_table_add(&t, index, who[s]));
		} else {
			index_table_remove(&t, idx[s], &peers[(size_t)(who[s] - peers + 1) % TABLE_PEERS]); /* wrong peer */
			assert_ptr_equal(index_table_find(&t, idx[s]), who[s]);
			index_table_remove(&t, idx[s], who[s]);
			assert_null(index_table_find(&t, idx[s]));
			who[s] = NULL;
		}
		if (op % 997 == 0) {
			size_t count = 0;
			for (size_t k = 0; k < SLOTS; k++) {
				if (!who[k])
					continue;
				count++;
				assert_ptr_equal(index_table_find(&t, idx[k]), who[k]);
			}
			assert_int_equal(t.count, count);
		}
	}
	index_table_free(&t);
	free(peers);
}

static void test_key_table_random(void **state)
{
	(void)state;
	struct peer *peers = fake_peers(TABLE_PEERS);
	bool in[TABLE_PEERS] = { false };
	struct key_table t;
	key_table_init(&t);

	for (int op = 0; op < TABLE_OPS; op++) {
		size_t i = rng() % TABLE_PEERS;
		if (in[i])
			key_table_remove(&t, &peers[i]);
		else
			assert_true(key_table_add(&t, &peers[i]));
		in[i] = !in[i];
		if (op % 499 == 0)
			for (size_t k = 0; k < TABLE_PEERS; k++)
				assert_ptr_equal(key_table_find(&t, peers[k].public_key), in[k] ? &peers[k] : NULL);
	}
	for (size_t k = 0; k < TABLE_PEERS; k++)
		if (in[k])
			key_table_remove(&t, &peers[k]);
	assert_int_equal(t.count, 0);
	key_table_free(&t);
	free(peers);
}

static void test_timerq_due(void **state)
{
	(void)state;
	struct peer *peers = fake_peers(TABLE_PEERS);
	struct timerq q;
	timerq_init(&q);

	for (int round = 0; round < 200; round++) {
		/* move some deadlines (earlier, later, off), remove a few, then take what is due */
		for (int k = 0; k < 100; k++) {
			struct peer *p = &peers[rng() % TABLE_PEERS];
			p->due_ms = rng() % 8 == 0 ? UINT64_MAX : 1000 + rng() % 10000;
			assert_true(timerq_update(&q, p));
		}
		if (round % 10 == 0)
			timerq_remove(&q, &peers[rng() % TABLE_PEERS]);
		uint64_t now = 1000 + rng() % 10000;
		size_t n, want = 0;
		for (size_t k = 0; k < TABLE_PEERS; k++)
			want += peers[k].timer_pos != TIMERQ_NOT_QUEUED && peers[k].due_ms <= now;
		struct peer **due = timerq_take_due(&q, now, &n);
		assert_int_equal(n, want);
		for (size_t k = 0; k < n; k++) {
			assert_true(due[k]->due_ms <= now);
			assert_int_equal(due[k]->timer_pos, TIMERQ_NOT_QUEUED);
		}
		struct peer *first = timerq_first(&q);
		if (first)
			assert_true(first->due_ms > now);
		for (size_t k = 0; k < TABLE_PEERS; k++)
			if (peers[k].timer_pos != TIMERQ_NOT_QUEUED)
				assert_true(first && first->due_ms <= peers[k].due_ms);
	}
	timerq_free(&q);
	free(peers);
}

static void test_stage_bounds(void **state)
{
	(void)state;
	struct stage_pool pool;
	struct stage_queue a, b;
	uint64_t dropped = 0;
	uint8_t pkt[100];
	size_t len;

	assert_true(stage_pool_init(&pool, sizeof(pkt)));
	stage_queue_init(&a);
	stage_queue_init(&b);
	/* one peer: its share is STAGE_PEER_MAX, the oldest go first */
	for (int i = 0; i < STAGE_PEER_MAX + 5; i++) {
		memset(pkt, i, sizeof(pkt));
		stage_push(&pool, &a, pkt, 10 + (size_t)i, &dropped);
	}
	assert_int_equal(a.count, STAGE_PEER_MAX);
	assert_int_equal(dropped, 5);
	const uint8_t *front = stage_front(&pool, &a, &len);
	assert_int_equal(len, 15);
	assert_int_equal(front[0], 5);
	/* too long for a slot: dropped */
	uint8_t big[200] = { 0 };
	stage_push(&pool, &b, big, sizeof(big), &dropped);
	assert_int_equal(dropped, 6);
	assert_int_equal(b.count, 0);
	/* in order out, each slot back in the pool */
	for (int i = 5; i < STAGE_PEER_MAX + 5; i++) {
		front = stage_front(&pool, &a, &len);
		assert_non_null(front);
		assert_int_equal(front[0], i);
		stage_pop(&pool, &a);
	}
	assert_null(stage_front(&pool, &a, &len));
	assert_int_equal(pool.n_free, STAGE_POOL_SLOTS);

	/* the pool is shared and bounded: fill it from many queues, then one more peer */
	enum { QUEUES = STAGE_POOL_SLOTS / STAGE_PEER_MAX };
	static struct stage_queue qs[QUEUES];
	for (int k = 0; k < QUEUES; k++) {
		stage_queue_init(&qs[k]);
		for (int i = 0; i < STAGE_PEER_MAX; i++)
			stage_push(&pool, &qs[k], pkt, 10, &dropped);
	}
	assert_int_equal(pool.n_free, 0);
	dropped = 0;
	stage_push(&pool, &b, pkt, 10, &dropped); /* nothing of its own to give up: dropped */
	assert_int_equal(dropped, 1);
	assert_int_equal(b.count, 0);
	stage_push(&pool, &qs[0], pkt, 11, &dropped); /* its own oldest makes room */
	assert_int_equal(dropped, 2);
	assert_int_equal(qs[0].count, STAGE_PEER_MAX);
	for (int k = 0; k < QUEUES; k++)
		assert_int_equal(stage_clear(&pool, &qs[k]), STAGE_PEER_MAX);
	assert_int_equal(pool.n_free, STAGE_POOL_SLOTS);
	stage_pool_free(&pool);
}

/* ---------------------------------------------------------------- a whole device */

static void peer_v4(size_t i, uint8_t out[4])
{
	uint32_t a = 0x64400000u + (uint32_t)i + 2;
	out[0] = (uint8_t)(a >> 24);
	out[1] = (uint8_t)(a >> 16);
	out[2] = (uint8_t)(a >> 8);
	out[3] = (uint8_t)a;
}

static void test_device_add_remove(void **state)
{
	(void)state;
	struct config cfg;
	static struct device dev;
	static struct config_peer cps[DEVICE_PEERS];
	static struct peer *peers[DEVICE_PEERS];
	static uint32_t index_of[DEVICE_PEERS];
	uint8_t priv[WIRE_KEY_LEN];
	char err[256];

	memset(&cfg, 0, sizeof(cfg));
	strcpy(cfg.interface, "offline0");
	cfg.mtu = 1420;
	cfg.cookie_threshold = CONFIG_DEFAULT_COOKIE_THRESHOLD;
	memset(priv, 0x33, sizeof(priv));
	assert_true(device_open_offline(&dev, &cfg, priv, err, sizeof(err)));

	for (size_t i = 0; i < DEVICE_PEERS; i++) {
		struct config_peer *cp = &cps[i];
		memset(cp, 0, sizeof(*cp));
		randombytes_buf(priv, sizeof(priv));
		key_public_from_private(cp->public_key, priv);
		snprintf(cp->name, sizeof(cp->name), "p%zu", i);
		cp->allowed_ips[0] = (struct ip_prefix){ .family = AF_INET, .bits = 32 };
		peer_v4(i, cp->allowed_ips[0].addr);
		cp->n_allowed_ips = 1;
		peers[i] = device_peer_add(&dev, cp);
		assert_non_null(peers[i]);
		/* an initiation registers a receiver index for it */
		struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons(51820) };
		in.sin_addr.s_addr = htonl(0xc0000201u);
		struct sockaddr_storage ep;
		assert_true(device_socket_address(&dev, (const struct sockaddr *)&in, &ep));
		sockaddr_inet_set(&peers[i]->endpoint, &ep);
		peers[i]->has_endpoint = true;
		tx_send_initiation(&dev, peers[i], 1000000, false);
		device_outbox_flush(&dev);
		index_of[i] = peers[i]->handshake->local_index;
		assert_ptr_equal(peer_by_handshake_index(&dev, index_of[i]), peers[i]);
	}
	/* a second initiation moves the index: the old one finds nothing */
	uint32_t old = index_of[0];
	tx_send_initiation(&dev, peers[0], 1000000 + 6000, true);
	device_outbox_flush(&dev);
	index_of[0] = peers[0]->handshake->local_index;
	assert_null(peer_by_handshake_index(&dev, old));
	assert_ptr_equal(peer_by_handshake_index(&dev, index_of[0]), peers[0]);

	bool gone[DEVICE_PEERS] = { false };
	for (size_t i = 0; i < DEVICE_PEERS; i++)
		if (rng() % 2) {
			device_peer_remove(&dev, peers[i]);
			gone[i] = true;
		}
	for (size_t i = 0; i < DEVICE_PEERS; i++) {
		uint8_t a[4];
		peer_v4(i, a);
		struct peer *by_key = peer_by_public_key(&dev, cps[i].public_key);
		struct peer *by_addr = peer_by_address(&dev, AF_INET, a);
		struct peer *by_index = peer_by_handshake_index(&dev, index_of[i]);
		if (gone[i]) {
			assert_null(by_key);
			assert_null(by_addr);
			assert_null(by_index);
		} else {
			assert_ptr_equal(by_key, peers[i]);
			assert_ptr_equal(by_addr, peers[i]);
			assert_ptr_equal(by_index, peers[i]);
		}
	}
	/* the heap still runs the timers of the rest: each retries its initiation (after 5 s and
	 * a bit) under a new index, and only the new one finds it */
	device_run_timers(&dev, 1000000 + 20000);
	device_outbox_flush(&dev);
	for (size_t i = 0; i < DEVICE_PEERS; i++) {
		if (gone[i])
			continue;
		uint32_t now_index = peers[i]->handshake->local_index;
		assert_int_not_equal(now_index, index_of[i]);
		assert_null(peer_by_handshake_index(&dev, index_of[i]));
		assert_ptr_equal(peer_by_handshake_index(&dev, now_index), peers[i]);
		assert_true(peers[i]->n_indices <= PEER_INDICES_MAX);
	}
	device_close(&dev);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	log_init("meshd", LOG_LEVEL_ERROR); /* 2,000 peers' "no response" warnings say nothing here */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_index_table_random),
		cmocka_unit_test(test_key_table_random),
		cmocka_unit_test(test_timerq_due),
		cmocka_unit_test(test_stage_bounds),
		cmocka_unit_test(test_device_add_remove),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
