/* Shared by the coordinator database tests (test_db.c and test_db_limits.c, the registry;
 * test_admin.c, the admin subcommands): a fresh directory per test with the registry file in it, and the few calls
 * both programs make to open it, mint join keys and register nodes. */
#ifndef MESHD_TEST_DB_FIXTURES_H
#define MESHD_TEST_DB_FIXTURES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coord/db.h"
#include "core/joinkey.h"

enum {
	TEST_DIR_MAX = 64,   /* "/tmp/test_db.XXXXXX" with room to spare */
	TEST_PATH_MAX = 256, /* a file inside that directory */
	ERR_MAX = 512,       /* room for any db_open error message */
};

static const int64_t NOW = 1700000000; /* a fixed "now": the registry takes time as an argument */

/* Set by setup_dir for the running test: its directory, and the registry file inside. */
extern char tmpdir[TEST_DIR_MAX];
extern char dbpath[TEST_PATH_MAX];

/* Per-test cmocka setup and teardown: make tmpdir, then remove it and every file in it. */
int setup_dir(void **state);
int teardown_dir(void **state);

/* Opens dbpath, failing the test with db_open's message if it cannot. */
struct db *open_db(void);
void random_key(uint8_t key[WIRE_KEY_LEN]);
/* A join key created at NOW; id may be NULL. */
void make_key(struct db *db, bool reusable, int64_t expires, uint8_t secret[JOINKEY_SECRET_LEN], int64_t *id);
/* db_register_node with the full secret length (none when secret is NULL); out may be NULL. */
enum db_register_result reg(struct db *db, const uint8_t key[WIRE_KEY_LEN], const uint8_t *secret,
			    const char *hostname, int64_t now, struct db_node *out);

/* Runs one SQL statement on the file directly, as a second program would. */
void raw_sql(const char *sql);

/* The join keys db_authkey_list reports, collected by collect_key (ctx: a struct key_list). */
struct key_list {
	struct db_authkey keys[16];
	size_t n;
};
void collect_key(const struct db_authkey *k, void *ctx);

#endif
