/* The coordinator's registry in SQLite (WAL): the network (its IPv6 ULA prefix), nodes,
 * and join keys. Every write is one transaction that is committed before anyone is told
 * about it, so a kill -9 at any moment loses nothing that was acknowledged.
 *
 * meshcoord serve and the admin subcommands (authkey, nodes) open the same file; the
 * server notices others' commits through db_changed() and pushes the difference. */
#ifndef MESHCOORD_DB_H
#define MESHCOORD_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/control.h"
#include "core/joinkey.h"
#include "coord/tags.h"

enum {
	DB_OVERLAY_IPV4_BITS = 10,  /* 100.64.0.0/10, the CGNAT range (RFC 6598) */
	DB_OVERLAY_IPV6_BITS = 48,  /* one ULA /48 per network (RFC 4193) */
	DB_BUSY_TIMEOUT_MS = 5000,  /* an admin command and the server may write at once */
	/* Registrations per reusable key per minute unless the key says otherwise: a rollout of
	 * 10,000 nodes with one key takes ten minutes, and a leaked key adds at most this many
	 * nodes a minute until it is revoked. 0 on a key: no limit. */
	DB_AUTHKEY_PER_MINUTE_DEFAULT = 1000, /* and DB_AUTHKEY_PER_MINUTE_DEFAULT_TEXT below */
	DB_AUTHKEY_MINUTE_S = 60,
};

#define DB_AUTHKEY_PER_MINUTE_DEFAULT_TEXT "1000"

struct db;

struct db_node {
	int64_t id;
	uint8_t node_key[WIRE_KEY_LEN];
	char name[CONTROL_NAME_MAX + 1];
	uint8_t ipv4[4];
	uint8_t ipv6[16];
	int64_t created;   /* unix seconds */
	int64_t last_seen; /* unix seconds, 0 = never */
	struct control_endpoint endpoints[CONTROL_MAX_ENDPOINTS];
	size_t n_endpoints;
};

struct db_authkey {
	int64_t id;
	bool reusable;
	int64_t created;
	int64_t expires;  /* 0 = never */
	bool revoked;
	int64_t uses;     /* registrations made with it */
	int64_t max_uses; /* reusable: registrations allowed in all, 0 = unlimited */
	int64_t per_minute; /* registrations allowed per minute, 0 = unlimited */
};

enum db_register_result {
	DB_REGISTER_OK = 0,           /* *node holds the (new or existing) record */
	DB_REGISTER_KEY_UNKNOWN,
	DB_REGISTER_KEY_EXPIRED,
	DB_REGISTER_KEY_REVOKED,
	DB_REGISTER_KEY_USED,         /* a one-time key already consumed */
	DB_REGISTER_KEY_USED_UP,      /* a reusable key's max_uses reached */
	DB_REGISTER_KEY_BUSY,         /* the key's per-minute limit reached: try again later */
	DB_REGISTER_NODE_REMOVED,     /* this node key was removed: refused from now on */
	DB_REGISTER_NEED_KEY,         /* unknown node and no secret */
	DB_REGISTER_ERROR,            /* SQLite failed; see the log */
};

/* Opens (creating if needed) the database; err gets one line on failure. The file is opened
 * without following a symbolic link, and its mode (and that of its -wal and -shm files) is
 * set to 0600 if it was anything else. */
struct db *db_open(const char *path, char *err, size_t err_len);
void db_close(struct db *db);

/* The network's ULA prefix (first 6 bytes meaningful), generated once at creation. */
void db_network_ipv6_prefix(struct db *db, uint8_t prefix[16]);

/* Creates a join key; secret_out gets the secret to embed in the join string. */
bool db_authkey_create(struct db *db, bool reusable, int64_t expires, int64_t now,
		       uint8_t secret_out[JOINKEY_SECRET_LEN], int64_t *id_out);
/* The same with limits: max_uses (reusable keys; 0 = unlimited) and registrations per
 * minute (0 = unlimited; db_authkey_create uses DB_AUTHKEY_PER_MINUTE_DEFAULT). */
bool db_authkey_create_limited(struct db *db, bool reusable, int64_t expires, int64_t now, int64_t max_uses,
			       int64_t per_minute, uint8_t secret_out[JOINKEY_SECRET_LEN], int64_t *id_out);
