/* meshcoord publish list|allow|revoke: which node may publish which public port (issue 11).
 * Like the other admin commands it runs next to the server on the same database; the server
 * sees the commit (db_changed) within a tick and opens or closes the listener. What is live
 * (listeners, connection counts) comes from the server's status file in state_dir. */
#include "coord/admin.h"
#include "coord/admin_args.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


enum {
	PUBLISH_EXIT_FAIL = 1,
	PUBLISH_ROWS_MAX = 65536,
};

static const char publish_help[] =
	"Usage: meshcoord publish ACTION [-c FILE]\n"
	"\n"
	"A node's service (a web app, a game server) is published on this coordinator's public\n"
	"address only when the node asks for it ('publish:' in its config), the config's\n"
	"'publish: ports' range holds the port, and it is granted here.\n"
	"\n"
	"Actions:\n"
	"  list [--json]\n"
	"        show every grant and what is published now: NODE, PROTO, PORT, SERVICE (the\n"
	"        node's name for it), STATE (published, or granted: the node is offline or does\n"
	"        not ask for it), CONNS (live connections or flows), TOTAL, BYTES IN and OUT\n"
	"  allow NODE PORT [--protocol tcp|udp]\n"
	"        grant a public port (default tcp) to a node; refused if another node holds it\n"
	"        or it lies outside 'publish: ports'\n"
	"  revoke NODE PORT [--protocol tcp|udp]\n"
	"        withdraw a grant: the listener and its connections close within a second\n"
	"\n"
	"-c FILE names the coordinator's config (default " COORDCONF_DEFAULT_PATH ").\n";

/* The server's status file (publish.c status_write): one tab-separated line per published
 * service. Written by the server itself, read here with every bound checked anyway. */
struct publish_status_row {
	char node[CONTROL_NAME_MAX + 1];
	char service[CONTROL_NAME_MAX + 1];
	uint8_t proto;
	uint16_t port;
	size_t active;
	uint64_t total, bytes_in, bytes_out;
};

struct publish_status {
	bool known; /* the file was there */
	struct publish_status_row *rows;
	size_t n;
};

enum { STATUS_ROWS_MAX = 65536 };

static void publish_status_read(const char *state_dir, struct publish_status *st)
{
	char path[COORDCONF_PATH_MAX + sizeof(PUBLISH_STATUS_FILE) + 1], line[512];

	memset(st, 0, sizeof(*st));
	if (snprintf(path, sizeof(path), "%s/%s", state_dir, PUBLISH_STATUS_FILE) >= (int)sizeof(path))
		return;
	FILE *f = fopen(path, "re");
	if (!f)
		return;
	long long written = 0;
	if (!fgets(line, sizeof(line), f) || sscanf(line, "# meshcoord publish status v1 written %lld", &written) != 1 ||
	    written < (long long)time(NULL) - PUBLISH_STATUS_STALE_S) {
		fclose(f); /* not ours, or left by a server that stopped */
		return;
	}
	st->known = true;
	st->rows = calloc(STATUS_ROWS_MAX, sizeof(*st->rows));
	while (st->rows && st->n < STATUS_ROWS_MAX && fgets(line, sizeof(line), f)) {
		struct publish_status_row *r = &st->rows[st->n];
		char proto[8];
		unsigned int port;
		if (line[0] == '#')
			continue;
		if (sscanf(line, "%63[^\t]\t%7[^\t]\t%u\t%63[^\t]\t%*[^\t]\t%zu\t%" SCNu64 "\t%" SCNu64 "\t%" SCNu64,
			   r->node, proto, &port, r->service, &r->active, &r->total, &r->bytes_in, &r->bytes_out) != 8 ||
		    port == 0 || port > 65535)
			continue;
		r->proto = strcmp(proto, "udp") == 0 ? CONTROL_PROTO_UDP : CONTROL_PROTO_TCP;
		r->port = (uint16_t)port;
		st->n++;
	}
	fclose(f);
}

