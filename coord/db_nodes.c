/* Node records: the row codec, lookups, the updates a connected node causes (endpoints, last
 * seen), removal and the listing the server builds its map from. Creation is in db_register.c. */
#include "coord/db.h"

#include <inttypes.h>
#include <sqlite3.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "core/endpoint_check.h"
#include "core/log.h"
#include "coord/db_internal.h"

enum {
	/* Endpoints are kept as the control protocol writes them: family (1), address (4 or 16),
	 * port (2, big-endian), one after another. */
	ENDPOINT_RECORD_V4 = 1 + 4 + 2,
	ENDPOINT_RECORD_V6 = 1 + 16 + 2,
	ENDPOINTS_BLOB_MAX = CONTROL_MAX_ENDPOINTS * ENDPOINT_RECORD_V6,
};

static size_t endpoints_encode(const struct control_endpoint *eps, size_t n, uint8_t *out, size_t cap)
{
	size_t off = 0;

	if (n > CONTROL_MAX_ENDPOINTS)
		return SIZE_MAX;
	for (size_t i = 0; i < n; i++) {
		size_t alen;
		if (eps[i].family == 4)
			alen = 4;
		else if (eps[i].family == 6)
			alen = 16;
		else
			return SIZE_MAX;
		if (cap - off < 1 + alen + 2)
			return SIZE_MAX;
		out[off++] = eps[i].family;
		memcpy(out + off, eps[i].addr, alen);
		off += alen;
		out[off++] = (uint8_t)(eps[i].port >> 8);
		out[off++] = (uint8_t)eps[i].port;
	}
	return off;
}

static bool endpoints_decode(const uint8_t *buf, size_t len, struct control_endpoint *eps, size_t *n_out)
{
	size_t off = 0, n = 0;

	while (off < len) {
		size_t alen;
		if (n == CONTROL_MAX_ENDPOINTS)
			return false;
		if (buf[off] == 4)
			alen = 4;
		else if (buf[off] == 6)
			alen = 16;
		else
			return false;
		if (len - off < 1 + alen + 2)
			return false;
		memset(&eps[n], 0, sizeof(eps[n]));
		eps[n].family = buf[off++];
		memcpy(eps[n].addr, buf + off, alen);
		off += alen;
		eps[n].port = (uint16_t)(buf[off] << 8 | buf[off + 1]);
		off += 2;
		n++;
	}
	*n_out = n;
	return true;
}

void db_ipv4_to_bytes(uint32_t v, uint8_t out[4])
{
	out[0] = (uint8_t)(v >> 24);
	out[1] = (uint8_t)(v >> 16);
	out[2] = (uint8_t)(v >> 8);
	out[3] = (uint8_t)v;
}

/* True the first time row id is reported in this db's life: a bad row is logged once, not
 * on every listing (the server lists after every admin commit). */
static bool bad_row_first_report(struct db *db, int64_t id)
{
	for (size_t i = 0; i < db->n_bad_rows; i++)
		if (db->bad_rows[i] == id)
			return false;
	if (db->n_bad_rows == DB_BAD_ROWS_REMEMBERED) {
		if (db->bad_rows_overflow_logged)
			return false;
		db->bad_rows_overflow_logged = true;
		log_error("registry: more than %d malformed node rows; not logging each any more",
			  DB_BAD_ROWS_REMEMBERED);
		return false;
	}
	db->bad_rows[db->n_bad_rows++] = id;
	return true;
}

/* Drops the endpoints nobody may dial (port 0, loopback, ...): stored by an older meshcoord
 * or by hand, they would make the PEER record unencodable (port 0) or turn peers into a
 * reflector. */
static size_t endpoints_keep_dialable(struct control_endpoint *eps, size_t n)
{
	size_t kept = 0;

	for (size_t i = 0; i < n; i++)
		if (control_endpoint_is_dialable(&eps[i]))
			eps[kept++] = eps[i];
	memset(eps + kept, 0, (n - kept) * sizeof(eps[0]));
	return kept;
}

