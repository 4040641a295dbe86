/* Publish grants in the registry (schema v6, db.c): which node may publish which public port
 * and protocol on the coordinator's address. Written by `meshcoord publish allow|revoke`, read
 * by the server at start and whenever the registry changes. Grants are few: statements are
 * prepared per call. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "coord/db_internal.h"
#include "core/log.h"

static const char *proto_text(uint8_t proto)
{
	return proto == CONTROL_PROTO_UDP ? "udp" : "tcp";
}

static sqlite3_stmt *prep(struct db *db, const char *sql)
{
	sqlite3_stmt *s = NULL;

	if (sqlite3_prepare_v2(db->sql, sql, -1, &s, NULL) != SQLITE_OK) {
		log_error("registry: preparing a publish statement: %s", sqlite3_errmsg(db->sql));
		return NULL;
	}
	return s;
}

/* The node holding (proto, port): its id (0: none) and name. */
static int64_t grant_holder(struct db *db, uint16_t port, uint8_t proto, char *name)
{
	sqlite3_stmt *s = prep(db, "SELECT n.id, n.name FROM publish_grants g JOIN nodes n ON n.id = g.node_id "
				   "WHERE g.protocol = ?1 AND g.port = ?2");
	int64_t id = 0;

	if (!s)
		return -1;
	if (sqlite3_bind_text(s, 1, proto_text(proto), -1, SQLITE_STATIC) == SQLITE_OK &&
	    sqlite3_bind_int(s, 2, port) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW) {
		id = sqlite3_column_int64(s, 0);
		const unsigned char *t = sqlite3_column_text(s, 1);
		snprintf(name, CONTROL_NAME_MAX + 1, "%s", t ? (const char *)t : "?");
	}
	sqlite3_finalize(s);
	return id;
}

enum db_publish_result db_publish_set(struct db *db, const char *node_name, uint16_t port, uint8_t proto, bool allow,
				      char *taken_by)
{
	enum db_publish_result res = DB_PUBLISH_ERROR;
	sqlite3_stmt *s = NULL;
	int64_t id = 0;

	if (!db_tx_begin(db))
		return DB_PUBLISH_ERROR;
	s = prep(db, "SELECT id FROM nodes WHERE name = ?1");
	if (!s)
		goto out;
	if (sqlite3_bind_text(s, 1, node_name, -1, SQLITE_TRANSIENT) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
		id = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	s = NULL;
	if (id == 0) {
		res = DB_PUBLISH_NO_NODE;
		goto out;
	}
	int64_t holder = grant_holder(db, port, proto, taken_by);
	if (holder < 0)
		goto out;
	if (allow && holder != 0 && holder != id) {
		res = DB_PUBLISH_TAKEN;
		goto out;
	}
	if (!allow && holder != id) {
		res = DB_PUBLISH_NOT_FOUND;
		goto out;
	}
	if (allow && holder == id) {
		res = DB_PUBLISH_OK; /* already granted: nothing to write */
		goto out;
	}
	s = prep(db, allow ? "INSERT INTO publish_grants (node_id, port, protocol, created) VALUES (?1, ?2, ?3, ?4)"
			   : "DELETE FROM publish_grants WHERE node_id = ?1 AND port = ?2 AND protocol = ?3");
	if (!s || sqlite3_bind_int64(s, 1, id) != SQLITE_OK || sqlite3_bind_int(s, 2, port) != SQLITE_OK ||
	    sqlite3_bind_text(s, 3, proto_text(proto), -1, SQLITE_STATIC) != SQLITE_OK ||
	    (allow && sqlite3_bind_int64(s, 4, (int64_t)time(NULL)) != SQLITE_OK) || sqlite3_step(s) != SQLITE_DONE) {
		log_error("registry: writing a publish grant: %s", sqlite3_errmsg(db->sql));
		goto out;
	}
	sqlite3_finalize(s);
	s = NULL;
	if (!db_tx_commit(db))
		return DB_PUBLISH_ERROR;
	return DB_PUBLISH_OK;
out:
	sqlite3_finalize(s);
	db_tx_rollback(db);
	return res;
}

bool db_publish_list(struct db *db, void (*fn)(const struct db_publish_grant *g, void *ctx), void *ctx)
{
	sqlite3_stmt *s = prep(db, "SELECT n.node_key, n.name, g.port, g.protocol FROM publish_grants g "
				   "JOIN nodes n ON n.id = g.node_id ORDER BY n.name, g.protocol, g.port");
	int rc;

	if (!s)
		return false;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct db_publish_grant g;
		memset(&g, 0, sizeof(g));
		const unsigned char *name = sqlite3_column_text(s, 1);
		const unsigned char *proto = sqlite3_column_text(s, 3);
		int port = sqlite3_column_int(s, 2);
		if (!db_column_blob(s, 0, g.node_key, WIRE_KEY_LEN) || !name || !proto || port < 1 || port > 65535)
			continue; /* the CHECKs make this unreachable; a hand-edited file is skipped */
		snprintf(g.node_name, sizeof(g.node_name), "%s", (const char *)name);
		g.port = (uint16_t)port;
		g.proto = strcmp((const char *)proto, "udp") == 0 ? CONTROL_PROTO_UDP : CONTROL_PROTO_TCP;
		fn(&g, ctx);
	}
	sqlite3_finalize(s);
	return rc == SQLITE_DONE;
}
