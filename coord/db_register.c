/* Registration: a node joins with a join key and gets a name and addresses, all in one
 * transaction.
 *
 * Addresses: IPv4 comes from 100.64.0.0/10 minus its network (100.64.0.0) and broadcast
 * (100.127.255.255) addresses, handed out in increasing order from a counter kept in the
 * network row, so one allocation is an index probe. Addresses of removed nodes are not handed
 * out again until the counter has passed the end of the range; only then is the lowest free
 * address reused. A node's IPv6 address is the network's ULA /48 with the IPv4 address in its
 * low 32 bits: unique because the IPv4 address is, and stable for as long as the node lives.
 *
 * Names: the hostname's first label, reduced to [a-z0-9-]; the first node called "host" gets
 * "host", later ones "host-2", "host-3", ... A per-name counter makes that O(1) however many
 * equal hostnames join, and names of removed nodes are never handed out again, so a name
 * remembered somewhere (a peer's cached map, a hosts file) never silently means a new machine.
 */
#include "coord/db.h"

#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "core/dns.h"
#include "core/log.h"
#include "coord/db_internal.h"

enum {
	NAME_SUFFIX_MAX = 24,  /* "-" and an int64 in decimal, with room */
	HOSTNAME_SCAN_MAX = 253, /* a DNS name is at most this long; nothing past it is read */
};

/* Steps a "SELECT 1 ... WHERE x = ?1" style statement already bound: 1 row, 0 none, -1 error. */
static int exists_step(struct db *db, sqlite3_stmt *s, const char *what)
{
	int rc = db_step(db, s, what);
	db_stmt_done(s);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : -1;
}

static int key_is_removed(struct db *db, const uint8_t node_key[WIRE_KEY_LEN])
{
	sqlite3_stmt *s = db->stmt[STMT_REMOVED_GET];

	if (!db_bind_ok(db, sqlite3_bind_blob(s, 1, node_key, WIRE_KEY_LEN, SQLITE_STATIC), "binding")) {
		db_stmt_done(s);
		return -1;
	}
	return exists_step(db, s, "looking up removed nodes");
}

/* The hostname's first label as [a-z0-9-]: letters lowered, anything else one '-', no '-' at
 * either end (DNS label rules; collapsing also keeps names clear of the "xn--" IDN form). */
static void name_sanitize(const char *hostname, char out[CONTROL_NAME_MAX + 1])
{
	size_t n = 0;

	if (!hostname)
		hostname = "";
	for (size_t i = 0; i < HOSTNAME_SCAN_MAX && hostname[i] && hostname[i] != '.' && n < CONTROL_NAME_MAX; i++) {
		unsigned char c = (unsigned char)hostname[i];
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
			c = '-';
		if (c == '-' && (n == 0 || out[n - 1] == '-'))
			continue;
		out[n++] = (char)c;
	}
	while (n > 0 && out[n - 1] == '-')
		n--;
	out[n] = '\0';
	if (n == 0)
		snprintf(out, CONTROL_NAME_MAX + 1, "node");
}

/* base for the first of its name, base-N (base cut so the whole fits a DNS label) after. */
static void name_candidate(const char *base, int64_t n, char out[CONTROL_NAME_MAX + 1])
{
	char suffix[NAME_SUFFIX_MAX];
	size_t keep = strlen(base), suffix_len;

	if (n <= 1) {
		snprintf(out, CONTROL_NAME_MAX + 1, "%s", base);
		return;
	}
	suffix_len = (size_t)snprintf(suffix, sizeof(suffix), "-%" PRId64, n);
	if (keep > CONTROL_NAME_MAX - suffix_len)
		keep = CONTROL_NAME_MAX - suffix_len;
	while (keep > 0 && base[keep - 1] == '-')
		keep--;
	memcpy(out, base, keep);
	memcpy(out + keep, suffix, suffix_len + 1);
}

