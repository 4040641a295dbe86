/* Node tags in the registry (schema v4, db.c): one row per (node, tag), written only by the
 * admin command (meshcoord nodes tag|untag) and read by the server when the registry changes.
 * Tags are few and rarely change, so statements are prepared per call, as in db_routes.c. */
#include <string.h>

#include "coord/db_internal.h"
#include "core/log.h"

static sqlite3_stmt *prep(struct db *db, const char *sql)
{
	sqlite3_stmt *s = NULL;

	if (sqlite3_prepare_v2(db->sql, sql, -1, &s, NULL) != SQLITE_OK) {
		log_error("registry: preparing a tags statement: %s", sqlite3_errmsg(db->sql));
		return NULL;
	}
	return s;
}

/* The node's id by name: 0 none, -1 error. */
static int64_t node_id_by_name(struct db *db, const char *name)
{
	sqlite3_stmt *s = prep(db, "SELECT id FROM nodes WHERE name = ?1");
	int64_t id = -1;

	if (!s)
		return -1;
	if (sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT) == SQLITE_OK) {
		int rc = sqlite3_step(s);
		id = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : rc == SQLITE_DONE ? 0 : -1;
	}
	sqlite3_finalize(s);
	return id;
}

/* Runs sql with (node_id, tag) bound; *changes gets the rows it changed. */
static bool run_id_tag(struct db *db, const char *sql, int64_t id, const char *tag, size_t *changes)
{
	sqlite3_stmt *s = prep(db, sql);
	bool ok = s && sqlite3_bind_int64(s, 1, id) == SQLITE_OK &&
		  sqlite3_bind_text(s, 2, tag, -1, SQLITE_TRANSIENT) == SQLITE_OK && sqlite3_step(s) == SQLITE_DONE;

	if (!ok)
		log_error("registry: writing tags: %s", sqlite3_errmsg(db->sql));
	else
		*changes += (size_t)sqlite3_changes(db->sql);
	sqlite3_finalize(s);
	return ok;
}

static int64_t tag_count(struct db *db, int64_t id)
{
	sqlite3_stmt *s = prep(db, "SELECT count(*) FROM node_tags WHERE node_id = ?1");
	int64_t n = -1;

	if (s && sqlite3_bind_int64(s, 1, id) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return n;
}

enum db_tag_result db_node_tags_change(struct db *db, const char *node_name, const char *const *tags, size_t n,
				       bool add, size_t *changed)
{
	*changed = 0;
	for (size_t i = 0; i < n; i++)
		if (!tag_valid(tags[i], strlen(tags[i])))
			return DB_TAG_BAD;
	if (!db_tx_begin(db))
		return DB_TAG_ERROR;
	int64_t id = node_id_by_name(db, node_name);
	enum db_tag_result res = id < 0 ? DB_TAG_ERROR : id == 0 ? DB_TAG_NO_NODE : DB_TAG_OK;
	for (size_t i = 0; res == DB_TAG_OK && i < n; i++)
		if (!run_id_tag(db,
				add ? "INSERT OR IGNORE INTO node_tags (node_id, tag) VALUES (?1, ?2)"
				    : "DELETE FROM node_tags WHERE node_id = ?1 AND tag = ?2",
				id, tags[i], changed))
			res = DB_TAG_ERROR;
	if (res == DB_TAG_OK && add) {
		int64_t count = tag_count(db, id);
		res = count < 0 ? DB_TAG_ERROR : count > TAGS_PER_NODE_MAX ? DB_TAG_TOO_MANY : DB_TAG_OK;
	}
	if (res != DB_TAG_OK) {
		db_tx_rollback(db);
		*changed = 0;
		return res;
	}
	return db_tx_commit(db) ? DB_TAG_OK : DB_TAG_ERROR;
}

bool db_node_tags(struct db *db, int64_t node_id, struct db_tags *out)
{
	sqlite3_stmt *s = prep(db, "SELECT tag FROM node_tags WHERE node_id = ?1 ORDER BY tag");
	int rc = SQLITE_ERROR;

	memset(out, 0, sizeof(*out));
	if (!s)
		return false;
	if (sqlite3_bind_int64(s, 1, node_id) == SQLITE_OK) {
		while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
			const char *t = (const char *)sqlite3_column_text(s, 0);
			/* only what the admin command writes; the bound holds unless the file was edited */
			if (t && tag_valid(t, strlen(t)) && out->n < TAGS_PER_NODE_MAX)
				strcpy(out->v[out->n++], t);
		}
	}
	if (rc != SQLITE_DONE)
		log_error("registry: reading tags: %s", sqlite3_errmsg(db->sql));
	sqlite3_finalize(s);
	return rc == SQLITE_DONE;
}

bool db_tags_list(struct db *db, void (*fn)(const uint8_t node_key[WIRE_KEY_LEN], const char *tag, void *ctx),
		  void *ctx)
{
	sqlite3_stmt *s = prep(db, "SELECT n.node_key, t.tag FROM node_tags t JOIN nodes n ON n.id = t.node_id "
				   "ORDER BY n.id, t.tag");
	int rc;

	if (!s)
		return false;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		uint8_t key[WIRE_KEY_LEN];
		const char *t = (const char *)sqlite3_column_text(s, 1);
		if (db_column_blob(s, 0, key, sizeof(key)) && t && tag_valid(t, strlen(t)))
			fn(key, t, ctx);
	}
	if (rc != SQLITE_DONE)
		log_error("registry: listing tags: %s", sqlite3_errmsg(db->sql));
	sqlite3_finalize(s);
	return rc == SQLITE_DONE;
}

bool db_tags_equal(const struct db_tags *a, const struct db_tags *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]) != 0)
			return false;
	return true;
}
