/* Satellites in the registry (schema v5, db.c): stock WireGuard devices that a gateway node
 * serves as static peers. A satellite's IPv4 address comes from the nodes' allocator
 * (db_register.c), so it never collides with a node's, and its IPv6 address is derived from
 * it as a node's is. Satellites are few and rarely change: statements are prepared per call. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "coord/db_internal.h"
#include "core/log.h"

/* Columns read by row_read, in this order. */
#define SAT_COLUMNS                                                                                                    \
	"s.id, s.public_key, s.name, n.node_key, n.name, s.ipv4, s.ipv6, s.psk, s.key_generated, "                    \
	"coalesce(s.endpoint, ''), s.tags, s.created"
#define SAT_FROM " FROM satellites s JOIN nodes n ON n.id = s.gateway_id"

static sqlite3_stmt *prep(struct db *db, const char *sql)
{
	sqlite3_stmt *s = NULL;

	if (sqlite3_prepare_v2(db->sql, sql, -1, &s, NULL) != SQLITE_OK) {
		log_error("registry: preparing a satellites statement: %s", sqlite3_errmsg(db->sql));
		return NULL;
	}
	return s;
}

bool db_satellite_name_valid(const char *name)
{
	size_t len = strnlen(name, CONTROL_NAME_MAX + 1);

	if (len == 0 || len > CONTROL_NAME_MAX || name[0] == '-' || name[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
			return false;
	}
	return true;
}

/* Space-separated tag:NAME words, at most TAGS_PER_NODE_MAX, each valid (coord/tags.h). */
static bool tags_valid(const char *tags)
{
	size_t n = 0;

	for (const char *p = tags; *p;) {
		size_t len = strcspn(p, " ");
		if (len == 0 || !tag_valid(p, len) || ++n > TAGS_PER_NODE_MAX)
			return false;
		p += len;
		if (*p == ' ' && *++p == '\0')
			return false; /* a trailing space: one spelling per list */
	}
	return true;
}

static bool text_column(sqlite3_stmt *s, int col, char *out, size_t cap)
{
	const unsigned char *t = sqlite3_column_text(s, col);
	if (!t || strlen((const char *)t) >= cap)
		return false;
	memcpy(out, t, strlen((const char *)t) + 1);
	return true;
}

/* One row into out; false for a row that breaks the rules (not one we wrote). */
static bool row_read(sqlite3_stmt *s, struct db_satellite *out)
{
	memset(out, 0, sizeof(*out));
	out->id = sqlite3_column_int64(s, 0);
	int64_t v4 = sqlite3_column_int64(s, 5);
	if (!db_column_blob(s, 1, out->public_key, WIRE_KEY_LEN) || !text_column(s, 2, out->name, sizeof(out->name)) ||
	    !db_column_blob(s, 3, out->gateway_key, WIRE_KEY_LEN) ||
	    !text_column(s, 4, out->gateway_name, sizeof(out->gateway_name)) || v4 < IPV4_FIRST || v4 > IPV4_LAST ||
	    !db_column_blob(s, 6, out->ipv6, sizeof(out->ipv6)) ||
	    !text_column(s, 9, out->endpoint, sizeof(out->endpoint)) || !text_column(s, 10, out->tags, sizeof(out->tags)) ||
	    !db_satellite_name_valid(out->name) || !tags_valid(out->tags))
		return false;
	db_ipv4_to_bytes((uint32_t)v4, out->ipv4);
	if (sqlite3_column_type(s, 7) != SQLITE_NULL) {
		if (!db_column_blob(s, 7, out->psk, WIRE_KEY_LEN))
			return false;
		out->has_psk = true;
	}
	out->key_generated = sqlite3_column_int(s, 8) != 0;
	out->created = sqlite3_column_int64(s, 11);
	return true;
}

/* A "SELECT 1 ..." with one blob or text bound: 1 a row, 0 none, -1 error. */
static int exists(struct db *db, const char *sql, const void *blob, const char *text)
{
	sqlite3_stmt *s = prep(db, sql);
	int rc;

	if (!s)
		return -1;
	rc = blob ? sqlite3_bind_blob(s, 1, blob, WIRE_KEY_LEN, SQLITE_TRANSIENT)
		  : sqlite3_bind_text(s, 1, text, -1, SQLITE_TRANSIENT);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	sqlite3_finalize(s);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : -1;
}

/* The registry's one name check (STMT_NAME_TAKEN: nodes, removed nodes and satellites share
 * a name space): 1 taken, 0 free, -1 error. */
static int name_taken(struct db *db, const char *name)
{
	sqlite3_stmt *s = db->stmt[STMT_NAME_TAKEN];
	int rc = sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);

	if (rc == SQLITE_OK)
		rc = db_step(db, s, "checking a name");
	db_stmt_done(s);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : -1;
}

