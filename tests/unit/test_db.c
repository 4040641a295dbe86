/* Unit tests for coord/db, the registry: schema and reopen, join key rules, names, address
 * allocation at scale, endpoints, change notification, races between processes, and that a
 * kill -9 at a random moment loses no acknowledged registration. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "coord/db.h"
#include "core/clock.h"
#include "core/dns.h"
#include "core/joinkey.h"
#include "db_fixtures.h"

enum {
	IPV4_FIRST = 0x64400001,   /* 100.64.0.1 */
	IPV4_LAST = 0x647ffffe,    /* 100.127.255.254 */
	SCALE_NODES = 10000,
	CRASH_ROUNDS = 20,
	CRASH_MIN_MS = 50,
	CRASH_SPAN_MS = 450,       /* kill between 50 and 500 ms after the child starts */
	RACE_KEYS = 50,
};

/* ------------------------------------------------------------------ helpers */

static uint32_t ipv4_value(const uint8_t a[4])
{
	return (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 | (uint32_t)a[2] << 8 | a[3];
}

static struct db_authkey key_by_id(struct db *db, int64_t id)
{
	struct key_list l = { .n = 0 };
	assert_true(db_authkey_list(db, collect_key, &l));
	for (size_t i = 0; i < l.n; i++)
		if (l.keys[i].id == id)
			return l.keys[i];
	fail_msg("no key %" PRId64, id);
	return l.keys[0];
}

static void count_node(const struct db_node *n, void *ctx)
{
	(*(size_t *)ctx)++;
}

static size_t node_count(struct db *db)
{
	size_t n = 0;
	assert_true(db_nodes_list(db, count_node, &n));
	return n;
}

/* ------------------------------------------------------------------ schema */

static void test_schema_and_reopen(void **state)
{
	uint8_t p1[16], p2[16], zero[10] = { 0 };
	struct db *db = open_db();
	uint8_t key[WIRE_KEY_LEN], secret[JOINKEY_SECRET_LEN];
	struct db_node before, after;

	db_network_ipv6_prefix(db, p1);
	assert_int_equal(p1[0], 0xfd);
	assert_memory_equal(p1 + 6, zero, sizeof(zero)); /* a /48: only 6 bytes are the prefix */
	make_key(db, false, 0, secret, NULL);
	random_key(key);
	assert_int_equal(reg(db, key, secret, "alpha", NOW, &before), DB_REGISTER_OK);
	db_close(db);

	db = open_db();
	db_network_ipv6_prefix(db, p2);
	assert_memory_equal(p1, p2, sizeof(p1));
	assert_true(db_node_by_key(db, key, &after));
	assert_memory_equal(&before, &after, sizeof(before));
	assert_memory_equal(after.ipv6, p1, 6);
	db_close(db);

	/* The schema is versioned. */
	sqlite3 *h;
	sqlite3_stmt *s;
	assert_int_equal(sqlite3_open(dbpath, &h), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(h, "PRAGMA user_version", -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(s, 0), 6);
	sqlite3_finalize(s);
	assert_int_equal(sqlite3_prepare_v2(h, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
	sqlite3_finalize(s);
	sqlite3_close(h);

	/* A second network gets a different prefix (40 random bits). */
	unlink(dbpath);
	db = open_db();
	db_network_ipv6_prefix(db, p2);
	assert_int_equal(p2[0], 0xfd);
	assert_memory_not_equal(p1, p2, 6);
	db_close(db);
}

static void test_open_errors(void **state)
{
	char err[ERR_MAX] = "", path[TEST_PATH_MAX];

	snprintf(path, sizeof(path), "%s/missing/registry.db", tmpdir);
	assert_null(db_open(path, err, sizeof(err)));
	assert_non_null(strstr(err, path));

	/* Not a database. */
	snprintf(path, sizeof(path), "%s/garbage.db", tmpdir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	for (int i = 0; i < 200; i++)
		fputs("this is not an SQLite file\n", f);
	fclose(f);
	err[0] = '\0';
	assert_null(db_open(path, err, sizeof(err)));
	assert_true(strlen(err) > strlen(path));
	assert_null(strchr(err, '\n'));

	/* A schema from a newer meshcoord is refused, not reinterpreted. */
	db_close(open_db());
	raw_sql("PRAGMA user_version = 99");
	err[0] = '\0';
	assert_null(db_open(dbpath, err, sizeof(err)));
	assert_non_null(strstr(err, "schema version 99"));
}

/* ------------------------------------------------------------------ join keys */

static void test_one_time_key(void **state)
{
	struct db *db = open_db();
	uint8_t secret[JOINKEY_SECRET_LEN], a[WIRE_KEY_LEN], b[WIRE_KEY_LEN];
	struct db_node first, again;
	int64_t id;

	make_key(db, false, 0, secret, &id);
	random_key(a);
	random_key(b);
	assert_int_equal(reg(db, a, secret, "alpha", NOW, &first), DB_REGISTER_OK);
	assert_string_equal(first.name, "alpha");
	assert_memory_equal(first.node_key, a, WIRE_KEY_LEN);
	assert_int_equal(first.created, NOW);
	assert_int_equal(first.last_seen, NOW);
	assert_int_equal(first.n_endpoints, 0);
	uint32_t v4 = ipv4_value(first.ipv4);
	assert_true(v4 >= IPV4_FIRST && v4 <= IPV4_LAST);
	assert_memory_equal(first.ipv6 + 12, first.ipv4, 4);

	/* Consumed: another node is refused, and nothing of it is stored. */
	assert_int_equal(reg(db, b, secret, "beta", NOW, NULL), DB_REGISTER_KEY_USED);
	assert_false(db_node_by_key(db, b, &again));
	assert_int_equal(key_by_id(db, id).uses, 1);

	/* The node itself comes back with or without the secret, hostname ignored. */
	assert_int_equal(reg(db, a, NULL, "renamed", NOW + 100, &again), DB_REGISTER_OK);
	assert_memory_equal(&first, &again, sizeof(first));
	assert_int_equal(reg(db, a, secret, "renamed", NOW + 100, &again), DB_REGISTER_OK);
	assert_memory_equal(&first, &again, sizeof(first));
	assert_int_equal(key_by_id(db, id).uses, 1);
	assert_int_equal(node_count(db), 1);
	db_close(db);
}

static void test_reusable_key(void **state)
{
	struct db *db = open_db();
	uint8_t secret[JOINKEY_SECRET_LEN], key[3][WIRE_KEY_LEN];
	struct db_node n[3];
	int64_t id;

	make_key(db, true, 0, secret, &id);
	for (int i = 0; i < 3; i++) {
		random_key(key[i]);
		assert_int_equal(reg(db, key[i], secret, "box", NOW, &n[i]), DB_REGISTER_OK);
	}
	assert_string_equal(n[0].name, "box");
	assert_string_equal(n[1].name, "box-2");
	assert_string_equal(n[2].name, "box-3");
	assert_true(memcmp(n[0].ipv4, n[1].ipv4, 4) != 0 && memcmp(n[1].ipv4, n[2].ipv4, 4) != 0 &&
		    memcmp(n[0].ipv4, n[2].ipv4, 4) != 0);
	struct db_authkey k = key_by_id(db, id);
	assert_true(k.reusable);
	assert_int_equal(k.uses, 3);
	assert_false(k.revoked);
	assert_int_equal(k.created, NOW);
	db_close(db);
}

static void test_expired_revoked_unknown(void **state)
{
	struct db *db = open_db();
	uint8_t timed[JOINKEY_SECRET_LEN], revoked[JOINKEY_SECRET_LEN], used[JOINKEY_SECRET_LEN];
	uint8_t unknown[JOINKEY_SECRET_LEN], node[WIRE_KEY_LEN];
	int64_t timed_id, revoked_id, used_id;

	make_key(db, true, NOW + 10, timed, &timed_id);
	assert_int_equal(key_by_id(db, timed_id).expires, NOW + 10);
	random_key(node);
	assert_int_equal(reg(db, node, timed, "late", NOW + 10, NULL), DB_REGISTER_KEY_EXPIRED);
	assert_int_equal(reg(db, node, timed, "late", NOW + 100000, NULL), DB_REGISTER_KEY_EXPIRED);
	assert_int_equal(reg(db, node, timed, "late", NOW + 9, NULL), DB_REGISTER_OK); /* last valid second */

	make_key(db, true, 0, revoked, &revoked_id);
	assert_true(db_authkey_revoke(db, revoked_id));
	assert_true(db_authkey_revoke(db, revoked_id)); /* idempotent */
	assert_true(key_by_id(db, revoked_id).revoked);
	random_key(node);
	assert_int_equal(reg(db, node, revoked, "x", NOW, NULL), DB_REGISTER_KEY_REVOKED);
	assert_false(db_authkey_revoke(db, 999999));
	assert_false(db_authkey_revoke(db, -1));

	/* A used one-time key that was then revoked says "revoked": the administrator's word. */
	make_key(db, false, NOW + 5, used, &used_id);
	random_key(node);
	assert_int_equal(reg(db, node, used, "y", NOW, NULL), DB_REGISTER_OK);
	random_key(node);
	assert_int_equal(reg(db, node, used, "z", NOW + 6, NULL), DB_REGISTER_KEY_USED); /* used beats expired */
	assert_true(db_authkey_revoke(db, used_id));
	assert_int_equal(reg(db, node, used, "z", NOW, NULL), DB_REGISTER_KEY_REVOKED);

	randombytes_buf(unknown, sizeof(unknown));
	assert_int_equal(reg(db, node, unknown, "u", NOW, NULL), DB_REGISTER_KEY_UNKNOWN);
	/* Any length is just another unknown secret. */
	assert_int_equal(db_register_node(db, node, unknown, 3, "u", NOW, &(struct db_node){ 0 }),
			 DB_REGISTER_KEY_UNKNOWN);
	assert_int_equal(db_register_node(db, node, timed, JOINKEY_SECRET_LEN - 1, "u", NOW, &(struct db_node){ 0 }),
			 DB_REGISTER_KEY_UNKNOWN);
	assert_false(db_node_by_key(db, node, &(struct db_node){ 0 }));
	db_close(db);
}

static void test_need_key(void **state)
{
	struct db *db = open_db();
	uint8_t node[WIRE_KEY_LEN], secret[JOINKEY_SECRET_LEN];

	random_key(node);
	assert_int_equal(reg(db, node, NULL, "n", NOW, NULL), DB_REGISTER_NEED_KEY);
	assert_int_equal(db_register_node(db, node, secret, 0, "n", NOW, &(struct db_node){ 0 }), DB_REGISTER_NEED_KEY);
	assert_int_equal(node_count(db), 0);
	db_close(db);
}

static void test_removed_node(void **state)
{
	struct db *db = open_db();
	uint8_t secret[JOINKEY_SECRET_LEN], a[WIRE_KEY_LEN], b[WIRE_KEY_LEN];
	struct db_node old, fresh, tmp;

	make_key(db, true, 0, secret, NULL);
	random_key(a);
	random_key(b);
	assert_int_equal(reg(db, a, secret, "alpha", NOW, &old), DB_REGISTER_OK);
	assert_true(db_node_remove(db, "alpha"));
	assert_false(db_node_remove(db, "alpha"));
	assert_false(db_node_remove(db, "nobody"));
	assert_false(db_node_by_key(db, a, &tmp));

	/* Refused from now on, even with a valid key. */
	assert_int_equal(reg(db, a, secret, "alpha", NOW, NULL), DB_REGISTER_NODE_REMOVED);
	assert_int_equal(reg(db, a, NULL, "alpha", NOW, NULL), DB_REGISTER_NODE_REMOVED);
	assert_false(db_node_by_key(db, a, &tmp));

	/* Its name and addresses go to nobody else. */
	assert_int_equal(reg(db, b, secret, "alpha", NOW, &fresh), DB_REGISTER_OK);
	assert_string_equal(fresh.name, "alpha-2");
	assert_memory_not_equal(fresh.ipv4, old.ipv4, 4);
	assert_memory_not_equal(fresh.ipv6, old.ipv6, 16);
	assert_int_equal(node_count(db), 1);
	db_close(db);
}

/* ------------------------------------------------------------------ names */

static void test_names(void **state)
{
	static const struct {
		const char *hostname;
		const char *name;
	} cases[] = {
		{ "laptop", "laptop" },
		{ "Desk.Example.COM", "desk" },
		{ "my_box 2", "my-box-2" },
		{ "--a--b--", "a-b" },
		{ "xn--bcher-kva", "xn-bcher-kva" },   /* never the IDN "xn--" form */
		{ "caf\xc3\xa9-bar", "caf-bar" },       /* UTF-8 bytes become one '-' */
		{ "", "node" },
		{ ".leading-dot", "node-2" },           /* nothing left: "node", taken by now */
		{ "---", "node-3" },
		{ NULL, "node-4" },
		{ "UPPER", "upper" },
		{ "0123", "0123" },
		/* 70 characters: cut to a 63-byte DNS label. */
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" },
		/* The same again: the suffix fits by cutting the base. */
		{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-2" },
		/* A cut that would end in '-' loses it. */
		{ "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-cc",
		  "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-cc" },
		{ "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-cc",
		  "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-2" },
		{ "host", "host" },
		{ "host", "host-2" },
		{ "HOST.lan", "host-3" },
		{ "host-2", "host-2-2" },               /* a hostname that looks like a suffix */
		{ "host", "host-4" },
	};
	struct db *db = open_db();
	uint8_t secret[JOINKEY_SECRET_LEN], key[WIRE_KEY_LEN];
	struct db_node n;

	make_key(db, true, 0, secret, NULL);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		random_key(key);
		assert_int_equal(reg(db, key, secret, cases[i].hostname, NOW, &n), DB_REGISTER_OK);
		if (strcmp(n.name, cases[i].name) != 0)
			fail_msg("case %zu: '%s' became '%s', expected '%s'", i,
				 cases[i].hostname ? cases[i].hostname : "(null)", n.name, cases[i].name);
		assert_true(strlen(n.name) <= CONTROL_NAME_MAX);
	}
	db_close(db);
}

/* ------------------------------------------------------------------ addresses */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_addresses_at_scale(void **state)
{
	struct db *db = open_db();
	uint8_t secret[JOINKEY_SECRET_LEN], key[WIRE_KEY_LEN], prefix[16];
	uint32_t *v4 = calloc(SCALE_NODES, sizeof(*v4));
	char **names = calloc(SCALE_NODES, sizeof(*names));
	struct db_node n;

	assert_non_null(v4);
	assert_non_null(names);
	db_network_ipv6_prefix(db, prefix);
	make_key(db, true, 0, secret, NULL);
	uint64_t start = clock_monotonic_ms();
	for (int i = 0; i < SCALE_NODES; i++) {
		random_key(key);
		/* Every node has the same hostname: the name counter must keep this linear. */
		assert_int_equal(reg(db, key, secret, "bench", NOW, &n), DB_REGISTER_OK);
		v4[i] = ipv4_value(n.ipv4);
		assert_memory_equal(n.ipv6, prefix, 6);
		assert_memory_equal(n.ipv6 + 12, n.ipv4, 4);
		names[i] = strdup(n.name);
		assert_non_null(names[i]);
	}
	uint64_t ms = clock_monotonic_ms() - start;
	print_message("[ INFO     ] %d registrations in %" PRIu64 " ms (%.0f/s)\n", SCALE_NODES, ms,
		      ms ? SCALE_NODES * 1000.0 / (double)ms : 0.0);

	qsort(v4, SCALE_NODES, sizeof(*v4), cmp_u32);
	assert_true(v4[0] >= IPV4_FIRST);
	assert_true(v4[SCALE_NODES - 1] <= IPV4_LAST);
	for (int i = 1; i < SCALE_NODES; i++)
		assert_true(v4[i] > v4[i - 1]);
	/* 100.64.0.0/10 and in order from the first address: nothing skipped. */
	assert_int_equal(v4[0], IPV4_FIRST);
	assert_int_equal(v4[SCALE_NODES - 1], IPV4_FIRST + SCALE_NODES - 1);
	qsort(names, SCALE_NODES, sizeof(*names), cmp_str);
	for (int i = 1; i < SCALE_NODES; i++)
		assert_true(strcmp(names[i], names[i - 1]) != 0);
	for (int i = 0; i < SCALE_NODES; i++)
		free(names[i]);
	free(names);
	free(v4);

	start = clock_monotonic_ms();
	assert_int_equal(node_count(db), SCALE_NODES);
	print_message("[ INFO     ] listing %d nodes took %" PRIu64 " ms\n", SCALE_NODES, clock_monotonic_ms() - start);
	db_close(db);
}

static void test_address_wrap(void **state)
{
	struct db *db = open_db();
	uint8_t secret[JOINKEY_SECRET_LEN], key[4][WIRE_KEY_LEN];
	struct db_node n[4];

	make_key(db, true, 0, secret, NULL);
	for (int i = 0; i < 4; i++)
		random_key(key[i]);
	assert_int_equal(reg(db, key[0], secret, "a", NOW, &n[0]), DB_REGISTER_OK);
	assert_int_equal(reg(db, key[1], secret, "b", NOW, &n[1]), DB_REGISTER_OK);
	assert_int_equal(ipv4_value(n[0].ipv4), IPV4_FIRST);
	assert_int_equal(ipv4_value(n[1].ipv4), IPV4_FIRST + 1);
	assert_true(db_node_remove(db, "a"));
	db_close(db);

	/* Pretend the counter reached the end of the range (four million registrations later). */
	char sql[128];
	snprintf(sql, sizeof(sql), "UPDATE network SET next_ipv4 = %d", IPV4_LAST);
	raw_sql(sql);
	db = open_db();
	assert_int_equal(reg(db, key[2], secret, "c", NOW, &n[2]), DB_REGISTER_OK);
	assert_int_equal(ipv4_value(n[2].ipv4), IPV4_LAST); /* never the broadcast address */
	/* Past the end: the lowest free address, which is the removed node's. */
	assert_int_equal(reg(db, key[3], secret, "d", NOW, &n[3]), DB_REGISTER_OK);
	assert_int_equal(ipv4_value(n[3].ipv4), IPV4_FIRST);
	/* And on from there, skipping taken addresses. */
	random_key(key[0]);
	assert_int_equal(reg(db, key[0], secret, "e", NOW, &n[0]), DB_REGISTER_OK);
	assert_int_equal(ipv4_value(n[0].ipv4), IPV4_FIRST + 2);
	db_close(db);

}

/* The mesh's DNS address (100.100.100.100) is never a node's, whether the counter reaches it
 * or the search for a free address after a wrap does. */
static void test_address_skips_dns(void **state)
{
	struct db *db = open_db();
	uint8_t secret[JOINKEY_SECRET_LEN], key[WIRE_KEY_LEN];
	struct db_node n;
	char sql[128];
	(void)state;

	make_key(db, true, 0, secret, NULL);
	db_close(db);
	snprintf(sql, sizeof(sql), "UPDATE network SET next_ipv4 = %lld", (long long)DNS_MESH_SERVICE_IPV4);
	raw_sql(sql);
	db = open_db();
	random_key(key);
	assert_int_equal(reg(db, key, secret, "a", NOW, &n), DB_REGISTER_OK);
	assert_int_equal(ipv4_value(n.ipv4), DNS_MESH_SERVICE_IPV4 + 1);
	db_close(db);
}

/* ------------------------------------------------------------------ endpoints, touch */

static void test_endpoints(void **state)
{
	struct db *db = open_db();
	uint8_t secret[JOINKEY_SECRET_LEN], key[WIRE_KEY_LEN], other[WIRE_KEY_LEN];
	struct control_endpoint eps[CONTROL_MAX_ENDPOINTS + 1];
	struct db_node n;

	make_key(db, false, 0, secret, NULL);
	random_key(key);
	random_key(other);
	assert_int_equal(reg(db, key, secret, "ep", NOW, NULL), DB_REGISTER_OK);

	memset(eps, 0, sizeof(eps));
	for (size_t i = 0; i < CONTROL_MAX_ENDPOINTS + 1; i++) {
		eps[i].family = (i % 2) ? 6 : 4;
		randombytes_buf(eps[i].addr, eps[i].family == 4 ? 4 : 16);
		eps[i].addr[0] = eps[i].family == 4 ? 203 : 0x20; /* dialable: others are dropped on read */
		eps[i].port = (uint16_t)(i == 0 ? 65535 : i * 1000 + 1);
	}
	assert_true(db_node_set_endpoints(db, key, eps, CONTROL_MAX_ENDPOINTS));
	assert_true(db_node_by_key(db, key, &n));
	assert_int_equal(n.n_endpoints, CONTROL_MAX_ENDPOINTS);
	assert_memory_equal(n.endpoints, eps, CONTROL_MAX_ENDPOINTS * sizeof(eps[0]));

	assert_true(db_node_set_endpoints(db, key, eps + 1, 1));
	assert_true(db_node_by_key(db, key, &n));
	assert_int_equal(n.n_endpoints, 1);
	assert_memory_equal(&n.endpoints[0], &eps[1], sizeof(eps[1]));

	assert_true(db_node_set_endpoints(db, key, NULL, 0));
	assert_true(db_node_by_key(db, key, &n));
	assert_int_equal(n.n_endpoints, 0);

	/* Refused: too many, a bad family, an unknown node. */
	assert_false(db_node_set_endpoints(db, key, eps, CONTROL_MAX_ENDPOINTS + 1));
	eps[0].family = 5;
	assert_false(db_node_set_endpoints(db, key, eps, 1));
	eps[0].family = 4;
	assert_false(db_node_set_endpoints(db, other, eps, 1));

	/* A malformed stored record costs the endpoints, not the node. */
	db_close(db);
	raw_sql("UPDATE nodes SET endpoints = x'0401020304'"); /* cut short */
	db = open_db();
	assert_true(db_node_by_key(db, key, &n));
	assert_int_equal(n.n_endpoints, 0);

	assert_int_equal(n.last_seen, NOW);
	assert_true(db_node_touch(db, key, NOW + 25));
	assert_true(db_node_by_key(db, key, &n));
	assert_int_equal(n.last_seen, NOW + 25);
	assert_false(db_node_touch(db, other, NOW));
	db_close(db);
}

/* ------------------------------------------------------------------ change notification */

static void test_changed(void **state)
{
	struct db *server = open_db(), *admin = open_db();
	uint8_t secret[JOINKEY_SECRET_LEN], key[WIRE_KEY_LEN];

	assert_false(db_changed(server));
	make_key(admin, false, 0, secret, NULL);
	assert_true(db_changed(server));
	assert_false(db_changed(server));

	/* Its own commits are not news to it. */
	random_key(key);
	assert_int_equal(reg(server, key, secret, "s", NOW, NULL), DB_REGISTER_OK);
	assert_true(db_node_touch(server, key, NOW + 1));
	assert_false(db_changed(server));

	/* The admin connection sees the server's registration, the server sees the removal. */
	assert_true(db_changed(admin));
	assert_true(db_node_remove(admin, "s"));
	assert_true(db_changed(server));
	assert_false(db_node_by_key(server, key, &(struct db_node){ 0 }));
	db_close(admin);
	db_close(server);
}

/* ------------------------------------------------------------------ processes */

/* Two processes race for the same one-time keys: each key admits exactly one node. */
static void test_one_time_race(void **state)
{
	struct db *db = open_db();
	uint8_t secrets[RACE_KEYS][JOINKEY_SECRET_LEN];
	pid_t pid[2];

	for (int i = 0; i < RACE_KEYS; i++)
		make_key(db, false, 0, secrets[i], NULL);
	db_close(db);

	for (int c = 0; c < 2; c++) {
		pid[c] = fork();
		assert_true(pid[c] >= 0);
		if (pid[c] == 0) {
			char err[ERR_MAX];
			struct db *child = db_open(dbpath, err, sizeof(err));
			int ok = 0;
			if (!child)
				_exit(255);
			for (int i = 0; i < RACE_KEYS; i++) {
				uint8_t key[WIRE_KEY_LEN];
				struct db_node n;
				random_key(key);
				enum db_register_result r = db_register_node(child, key, secrets[i], JOINKEY_SECRET_LEN,
									     "racer", NOW, &n);
				if (r == DB_REGISTER_OK)
					ok++;
				else if (r != DB_REGISTER_KEY_USED)
					_exit(254);
			}
			db_close(child);
			_exit(ok);
		}
	}
	int total = 0;
	for (int c = 0; c < 2; c++) {
		int status;
		assert_int_equal(waitpid(pid[c], &status, 0), pid[c]);
		assert_true(WIFEXITED(status));
		assert_true(WEXITSTATUS(status) <= RACE_KEYS);
		total += WEXITSTATUS(status);
	}
	assert_int_equal(total, RACE_KEYS);
	db = open_db();
	assert_int_equal(node_count(db), RACE_KEYS);
	db_close(db);
}

/* What the crash child reports through the pipe after each acknowledged write. */
struct ack {
	uint8_t type; /* 'R' registered, 'E' endpoints stored */
	uint8_t node_key[WIRE_KEY_LEN];
	uint8_t ipv4[4];
	uint8_t ipv6[16];
} __attribute__((packed));

static void crash_child(int fd, const uint8_t secret[JOINKEY_SECRET_LEN])
{
	char err[ERR_MAX];
	struct db *db = db_open(dbpath, err, sizeof(err));

	if (!db)
		_exit(1);
	for (uint32_t i = 0;; i++) {
		struct ack a = { .type = 'R' };
		struct db_node n;
		struct control_endpoint ep = { .family = 4, .port = (uint16_t)(i | 1) };

		random_key(a.node_key);
		if (db_register_node(db, a.node_key, secret, JOINKEY_SECRET_LEN, "crash", NOW, &n) != DB_REGISTER_OK)
			_exit(2);
		memcpy(a.ipv4, n.ipv4, 4);
		memcpy(a.ipv6, n.ipv6, 16);
		/* Smaller than PIPE_BUF: each write lands whole or not at all. */
		if (write(fd, &a, sizeof(a)) != (ssize_t)sizeof(a))
			_exit(3);
		memcpy(ep.addr, n.ipv4, 4);
		if (!db_node_set_endpoints(db, a.node_key, &ep, 1))
			_exit(4);
		a.type = 'E';
		if (write(fd, &a, sizeof(a)) != (ssize_t)sizeof(a))
			_exit(3);
	}
}

struct ack_buf {
	uint8_t *data;
	size_t len, cap;
};

static void ack_read(int fd, struct ack_buf *b)
{
	for (;;) {
		if (b->cap - b->len < 4096) {
			b->cap = b->cap ? b->cap * 2 : 1 << 16;
			b->data = realloc(b->data, b->cap);
			assert_non_null(b->data);
		}
		ssize_t r = read(fd, b->data + b->len, b->cap - b->len);
		if (r <= 0) {
			assert_true(r == 0 || errno == EAGAIN);
			return;
		}
		b->len += (size_t)r;
	}
}

/* ------------------------------------------------------------------ satellites (schema v5) */

struct sat_rows {
	struct db_satellite v[CONTROL_MAX_SATELLITES + 2];
	size_t n;
};

static void collect_sat(const struct db_satellite *s, void *ctx)
{
	struct sat_rows *r = ctx;
	if (r->n < sizeof(r->v) / sizeof(r->v[0]))
		r->v[r->n++] = *s;
}

/* A satellite without a preshared key or an endpoint, made by the device (the usual case). */
static enum db_satellite_result sat_add(struct db *db, const char *name, const char *gw, const uint8_t *key,
					const char *tags)
{
	struct db_satellite out;
	return db_satellite_add(db, name, gw, key, NULL, false, NULL, tags, NOW, &out);
}

static void test_satellites(void **state)
{
	struct db *db = open_db();
	uint8_t secret[JOINKEY_SECRET_LEN], gk[WIRE_KEY_LEN], ok[WIRE_KEY_LEN], sk[WIRE_KEY_LEN], psk[WIRE_KEY_LEN];
	struct db_node gw, other, late;
	struct db_satellite sat, again;
	struct sat_rows rows = { .n = 0 };
	bool found;
	(void)state;

	make_key(db, true, 0, secret, NULL);
	random_key(gk);
	random_key(ok);
	assert_int_equal(reg(db, gk, secret, "gw", NOW, &gw), DB_REGISTER_OK);
	assert_int_equal(reg(db, ok, secret, "other", NOW, &other), DB_REGISTER_OK);
	random_key(sk);
	memset(psk, 0x5a, sizeof(psk));
	assert_int_equal(db_satellite_add(db, "phone", "gw", sk, psk, true, NULL, "tag:mobile", NOW, &sat), DB_SATELLITE_OK);
	assert_string_equal(sat.name, "phone");
	assert_string_equal(sat.gateway_name, "gw");
	assert_memory_equal(sat.gateway_key, gk, WIRE_KEY_LEN);
	assert_true(sat.has_psk && sat.key_generated);
	assert_memory_equal(sat.psk, psk, WIRE_KEY_LEN);
	assert_string_equal(sat.tags, "tag:mobile");
	assert_string_equal(sat.endpoint, "");
	/* its addresses come from the nodes' allocator: next after the nodes, v6 derived */
	assert_int_equal(ipv4_value(sat.ipv4), ipv4_value(other.ipv4) + 1);
	assert_memory_equal(sat.ipv6, gw.ipv6, 6);
	assert_memory_equal(sat.ipv6 + 12, sat.ipv4, 4);
	/* ... and a node registering later gets the next one, and not the satellite's name */
	uint8_t lk[WIRE_KEY_LEN];
	random_key(lk);
	assert_int_equal(reg(db, lk, secret, "phone", NOW, &late), DB_REGISTER_OK);
	assert_int_equal(ipv4_value(late.ipv4), ipv4_value(sat.ipv4) + 1);
	assert_string_equal(late.name, "phone-2");

	/* refusals: name (bad, a node's, a satellite's), key (a node's, a satellite's), gateway, tags */
	uint8_t k2[WIRE_KEY_LEN];
	random_key(k2);
	assert_int_equal(sat_add(db, "Phone", "gw", k2, NULL), DB_SATELLITE_BAD_NAME);
	assert_int_equal(sat_add(db, "-x", "gw", k2, NULL), DB_SATELLITE_BAD_NAME);
	assert_int_equal(sat_add(db, "other", "gw", k2, NULL), DB_SATELLITE_NAME_TAKEN);
	assert_int_equal(sat_add(db, "phone", "gw", k2, NULL), DB_SATELLITE_NAME_TAKEN);
	assert_int_equal(sat_add(db, "tab", "gw", ok, NULL), DB_SATELLITE_KEY_TAKEN);
	assert_int_equal(sat_add(db, "tab", "gw", sk, NULL), DB_SATELLITE_KEY_TAKEN);
	assert_int_equal(sat_add(db, "tab", "nobody", k2, NULL), DB_SATELLITE_NO_GATEWAY);
	assert_int_equal(sat_add(db, "tab", "gw", k2, "web"), DB_SATELLITE_BAD_TAGS);
	assert_int_equal(sat_add(db, "tab", "gw", k2, "tag:a "), DB_SATELLITE_BAD_TAGS);
	/* without a psk, with an endpoint, on the other gateway */
	assert_int_equal(db_satellite_add(db, "tab", "other", k2, NULL, false, "gw.example.net:51820", "", NOW, &again),
			 DB_SATELLITE_OK);
	assert_false(again.has_psk || again.key_generated);
	assert_string_equal(again.endpoint, "gw.example.net:51820");
	assert_int_equal(db_satellite_by_name(db, "tab", &again), 1);
	assert_int_equal(db_satellite_by_name(db, "nobody", &again), 0);

	/* at most CONTROL_MAX_SATELLITES per gateway */
	for (int i = 1; i < CONTROL_MAX_SATELLITES; i++) {
		char name[16];
		uint8_t k[WIRE_KEY_LEN];
		snprintf(name, sizeof(name), "dev-%d", i);
		random_key(k);
		assert_int_equal(sat_add(db, name, "gw", k, NULL), DB_SATELLITE_OK);
	}
	random_key(k2);
	assert_int_equal(sat_add(db, "dev-x", "gw", k2, NULL), DB_SATELLITE_TOO_MANY);
	assert_true(db_satellites_list(db, collect_sat, &rows));
	assert_int_equal(rows.n, CONTROL_MAX_SATELLITES + 1);

	/* remove one; removing the gateway removes the rest of its satellites */
	assert_true(db_satellite_remove(db, "phone", &found));
	assert_true(found);
	assert_true(db_satellite_remove(db, "phone", &found));
	assert_false(found);
	assert_true(db_node_remove(db, "gw"));
	rows.n = 0;
	assert_true(db_satellites_list(db, collect_sat, &rows));
	assert_int_equal(rows.n, 1);
	assert_string_equal(rows.v[0].name, "tab");
	db_close(db);

	/* a v4 registry (before satellites) migrates: its nodes stay, satellites can be added */
	raw_sql("DROP TABLE satellites; DROP TABLE publish_grants; PRAGMA user_version = 4");
	db = open_db();
	assert_true(db_node_by_key(db, ok, &other));
	random_key(k2);
	assert_int_equal(sat_add(db, "phone2", "other", k2, NULL), DB_SATELLITE_OK);
	db_close(db);
	/* a v5 registry (satellites, before publish grants) migrates and keeps its satellites */
	raw_sql("DROP TABLE publish_grants; PRAGMA user_version = 5");
	db = open_db();
	rows.n = 0;
	assert_true(db_satellites_list(db, collect_sat, &rows));
	assert_int_equal(rows.n, 1);
	assert_string_equal(rows.v[0].name, "phone2");
	db_close(db);
}

static void test_crash_durability(void **state)
{
	uint8_t secret[JOINKEY_SECRET_LEN];
	size_t total_acked = 0;
	int64_t key_id;
	struct db *db = open_db();

	make_key(db, true, 0, secret, &key_id);
	db_close(db);

	for (int round = 0; round < CRASH_ROUNDS; round++) {
		struct ack_buf buf = { 0 };
		int fds[2];
		assert_int_equal(pipe(fds), 0);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(fds[0]);
			crash_child(fds[1], secret);
		}
		close(fds[1]);
		fcntl(fds[0], F_SETFL, O_NONBLOCK);

		/* Drain the pipe while the child runs, so it never waits on a full pipe (it must be
		 * killed in the middle of its work, not parked in write). */
		uint64_t deadline = clock_monotonic_ms() + CRASH_MIN_MS + randombytes_uniform(CRASH_SPAN_MS + 1);
		for (uint64_t now = clock_monotonic_ms(); now < deadline; now = clock_monotonic_ms()) {
			struct pollfd p = { .fd = fds[0], .events = POLLIN };
			poll(&p, 1, (int)(deadline - now));
			ack_read(fds[0], &buf);
		}
		assert_int_equal(kill(pid, SIGKILL), 0);
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
			fail_msg("round %d: child ended by itself (status %d) before the kill", round, status);
		fcntl(fds[0], F_SETFL, 0);
		ack_read(fds[0], &buf);
		close(fds[0]);
		assert_int_equal(buf.len % sizeof(struct ack), 0);

		db = open_db();
		size_t n_acks = buf.len / sizeof(struct ack), registered = 0;
		for (size_t i = 0; i < n_acks; i++) {
			struct ack a;
			struct db_node n;
			memcpy(&a, buf.data + i * sizeof(a), sizeof(a));
			if (!db_node_by_key(db, a.node_key, &n))
				fail_msg("round %d: acknowledged node %zu of %zu is missing", round, i, n_acks);
			assert_memory_equal(n.ipv4, a.ipv4, 4);
			assert_memory_equal(n.ipv6, a.ipv6, 16);
			if (a.type == 'E') {
				assert_int_equal(n.n_endpoints, 1);
				assert_memory_equal(n.endpoints[0].addr, a.ipv4, 4);
			} else {
				registered++;
			}
		}
		/* The key's use count and the node rows were committed together. */
		assert_int_equal(key_by_id(db, key_id).uses, (int64_t)node_count(db));
		total_acked += registered;
		db_close(db);
		free(buf.data);
	}
	print_message("[ INFO     ] %d kills, %zu acknowledged registrations, none lost\n", CRASH_ROUNDS, total_acked);
	assert_true(total_acked > 0);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_schema_and_reopen, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_open_errors, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_one_time_key, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_reusable_key, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_expired_revoked_unknown, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_need_key, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_removed_node, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_names, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_addresses_at_scale, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_address_wrap, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_address_skips_dns, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_endpoints, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_changed, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_one_time_race, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_crash_durability, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_satellites, setup_dir, teardown_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