/* Inside the registration transaction. */
static bool name_allocate(struct db *db, const char *hostname, char out[CONTROL_NAME_MAX + 1])
{
	sqlite3_stmt *get = db->stmt[STMT_NAME_COUNTER_GET];
	sqlite3_stmt *taken = db->stmt[STMT_NAME_TAKEN];
	sqlite3_stmt *set = db->stmt[STMT_NAME_COUNTER_SET];
	char base[CONTROL_NAME_MAX + 1];
	int64_t n = 1;
	int rc;

	name_sanitize(hostname, base);
	if (!db_bind_ok(db, sqlite3_bind_text(get, 1, base, -1, SQLITE_STATIC), "binding")) {
		db_stmt_done(get);
		return false;
	}
	rc = db_step(db, get, "reading a name counter");
	if (rc == SQLITE_ROW && sqlite3_column_int64(get, 0) > 1)
		n = sqlite3_column_int64(get, 0);
	db_stmt_done(get);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return false;

	/* The counter only grows, so the probes over all registrations of one base add up to
	 * about one per registration (plus one per clash with a name from another base). */
	for (;; n++) {
		name_candidate(base, n, out);
		if (!db_bind_ok(db, sqlite3_bind_text(taken, 1, out, -1, SQLITE_STATIC), "binding")) {
			db_stmt_done(taken);
			return false;
		}
		rc = exists_step(db, taken, "checking a name");
		if (rc < 0)
			return false;
		if (rc == 0)
			break;
	}
	if (!db_bind_ok(db, sqlite3_bind_text(set, 1, base, -1, SQLITE_STATIC), "binding") ||
	    !db_bind_ok(db, sqlite3_bind_int64(set, 2, n + 1), "binding")) {
		db_stmt_done(set);
		return false;
	}
	rc = db_step(db, set, "updating a name counter");
	db_stmt_done(set);
	return rc == SQLITE_DONE;
}

/* The lowest free address in [from, IPV4_LAST]: 1 found, 0 none, -1 error. */
static int ipv4_lowest_free(struct db *db, int64_t from, int64_t *out)
{
	sqlite3_stmt *taken = db->stmt[STMT_IPV4_TAKEN];
	sqlite3_stmt *gap = db->stmt[STMT_IPV4_GAP];
	int rc;

	if (from > IPV4_LAST)
		return 0;
	if (!db_bind_ok(db, sqlite3_bind_int64(taken, 1, from), "binding")) {
		db_stmt_done(taken);
		return -1;
	}
	rc = exists_step(db, taken, "checking an address");
	if (rc <= 0) {
		*out = from;
		return rc < 0 ? -1 : 1;
	}
	if (!db_bind_ok(db, sqlite3_bind_int64(gap, 1, from), "binding") ||
	    !db_bind_ok(db, sqlite3_bind_int64(gap, 2, IPV4_LAST), "binding")) {
		db_stmt_done(gap);
		return -1;
	}
	rc = db_step(db, gap, "looking for a free address");
	if (rc == SQLITE_ROW)
		*out = sqlite3_column_int64(gap, 0);
	db_stmt_done(gap);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : -1;
}

/* ipv4_lowest_free, but never the mesh's DNS address (core/dns.h): nodes answer DNS there. */
static int ipv4_lowest_usable(struct db *db, int64_t from, int64_t *out)
{
	int rc = ipv4_lowest_free(db, from, out);
	if (rc == 1 && *out == (int64_t)DNS_MESH_SERVICE_IPV4)
		rc = ipv4_lowest_free(db, *out + 1, out);
	return rc;
}

/* Inside a write transaction (a registration, a satellite's creation). */
bool db_ipv4_allocate(struct db *db, int64_t *out)
{
	sqlite3_stmt *net = db->stmt[STMT_NETWORK_GET];
	sqlite3_stmt *set = db->stmt[STMT_NETWORK_SET_NEXT];
	int64_t next = 0;
	int rc;

	rc = db_step(db, net, "reading the address counter");
	if (rc == SQLITE_ROW)
		next = sqlite3_column_int64(net, 1);
	db_stmt_done(net);
	if (rc != SQLITE_ROW)
		return false;
	if (next < IPV4_FIRST)
		next = IPV4_FIRST;

	rc = ipv4_lowest_usable(db, next, out);
	if (rc == 0) /* past the end: only now do removed nodes' addresses come back */
		rc = ipv4_lowest_usable(db, IPV4_FIRST, out);
	if (rc < 0)
		return false;
	if (rc == 0) {
		log_error("registry: no free address left in 100.64.0.0/%d", DB_OVERLAY_IPV4_BITS);
		return false;
	}
	if (!db_bind_ok(db, sqlite3_bind_int64(set, 1, *out + 1), "binding")) {
		db_stmt_done(set);
		return false;
	}
	return db_exec(db, STMT_NETWORK_SET_NEXT, "updating the address counter");
}

