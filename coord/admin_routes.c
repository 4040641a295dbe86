/* meshcoord routes list|approve|revoke: subnet routes and exit offers in the registry. Like
 * the other admin commands it runs next to the server on the same database; the server sees
 * the commit (db_changed) and pushes the new routes to every node within a tick. */
#include "coord/admin.h"
#include "coord/admin_args.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/routes.h"

enum {
	ROUTES_EXIT_FAIL = 1,
	ROUTES_ROWS_MAX = 65536,   /* rows read for a check or a listing: far beyond any network */
};

static const char routes_help[] =
	"Usage: meshcoord routes ACTION [-c FILE]\n"
	"\n"
	"Subnet routes (a node's LAN prefixes) and exit nodes (0.0.0.0/0 and ::/0) take effect\n"
	"only when the node advertises them and they are approved here or by an\n"
	"auto_approve_routes rule in the coordinator's config.\n"
	"\n"
	"Actions:\n"
	"  list [--json]\n"
	"        show every route: NODE, PREFIX, ADVERTISED (yes/no), APPROVED (yes/no), and\n"
	"        STATE (active: both; pending: advertised only; approved: not advertised now)\n"
	"  approve NODE PREFIX|exit\n"
	"        approve a prefix (e.g. 192.168.1.0/24) of a node, or 'exit' for both exit\n"
	"        routes; refused if it overlaps the mesh's own networks or another node's\n"
	"        approved route. May be given before the node advertises it\n"
	"  revoke NODE PREFIX|exit\n"
	"        withdraw an approval; every node stops routing it within about a second\n"
	"\n"
	"-c FILE names the coordinator's config (default " COORDCONF_DEFAULT_PATH ").\n";

struct rows {
	struct db_route *list;
	size_t n;
};

static void row_add(const struct db_route *r, void *arg)
{
	struct rows *rows = arg;

	if (rows->n < ROUTES_ROWS_MAX)
		rows->list[rows->n++] = *r;
}

static bool rows_read(struct db *db, struct rows *rows)
{
	rows->n = 0;
	rows->list = malloc(ROUTES_ROWS_MAX * sizeof(*rows->list));
	if (!rows->list) {
		fprintf(stderr, "meshcoord routes: out of memory\n");
		return false;
	}
	if (!db_routes_list(db, row_add, rows)) {
		fprintf(stderr, "meshcoord routes: cannot read the registry\n");
		free(rows->list);
		return false;
	}
	return true;
}

static const char *row_state(const struct db_route *r)
{
	return r->advertised && r->approved ? "active" : r->advertised ? "pending" : "approved";
}

static int routes_list(struct db *db, bool json)
{
	struct rows rows;
	char text[ROUTE_STR_MAX];

	if (!rows_read(db, &rows))
		return ROUTES_EXIT_FAIL;
	if (json) {
		printf("{\"routes\": [");
		for (size_t i = 0; i < rows.n; i++) {
			const struct db_route *r = &rows.list[i];
			/* names are [A-Za-z0-9._-] and prefixes digits, dots, colons: no escaping */
			printf("%s{\"node\": \"%s\", \"prefix\": \"%s\", \"exit\": %s, \"advertised\": %s, \"approved\": %s, \"state\": \"%s\"}",
			       i ? ", " : "", r->node_name, route_format(&r->route, text, sizeof(text)),
			       route_is_exit(&r->route) ? "true" : "false", r->advertised ? "true" : "false",
			       r->approved ? "true" : "false", row_state(r));
		}
		printf("]}\n");
	} else {
		printf("%-24s %-43s %-10s %-8s %s\n", "NODE", "PREFIX", "ADVERTISED", "APPROVED", "STATE");
		for (size_t i = 0; i < rows.n; i++) {
			const struct db_route *r = &rows.list[i];
			printf("%-24s %-43s %-10s %-8s %s%s\n", r->node_name, route_format(&r->route, text, sizeof(text)),
			       r->advertised ? "yes" : "no", r->approved ? "yes" : "no", row_state(r),
			       route_is_exit(&r->route) ? " (exit)" : "");
		}
	}
	free(rows.list);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "meshcoord routes: could not write the output\n");
		return ROUTES_EXIT_FAIL;
	}
	return EXIT_SUCCESS;
}

