/* What the registry's files (coord/db*.c) share and nothing else sees: the connection with its
 * prepared statements, the address layout, and the helpers that run statements. */
#ifndef MESHCOORD_DB_INTERNAL_H
#define MESHCOORD_DB_INTERNAL_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coord/db.h"

enum {
	IPV4_OVERLAY_BASE = 0x64400000,                                  /* 100.64.0.0 */
	IPV4_OVERLAY_SIZE = 1 << (32 - DB_OVERLAY_IPV4_BITS),
	IPV4_FIRST = IPV4_OVERLAY_BASE + 1,                              /* skip the network address */
	IPV4_LAST = IPV4_OVERLAY_BASE + IPV4_OVERLAY_SIZE - 2,           /* skip the broadcast address */

	ULA_PREFIX_LEN = DB_OVERLAY_IPV6_BITS / 8,
	ULA_RANDOM_LEN = ULA_PREFIX_LEN - 1,  /* RFC 4193: fd00::/8, then a 40-bit random Global ID */
	ULA_L_BIT_PREFIX = 0xfd,              /* fc00::/7 with L = 1: locally assigned */
	IPV6_IPV4_OFFSET = 12,                /* the IPv4 address fills the last 4 bytes */
};

/* The columns db_nodes.c reads a node row from, in this order. */
#define NODE_COLUMNS "id, node_key, name, ipv4, ipv6, created, last_seen, endpoints"

/* Every statement the registry runs, prepared once at open (their SQL is in db.c). */
enum stmt_id {
	STMT_BEGIN,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_DATA_VERSION,
	STMT_NETWORK_GET,
	STMT_NETWORK_SET_NEXT,
	STMT_REMOVED_GET,
	STMT_REMOVED_ADD,
	STMT_NODE_BY_KEY,
	STMT_NODE_BY_NAME,
	STMT_NODE_INSERT,
	STMT_NODE_DELETE,
	STMT_NODE_SET_ENDPOINTS,
	STMT_NODE_TOUCH,
	STMT_NODES_LIST,
	STMT_NAME_TAKEN,
	STMT_NAME_COUNTER_GET,
	STMT_NAME_COUNTER_SET,
	STMT_IPV4_TAKEN,
	STMT_IPV4_GAP,
	STMT_AUTHKEY_BY_HASH,
	STMT_AUTHKEY_USE,
	STMT_AUTHKEY_INSERT,
	STMT_AUTHKEY_REVOKE,
	STMT_AUTHKEY_LIST,
	STMT_COUNT
};

enum {
	DB_BAD_ROWS_REMEMBERED = 64, /* bad rows logged once each; beyond, one line says so */
};

struct db {
	sqlite3 *sql;
	int64_t bad_rows[DB_BAD_ROWS_REMEMBERED]; /* ids of malformed rows already logged */
	size_t n_bad_rows;
	bool bad_rows_overflow_logged;
	sqlite3_stmt *stmt[STMT_COUNT];
	uint8_t ipv6_prefix[16];
	int64_t data_version;
};

/* db.c: running statements. Each logs its own SQLite errors with `what`. */
void db_stmt_done(sqlite3_stmt *s); /* reset and unbind: after every use */
int db_step(struct db *db, sqlite3_stmt *s, const char *what);
bool db_exec(struct db *db, enum stmt_id id, const char *what); /* no rows expected */
bool db_bind_ok(struct db *db, int rc, const char *what);
bool db_tx_begin(struct db *db); /* BEGIN IMMEDIATE */
bool db_tx_commit(struct db *db);
void db_tx_rollback(struct db *db);
bool db_column_blob(sqlite3_stmt *s, int col, uint8_t *out, size_t len);

/* db_nodes.c */
void db_ipv4_to_bytes(uint32_t v, uint8_t out[4]);
/* 1 found (into out), 0 none, -1 error. */
int db_node_lookup(struct db *db, const uint8_t node_key[WIRE_KEY_LEN], struct db_node *out);

/* db_register.c: the next free IPv4 address (nodes' and satellites'), the counter moved on,
 * inside a write transaction. */
bool db_ipv4_allocate(struct db *db, int64_t *out);

/* db_authkeys.c: checks a join secret inside the registration transaction; *id_out gets the
 * key's id whenever the key exists. */
enum db_register_result db_authkey_check(struct db *db, const uint8_t *secret, size_t secret_len, int64_t now,
					 int64_t *id_out);
/* One more registration made with key id at now, inside the registration transaction. */
bool db_authkey_count_use(struct db *db, int64_t id, int64_t now);

#endif