/* Reads a row of NODE_COLUMNS; false (logged once per row) for one that cannot be served. */
static bool node_from_row(struct db *db, sqlite3_stmt *s, struct db_node *out)
{
	const char *why = "malformed fields (key or addresses)";
	const unsigned char *name;
	int64_t ipv4;
	size_t name_len;

	memset(out, 0, sizeof(*out));
	out->id = sqlite3_column_int64(s, 0);
	if (!db_column_blob(s, 1, out->node_key, sizeof(out->node_key)))
		goto corrupt;
	name = sqlite3_column_text(s, 2);
	name_len = (size_t)sqlite3_column_bytes(s, 2);
	why = "a name the control protocol cannot carry";
	if (!name || name_len == 0 || name_len > CONTROL_NAME_MAX)
		goto corrupt;
	memcpy(out->name, name, name_len);
	out->name[name_len] = '\0';
	if (!control_name_valid(out->name))
		goto corrupt;
	why = "malformed fields (key or addresses)";
	ipv4 = sqlite3_column_int64(s, 3);
	if (ipv4 < IPV4_FIRST || ipv4 > IPV4_LAST)
		goto corrupt;
	db_ipv4_to_bytes((uint32_t)ipv4, out->ipv4);
	if (!db_column_blob(s, 4, out->ipv6, sizeof(out->ipv6)))
		goto corrupt;
	out->created = sqlite3_column_int64(s, 5);
	out->last_seen = sqlite3_column_int64(s, 6);
	if (sqlite3_column_type(s, 7) != SQLITE_NULL) {
		const uint8_t *blob = sqlite3_column_blob(s, 7);
		size_t blob_len = (size_t)sqlite3_column_bytes(s, 7);
		/* Endpoints are soft state the node reports again on every connection: a bad
		 * record costs the node its candidates until then, not its registration. */
		if (blob_len > 0 && !endpoints_decode(blob, blob_len, out->endpoints, &out->n_endpoints)) {
			if (bad_row_first_report(db, out->id))
				log_warn("registry: node '%s' has malformed endpoints; ignoring them", out->name);
			memset(out->endpoints, 0, sizeof(out->endpoints));
			out->n_endpoints = 0;
		}
		size_t n = out->n_endpoints;
		out->n_endpoints = endpoints_keep_dialable(out->endpoints, n);
		if (out->n_endpoints != n && bad_row_first_report(db, out->id))
			log_warn("registry: node '%s' has %zu stored endpoint(s) nobody may dial; ignoring them",
				 out->name, n - out->n_endpoints);
	}
	return true;
corrupt:
	if (bad_row_first_report(db, out->id))
		log_error("registry: node row %" PRId64 " has %s; skipping it (the rest of the network is served)",
			  out->id, why);
	return false;
}

int db_node_lookup(struct db *db, const uint8_t node_key[WIRE_KEY_LEN], struct db_node *out)
{
	sqlite3_stmt *s = db->stmt[STMT_NODE_BY_KEY];
	int rc, ret = -1;

	if (!db_bind_ok(db, sqlite3_bind_blob(s, 1, node_key, WIRE_KEY_LEN, SQLITE_STATIC), "binding"))
		goto out;
	rc = db_step(db, s, "looking up a node");
	if (rc == SQLITE_ROW)
		ret = node_from_row(db, s, out) ? 1 : -1;
	else if (rc == SQLITE_DONE)
		ret = 0;
out:
	db_stmt_done(s);
	return ret;
}

bool db_node_by_key(struct db *db, const uint8_t node_key[WIRE_KEY_LEN], struct db_node *out)
{
	return db_node_lookup(db, node_key, out) == 1;
}

/* Runs an UPDATE ... WHERE node_key = ?1 with ?2 already bound; true if a row changed. */
static bool node_update(struct db *db, enum stmt_id id, const uint8_t node_key[WIRE_KEY_LEN], const char *what)
{
	sqlite3_stmt *s = db->stmt[id];
	bool ok = false;

	if (db_bind_ok(db, sqlite3_bind_blob(s, 1, node_key, WIRE_KEY_LEN, SQLITE_STATIC), "binding") &&
	    db_step(db, s, what) == SQLITE_DONE)
		ok = sqlite3_changes(db->sql) > 0;
	db_stmt_done(s);
	return ok;
}