/* The gateway's id and how many satellites it serves: 1 found, 0 none, -1 error. */
static int gateway_lookup(struct db *db, const char *gateway, int64_t *id, int64_t *count)
{
	sqlite3_stmt *s = prep(db, "SELECT n.id, (SELECT count(*) FROM satellites WHERE gateway_id = n.id) "
				   "FROM nodes n WHERE n.name = ?1");
	int rc;

	if (!s)
		return -1;
	rc = sqlite3_bind_text(s, 1, gateway, -1, SQLITE_TRANSIENT);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*id = sqlite3_column_int64(s, 0);
		*count = sqlite3_column_int64(s, 1);
	}
	sqlite3_finalize(s);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : -1;
}

static bool insert(struct db *db, const char *name, int64_t gateway_id, const uint8_t key[WIRE_KEY_LEN],
		   const uint8_t *psk, bool key_generated, const char *endpoint, const char *tags, int64_t now)
{
	sqlite3_stmt *s = prep(db, "INSERT INTO satellites (public_key, name, gateway_id, ipv4, ipv6, psk, key_generated, "
				   "endpoint, tags, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)");
	uint8_t ipv6[16];
	int64_t ipv4;
	bool ok;

	if (!s)
		return false;
	if (!db_ipv4_allocate(db, &ipv4)) {
		sqlite3_finalize(s);
		return false;
	}
	memset(ipv6, 0, sizeof(ipv6));
	memcpy(ipv6, db->ipv6_prefix, ULA_PREFIX_LEN);
	db_ipv4_to_bytes((uint32_t)ipv4, ipv6 + IPV6_IPV4_OFFSET);
	ok = sqlite3_bind_blob(s, 1, key, WIRE_KEY_LEN, SQLITE_TRANSIENT) == SQLITE_OK &&
	     sqlite3_bind_text(s, 2, name, -1, SQLITE_TRANSIENT) == SQLITE_OK &&
	     sqlite3_bind_int64(s, 3, gateway_id) == SQLITE_OK && sqlite3_bind_int64(s, 4, ipv4) == SQLITE_OK &&
	     sqlite3_bind_blob(s, 5, ipv6, sizeof(ipv6), SQLITE_TRANSIENT) == SQLITE_OK &&
	     (psk ? sqlite3_bind_blob(s, 6, psk, WIRE_KEY_LEN, SQLITE_TRANSIENT) : sqlite3_bind_null(s, 6)) == SQLITE_OK &&
	     sqlite3_bind_int(s, 7, key_generated ? 1 : 0) == SQLITE_OK &&
	     (endpoint && endpoint[0] ? sqlite3_bind_text(s, 8, endpoint, -1, SQLITE_TRANSIENT)
				      : sqlite3_bind_null(s, 8)) == SQLITE_OK &&
	     sqlite3_bind_text(s, 9, tags ? tags : "", -1, SQLITE_TRANSIENT) == SQLITE_OK &&
	     sqlite3_bind_int64(s, 10, now) == SQLITE_OK && sqlite3_step(s) == SQLITE_DONE;
	if (!ok)
		log_error("registry: adding a satellite: %s", sqlite3_errmsg(db->sql));
	sqlite3_finalize(s);
	return ok;
}

enum db_satellite_result db_satellite_add(struct db *db, const char *name, const char *gateway,
					  const uint8_t public_key[WIRE_KEY_LEN], const uint8_t *psk,
					  bool key_generated, const char *endpoint, const char *tags, int64_t now,
					  struct db_satellite *out)
{
	enum db_satellite_result res = DB_SATELLITE_ERROR;
	int64_t gateway_id = 0, count = 0;
	int rc;

