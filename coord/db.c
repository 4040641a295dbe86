/* The coordinator's registry in SQLite.
 *
 * Durability: journal_mode=WAL with synchronous=NORMAL. A transaction's pages are written into
 * the WAL file (write(2), so into the kernel's page cache) before COMMIT returns; once a commit
 * has returned it survives the process being killed at any moment (kill -9, a crash), because
 * the next opener replays the WAL. NORMAL does not fsync at each commit (the WAL is synced at
 * checkpoints), so a power loss or kernel crash may lose the last commits, never the database's
 * consistency. synchronous=FULL would also survive power loss, at one fsync per registration:
 * a few hundred a second at best on a VPS disk, against over ten thousand without.
 *
 * This file opens the database, creates and checks its schema, prepares every statement and
 * holds the helpers that run them; db_authkeys.c, db_register.c and db_nodes.c do the rest.
 */
#include "coord/db.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sys/stat.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "coord/db_internal.h"

#define DB_STR_(x) #x
#define DB_STR(x) DB_STR_(x)
/* The column default in SQL text; must equal DB_AUTHKEY_PER_MINUTE_DEFAULT (asserted below). */
#define DB_AUTHKEY_PER_MINUTE_DEFAULT_SQL 1000
_Static_assert(DB_AUTHKEY_PER_MINUTE_DEFAULT_SQL == DB_AUTHKEY_PER_MINUTE_DEFAULT, "one default");

enum {
	SCHEMA_VERSION = 6,   /* PRAGMA user_version: schema_v1, then the migrations to v2 .. v6 */
	DB_FILE_MODE = 0600,  /* SQLite gives the -wal and -shm files the database file's mode */
};

/* Created in one transaction; db_register.c's file comment says what the columns mean. ipv4 is the
 * address as a host-order integer so that the UNIQUE index sorts it numerically. AUTOINCREMENT
 * on nodes: a removed node's id is never given to another, so the server may key on it. */
static const char schema_v1[] =
	"CREATE TABLE network ("
	"  id INTEGER PRIMARY KEY CHECK (id = 1),"
	"  ipv6_prefix BLOB NOT NULL CHECK (length(ipv6_prefix) = 16),"
	"  next_ipv4 INTEGER NOT NULL,"
	"  created INTEGER NOT NULL);"
	"CREATE TABLE authkeys ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  secret_hash BLOB UNIQUE NOT NULL CHECK (length(secret_hash) = 32),"
	"  reusable INTEGER NOT NULL,"
	"  created INTEGER NOT NULL,"
	"  expires INTEGER NOT NULL DEFAULT 0,"
	"  revoked INTEGER NOT NULL DEFAULT 0,"
	"  uses INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE nodes ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  node_key BLOB UNIQUE NOT NULL CHECK (length(node_key) = 32),"
	"  name TEXT UNIQUE NOT NULL,"
	"  ipv4 INTEGER UNIQUE NOT NULL,"
	"  ipv6 BLOB UNIQUE NOT NULL CHECK (length(ipv6) = 16),"
	"  created INTEGER NOT NULL,"
	"  last_seen INTEGER NOT NULL DEFAULT 0,"
	"  endpoints BLOB,"
	"  authkey_id INTEGER REFERENCES authkeys(id));"
	"CREATE TABLE removed_nodes ("
	"  node_key BLOB PRIMARY KEY,"
	"  name TEXT NOT NULL,"
	"  ipv4 INTEGER NOT NULL,"
	"  removed_at INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE INDEX removed_nodes_name ON removed_nodes(name);"
	"CREATE TABLE name_counters ("
	"  base TEXT PRIMARY KEY,"
	"  next INTEGER NOT NULL) WITHOUT ROWID;";

/* Version 2: limits on reusable join keys (max_uses, per_minute) and the counter of the
 * current minute's registrations (minute_start, in Unix minutes, and minute_uses). */
static const char schema_v2_migration[] =
	"ALTER TABLE authkeys ADD COLUMN max_uses INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE authkeys ADD COLUMN per_minute INTEGER NOT NULL DEFAULT "
	DB_STR(DB_AUTHKEY_PER_MINUTE_DEFAULT_SQL) ";"
	"ALTER TABLE authkeys ADD COLUMN minute_start INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE authkeys ADD COLUMN minute_uses INTEGER NOT NULL DEFAULT 0;";