static const struct publish_status_row *publish_status_find(const struct publish_status *st, const char *node,
							     uint8_t proto, uint16_t port)
{
	for (size_t i = 0; i < st->n; i++)
		if (st->rows[i].proto == proto && st->rows[i].port == port && strcmp(st->rows[i].node, node) == 0)
			return &st->rows[i];
	return NULL;
}

static void publish_status_free(struct publish_status *st)
{
	free(st->rows);
	memset(st, 0, sizeof(*st));
}

struct grants {
	struct db_publish_grant *list;
	size_t n;
};

static void grant_add(const struct db_publish_grant *g, void *ctx)
{
	struct grants *gs = ctx;

	if (gs->n < PUBLISH_ROWS_MAX)
		gs->list[gs->n++] = *g;
}

static const char *proto_name(uint8_t p)
{
	return p == CONTROL_PROTO_UDP ? "udp" : "tcp";
}

static int publish_list(struct db *db, const struct coord_config *cfg, bool json)
{
	struct grants gs = { .list = malloc(PUBLISH_ROWS_MAX * sizeof(struct db_publish_grant)), .n = 0 };
	struct publish_status st;

	if (!gs.list || !db_publish_list(db, grant_add, &gs)) {
		fprintf(stderr, "meshcoord publish: cannot read the registry\n");
		free(gs.list);
		return PUBLISH_EXIT_FAIL;
	}
	publish_status_read(cfg->state_dir, &st);
	if (json)
		printf("{\"enabled\": %s, \"ports\": \"%u-%u\", \"bind\": \"%s\", \"status_known\": %s, \"grants\": [",
		       cfg->publish.enabled ? "true" : "false", (unsigned int)cfg->publish.port_lo,
		       (unsigned int)cfg->publish.port_hi, cfg->publish.bind_host, st.known ? "true" : "false");
	else {
		if (!cfg->publish.enabled)
			printf("# publishing is off: no 'publish:' in the config\n");
		else if (!st.known)
			printf("# live state unknown: meshcoord serve is not running (%s in state_dir is missing or "
			       "older than %d s)\n",
			       PUBLISH_STATUS_FILE, PUBLISH_STATUS_STALE_S);
		printf("%-24s %-5s %-5s %-16s %-9s %5s %7s %12s %12s\n", "NODE", "PROTO", "PORT", "SERVICE", "STATE",
		       "CONNS", "TOTAL", "BYTES_IN", "BYTES_OUT");
	}
	for (size_t i = 0; i < gs.n; i++) {
		const struct db_publish_grant *g = &gs.list[i];
		const struct publish_status_row *r = publish_status_find(&st, g->node_name, g->proto, g->port);
		if (json)
			printf("%s{\"node\": \"%s\", \"protocol\": \"%s\", \"port\": %u, \"service\": \"%s\", "
			       "\"published\": %s, \"connections\": %zu, \"total\": %" PRIu64 ", \"bytes_in\": %" PRIu64
			       ", \"bytes_out\": %" PRIu64 "}",
			       i ? ", " : "", g->node_name, proto_name(g->proto), (unsigned int)g->port, r ? r->service : "",
			       r ? "true" : "false", r ? r->active : 0, r ? r->total : 0, r ? r->bytes_in : 0,
			       r ? r->bytes_out : 0);
		else
			printf("%-24s %-5s %-5u %-16s %-9s %5zu %7" PRIu64 " %12" PRIu64 " %12" PRIu64 "\n", g->node_name,
			       proto_name(g->proto), (unsigned int)g->port, r ? r->service : "-",
			       r ? "published" : "granted", r ? r->active : 0, r ? r->total : 0, r ? r->bytes_in : 0,
			       r ? r->bytes_out : 0);
	}
	if (json)
		printf("]}\n");
	publish_status_free(&st);
	free(gs.list);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "meshcoord publish: could not write the output\n");
		return PUBLISH_EXIT_FAIL;
	}
	return EXIT_SUCCESS;
}

