/* The registry's hardening (issue 8): limits on reusable join keys (max uses, registrations
 * per minute), the schema migration that added them, the file opened without following a
 * symbolic link and with its mode fixed, node tags (schema v4), and malformed node rows skipped on load instead of
 * failing the listing (or, served, closing every session that reaches them). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coord/db.h"
#include "core/routes.h"
#include "core/joinkey.h"
#include "db_fixtures.h"

static enum db_register_result reg_new(struct db *db, const uint8_t secret[JOINKEY_SECRET_LEN], int64_t now)
{
	uint8_t key[WIRE_KEY_LEN];
	random_key(key);
	return reg(db, key, secret, "lim", now, NULL);
}

/* ------------------------------------------------------------------ key limits */

static void test_max_uses(void **state)
{
	struct db *db = open_db();
	uint8_t secret[JOINKEY_SECRET_LEN];
	int64_t id;
	struct key_list l = { .n = 0 };
	(void)state;

	assert_true(db_authkey_create_limited(db, true, 0, NOW, 2, 0, secret, &id));
	assert_int_equal(reg_new(db, secret, NOW), DB_REGISTER_OK);
	assert_int_equal(reg_new(db, secret, NOW + 1), DB_REGISTER_OK);
	assert_int_equal(reg_new(db, secret, NOW + 2), DB_REGISTER_KEY_USED_UP);
	assert_int_equal(reg_new(db, secret, NOW + 3600), DB_REGISTER_KEY_USED_UP);
	assert_true(db_authkey_list(db, collect_key, &l));
	assert_int_equal(l.n, 1);
	assert_int_equal(l.keys[0].uses, 2);
	assert_int_equal(l.keys[0].max_uses, 2);
	db_close(db);
}

static void test_per_minute(void **state)
{
	struct db *db = open_db();
	uint8_t secret[JOINKEY_SECRET_LEN], secret_free[JOINKEY_SECRET_LEN], secret_def[JOINKEY_SECRET_LEN];
	int64_t id, minute = NOW - NOW % DB_AUTHKEY_MINUTE_S;
	struct key_list l = { .n = 0 };
	(void)state;

	assert_true(db_authkey_create_limited(db, true, 0, NOW, 0, 3, secret, &id));
	for (int i = 0; i < 3; i++)
		assert_int_equal(reg_new(db, secret, minute + i), DB_REGISTER_OK);
	assert_int_equal(reg_new(db, secret, minute + 59), DB_REGISTER_KEY_BUSY);
	/* The next minute starts afresh; a refused attempt did not count. */
	for (int i = 0; i < 3; i++)
		assert_int_equal(reg_new(db, secret, minute + 60 + i), DB_REGISTER_OK);
	assert_int_equal(reg_new(db, secret, minute + 61), DB_REGISTER_KEY_BUSY);
	/* 0: no limit. */
	assert_true(db_authkey_create_limited(db, true, 0, NOW, 0, 0, secret_free, &id));
	for (int i = 0; i < 50; i++)
		assert_int_equal(reg_new(db, secret_free, minute), DB_REGISTER_OK);
	/* db_authkey_create's keys carry the default. */
	assert_true(db_authkey_create(db, true, 0, NOW, secret_def, &id));
	assert_true(db_authkey_list(db, collect_key, &l));
	assert_int_equal(l.n, 3);
	assert_int_equal(l.keys[2].per_minute, DB_AUTHKEY_PER_MINUTE_DEFAULT);
	assert_int_equal(l.keys[0].uses, 6);
	db_close(db);
}

/* A version 1 registry (before the limits) is migrated in place; its keys keep working and
 * get the default per-minute limit. */