/* Version 3: subnet routes and exit offers (db_routes.c). A row is one prefix of one node,
 * in canonical text ("192.168.1.0/24"): advertised by the node and/or approved by an admin
 * (or an auto-approval rule). Approval outlives advertisement, so a router that restarts
 * with the same routes needs no new approval; removing the node removes its rows. */
static const char schema_v3_migration[] =
	"CREATE TABLE routes ("
	"  node_id INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,"
	"  prefix TEXT NOT NULL,"
	"  advertised INTEGER NOT NULL DEFAULT 0,"
	"  approved INTEGER NOT NULL DEFAULT 0,"
	"  PRIMARY KEY (node_id, prefix)) WITHOUT ROWID;";

/* Version 4: node tags (db_tags.c), "tag:NAME" as coord/tags.h defines it, given by an
 * administrator; removing the node removes its tags. */
static const char schema_v4_migration[] =
	"CREATE TABLE node_tags ("
	"  node_id INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,"
	"  tag TEXT NOT NULL,"
	"  PRIMARY KEY (node_id, tag)) WITHOUT ROWID;";

/* Version 5: satellites (db_satellites.c), devices running a stock WireGuard client that
 * one gateway node serves as static peers. Their addresses come from the nodes' allocator and
 * their names share the nodes' name space (db_register.c checks both tables); removing the
 * gateway removes its satellites. psk NULL: none; key_generated: the private key was made
 * here and shown once (never stored); endpoint NULL: the gateway's own candidate. tags: the
 * satellite's "tag:NAME"s for the policy, space-separated. */
static const char schema_v5_migration[] =
	"CREATE TABLE satellites ("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  public_key BLOB UNIQUE NOT NULL CHECK (length(public_key) = 32),"
	"  name TEXT UNIQUE NOT NULL,"
	"  gateway_id INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,"
	"  ipv4 INTEGER UNIQUE NOT NULL,"
	"  ipv6 BLOB UNIQUE NOT NULL CHECK (length(ipv6) = 16),"
	"  psk BLOB CHECK (psk IS NULL OR length(psk) = 32),"
	"  key_generated INTEGER NOT NULL DEFAULT 0,"
	"  endpoint TEXT,"
	"  tags TEXT NOT NULL DEFAULT '',"
	"  created INTEGER NOT NULL);"
	"CREATE INDEX satellites_gateway ON satellites(gateway_id);";

/* Version 6: grants to publish a node's service on the coordinator's public address
 * (db_publish.c, issue 11). One row per public port and protocol: a port belongs to one node
 * at a time. Removing the node removes its grants, and so closes its listeners. */
static const char schema_v6_migration[] =
	"CREATE TABLE publish_grants ("
	"  node_id INTEGER NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,"
	"  port INTEGER NOT NULL CHECK (port BETWEEN 1 AND 65535),"
	"  protocol TEXT NOT NULL CHECK (protocol IN ('tcp', 'udp')),"
	"  created INTEGER NOT NULL,"
	"  PRIMARY KEY (protocol, port)) WITHOUT ROWID;"
	"CREATE INDEX publish_grants_node ON publish_grants(node_id);";