bool db_authkey_revoke(struct db *db, int64_t id); /* false if no such key */
/* Calls fn for each key, oldest first. */
bool db_authkey_list(struct db *db, void (*fn)(const struct db_authkey *k, void *ctx), void *ctx);

/* Registers a node: an already registered key just gets its record back (hostname and
 * secret are then ignored); otherwise the secret must name a usable key, which a one-time key
 * is consumed by, atomically with the node's creation. Addresses are allocated once and kept;
 * the name comes from the hostname, made unique ("host", "host-2", ...). */
enum db_register_result db_register_node(struct db *db, const uint8_t node_key[WIRE_KEY_LEN],
					 const uint8_t *secret, size_t secret_len, const char *hostname,
					 int64_t now, struct db_node *node_out);
bool db_node_by_key(struct db *db, const uint8_t node_key[WIRE_KEY_LEN], struct db_node *out);
bool db_node_set_endpoints(struct db *db, const uint8_t node_key[WIRE_KEY_LEN],
			   const struct control_endpoint *endpoints, size_t n);
bool db_node_touch(struct db *db, const uint8_t node_key[WIRE_KEY_LEN], int64_t now); /* last seen */
/* Removes a node by name; its key is remembered as removed. False if no such node. */
bool db_node_remove(struct db *db, const char *name);
/* Calls fn for each valid node row. A row that cannot be served (bad key, name, addresses)
 * is skipped and logged once per opened db; endpoints that nobody may dial are dropped from
 * the record. False only if the registry cannot be read. */
bool db_nodes_list(struct db *db, void (*fn)(const struct db_node *n, void *ctx), void *ctx);

/* ---------------------------------------------------------------- routes (db_routes.c) */

struct db_route {
	uint8_t node_key[WIRE_KEY_LEN];
	char node_name[CONTROL_NAME_MAX + 1];
	struct control_route route;
	bool advertised;
	bool approved;
};

/* Replaces what the node advertises with adv (one transaction); rows neither advertised nor
 * approved go. False if the node is unknown or SQLite fails. */
bool db_routes_set_advertised(struct db *db, const uint8_t node_key[WIRE_KEY_LEN], const struct control_routes *adv);
/* Approves (or revokes) one route of a node by name, advertised or not yet. False if no
 * such node, or nothing to revoke (*found false), or SQLite fails. */
bool db_route_set_approved(struct db *db, const char *node_name, const struct control_route *r, bool approved,
			   bool *found);
/* Calls fn for each valid route row, by node name then prefix; malformed prefixes are skipped. */
bool db_routes_list(struct db *db, void (*fn)(const struct db_route *r, void *ctx), void *ctx);

/* ---------------------------------------------------------------- publish grants (db_publish.c) */

struct db_publish_grant {
	uint8_t node_key[WIRE_KEY_LEN];
	char node_name[CONTROL_NAME_MAX + 1];
	uint16_t port;
	uint8_t proto; /* CONTROL_PROTO_TCP or CONTROL_PROTO_UDP */
};

enum db_publish_result {
	DB_PUBLISH_OK = 0,
	DB_PUBLISH_NO_NODE,   /* no node of that name */
	DB_PUBLISH_TAKEN,     /* allow: the port is granted to another node */
	DB_PUBLISH_NOT_FOUND, /* revoke: no such grant */
	DB_PUBLISH_ERROR,     /* SQLite failed; see the log */
};

/* Grants (allow) or revokes one public port and protocol for a node by name. taken_by gets
 * the other node's name on DB_PUBLISH_TAKEN (cap CONTROL_NAME_MAX + 1). */
enum db_publish_result db_publish_set(struct db *db, const char *node_name, uint16_t port, uint8_t proto, bool allow,
				      char *taken_by);
/* Calls fn for each grant, by node name, protocol and port. False if the registry cannot be read. */
bool db_publish_list(struct db *db, void (*fn)(const struct db_publish_grant *g, void *ctx), void *ctx);

/* ---------------------------------------------------------------- tags (db_tags.c) */

struct db_tags {
	char v[TAGS_PER_NODE_MAX][TAG_MAX + 1];
	size_t n;
};

/* The same tags in the same order (field by field: padding and the bytes past each name are
 * not part of a list). */
bool db_tags_equal(const struct db_tags *a, const struct db_tags *b);

