/* Subnet routes and exit offers in the registry (schema v3, db.c): per node and prefix,
 * whether the node advertises it and whether an administrator (or an auto-approval rule)
 * approved it. Routes are rare and small, so statements are prepared per call. */
#include <string.h>

#include "coord/db_internal.h"
#include "core/log.h"
#include "core/routes.h"

/* Prepares sql or logs why not. */
static sqlite3_stmt *prep(struct db *db, const char *sql)
{
	sqlite3_stmt *s = NULL;

	if (sqlite3_prepare_v2(db->sql, sql, -1, &s, NULL) != SQLITE_OK) {
		log_error("registry: preparing a routes statement: %s", sqlite3_errmsg(db->sql));
		return NULL;
	}
	return s;
}

/* Runs a statement with (node_id, prefix text) bound; true when it completed. */
static bool run_id_prefix(struct db *db, const char *sql, int64_t node_id, const char *prefix)
{
	sqlite3_stmt *s = prep(db, sql);
	bool ok = s && sqlite3_bind_int64(s, 1, node_id) == SQLITE_OK &&
		  (!prefix || sqlite3_bind_text(s, 2, prefix, -1, SQLITE_TRANSIENT) == SQLITE_OK) &&
		  sqlite3_step(s) == SQLITE_DONE;

	if (!ok)
		log_error("registry: writing routes: %s", sqlite3_errmsg(db->sql));
	sqlite3_finalize(s);
	return ok;
}

/* The node's id by key (key != NULL) or by name; 0 if none. */
static int64_t node_id_of(struct db *db, const uint8_t *key, const char *name)
{
	sqlite3_stmt *s = prep(db, key ? "SELECT id FROM nodes WHERE node_key = ?1" : "SELECT id FROM nodes WHERE name = ?1");
	int64_t id = 0;

	if (!s)
		return 0;
	int rc = key ? sqlite3_bind_blob(s, 1, key, WIRE_KEY_LEN, SQLITE_TRANSIENT)
		     : sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
	if (rc == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		id = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return id;
}

bool db_routes_set_advertised(struct db *db, const uint8_t node_key[WIRE_KEY_LEN], const struct control_routes *adv)
{
	if (!db_tx_begin(db))
		return false;
	int64_t id = node_id_of(db, node_key, NULL);
	bool ok = id != 0 && run_id_prefix(db, "UPDATE routes SET advertised = 0 WHERE node_id = ?1", id, NULL);
	for (size_t i = 0; ok && i < adv->n; i++) {
		char text[ROUTE_STR_MAX];
		route_format(&adv->list[i], text, sizeof(text));
		ok = run_id_prefix(db,
				   "INSERT INTO routes (node_id, prefix, advertised) VALUES (?1, ?2, 1) "
				   "ON CONFLICT (node_id, prefix) DO UPDATE SET advertised = 1",
				   id, text);
	}
	ok = ok && run_id_prefix(db, "DELETE FROM routes WHERE node_id = ?1 AND advertised = 0 AND approved = 0", id, NULL);
	if (!ok) {
		db_tx_rollback(db);
		return false;
	}
	return db_tx_commit(db);
}

bool db_route_set_approved(struct db *db, const char *node_name, const struct control_route *r, bool approved,
			   bool *found)
{
	char text[ROUTE_STR_MAX];

	*found = false;
	route_format(r, text, sizeof(text));
	if (!db_tx_begin(db))
		return false;
	int64_t id = node_id_of(db, NULL, node_name);
	bool ok = id != 0;
	if (ok && approved) {
		ok = run_id_prefix(db,
				   "INSERT INTO routes (node_id, prefix, approved) VALUES (?1, ?2, 1) "
				   "ON CONFLICT (node_id, prefix) DO UPDATE SET approved = 1",
				   id, text);
		*found = ok;
	} else if (ok) {
		ok = run_id_prefix(db, "UPDATE routes SET approved = 0 WHERE node_id = ?1 AND prefix = ?2 AND approved = 1",
				   id, text);
		*found = ok && sqlite3_changes(db->sql) > 0;
		ok = ok && run_id_prefix(db, "DELETE FROM routes WHERE node_id = ?1 AND advertised = 0 AND approved = 0", id,
					 NULL);
	}
	if (!ok || !*found) {
		db_tx_rollback(db);
		return false;
	}
	return db_tx_commit(db);
}

bool db_routes_list(struct db *db, void (*fn)(const struct db_route *r, void *ctx), void *ctx)
{
	sqlite3_stmt *s = prep(db, "SELECT n.node_key, n.name, r.prefix, r.advertised, r.approved FROM routes r "
				   "JOIN nodes n ON n.id = r.node_id ORDER BY n.name, r.prefix");
	int rc;

	if (!s)
		return false;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct db_route r;
		const unsigned char *name = sqlite3_column_text(s, 1), *prefix = sqlite3_column_text(s, 2);

		memset(&r, 0, sizeof(r));
		if (!db_column_blob(s, 0, r.node_key, WIRE_KEY_LEN) || !name || !prefix ||
		    strlen((const char *)name) > CONTROL_NAME_MAX || !route_parse((const char *)prefix, &r.route))
			continue; /* not one we wrote: serve the rest */
		strcpy(r.node_name, (const char *)name);
		r.advertised = sqlite3_column_int(s, 3) != 0;
		r.approved = sqlite3_column_int(s, 4) != 0;
		fn(&r, ctx);
	}
	if (rc != SQLITE_DONE)
		log_error("registry: listing routes: %s", sqlite3_errmsg(db->sql));
	sqlite3_finalize(s);
	return rc == SQLITE_DONE;
}