/* The SQL of every statement in enum stmt_id, prepared once at open. */
static const char *const stmt_sql[STMT_COUNT] = {
	/* IMMEDIATE takes the write lock up front: a read-then-write transaction started as
	 * DEFERRED could fail with SQLITE_BUSY half-way instead of waiting its turn. */
	[STMT_BEGIN] = "BEGIN IMMEDIATE",
	[STMT_COMMIT] = "COMMIT",
	[STMT_ROLLBACK] = "ROLLBACK",
	[STMT_DATA_VERSION] = "PRAGMA data_version",
	[STMT_NETWORK_GET] = "SELECT ipv6_prefix, next_ipv4 FROM network WHERE id = 1",
	[STMT_NETWORK_SET_NEXT] = "UPDATE network SET next_ipv4 = ?1 WHERE id = 1",
	/* A satellite's key counts too: a node registering with it would take its place on the
	 * gateway (the gateway knows the key as the satellite's). */
	[STMT_REMOVED_GET] = "SELECT 1 FROM removed_nodes WHERE node_key = ?1 "
			     "UNION ALL SELECT 1 FROM satellites WHERE public_key = ?1",
	[STMT_REMOVED_ADD] = "INSERT OR REPLACE INTO removed_nodes (node_key, name, ipv4, removed_at) "
			     "VALUES (?1, ?2, ?3, ?4)",
	[STMT_NODE_BY_KEY] = "SELECT " NODE_COLUMNS " FROM nodes WHERE node_key = ?1",
	[STMT_NODE_BY_NAME] = "SELECT node_key, ipv4 FROM nodes WHERE name = ?1",
	[STMT_NODE_INSERT] = "INSERT INTO nodes (node_key, name, ipv4, ipv6, created, last_seen, authkey_id) "
			     "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[STMT_NODE_DELETE] = "DELETE FROM nodes WHERE node_key = ?1",
	[STMT_NODE_SET_ENDPOINTS] = "UPDATE nodes SET endpoints = ?2 WHERE node_key = ?1",
	[STMT_NODE_TOUCH] = "UPDATE nodes SET last_seen = ?2 WHERE node_key = ?1",
	[STMT_NODES_LIST] = "SELECT " NODE_COLUMNS " FROM nodes ORDER BY name",
	[STMT_NAME_TAKEN] = "SELECT 1 FROM nodes WHERE name = ?1 "
			    "UNION ALL SELECT 1 FROM removed_nodes WHERE name = ?1 "
			    "UNION ALL SELECT 1 FROM satellites WHERE name = ?1 LIMIT 1",
	[STMT_NAME_COUNTER_GET] = "SELECT next FROM name_counters WHERE base = ?1",
	[STMT_NAME_COUNTER_SET] = "INSERT OR REPLACE INTO name_counters (base, next) VALUES (?1, ?2)",
	/* Nodes and satellites share the address space. */
	[STMT_IPV4_TAKEN] = "SELECT 1 FROM nodes WHERE ipv4 = ?1 UNION ALL SELECT 1 FROM satellites WHERE ipv4 = ?1 LIMIT 1",
	/* The first free address above a taken one in [?1, ?2]. Only after the counter passed the
	 * end of the range (db_register.c): sorting the taken addresses above ?1 is fine then. */
	[STMT_IPV4_GAP] = "SELECT c FROM (SELECT ipv4 + 1 AS c FROM nodes WHERE ipv4 >= ?1 AND ipv4 < ?2 "
			  "UNION SELECT ipv4 + 1 FROM satellites WHERE ipv4 >= ?1 AND ipv4 < ?2) "
			  "WHERE NOT EXISTS (SELECT 1 FROM nodes WHERE ipv4 = c) "
			  "AND NOT EXISTS (SELECT 1 FROM satellites WHERE ipv4 = c) ORDER BY c LIMIT 1",
	[STMT_AUTHKEY_BY_HASH] = "SELECT id, reusable, expires, revoked, uses, max_uses, per_minute, minute_start, "
				 "minute_uses FROM authkeys WHERE secret_hash = ?1",
	/* SET reads the row as it was: the minute's count restarts when the minute moved on. */
	[STMT_AUTHKEY_USE] = "UPDATE authkeys SET uses = uses + 1, "
			     "minute_uses = CASE WHEN minute_start = ?2 THEN minute_uses + 1 ELSE 1 END, "
			     "minute_start = ?2 WHERE id = ?1",
	[STMT_AUTHKEY_INSERT] = "INSERT INTO authkeys (secret_hash, reusable, created, expires, max_uses, per_minute) "
				"VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[STMT_AUTHKEY_REVOKE] = "UPDATE authkeys SET revoked = 1 WHERE id = ?1",
	[STMT_AUTHKEY_LIST] = "SELECT id, reusable, created, expires, revoked, uses, max_uses, per_minute "
			      "FROM authkeys ORDER BY id",
};

/* ------------------------------------------------------------------ running statements */

static void log_sql(struct db *db, const char *what)
{
	log_error("registry: %s: %s", what, sqlite3_errmsg(db->sql));
}

/* Statements go back to their initial state after every use: a statement left mid-way would
 * keep a read transaction open, pinning the WAL and hiding other connections' commits. */