/* "exit" is the pair; anything else one prefix. */
static size_t targets_parse(const char *s, struct control_route out[2])
{
	if (strcmp(s, "exit") == 0) {
		memset(out, 0, 2 * sizeof(out[0]));
		out[0].family = 4;
		out[1].family = 6;
		return 2;
	}
	return route_parse(s, &out[0]) ? 1 : 0;
}

static bool check_approval(struct db *db, const char *node, const struct control_route *r, char *why, size_t cap)
{
	struct rows rows;
	struct control_route v4 = { .family = 4, .bits = DB_OVERLAY_IPV4_BITS, .addr = { 100, 64 } };
	struct control_route v6 = { .family = 6, .bits = DB_OVERLAY_IPV6_BITS };
	uint8_t ula[16];

	db_network_ipv6_prefix(db, ula);
	memcpy(v6.addr, ula, DB_OVERLAY_IPV6_BITS / 8);
	if (!rows_read(db, &rows))
		return false;
	struct control_route *taken = malloc((rows.n ? rows.n : 1) * sizeof(*taken));
	size_t n_taken = 0;
	if (!taken) {
		free(rows.list);
		snprintf(why, cap, "out of memory");
		return false;
	}
	for (size_t i = 0; i < rows.n; i++)
		if (rows.list[i].approved && strcmp(rows.list[i].node_name, node) != 0)
			taken[n_taken++] = rows.list[i].route;
	enum route_refusal ref = route_check_approval(r, &v4, &v6, taken, n_taken);
	if (ref != ROUTE_OK)
		snprintf(why, cap, "%s", route_refusal_text(ref));
	free(taken);
	free(rows.list);
	return ref == ROUTE_OK;
}

static int routes_set(struct db *db, const char *node, const char *what, bool approve)
{
	struct control_route targets[2];
	size_t n = targets_parse(what, targets);
	char text[ROUTE_STR_MAX], why[128];
	bool any = false;

	if (n == 0) {
		fprintf(stderr, "meshcoord routes: '%s' is not a prefix with its length and no host bits "
				"(e.g. 192.168.1.0/24) or 'exit'\n", what);
		return ADMIN_EXIT_USAGE;
	}
	for (size_t i = 0; i < n; i++) {
		bool found;
		route_format(&targets[i], text, sizeof(text));
		if (approve && !check_approval(db, node, &targets[i], why, sizeof(why))) {
			fprintf(stderr, "meshcoord routes: not approving %s for %s: %s\n", text, node, why);
			return ROUTES_EXIT_FAIL;
		}
		if (!db_route_set_approved(db, node, &targets[i], approve, &found)) {
			if (approve || found) {
				fprintf(stderr, "meshcoord routes: cannot %s %s for '%s': no such node, or the registry failed\n",
					approve ? "approve" : "revoke", text, node);
				return ROUTES_EXIT_FAIL;
			}
			continue; /* nothing to revoke for this one */
		}
		any = true;
		fprintf(stderr, "%s %s for %s\n", approve ? "approved" : "revoked", text, node);
	}
	if (!any) {
		fprintf(stderr, "meshcoord routes: %s has no approved %s to revoke\n", node, what);
		return ROUTES_EXIT_FAIL;
	}
	return EXIT_SUCCESS;
}

int admin_routes(struct db *db, int argc, char **argv)
{
	struct admin_args a;
	char err[256];

	if (!admin_args_parse(argc, argv, ADMIN_OPT(ADMIN_OPT_JSON), &a, err, sizeof(err))) {
		fprintf(stderr, "meshcoord routes: %s; see --help\n", err);
		return ADMIN_EXIT_USAGE;
	}
	const char *const *pos = a.positional;
	size_t n_pos = a.n_positional;
	bool json = a.json;
	if (a.help || n_pos == 0) {
		fputs(routes_help, a.help ? stdout : stderr);
		return a.help ? EXIT_SUCCESS : ADMIN_EXIT_USAGE;
	}
	if (!db) {
		fprintf(stderr, "meshcoord routes: no database\n");
		return ROUTES_EXIT_FAIL;
	}
	if (!strcmp(pos[0], "list") && n_pos == 1)
		return routes_list(db, json);
	bool approve = !strcmp(pos[0], "approve");
	if ((approve || !strcmp(pos[0], "revoke")) && n_pos == 3 && !json)
		return routes_set(db, pos[1], pos[2], approve);
	fprintf(stderr, "meshcoord routes: expected 'list [--json]', 'approve NODE PREFIX|exit' or 'revoke NODE "
			"PREFIX|exit'; see --help\n");
	return ADMIN_EXIT_USAGE;
}