enum db_tag_result {
	DB_TAG_OK = 0,
	DB_TAG_BAD,      /* a tag is not "tag:" and [a-z0-9-]{1,63} (coord/tags.h) */
	DB_TAG_NO_NODE,
	DB_TAG_TOO_MANY, /* the node would have more than TAGS_PER_NODE_MAX: nothing changed */
	DB_TAG_ERROR,    /* SQLite failed; see the log */
};

/* Adds (or removes) tags of a node by name, all or none (one transaction); *changed gets
 * how many rows that made or removed (a tag it already had, or did not have, counts 0). */
enum db_tag_result db_node_tags_change(struct db *db, const char *node_name, const char *const *tags, size_t n,
				       bool add, size_t *changed);
/* A node's tags, sorted. */
bool db_node_tags(struct db *db, int64_t node_id, struct db_tags *out);
/* Calls fn for each valid (node, tag) row. */
bool db_tags_list(struct db *db, void (*fn)(const uint8_t node_key[WIRE_KEY_LEN], const char *tag, void *ctx),
		  void *ctx);

/* ---------------------------------------------------------------- satellites (db_satellites.c) */

enum {
	/* host:port as typed (a DNS name up to 253, brackets and a port), with room */
	DB_SATELLITE_ENDPOINT_MAX = 272,
	/* "tag:NAME" words, space-separated: TAGS_PER_NODE_MAX of them at most */
	DB_SATELLITE_TAGS_MAX = TAGS_PER_NODE_MAX * (TAG_MAX + 1),
};

struct db_satellite {
	int64_t id;
	uint8_t public_key[WIRE_KEY_LEN];
	char name[CONTROL_NAME_MAX + 1];
	uint8_t gateway_key[WIRE_KEY_LEN];
	char gateway_name[CONTROL_NAME_MAX + 1];
	uint8_t ipv4[4];
	uint8_t ipv6[16];
	bool has_psk;
	uint8_t psk[WIRE_KEY_LEN];
	bool key_generated;                        /* the private key was shown once, not kept */
	char endpoint[DB_SATELLITE_ENDPOINT_MAX];  /* "" = the gateway's own candidate */
	char tags[DB_SATELLITE_TAGS_MAX];          /* "tag:a tag:b" or "" */
	int64_t created;
};

enum db_satellite_result {
	DB_SATELLITE_OK = 0,
	DB_SATELLITE_BAD_NAME,    /* not 1..63 of [a-z0-9-], no '-' at either end */
	DB_SATELLITE_NAME_TAKEN,  /* a node, a removed node or a satellite has it */
	DB_SATELLITE_KEY_TAKEN,   /* a node's key (or a removed node's) or a satellite's */
	DB_SATELLITE_NO_GATEWAY,  /* no such node */
	DB_SATELLITE_TOO_MANY,    /* the gateway serves CONTROL_MAX_SATELLITES already */
	DB_SATELLITE_BAD_TAGS,    /* a tag is not tag:NAME, or more than TAGS_PER_NODE_MAX */
	DB_SATELLITE_ERROR,       /* SQLite failed (or no address left); see the log */
};

/* Adds a satellite served by the node named gateway, all in one transaction: addresses from
 * the nodes' allocator, the name checked against nodes and satellites. psk NULL: none;
 * endpoint NULL or "": the gateway's; tags NULL or "": none. *out gets the record. */
enum db_satellite_result db_satellite_add(struct db *db, const char *name, const char *gateway,
					  const uint8_t public_key[WIRE_KEY_LEN], const uint8_t *psk,
					  bool key_generated, const char *endpoint, const char *tags, int64_t now,
					  struct db_satellite *out);
/* Removes a satellite by name; *found false when there is none. False if SQLite fails. */
bool db_satellite_remove(struct db *db, const char *name, bool *found);
/* 1 found (into out), 0 none, -1 error. */
int db_satellite_by_name(struct db *db, const char *name, struct db_satellite *out);
/* Calls fn for each valid satellite row, by name; out-of-rule rows are skipped. Records hold
 * the preshared key: fn must not keep them. */
bool db_satellites_list(struct db *db, void (*fn)(const struct db_satellite *sat, void *ctx), void *ctx);
/* The name rule for satellites: a lower-case DNS label. */
bool db_satellite_name_valid(const char *name);

/* True when another connection (an admin command) committed since the last call. */
bool db_changed(struct db *db);

#endif
