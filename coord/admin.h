/* meshcoord's administrative subcommands: "authkey create|list|revoke" and "nodes list|remove".
 * They run as their own processes next to a running server, on the same database; every
 * change is one committed transaction, which the server notices (db_changed) and pushes.
 *
 * Calling convention: argv[0] is the subcommand's name ("authkey" or "nodes"), the action and
 * its arguments follow, and options may come anywhere after argv[0]. "-c FILE" / "--config
 * FILE" is accepted and skipped: the caller has already used it to open db (admin_config_path
 * finds it). The return value is the process exit status: 0, 1 (failed, one line on stderr)
 * or ADMIN_EXIT_USAGE. */
#ifndef MESHCOORD_ADMIN_H
#define MESHCOORD_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coord/coordconf.h"
#include "coord/db.h"

enum {
	ADMIN_EXIT_USAGE = 2,           /* bad command line, as most Unix tools */
	/* A node counts as online when it was seen this recently. The admin process cannot see
	 * the server's connections; the server stores last_seen on every keepalive (about every
	 * 25 s), so this is two keepalives and some slack. */
	ADMIN_ONLINE_WINDOW_S = 60,
	/* --expires is bounded so that the arithmetic cannot overflow and a typo ("100000d")
	 * is caught; a key that should never expire is made without --expires. */
	ADMIN_EXPIRES_MAX_S = 3650 * 86400,
	/* --max-uses and --per-minute: far above any real network, low enough to catch a typo. */
	ADMIN_LIMIT_MAX = 1000000,
};

int admin_authkey(struct db *db, const struct coord_config *cfg, const uint8_t coord_public[32], int argc,
		  char **argv);
int admin_nodes(struct db *db, int argc, char **argv);
/* routes list|approve|revoke (admin_routes.c). */
int admin_routes(struct db *db, int argc, char **argv);
/* meshcoord publish list|allow|revoke (admin_publish.c); cfg NULL only for --help. */
int admin_publish(struct db *db, const struct coord_config *cfg, int argc, char **argv);

/* satellite add|list|config|remove (admin_satellites.c); cfg: for the DNS line of the
 * printed file (NULL only for --help). */
int admin_satellite(struct db *db, const struct coord_config *cfg, int argc, char **argv);

/* nodes tag|untag NAME TAG... (admin_tags.c): pos[0] is the action; the exit status. */
int admin_tags_change(struct db *db, const char *const *pos, size_t n_pos, bool add);
/* A node's tags as "tag:a,tag:b", or "-" for none. */
void admin_tags_text(struct db *db, int64_t node_id, char *out, size_t cap);
enum { ADMIN_TAGS_TEXT_MAX = TAGS_PER_NODE_MAX * (TAG_MAX + 1) + 1 };

/* True when the command line only asks for help (--help, -h, or no action): then the two
 * functions above use neither db nor cfg nor coord_public, which may be NULL. */
bool admin_wants_help(int argc, char **argv);
/* The value of -c/--config FILE on the command line, or NULL when absent. */
const char *admin_config_path(int argc, char **argv);

/* Strict "N" followed by one unit: s, m, h or d ("30m", "24h", "7d", "3600s"); N > 0 and the
 * total at most ADMIN_EXPIRES_MAX_S. */
bool admin_duration_parse(const char *s, int64_t *seconds);

#endif