bool db_node_set_endpoints(struct db *db, const uint8_t node_key[WIRE_KEY_LEN],
			   const struct control_endpoint *endpoints, size_t n)
{
	sqlite3_stmt *s = db->stmt[STMT_NODE_SET_ENDPOINTS];
	uint8_t blob[ENDPOINTS_BLOB_MAX];
	size_t len = endpoints_encode(endpoints, n, blob, sizeof(blob));

	if (len == SIZE_MAX) {
		log_error("registry: refusing %zu endpoints that do not encode", n);
		return false;
	}
	/* An empty list is stored as a zero-length blob, not NULL: "none" rather than "unknown"
	 * makes no difference to readers, and the pointer must not be NULL for bind_blob. */
	if (!db_bind_ok(db, sqlite3_bind_blob(s, 2, blob, (int)len, SQLITE_TRANSIENT), "binding")) {
		db_stmt_done(s);
		return false;
	}
	return node_update(db, STMT_NODE_SET_ENDPOINTS, node_key, "storing endpoints");
}

bool db_node_touch(struct db *db, const uint8_t node_key[WIRE_KEY_LEN], int64_t now)
{
	sqlite3_stmt *s = db->stmt[STMT_NODE_TOUCH];

	if (!db_bind_ok(db, sqlite3_bind_int64(s, 2, now), "binding")) {
		db_stmt_done(s);
		return false;
	}
	return node_update(db, STMT_NODE_TOUCH, node_key, "storing last seen");
}

bool db_node_remove(struct db *db, const char *name)
{
	sqlite3_stmt *find = db->stmt[STMT_NODE_BY_NAME];
	sqlite3_stmt *add = db->stmt[STMT_REMOVED_ADD];
	sqlite3_stmt *del = db->stmt[STMT_NODE_DELETE];
	uint8_t node_key[WIRE_KEY_LEN];
	int64_t ipv4 = 0;
	bool found = false;
	int rc;

	if (!db_tx_begin(db))
		return false;
	if (!db_bind_ok(db, sqlite3_bind_text(find, 1, name, -1, SQLITE_STATIC), "binding")) {
		db_stmt_done(find);
		goto rollback;
	}
	rc = db_step(db, find, "looking up a node by name");
	if (rc == SQLITE_ROW) {
		found = db_column_blob(find, 0, node_key, sizeof(node_key));
		ipv4 = sqlite3_column_int64(find, 1);
	}
	db_stmt_done(find);
	if (!found)
		goto rollback;
	/* Remembered first, deleted second, one commit: the key is never both gone and free. */
	if (!db_bind_ok(db, sqlite3_bind_blob(add, 1, node_key, sizeof(node_key), SQLITE_STATIC), "binding") ||
	    !db_bind_ok(db, sqlite3_bind_text(add, 2, name, -1, SQLITE_STATIC), "binding") ||
	    !db_bind_ok(db, sqlite3_bind_int64(add, 3, ipv4), "binding") ||
	    !db_bind_ok(db, sqlite3_bind_int64(add, 4, (int64_t)time(NULL)), "binding")) {
		db_stmt_done(add);
		goto rollback;
	}
	if (!db_exec(db, STMT_REMOVED_ADD, "remembering a removed node"))
		goto rollback;
	if (!db_bind_ok(db, sqlite3_bind_blob(del, 1, node_key, sizeof(node_key), SQLITE_STATIC), "binding")) {
		db_stmt_done(del);
		goto rollback;
	}
	if (!db_exec(db, STMT_NODE_DELETE, "deleting a node"))
		goto rollback;
	return db_tx_commit(db);
rollback:
	db_tx_rollback(db);
	return false;
}

/* fn may call other db functions, writes included, but not db_nodes_list: its statement is
 * the one being stepped. */
bool db_nodes_list(struct db *db, void (*fn)(const struct db_node *n, void *ctx), void *ctx)
{
	sqlite3_stmt *s = db->stmt[STMT_NODES_LIST];
	struct db_node node;
	int rc;

	while ((rc = db_step(db, s, "listing nodes")) == SQLITE_ROW) {
		/* One bad row is logged (once) and skipped; the rest of the network is served. */
		if (node_from_row(db, s, &node))
			fn(&node, ctx);
	}
	db_stmt_done(s);
	return rc == SQLITE_DONE;
}
