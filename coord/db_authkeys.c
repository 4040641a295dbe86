/* Join keys: created by the administrator, checked and counted when a node registers. Only a
 * hash of each secret is stored (joinkey_hash), so the database file does not hold a way in. */
#include "coord/db.h"

#include <sodium.h>
#include <sqlite3.h>
#include <string.h>

#include "coord/db_internal.h"

bool db_authkey_create(struct db *db, bool reusable, int64_t expires, int64_t now,
		       uint8_t secret_out[JOINKEY_SECRET_LEN], int64_t *id_out)
{
	return db_authkey_create_limited(db, reusable, expires, now, 0, DB_AUTHKEY_PER_MINUTE_DEFAULT, secret_out,
					 id_out);
}

bool db_authkey_create_limited(struct db *db, bool reusable, int64_t expires, int64_t now, int64_t max_uses,
			       int64_t per_minute, uint8_t secret_out[JOINKEY_SECRET_LEN], int64_t *id_out)
{
	sqlite3_stmt *s = db->stmt[STMT_AUTHKEY_INSERT];
	uint8_t secret[JOINKEY_SECRET_LEN];
	uint8_t hash[JOINKEY_HASH_LEN];
	bool ok = false;

	randombytes_buf(secret, sizeof(secret));
	joinkey_hash(secret, sizeof(secret), hash);
	if (!db_bind_ok(db, sqlite3_bind_blob(s, 1, hash, sizeof(hash), SQLITE_TRANSIENT), "binding") ||
	    !db_bind_ok(db, sqlite3_bind_int(s, 2, reusable ? 1 : 0), "binding") ||
	    !db_bind_ok(db, sqlite3_bind_int64(s, 3, now), "binding") ||
	    !db_bind_ok(db, sqlite3_bind_int64(s, 4, expires), "binding") ||
	    !db_bind_ok(db, sqlite3_bind_int64(s, 5, max_uses < 0 ? 0 : max_uses), "binding") ||
	    !db_bind_ok(db, sqlite3_bind_int64(s, 6, per_minute < 0 ? 0 : per_minute), "binding"))
		goto out;
	/* A single INSERT in autocommit mode is its own transaction. */
	if (db_step(db, s, "creating a join key") != SQLITE_DONE)
		goto out;
	*id_out = sqlite3_last_insert_rowid(db->sql);
	memcpy(secret_out, secret, sizeof(secret));
	ok = true;
out:
	db_stmt_done(s);
	sodium_memzero(secret, sizeof(secret));
	return ok;
}

bool db_authkey_revoke(struct db *db, int64_t id)
{
	sqlite3_stmt *s = db->stmt[STMT_AUTHKEY_REVOKE];
	bool ok = false;

	if (db_bind_ok(db, sqlite3_bind_int64(s, 1, id), "binding") && db_step(db, s, "revoking a join key") == SQLITE_DONE)
		ok = sqlite3_changes(db->sql) > 0;
	db_stmt_done(s);
	return ok;
}

/* As db_nodes_list: fn must not call db_authkey_list. */
bool db_authkey_list(struct db *db, void (*fn)(const struct db_authkey *k, void *ctx), void *ctx)
{
	sqlite3_stmt *s = db->stmt[STMT_AUTHKEY_LIST];
	int rc;

	while ((rc = db_step(db, s, "listing join keys")) == SQLITE_ROW) {
		struct db_authkey k = {
			.id = sqlite3_column_int64(s, 0),
			.reusable = sqlite3_column_int(s, 1) != 0,
			.created = sqlite3_column_int64(s, 2),
			.expires = sqlite3_column_int64(s, 3),
			.revoked = sqlite3_column_int(s, 4) != 0,
			.uses = sqlite3_column_int64(s, 5),
			.max_uses = sqlite3_column_int64(s, 6),
			.per_minute = sqlite3_column_int64(s, 7),
		};
		fn(&k, ctx);
	}
	db_stmt_done(s);
	return rc == SQLITE_DONE;
}

/* Inside the registration transaction, atomically with the node row it admits. */
bool db_authkey_count_use(struct db *db, int64_t id, int64_t now)
{
	sqlite3_stmt *use = db->stmt[STMT_AUTHKEY_USE];

	if (!db_bind_ok(db, sqlite3_bind_int64(use, 1, id), "binding") ||
	    !db_bind_ok(db, sqlite3_bind_int64(use, 2, now / DB_AUTHKEY_MINUTE_S), "binding")) {
		db_stmt_done(use);
		return false;
	}
	return db_exec(db, STMT_AUTHKEY_USE, "counting a join key use");
}

enum db_register_result db_authkey_check(struct db *db, const uint8_t *secret, size_t secret_len, int64_t now,
					 int64_t *id_out)
{
	sqlite3_stmt *s = db->stmt[STMT_AUTHKEY_BY_HASH];
	uint8_t hash[JOINKEY_HASH_LEN];
	enum db_register_result res = DB_REGISTER_ERROR;
	int rc;

	/* Looking the hash up through an index can leak, by timing, how much of a guess's hash
	 * matches a stored one; that tells nothing about a secret that hashes to it. */
	joinkey_hash(secret, secret_len, hash);
	if (!db_bind_ok(db, sqlite3_bind_blob(s, 1, hash, sizeof(hash), SQLITE_STATIC), "binding"))
		goto out;
	rc = db_step(db, s, "looking up a join key");
	if (rc == SQLITE_DONE) {
		res = DB_REGISTER_KEY_UNKNOWN;
	} else if (rc == SQLITE_ROW) {
		bool reusable = sqlite3_column_int(s, 1) != 0;
		int64_t expires = sqlite3_column_int64(s, 2);
		bool revoked = sqlite3_column_int(s, 3) != 0;
		int64_t uses = sqlite3_column_int64(s, 4);
		int64_t max_uses = sqlite3_column_int64(s, 5);
		int64_t per_minute = sqlite3_column_int64(s, 6);
		int64_t minute_start = sqlite3_column_int64(s, 7);
		int64_t minute_uses = sqlite3_column_int64(s, 8);

		*id_out = sqlite3_column_int64(s, 0);
		/* Revoked first (an administrator's explicit word), then used (someone else
		 * joined with it: worth knowing), then expired. */
		if (revoked)
			res = DB_REGISTER_KEY_REVOKED;
		else if (!reusable && uses > 0)
			res = DB_REGISTER_KEY_USED;
		else if (expires != 0 && now >= expires)
			res = DB_REGISTER_KEY_EXPIRED;
		else if (reusable && max_uses > 0 && uses >= max_uses)
			res = DB_REGISTER_KEY_USED_UP;
		/* A fixed window per Unix minute: at most twice per_minute in any 60 s. */
		else if (per_minute > 0 && minute_start == now / DB_AUTHKEY_MINUTE_S && minute_uses >= per_minute)
			res = DB_REGISTER_KEY_BUSY;
		else
			res = DB_REGISTER_OK;
	}
out:
	db_stmt_done(s);
	sodium_memzero(hash, sizeof(hash));
	return res;
}