static int publish_set(struct db *db, const struct coord_config *cfg, const char *node, const char *port_text,
		       uint8_t proto, bool allow)
{
	uint16_t port, hi;
	char taken[CONTROL_NAME_MAX + 1] = "";

	if (!coordconf_port_range_parse(port_text, &port, &hi) || port != hi) {
		fprintf(stderr, "meshcoord publish: '%s' is not a port (1 to 65535)\n", port_text);
		return ADMIN_EXIT_USAGE;
	}
	if (allow && !cfg->publish.enabled) {
		fprintf(stderr, "meshcoord publish: publishing is off; add 'publish: {ports: LOW-HIGH}' to the config "
				"first\n");
		return PUBLISH_EXIT_FAIL;
	}
	if (allow && (port < cfg->publish.port_lo || port > cfg->publish.port_hi)) {
		fprintf(stderr, "meshcoord publish: port %u is outside 'publish: ports' (%u-%u) in the config\n",
			(unsigned int)port, (unsigned int)cfg->publish.port_lo, (unsigned int)cfg->publish.port_hi);
		return PUBLISH_EXIT_FAIL;
	}
	switch (db_publish_set(db, node, port, proto, allow, taken)) {
	case DB_PUBLISH_OK:
		fprintf(stderr, "%s %s %s/%u for %s\n", allow ? "allowed" : "revoked", allow ? "publishing" : "publishing of",
			proto_name(proto), (unsigned int)port, node);
		return EXIT_SUCCESS;
	case DB_PUBLISH_NO_NODE:
		fprintf(stderr, "meshcoord publish: no node named '%s' (see 'meshcoord nodes list')\n", node);
		break;
	case DB_PUBLISH_TAKEN:
		fprintf(stderr, "meshcoord publish: %s/%u is granted to %s; revoke it there first\n", proto_name(proto),
			(unsigned int)port, taken);
		break;
	case DB_PUBLISH_NOT_FOUND:
		fprintf(stderr, "meshcoord publish: %s holds no grant for %s/%u\n", node, proto_name(proto),
			(unsigned int)port);
		break;
	case DB_PUBLISH_ERROR:
		fprintf(stderr, "meshcoord publish: the registry failed; see the log above\n");
		break;
	}
	return PUBLISH_EXIT_FAIL;
}

int admin_publish(struct db *db, const struct coord_config *cfg, int argc, char **argv)
{
	struct admin_args a;
	char err[256];
	uint8_t proto = CONTROL_PROTO_TCP;

	if (!admin_args_parse(argc, argv, ADMIN_OPT(ADMIN_OPT_JSON) | ADMIN_OPT(ADMIN_OPT_PROTOCOL), &a, err,
			      sizeof(err))) {
		fprintf(stderr, "meshcoord publish: %s; see --help\n", err);
		return ADMIN_EXIT_USAGE;
	}
	if (a.protocol && strcmp(a.protocol, "tcp") != 0 && strcmp(a.protocol, "udp") != 0) {
		fprintf(stderr, "meshcoord publish: --protocol takes tcp or udp\n");
		return ADMIN_EXIT_USAGE;
	}
	if (a.protocol && !strcmp(a.protocol, "udp"))
		proto = CONTROL_PROTO_UDP;
	const char *const *pos = a.positional;
	size_t n_pos = a.n_positional;
	bool json = a.json;
	if (a.help || n_pos == 0) {
		fputs(publish_help, a.help ? stdout : stderr);
		return a.help ? EXIT_SUCCESS : ADMIN_EXIT_USAGE;
	}
	if (!db || !cfg) {
		fprintf(stderr, "meshcoord publish: no database\n");
		return PUBLISH_EXIT_FAIL;
	}
	if (!strcmp(pos[0], "list") && n_pos == 1)
		return publish_list(db, cfg, json);
	bool allow = !strcmp(pos[0], "allow");
	if ((allow || !strcmp(pos[0], "revoke")) && n_pos == 3 && !json)
		return publish_set(db, cfg, pos[1], pos[2], proto, allow);
	fprintf(stderr, "meshcoord publish: expected 'list [--json]', 'allow NODE PORT [--protocol tcp|udp]' or "
			"'revoke NODE PORT [--protocol tcp|udp]'; see --help\n");
	return ADMIN_EXIT_USAGE;
}