	if (!db_satellite_name_valid(name))
		return DB_SATELLITE_BAD_NAME;
	if (tags && !tags_valid(tags))
		return DB_SATELLITE_BAD_TAGS;
	if (endpoint && strlen(endpoint) >= DB_SATELLITE_ENDPOINT_MAX)
		return DB_SATELLITE_ERROR;
	/* One write transaction: two admins adding at once are serialized, and a kill leaves
	 * the satellite whole or absent. */
	if (!db_tx_begin(db))
		return DB_SATELLITE_ERROR;
	rc = name_taken(db, name);
	if (rc != 0) {
		res = rc > 0 ? DB_SATELLITE_NAME_TAKEN : DB_SATELLITE_ERROR;
		goto rollback;
	}
	rc = exists(db, "SELECT 1 FROM nodes WHERE node_key = ?1 UNION ALL SELECT 1 FROM removed_nodes WHERE node_key = ?1 "
			"UNION ALL SELECT 1 FROM satellites WHERE public_key = ?1 LIMIT 1",
		    public_key, NULL);
	if (rc != 0) {
		res = rc > 0 ? DB_SATELLITE_KEY_TAKEN : DB_SATELLITE_ERROR;
		goto rollback;
	}
	rc = gateway_lookup(db, gateway, &gateway_id, &count);
	if (rc <= 0) {
		res = rc == 0 ? DB_SATELLITE_NO_GATEWAY : DB_SATELLITE_ERROR;
		goto rollback;
	}
	if (count >= CONTROL_MAX_SATELLITES) {
		res = DB_SATELLITE_TOO_MANY;
		goto rollback;
	}
	if (!insert(db, name, gateway_id, public_key, psk, key_generated, endpoint, tags, now) ||
	    db_satellite_by_name(db, name, out) != 1)
		goto rollback;
	if (!db_tx_commit(db)) {
		sodium_memzero(out, sizeof(*out));
		return DB_SATELLITE_ERROR;
	}
	return DB_SATELLITE_OK;
rollback:
	db_tx_rollback(db);
	return res;
}

bool db_satellite_remove(struct db *db, const char *name, bool *found)
{
	sqlite3_stmt *s = prep(db, "DELETE FROM satellites WHERE name = ?1");
	bool ok;

	*found = false;
	if (!s)
		return false;
	ok = sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT) == SQLITE_OK && sqlite3_step(s) == SQLITE_DONE;
	if (ok)
		*found = sqlite3_changes(db->sql) > 0;
	else
		log_error("registry: removing a satellite: %s", sqlite3_errmsg(db->sql));
	sqlite3_finalize(s);
	return ok;
}

int db_satellite_by_name(struct db *db, const char *name, struct db_satellite *out)
{
	sqlite3_stmt *s = prep(db, "SELECT " SAT_COLUMNS SAT_FROM " WHERE s.name = ?1");
	int rc, res;

	if (!s)
		return -1;
	rc = sqlite3_bind_text(s, 1, name, -1, SQLITE_TRANSIENT);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		res = row_read(s, out) ? 1 : -1;
	else
		res = rc == SQLITE_DONE ? 0 : -1;
	if (res < 0 && rc != SQLITE_ROW)
		log_error("registry: reading a satellite: %s", sqlite3_errmsg(db->sql));
	sqlite3_finalize(s);
	return res;
}

bool db_satellites_list(struct db *db, void (*fn)(const struct db_satellite *sat, void *ctx), void *ctx)
{
	sqlite3_stmt *s = prep(db, "SELECT " SAT_COLUMNS SAT_FROM " ORDER BY s.name");
	struct db_satellite sat;
	int rc;

	if (!s)
		return false;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (row_read(s, &sat))
			fn(&sat, ctx);
	}
	sodium_memzero(&sat, sizeof(sat));
	if (rc != SQLITE_DONE)
		log_error("registry: listing satellites: %s", sqlite3_errmsg(db->sql));
	sqlite3_finalize(s);
	return rc == SQLITE_DONE;
}