void db_stmt_done(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

/* Steps s; logs anything but a row or the end. */
int db_step(struct db *db, sqlite3_stmt *s, const char *what)
{
	int rc = sqlite3_step(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		log_sql(db, what);
	return rc;
}

/* Runs a statement that returns no rows. */
bool db_exec(struct db *db, enum stmt_id id, const char *what)
{
	bool ok = db_step(db, db->stmt[id], what) == SQLITE_DONE;
	db_stmt_done(db->stmt[id]);
	return ok;
}

bool db_bind_ok(struct db *db, int rc, const char *what)
{
	if (rc == SQLITE_OK)
		return true;
	log_sql(db, what);
	return false;
}

bool db_tx_begin(struct db *db)
{
	return db_exec(db, STMT_BEGIN, "starting a transaction");
}

bool db_tx_commit(struct db *db)
{
	if (db_exec(db, STMT_COMMIT, "committing"))
		return true;
	/* A failed COMMIT may leave the transaction open (SQLITE_BUSY): do not leave it so. */
	if (!sqlite3_get_autocommit(db->sql))
		db_exec(db, STMT_ROLLBACK, "rolling back");
	return false;
}

void db_tx_rollback(struct db *db)
{
	/* Some errors (SQLITE_FULL, SQLITE_IOERR, ...) already rolled the transaction back. */
	if (!sqlite3_get_autocommit(db->sql))
		db_exec(db, STMT_ROLLBACK, "rolling back");
}

/* A BLOB column of exactly len bytes. */
bool db_column_blob(sqlite3_stmt *s, int col, uint8_t *out, size_t len)
{
	const void *p = sqlite3_column_blob(s, col);
	if (!p || (size_t)sqlite3_column_bytes(s, col) != len)
		return false;
	memcpy(out, p, len);
	return true;
}

/* ------------------------------------------------------------------ open and close */

/* One integer from a one-off query (schema set-up only). */
static bool query_int(sqlite3 *sql, const char *query, int64_t *out)
{
	sqlite3_stmt *s = NULL;
	bool ok = false;

	if (sqlite3_prepare_v2(sql, query, -1, &s, NULL) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW) {
		*out = sqlite3_column_int64(s, 0);
		ok = true;
	}
	sqlite3_finalize(s);
	return ok;
}

static bool schema_create(sqlite3 *sql, int64_t now)
{
	uint8_t prefix[16] = { 0 };
	sqlite3_stmt *s = NULL;
	bool ok;
	char pragma[64];

	if (sqlite3_exec(sql, schema_v1, NULL, NULL, NULL) != SQLITE_OK)
		return false;
	/* RFC 4193 section 3.2: fd, then 40 random bits; chosen once, so it never changes. */
	prefix[0] = ULA_L_BIT_PREFIX;
	randombytes_buf(prefix + 1, ULA_RANDOM_LEN);
	if (sqlite3_prepare_v2(sql, "INSERT INTO network (id, ipv6_prefix, next_ipv4, created) VALUES (1, ?1, ?2, ?3)",
			       -1, &s, NULL) != SQLITE_OK)
		return false;
	ok = sqlite3_bind_blob(s, 1, prefix, sizeof(prefix), SQLITE_TRANSIENT) == SQLITE_OK &&
	     sqlite3_bind_int64(s, 2, IPV4_FIRST) == SQLITE_OK && sqlite3_bind_int64(s, 3, now) == SQLITE_OK &&
	     sqlite3_step(s) == SQLITE_DONE;
	sqlite3_finalize(s);
	if (!ok)
		return false;
	snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", 1);
	return sqlite3_exec(sql, pragma, NULL, NULL, NULL) == SQLITE_OK;
}

/* Creates the schema in one transaction, so a kill half-way leaves an empty file that the
 * next start creates again; two processes starting together are serialized by the lock. */
static bool schema_ensure(sqlite3 *sql, char *err, size_t err_len)
{
	int64_t version = 0;

	if (sqlite3_exec(sql, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		goto sql_error;
	if (!query_int(sql, "PRAGMA user_version", &version))
		goto sql_error_rollback;
	if (version == 0) {
		if (!schema_create(sql, (int64_t)time(NULL)))
			goto sql_error_rollback;
		version = 1;
	}
	/* Each migration runs inside this one transaction: a kill -9 leaves the old version. */
	if (version == 1) {
		if (sqlite3_exec(sql, schema_v2_migration, NULL, NULL, NULL) != SQLITE_OK)
			goto sql_error_rollback;
		version = 2;
	}
	if (version == 2) {
		if (sqlite3_exec(sql, schema_v3_migration, NULL, NULL, NULL) != SQLITE_OK)
			goto sql_error_rollback;
		version = 3;
	}
	if (version == 3) {
		if (sqlite3_exec(sql, schema_v4_migration, NULL, NULL, NULL) != SQLITE_OK)
			goto sql_error_rollback;
		version = 4;
	}
	if (version == 4) {
		if (sqlite3_exec(sql, schema_v5_migration, NULL, NULL, NULL) != SQLITE_OK)
			goto sql_error_rollback;
		version = 5;
	}
	if (version == 5) {
		char pragma[64];
		snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", SCHEMA_VERSION);
		if (sqlite3_exec(sql, schema_v6_migration, NULL, NULL, NULL) != SQLITE_OK ||
		    sqlite3_exec(sql, pragma, NULL, NULL, NULL) != SQLITE_OK)
			goto sql_error_rollback;
	} else if (version != SCHEMA_VERSION) {
		sqlite3_exec(sql, "ROLLBACK", NULL, NULL, NULL);
		snprintf(err, err_len, "schema version %" PRId64 " is not the one this meshcoord knows (%d)",
			 version, SCHEMA_VERSION);
		return false;
	}
	if (sqlite3_exec(sql, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		goto sql_error_rollback;
	return true;
sql_error_rollback:
	snprintf(err, err_len, "creating the schema: %s", sqlite3_errmsg(sql));
	if (!sqlite3_get_autocommit(sql))
		sqlite3_exec(sql, "ROLLBACK", NULL, NULL, NULL);
	return false;
sql_error:
	snprintf(err, err_len, "creating the schema: %s", sqlite3_errmsg(sql));
	return false;
}

static bool pragmas_set(sqlite3 *sql, char *err, size_t err_len)
{
	sqlite3_stmt *s = NULL;
	bool wal = false;

	/* First, so that the statements below wait for a concurrent opener instead of failing. */
	if (sqlite3_busy_timeout(sql, DB_BUSY_TIMEOUT_MS) != SQLITE_OK)
		goto sql_error;
	if (sqlite3_prepare_v2(sql, "PRAGMA journal_mode = WAL", -1, &s, NULL) != SQLITE_OK)
		goto sql_error;
	if (sqlite3_step(s) == SQLITE_ROW) {
		const unsigned char *mode = sqlite3_column_text(s, 0);
		wal = mode && strcmp((const char *)mode, "wal") == 0;
	}
	sqlite3_finalize(s);
	if (!wal) {
		/* The durability argument at the top of this file and the server/admin concurrency
		 * both rest on WAL; it needs shared memory, which network file systems lack. */
		snprintf(err, err_len, "cannot switch to WAL mode (%s); is it on a local file system?",
			 sqlite3_errmsg(sql));
		return false;
	}
	if (sqlite3_exec(sql, "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON", NULL, NULL, NULL) != SQLITE_OK)
		goto sql_error;
	return true;
sql_error:
	snprintf(err, err_len, "%s", sqlite3_errmsg(sql));
	return false;
}

static bool network_load(struct db *db, char *err, size_t err_len)
{
	sqlite3_stmt *s = db->stmt[STMT_NETWORK_GET];
	bool ok = sqlite3_step(s) == SQLITE_ROW && db_column_blob(s, 0, db->ipv6_prefix, sizeof(db->ipv6_prefix)) &&
		  db->ipv6_prefix[0] == ULA_L_BIT_PREFIX;

	if (!ok)
		snprintf(err, err_len, "the network row is missing or malformed");
	db_stmt_done(s);
	return ok;
}

/* A regular file, mode DB_FILE_MODE: a wider mode (an old install, a copy) is narrowed,
 * with one line saying so. */
static bool file_mode_fix(int fd, const char *path, char *err, size_t err_len)
{
	struct stat st;

	if (fstat(fd, &st) < 0) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return false;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, err_len, "%s: not a regular file", path);
		return false;
	}
	if ((st.st_mode & 07777) == DB_FILE_MODE)
		return true;
	if (fchmod(fd, DB_FILE_MODE) < 0) {
		snprintf(err, err_len, "%s: cannot set its mode to %04o: %s", path, DB_FILE_MODE, strerror(errno));
		return false;
	}
	log_warn("registry: %s had mode %04o; set to %04o (it holds join key hashes and node keys)", path,
		 (unsigned int)(st.st_mode & 07777), DB_FILE_MODE);
	return true;
}

/* The -wal or -shm file next to the database, if it exists: not a link, mode fixed. */
static bool sidecar_mode_fix(const char *path, const char *suffix, char *err, size_t err_len)
{
	char side[PATH_MAX];
	int fd;
	bool ok;

	if ((size_t)snprintf(side, sizeof(side), "%s%s", path, suffix) >= sizeof(side)) {
		snprintf(err, err_len, "%s: path too long", path);
		return false;
	}
	fd = open(side, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return true;
		snprintf(err, err_len, "%s: %s", side,
			 errno == ELOOP ? "is a symbolic link; refusing to follow it" : strerror(errno));
		return false;
	}
	ok = file_mode_fix(fd, side, err, err_len);
	close(fd);
	return ok;
}

struct db *db_open(const char *path, char *err, size_t err_len)
{
	struct db *db;
	char why[256];
	int fd;

	if (sodium_init() < 0) {
		snprintf(err, err_len, "%s: libsodium failed to initialize", path);
		return NULL;
	}
	/* Created here rather than by SQLite so that it is 0600 from the first byte; never
	 * through a symbolic link (someone who can write the directory could point it at a
	 * file of their choosing for us to write as root). */
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, DB_FILE_MODE);
	if (fd < 0) {
		snprintf(err, err_len, "%s: %s", path,
			 errno == ELOOP ? "is a symbolic link; refusing to follow it (give the real path)"
					: strerror(errno));
		return NULL;
	}
	if (!file_mode_fix(fd, path, err, err_len)) {
		close(fd);
		return NULL;
	}
	close(fd);
	if (!sidecar_mode_fix(path, "-wal", err, err_len) || !sidecar_mode_fix(path, "-shm", err, err_len))
		return NULL;

	db = calloc(1, sizeof(*db));
	if (!db) {
		snprintf(err, err_len, "%s: out of memory", path);
		return NULL;
	}
	/* NOMUTEX: each connection is used by one thread (the server's loop or an admin command). */
	if (sqlite3_open_v2(path, &db->sql, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_NOFOLLOW,
			    NULL) != SQLITE_OK) {
		snprintf(why, sizeof(why), "%s", db->sql ? sqlite3_errmsg(db->sql) : "out of memory");
		goto fail;
	}
	sqlite3_extended_result_codes(db->sql, 1);
	if (!pragmas_set(db->sql, why, sizeof(why)) || !schema_ensure(db->sql, why, sizeof(why)))
		goto fail;
	for (int i = 0; i < STMT_COUNT; i++) {
		if (sqlite3_prepare_v3(db->sql, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &db->stmt[i], NULL) !=
		    SQLITE_OK) {
			snprintf(why, sizeof(why), "preparing statement %d: %s", i, sqlite3_errmsg(db->sql));
			goto fail;
		}
	}
	if (!network_load(db, why, sizeof(why)))
		goto fail;
	db->data_version = 0;
	db_changed(db); /* the baseline: later commits by others move it */
	return db;
fail:
	snprintf(err, err_len, "%s: %s", path, why);
	db_close(db);
	return NULL;
}

void db_close(struct db *db)
{
	if (!db)
		return;
	for (int i = 0; i < STMT_COUNT; i++)
		sqlite3_finalize(db->stmt[i]);
	if (db->sql && sqlite3_close(db->sql) != SQLITE_OK)
		log_sql(db, "closing");
	free(db);
}

void db_network_ipv6_prefix(struct db *db, uint8_t prefix[16])
{
	memcpy(prefix, db->ipv6_prefix, 16);
}

bool db_changed(struct db *db)
{
	sqlite3_stmt *s = db->stmt[STMT_DATA_VERSION];
	bool changed = false;

	/* data_version moves when another connection commits, never for our own commits. */
	if (db_step(db, s, "reading data_version") == SQLITE_ROW) {
		int64_t v = sqlite3_column_int64(s, 0);
		changed = v != db->data_version;
		db->data_version = v;
	}
	db_stmt_done(s);
	return changed;
}

