/* The command line of meshcoord's admin subcommands (authkey, nodes, routes, publish,
 * satellite): one parser, so every subcommand spells options alike and main.c finds -c and
 * --help as the actions will read them. Long options are spelled out in full (no GNU
 * abbreviations); "--name=value", "-cFILE" and "--" (end of options) are accepted; options may
 * come anywhere after argv[0], the subcommand's name. */
#ifndef MESHCOORD_ADMIN_ARGS_H
#define MESHCOORD_ADMIN_ARGS_H

#include <stdbool.h>
#include <stddef.h>

#include "coord/db.h"
#include "coord/tags.h"

enum admin_option {
	ADMIN_OPT_HELP,       /* -h, --help: every subcommand */
	ADMIN_OPT_CONFIG,     /* -c, --config FILE: every subcommand */
	ADMIN_OPT_REUSABLE,   /* authkey create */
	ADMIN_OPT_EXPIRES,
	ADMIN_OPT_MAX_USES,
	ADMIN_OPT_PER_MINUTE,
	ADMIN_OPT_JSON,       /* the list actions */
	ADMIN_OPT_PROTOCOL,   /* publish allow|revoke */
	ADMIN_OPT_VIA,        /* satellite add */
	ADMIN_OPT_PUBLIC_KEY,
	ADMIN_OPT_ENDPOINT,
	ADMIN_OPT_TAG,        /* repeatable */
	ADMIN_OPT_QR,         /* satellite add|config */
	ADMIN_OPT_COUNT,
};
#define ADMIN_OPT(o) (1u << (o))
/* Every option: for the questions main.c asks before it knows who will answer. */
#define ADMIN_OPT_ALL ((1u << ADMIN_OPT_COUNT) - 1)

enum {
	/* "nodes tag NAME TAG..." may set a node's whole tag set at once; more is a mistake */
	ADMIN_POSITIONAL_MAX = 2 + TAGS_PER_NODE_MAX,
};

struct admin_args {
	const char *positional[ADMIN_POSITIONAL_MAX]; /* the action first */
	size_t n_positional;
	bool help, json, reusable, qr;
	const char *config, *expires, *max_uses, *per_minute, *protocol, *via, *public_key, *endpoint;
	char tags[DB_SATELLITE_TAGS_MAX]; /* every --tag, space-separated */
};

/* Fills a from argv[1..]; an option outside `allowed` (a mask of ADMIN_OPT()) is unknown to
 * this subcommand (help and config always pass). false: err holds one line ("unknown option
 * '--x'", "option '--via' needs a value", ...) for the caller to print with its name. */
bool admin_args_parse(int argc, char **argv, unsigned int allowed, struct admin_args *a, char *err, size_t err_len);

#endif