/* Inside the registration transaction: the node row and the key's use, both or neither. */
static bool node_create(struct db *db, const uint8_t node_key[WIRE_KEY_LEN], const char *hostname, int64_t now,
			int64_t authkey_id)
{
	sqlite3_stmt *ins = db->stmt[STMT_NODE_INSERT];
	char name[CONTROL_NAME_MAX + 1];
	uint8_t ipv6[16];
	int64_t ipv4;
	bool ok;

	if (!name_allocate(db, hostname, name) || !db_ipv4_allocate(db, &ipv4))
		return false;
	memset(ipv6, 0, sizeof(ipv6));
	memcpy(ipv6, db->ipv6_prefix, ULA_PREFIX_LEN);
	db_ipv4_to_bytes((uint32_t)ipv4, ipv6 + IPV6_IPV4_OFFSET);

	ok = db_bind_ok(db, sqlite3_bind_blob(ins, 1, node_key, WIRE_KEY_LEN, SQLITE_STATIC), "binding") &&
	     db_bind_ok(db, sqlite3_bind_text(ins, 2, name, -1, SQLITE_STATIC), "binding") &&
	     db_bind_ok(db, sqlite3_bind_int64(ins, 3, ipv4), "binding") &&
	     db_bind_ok(db, sqlite3_bind_blob(ins, 4, ipv6, sizeof(ipv6), SQLITE_STATIC), "binding") &&
	     db_bind_ok(db, sqlite3_bind_int64(ins, 5, now), "binding") &&
	     /* It is registering over a live connection right now. */
	     db_bind_ok(db, sqlite3_bind_int64(ins, 6, now), "binding") &&
	     db_bind_ok(db, sqlite3_bind_int64(ins, 7, authkey_id), "binding") &&
	     db_step(db, ins, "inserting a node") == SQLITE_DONE;
	db_stmt_done(ins);
	return ok && db_authkey_count_use(db, authkey_id, now);
}

enum db_register_result db_register_node(struct db *db, const uint8_t node_key[WIRE_KEY_LEN],
					 const uint8_t *secret, size_t secret_len, const char *hostname,
					 int64_t now, struct db_node *node_out)
{
	enum db_register_result res = DB_REGISTER_ERROR;
	int64_t authkey_id = 0;
	int rc;

	/* One write transaction from the first check to the last insert: two nodes racing for
	 * a one-time key (or for a name) are serialized, and a kill leaves all or nothing. */
	if (!db_tx_begin(db))
		return DB_REGISTER_ERROR;
	rc = key_is_removed(db, node_key);
	if (rc != 0) {
		res = rc > 0 ? DB_REGISTER_NODE_REMOVED : DB_REGISTER_ERROR;
		goto rollback;
	}
	rc = db_node_lookup(db, node_key, node_out);
	if (rc != 0) {
		res = rc > 0 ? DB_REGISTER_OK : DB_REGISTER_ERROR;
		goto rollback; /* nothing was written */
	}
	if (!secret || secret_len == 0) {
		res = DB_REGISTER_NEED_KEY;
		goto rollback;
	}
	res = db_authkey_check(db, secret, secret_len, now, &authkey_id);
	if (res != DB_REGISTER_OK)
		goto rollback;
	if (!node_create(db, node_key, hostname, now, authkey_id) || db_node_lookup(db, node_key, node_out) != 1) {
		res = DB_REGISTER_ERROR;
		goto rollback;
	}
	if (!db_tx_commit(db))
		return DB_REGISTER_ERROR;
	return DB_REGISTER_OK;
rollback:
	db_tx_rollback(db);
	return res;
}