static void test_migration_from_v1(void **state)
{
	uint8_t secret[JOINKEY_SECRET_LEN];
	struct db *db = open_db();
	struct key_list l = { .n = 0 };
	(void)state;

	make_key(db, true, 0, secret, NULL);
	assert_int_equal(reg_new(db, secret, NOW), DB_REGISTER_OK);
	db_close(db);
	raw_sql("ALTER TABLE authkeys DROP COLUMN max_uses; ALTER TABLE authkeys DROP COLUMN per_minute;"
		"ALTER TABLE authkeys DROP COLUMN minute_start; ALTER TABLE authkeys DROP COLUMN minute_uses;"
		"DROP TABLE satellites; DROP TABLE routes; DROP TABLE node_tags; DROP TABLE publish_grants; PRAGMA user_version = 1");
	db = open_db();
	assert_true(db_authkey_list(db, collect_key, &l));
	assert_int_equal(l.n, 1);
	assert_int_equal(l.keys[0].uses, 1);
	assert_int_equal(l.keys[0].max_uses, 0);
	assert_int_equal(l.keys[0].per_minute, DB_AUTHKEY_PER_MINUTE_DEFAULT);
	assert_int_equal(reg_new(db, secret, NOW + 1), DB_REGISTER_OK);
	db_close(db);
}

/* Routes: advertised and approved rows, revocation, the node's removal; and a v2 registry
 * (before routes) gains the table. */
struct route_list {
	struct db_route r[8];
	size_t n;
};

static void collect_route(const struct db_route *r, void *ctx)
{
	struct route_list *l = ctx;

	if (l->n < 8)
		l->r[l->n++] = *r;
}

static void test_routes_registry(void **state)
{
	uint8_t secret[JOINKEY_SECRET_LEN];
	struct db *db = open_db();
	struct db_node node;
	struct control_routes adv = { .n = 2 };
	struct route_list l = { .n = 0 };
	bool found;
	(void)state;

	make_key(db, true, 0, secret, NULL);
	uint8_t key[WIRE_KEY_LEN];
	memset(key, 0x42, sizeof(key));
	assert_int_equal(db_register_node(db, key, secret, sizeof(secret), "gw", NOW, &node), DB_REGISTER_OK);
	db_close(db);
	raw_sql("DROP TABLE satellites; DROP TABLE routes; DROP TABLE node_tags; DROP TABLE publish_grants; PRAGMA user_version = 2");
	db = open_db();

	assert_true(route_parse("192.168.1.0/24", &adv.list[0]));
	assert_true(route_parse("0.0.0.0/0", &adv.list[1]));
	assert_true(db_routes_set_advertised(db, key, &adv));
	assert_true(db_route_set_approved(db, "gw", &adv.list[0], true, &found));
	assert_true(db_routes_list(db, collect_route, &l));
	assert_int_equal(l.n, 2);
	assert_string_equal(l.r[0].node_name, "gw");
	assert_true(route_is_exit(&l.r[0].route)); /* "0.0.0.0/0" sorts first */
	assert_true(l.r[0].advertised && !l.r[0].approved);
	assert_true(l.r[1].advertised && l.r[1].approved);

	/* no longer advertised: the approval stays, the unapproved row goes */
	adv.n = 0;
	assert_true(db_routes_set_advertised(db, key, &adv));
	l.n = 0;
	assert_true(db_routes_list(db, collect_route, &l));
	assert_int_equal(l.n, 1);
	assert_true(!l.r[0].advertised && l.r[0].approved);

	/* revoked: gone; revoking again finds nothing; an unknown node is refused */
	struct control_route lan = l.r[0].route;
	assert_true(db_route_set_approved(db, "gw", &lan, false, &found));
	assert_false(db_route_set_approved(db, "gw", &lan, false, &found));
	assert_false(found);
	assert_false(db_route_set_approved(db, "nobody", &lan, true, &found));
	l.n = 0;
	assert_true(db_routes_list(db, collect_route, &l));
	assert_int_equal(l.n, 0);

	/* removing the node removes its routes */
	assert_true(db_route_set_approved(db, "gw", &lan, true, &found));
	assert_true(db_node_remove(db, "gw"));
	l.n = 0;
	assert_true(db_routes_list(db, collect_route, &l));
	assert_int_equal(l.n, 0);
	db_close(db);
}

