/* Directory and registry helpers shared by the coordinator database tests: see db_fixtures.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testdir.h"

#include <dirent.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "db_fixtures.h"

char tmpdir[TEST_DIR_MAX];
char dbpath[TEST_PATH_MAX];

int setup_dir(void **state)
{
	if (testdir_create(tmpdir, sizeof(tmpdir), "test_db") < 0)
		return -1;
	snprintf(dbpath, sizeof(dbpath), "%s/registry.db", tmpdir);
	return 0;
}

int teardown_dir(void **state)
{
	return testdir_remove(tmpdir);
}

struct db *open_db(void)
{
	char err[ERR_MAX] = "";
	struct db *db = db_open(dbpath, err, sizeof(err));
	if (!db)
		fail_msg("db_open: %s", err);
	return db;
}

void random_key(uint8_t key[WIRE_KEY_LEN])
{
	randombytes_buf(key, WIRE_KEY_LEN);
}

void make_key(struct db *db, bool reusable, int64_t expires, uint8_t secret[JOINKEY_SECRET_LEN],
	      int64_t *id)
{
	int64_t unused;
	/* No per-minute limit: the scale and crash tests register thousands at one NOW
	 * (test_db_limits covers the limit). */
	assert_true(db_authkey_create_limited(db, reusable, expires, NOW, 0, 0, secret, id ? id : &unused));
}

enum db_register_result reg(struct db *db, const uint8_t key[WIRE_KEY_LEN], const uint8_t *secret,
			    const char *hostname, int64_t now, struct db_node *out)
{
	struct db_node scratch;
	return db_register_node(db, key, secret, secret ? JOINKEY_SECRET_LEN : 0, hostname, now,
				out ? out : &scratch);
}
void raw_sql(const char *sql)
{
	sqlite3 *h = NULL;
	char *msg = NULL;

	assert_int_equal(sqlite3_open(dbpath, &h), SQLITE_OK);
	sqlite3_busy_timeout(h, DB_BUSY_TIMEOUT_MS);
	if (sqlite3_exec(h, sql, NULL, NULL, &msg) != SQLITE_OK)
		fail_msg("%s: %s", sql, msg);
	sqlite3_close(h);
}

void collect_key(const struct db_authkey *k, void *ctx)
{
	struct key_list *l = ctx;
	if (l->n < sizeof(l->keys) / sizeof(l->keys[0]))
		l->keys[l->n++] = *k;
}