/* Tags: added and removed all or none, the syntax and the per-node bound held, listed for
 * the server, removed with the node; and a v3 registry (before tags) gains the table. */
struct tag_rows {
	char tag[8][TAG_MAX + 1];
	size_t n;
};

static void collect_tag(const uint8_t key[WIRE_KEY_LEN], const char *tag, void *ctx)
{
	struct tag_rows *t = ctx;
	(void)key;
	if (t->n < 8)
		snprintf(t->tag[t->n++], TAG_MAX + 1, "%s", tag);
}

static void test_tags_registry(void **state)
{
	uint8_t secret[JOINKEY_SECRET_LEN], key[WIRE_KEY_LEN];
	struct db *db = open_db();
	struct db_node node;
	struct db_tags t;
	struct tag_rows rows = { .n = 0 };
	size_t changed;
	(void)state;

	make_key(db, true, 0, secret, NULL);
	random_key(key);
	assert_int_equal(db_register_node(db, key, secret, sizeof(secret), "srv", NOW, &node), DB_REGISTER_OK);
	db_close(db);
	raw_sql("DROP TABLE satellites; DROP TABLE node_tags; DROP TABLE publish_grants; PRAGMA user_version = 3");
	db = open_db();

	const char *two[] = { "tag:web", "tag:db-1" };
	assert_int_equal(db_node_tags_change(db, "srv", two, 2, true, &changed), DB_TAG_OK);
	assert_int_equal(changed, 2);
	assert_int_equal(db_node_tags_change(db, "srv", two, 1, true, &changed), DB_TAG_OK);
	assert_int_equal(changed, 0); /* it had it already */
	assert_true(db_node_tags(db, node.id, &t));
	assert_int_equal(t.n, 2);
	assert_string_equal(t.v[0], "tag:db-1"); /* sorted */
	assert_string_equal(t.v[1], "tag:web");

	/* strict syntax; an unknown node; nothing changes on refusal */
	const char *bad[] = { "tag:Web", "tag:", "web", "tag:a_b", "tag:a b" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(db_node_tags_change(db, "srv", &bad[i], 1, true, &changed), DB_TAG_BAD);
	assert_int_equal(db_node_tags_change(db, "nobody", two, 1, true, &changed), DB_TAG_NO_NODE);

	/* the bound: TAGS_PER_NODE_MAX in all, and a change over it changes nothing */
	char many[TAGS_PER_NODE_MAX][TAG_MAX + 1];
	const char *many_p[TAGS_PER_NODE_MAX];
	for (int i = 0; i < TAGS_PER_NODE_MAX; i++) {
		snprintf(many[i], sizeof(many[i]), "tag:t%d", i);
		many_p[i] = many[i];
	}
	assert_int_equal(db_node_tags_change(db, "srv", many_p, TAGS_PER_NODE_MAX, true, &changed), DB_TAG_TOO_MANY);
	assert_true(db_node_tags(db, node.id, &t));
	assert_int_equal(t.n, 2);
	assert_int_equal(db_node_tags_change(db, "srv", many_p, TAGS_PER_NODE_MAX - 2, true, &changed), DB_TAG_OK);
	assert_true(db_node_tags(db, node.id, &t));
	assert_int_equal(t.n, TAGS_PER_NODE_MAX);

	/* untag */
	assert_int_equal(db_node_tags_change(db, "srv", many_p, TAGS_PER_NODE_MAX - 2, false, &changed), DB_TAG_OK);
	assert_int_equal(changed, TAGS_PER_NODE_MAX - 2);
	assert_int_equal(db_node_tags_change(db, "srv", two, 1, false, &changed), DB_TAG_OK);
	assert_int_equal(changed, 1);
	assert_true(db_tags_list(db, collect_tag, &rows));
	assert_int_equal(rows.n, 1);
	assert_string_equal(rows.tag[0], "tag:db-1");

	/* removing the node removes its tags */
	assert_true(db_node_remove(db, "srv"));
	rows.n = 0;
	assert_true(db_tags_list(db, collect_tag, &rows));
	assert_int_equal(rows.n, 0);
	db_close(db);
}

/* ------------------------------------------------------------------ the file */

static void test_nofollow_and_mode(void **state)
{
	char err[ERR_MAX] = "", target[TEST_PATH_MAX], side[TEST_PATH_MAX + 8];
	struct stat st;
	(void)state;

	/* A symbolic link where the registry should be is refused, the target untouched. */
	snprintf(target, sizeof(target), "%s/elsewhere", tmpdir);
	FILE *f = fopen(target, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(symlink(target, dbpath), 0);
	assert_null(db_open(dbpath, err, sizeof(err)));
	assert_non_null(strstr(err, "symbolic link"));
	assert_int_equal(stat(target, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(unlink(dbpath), 0);

	/* A registry left readable by others gets 0600, and so does its WAL. */
	db_close(open_db());
	assert_int_equal(chmod(dbpath, 0644), 0);
	snprintf(side, sizeof(side), "%s-wal", dbpath);
	if (stat(side, &st) == 0)
		assert_int_equal(chmod(side, 0644), 0);
	struct db *db = open_db();
	assert_int_equal(stat(dbpath, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	if (stat(side, &st) == 0)
		assert_int_equal(st.st_mode & 07777, 0600);
	db_close(db);

	/* A symbolic link in place of the WAL is refused too. */
	unlink(side);
	assert_int_equal(symlink(target, side), 0);
	err[0] = '\0';
	assert_null(db_open(dbpath, err, sizeof(err)));
	assert_non_null(strstr(err, "symbolic link"));
	unlink(side);
}

/* ------------------------------------------------------------------ bad rows */

struct node_list {
	char names[8][CONTROL_NAME_MAX + 1];
	size_t n_endpoints[8];
	size_t n;
};

static void collect_node(const struct db_node *n, void *ctx)
{
	struct node_list *l = ctx;
	if (l->n < 8) {
		snprintf(l->names[l->n], sizeof(l->names[0]), "%s", n->name);
		l->n_endpoints[l->n++] = n->n_endpoints;
	}
}

static void test_bad_rows_skipped(void **state)
{
	uint8_t secret[JOINKEY_SECRET_LEN], k[4][WIRE_KEY_LEN];
	struct control_endpoint eps[2];
	const char *names[4] = { "alpha", "bravo", "charlie", "delta" };
	struct db *db = open_db();
	struct node_list l = { .n = 0 };
	struct db_node n;
	(void)state;

	make_key(db, true, 0, secret, NULL);
	for (int i = 0; i < 4; i++) {
		random_key(k[i]);
		assert_int_equal(reg(db, k[i], secret, names[i], NOW, NULL), DB_REGISTER_OK);
	}
	memset(eps, 0, sizeof(eps));
	eps[0].family = 4;
	memcpy(eps[0].addr, (uint8_t[]){ 203, 0, 113, 9 }, 4);
	eps[0].port = 51820;
	eps[1] = eps[0];
	assert_true(db_node_set_endpoints(db, k[2], eps, 2));
	db_close(db);
	/* Written by hand, as a broken tool or an older release might: a name the protocol
	 * cannot carry, an address outside the overlay, and an endpoint with port 0 next to a
	 * good one (blob: family 4, 203.0.113.9, port 51820; family 4, 127.0.0.1, port 0). */
	raw_sql("UPDATE nodes SET name = 'bad name!' WHERE name = 'alpha';"
		"UPDATE nodes SET ipv4 = 5 WHERE name = 'bravo';"
		"UPDATE nodes SET endpoints = x'04cb007109ca6c047f0000010000' WHERE name = 'charlie';");
	db = open_db();
	/* Listing twice: the bad rows are skipped both times, logged the first time only. */
	for (int round = 0; round < 2; round++) {
		memset(&l, 0, sizeof(l));
		assert_true(db_nodes_list(db, collect_node, &l));
		assert_int_equal(l.n, 2);
		assert_string_equal(l.names[0], "charlie");
		assert_int_equal(l.n_endpoints[0], 1);
		assert_string_equal(l.names[1], "delta");
	}
	assert_false(db_node_by_key(db, k[0], &n));
	assert_true(db_node_by_key(db, k[2], &n));
	assert_int_equal(n.n_endpoints, 1);
	assert_int_equal(n.endpoints[0].port, 51820);
	db_close(db);
}

/* Publish grants (schema v6): a v4 registry gains the table in place; one node per public
 * port and protocol; revoke finds only its own; removing the node removes its grants. */
struct grant_rows {
	struct db_publish_grant g[8];
	size_t n;
};

static void collect_grant(const struct db_publish_grant *g, void *ctx)
{
	struct grant_rows *r = ctx;

	if (r->n < 8)
		r->g[r->n++] = *g;
}

static void test_publish_grants(void **state)
{
	uint8_t secret[JOINKEY_SECRET_LEN], k1[WIRE_KEY_LEN], k2[WIRE_KEY_LEN];
	struct db *db = open_db();
	struct db_node node;
	struct grant_rows rows = { .n = 0 };
	char taken[CONTROL_NAME_MAX + 1];
	(void)state;

	make_key(db, true, 0, secret, NULL);
	random_key(k1);
	random_key(k2);
	assert_int_equal(db_register_node(db, k1, secret, sizeof(secret), "home", NOW, &node), DB_REGISTER_OK);
	assert_int_equal(db_register_node(db, k2, secret, sizeof(secret), "other", NOW, &node), DB_REGISTER_OK);
	db_close(db);
	raw_sql("DROP TABLE satellites; DROP TABLE publish_grants; PRAGMA user_version = 4");
	db = open_db();

	assert_int_equal(db_publish_set(db, "home", 20080, CONTROL_PROTO_TCP, true, taken), DB_PUBLISH_OK);
	assert_int_equal(db_publish_set(db, "home", 20080, CONTROL_PROTO_TCP, true, taken), DB_PUBLISH_OK); /* again: no-op */
	assert_int_equal(db_publish_set(db, "home", 20080, CONTROL_PROTO_UDP, true, taken), DB_PUBLISH_OK);
	assert_int_equal(db_publish_set(db, "other", 20080, CONTROL_PROTO_TCP, true, taken), DB_PUBLISH_TAKEN);
	assert_string_equal(taken, "home");
	assert_int_equal(db_publish_set(db, "nobody", 20081, CONTROL_PROTO_TCP, true, taken), DB_PUBLISH_NO_NODE);
	assert_int_equal(db_publish_set(db, "other", 20080, CONTROL_PROTO_TCP, false, taken), DB_PUBLISH_NOT_FOUND);
	assert_int_equal(db_publish_set(db, "other", 20081, CONTROL_PROTO_TCP, true, taken), DB_PUBLISH_OK);
	assert_true(db_publish_list(db, collect_grant, &rows));
	assert_int_equal(rows.n, 3);
	assert_string_equal(rows.g[0].node_name, "home"); /* by name, protocol, port */
	assert_int_equal(rows.g[0].proto, CONTROL_PROTO_TCP);
	assert_int_equal(rows.g[1].proto, CONTROL_PROTO_UDP);
	assert_memory_equal(rows.g[0].node_key, k1, WIRE_KEY_LEN);
	assert_string_equal(rows.g[2].node_name, "other");

	assert_int_equal(db_publish_set(db, "home", 20080, CONTROL_PROTO_UDP, false, taken), DB_PUBLISH_OK);
	assert_true(db_node_remove(db, "other"));
	rows.n = 0;
	assert_true(db_publish_list(db, collect_grant, &rows));
	assert_int_equal(rows.n, 1);
	assert_int_equal(rows.g[0].port, 20080);
	db_close(db);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_max_uses, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_per_minute, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_migration_from_v1, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_routes_registry, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_tags_registry, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_publish_grants, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_nofollow_and_mode, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_bad_rows_skipped, setup_dir, teardown_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
