/* meshcoord authkey create|list|revoke and meshcoord nodes list|remove. */
#include "coord/admin.h"
#include "coord/admin_args.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "core/ipc.h"
#include "core/joinkey.h"
#include "core/keys.h"

enum {
	ADMIN_EXIT_FAIL = 1,
	ISO_TIME_LEN = 32,           /* "2024-05-01T12:00:00Z" and room */
	/* "[v6]:port" at most 47 bytes (INET6_ADDRSTRLEN + 8), times the endpoints, with commas. */
	ENDPOINT_TEXT_MAX = INET6_ADDRSTRLEN + 8,
	ENDPOINTS_TEXT_MAX = CONTROL_MAX_ENDPOINTS * (ENDPOINT_TEXT_MAX + 1),
	COLUMN_IPV4_WIDTH = 15,      /* "100.127.255.254" */
};

static const char authkey_help[] =
	"Usage: meshcoord authkey ACTION [-c FILE]\n"
	"\n"
	"Join keys let new nodes register: 'meshd up --join KEY' is all a node needs.\n"
	"\n"
	"Actions:\n"
	"  create [--reusable [--max-uses N]] [--expires DURATION] [--per-minute N]\n"
	"        print a new join key on stdout. One-time unless --reusable; never expires\n"
	"        unless --expires, given as a number and one unit: 30m, 24h, 7d, 3600s.\n"
	"        --max-uses N: a reusable key admits at most N nodes in all (default: no limit).\n"
	"        --per-minute N: at most N nodes join with it per minute (default "
	DB_AUTHKEY_PER_MINUTE_DEFAULT_TEXT "; 0: no limit);\n"
	"        a node over the limit is told to retry later\n"
	"  list  show every key: ID, TYPE, CREATED, EXPIRES, STATUS (valid, expired,\n"
	"        revoked, used), USES (nodes that joined with it), then MAX (max uses, - for\n"
	"        none) and PER-MIN (per-minute limit, - for none)\n"
	"  revoke ID\n"
	"        refuse the key from now on; nodes that already joined with it stay\n"
	"        (remove them with 'meshcoord nodes remove NAME')\n"
	"\n"
	"Times are UTC. -c FILE names the coordinator's config (default " COORDCONF_DEFAULT_PATH ").\n";

static const char nodes_help[] =
	"Usage: meshcoord nodes ACTION [-c FILE]\n"
	"\n"
	"Actions:\n"
	"  list [--json]\n"
	"        show every node: NAME, IPV4, IPV6, ONLINE, LAST SEEN, ENDPOINTS, TAGS\n"
	"        (online: seen by the coordinator within the last 60 seconds). --json prints\n"
	"        {\"nodes\": [...]}, each with name, public_key, ipv4, ipv6, online, created_unix,\n"
	"        last_seen_unix (null: never), endpoints (a list of \"addr:port\") and tags\n"
	"  remove NAME\n"
	"        delete the node; its key is refused from now on and its peers drop it.\n"
	"        Its name and addresses are not given to another node.\n"
	"  tag NAME TAG...\n"
	"        give the node tags (tag:NAME, a-z 0-9 and '-', at most 16 per node), which the\n"
	"        policy file names like nodes; the running server applies them at once\n"
	"  untag NAME TAG...\n"
	"        take tags away from the node\n"
	"\n"
	"Times are UTC. -c FILE names the coordinator's config (default " COORDCONF_DEFAULT_PATH ").\n";

/* ------------------------------------------------------------------ command line */

/* authkey and nodes take the options they always took (the ones that belong to the other
 * are refused below with a line naming their owner); the satellite options are unknown. */
#define AUTHKEY_NODES_OPTIONS                                                                      \
	(ADMIN_OPT(ADMIN_OPT_REUSABLE) | ADMIN_OPT(ADMIN_OPT_EXPIRES) | ADMIN_OPT(ADMIN_OPT_MAX_USES) | \
	 ADMIN_OPT(ADMIN_OPT_PER_MINUTE) | ADMIN_OPT(ADMIN_OPT_JSON) | ADMIN_OPT(ADMIN_OPT_PROTOCOL))

bool admin_wants_help(int argc, char **argv)
{
	struct admin_args a;
	char err[128];

	/* A malformed command line is not help: the action reports the mistake. */
	return admin_args_parse(argc, argv, ADMIN_OPT_ALL, &a, err, sizeof(err)) && (a.help || a.n_positional == 0);
}

const char *admin_config_path(int argc, char **argv)
{
	struct admin_args a;
	char err[128];

	return admin_args_parse(argc, argv, ADMIN_OPT_ALL, &a, err, sizeof(err)) ? a.config : NULL;
}

bool admin_duration_parse(const char *s, int64_t *seconds)
{
	static const struct {
		char unit;
		int64_t seconds;
	} units[] = { { 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 } };
	int64_t n = 0;
	size_t i = 0;

	if (!s)
		return false;
	for (; s[i] >= '0' && s[i] <= '9'; i++) {
		if (n > ADMIN_EXPIRES_MAX_S) /* already too long: stop before n can overflow */
			return false;
		n = n * 10 + (s[i] - '0');
	}
	if (i == 0 || n == 0 || s[i] == '\0' || s[i + 1] != '\0')
		return false;
	for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
		if (s[i] == units[u].unit) {
			if (n > ADMIN_EXPIRES_MAX_S / units[u].seconds)
				return false;
			*seconds = n * units[u].seconds;
			return true;
		}
	}
	return false;
}

/* Strictly a positive decimal ID. */
static bool id_parse(const char *s, int64_t *out)
{
	int64_t n = 0;
	size_t i = 0;

	for (; s[i] >= '0' && s[i] <= '9'; i++) {
		if (n > (INT64_MAX - 9) / 10)
			return false;
		n = n * 10 + (s[i] - '0');
	}
	if (i == 0 || s[i] != '\0' || n == 0)
		return false;
	*out = n;
	return true;
}

/* ------------------------------------------------------------------ output helpers */

static const char *time_iso(int64_t t, char buf[ISO_TIME_LEN])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || strftime(buf, ISO_TIME_LEN, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, ISO_TIME_LEN, "@%" PRId64, t);
	return buf;
}

static int finish_output(const char *cmd)
{
	/* A full disk or a closed pipe must not look like success to a script. */
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "meshcoord %s: could not write the output\n", cmd);
		return ADMIN_EXIT_FAIL;
	}
	return EXIT_SUCCESS;
}

/* ------------------------------------------------------------------ authkey */

/* A whole number in [min, ADMIN_LIMIT_MAX], nothing else. */
static bool limit_parse(const char *s, int64_t min, int64_t *out)
{
	char *end;

	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < min || v > ADMIN_LIMIT_MAX)
		return false;
	*out = v;
	return true;
}

static int authkey_create(struct db *db, const struct coord_config *cfg, const uint8_t coord_public[32],
			  const struct admin_args *a)
{
	struct joinkey k;
	char text[JOINKEY_MAX_LEN + 1];
	char when[ISO_TIME_LEN];
	int64_t now = (int64_t)time(NULL), expires = 0, ttl = 0, id = 0;
	int64_t max_uses = 0, per_minute = DB_AUTHKEY_PER_MINUTE_DEFAULT;
	int rc = ADMIN_EXIT_FAIL;

	if (a->n_positional != 1) {
		fprintf(stderr, "meshcoord authkey create: takes no arguments ('%s'); see --help\n", a->positional[1]);
		return ADMIN_EXIT_USAGE;
	}
	if (a->expires) {
		if (!admin_duration_parse(a->expires, &ttl)) {
			fprintf(stderr,
				"meshcoord authkey create: bad --expires '%s' (a number and one unit: 30m, 24h, 7d, "
				"3600s; at most %dd)\n",
				a->expires, ADMIN_EXPIRES_MAX_S / 86400);
			return ADMIN_EXIT_USAGE;
		}
		expires = now + ttl;
	}
	if (a->max_uses && (!limit_parse(a->max_uses, 1, &max_uses) || !a->reusable)) {
		fprintf(stderr, "meshcoord authkey create: --max-uses takes a number from 1 to %d, with --reusable "
				"(a one-time key admits one node)\n", ADMIN_LIMIT_MAX);
		return ADMIN_EXIT_USAGE;
	}
	if (a->per_minute && !limit_parse(a->per_minute, 0, &per_minute)) {
		fprintf(stderr, "meshcoord authkey create: --per-minute takes a number from 0 (no limit) to %d\n",
			ADMIN_LIMIT_MAX);
		return ADMIN_EXIT_USAGE;
	}
	if (cfg->public_host[0] == '\0' || cfg->public_port == 0) {
		fprintf(stderr, "meshcoord authkey create: the config has no public_host: join keys carry it\n");
		return ADMIN_EXIT_FAIL;
	}

	memset(&k, 0, sizeof(k));
	memcpy(k.coord_public, coord_public, sizeof(k.coord_public));
	snprintf(k.host, sizeof(k.host), "%s", cfg->public_host);
	k.port = cfg->public_port;
	/* Formatted once with a blank secret before the key exists, so that a host too long for
	 * the string cannot leave a usable key in the database that nobody was shown. */
	if (!joinkey_format(&k, text, sizeof(text))) {
		fprintf(stderr, "meshcoord authkey create: public_host '%s' does not fit in a join key\n",
			cfg->public_host);
		goto out;
	}
	if (!db_authkey_create_limited(db, a->reusable, expires, now, max_uses, per_minute, k.secret, &id)) {
		fprintf(stderr, "meshcoord authkey create: could not store the key (see the error above)\n");
		goto out;
	}
	if (!joinkey_format(&k, text, sizeof(text))) {
		db_authkey_revoke(db, id);
		fprintf(stderr, "meshcoord authkey create: could not format the key\n");
		goto out;
	}
	printf("%s\n", text);
	rc = finish_output("authkey create");
	if (rc != EXIT_SUCCESS) {
		db_authkey_revoke(db, id); /* nobody got to see it */
		goto out;
	}
	if (expires)
		fprintf(stderr, "created %s join key %" PRId64 ", expires %s\n", a->reusable ? "reusable" : "one-time",
			id, time_iso(expires, when));
	else
		fprintf(stderr, "created %s join key %" PRId64 ", never expires\n",
			a->reusable ? "reusable" : "one-time", id);
out:
	joinkey_clear(&k);
	sodium_memzero(text, sizeof(text));
	return rc;
}

static const char *authkey_status(const struct db_authkey *k, int64_t now)
{
	/* The same order as registration checks them, so the list says what a node would hear. */
	if (k->revoked)
		return "revoked";
	if (!k->reusable && k->uses > 0)
		return "used";
	if (k->reusable && k->max_uses > 0 && k->uses >= k->max_uses)
		return "used-up";
	if (k->expires != 0 && now >= k->expires)
		return "expired";
	return "valid";
}

static void authkey_print(const struct db_authkey *k, void *ctx)
{
	const int64_t *now = ctx;
	char created[ISO_TIME_LEN], expires[ISO_TIME_LEN], max[24] = "-", per_min[24] = "-";

	if (k->max_uses > 0)
		snprintf(max, sizeof(max), "%" PRId64, k->max_uses);
	if (k->per_minute > 0)
		snprintf(per_min, sizeof(per_min), "%" PRId64, k->per_minute);
	printf("%-6" PRId64 " %-9s %-20s %-20s %-8s %-6" PRId64 " %-6s %s\n", k->id,
	       k->reusable ? "reusable" : "one-time", time_iso(k->created, created),
	       k->expires ? time_iso(k->expires, expires) : "never", authkey_status(k, *now), k->uses, max, per_min);
}

static int authkey_list(struct db *db, const struct admin_args *a)
{
	int64_t now = (int64_t)time(NULL);

	if (a->n_positional != 1) {
		fprintf(stderr, "meshcoord authkey list: takes no arguments ('%s'); see --help\n", a->positional[1]);
		return ADMIN_EXIT_USAGE;
	}
	printf("%-6s %-9s %-20s %-20s %-8s %-6s %-6s %s\n", "ID", "TYPE", "CREATED", "EXPIRES", "STATUS", "USES", "MAX",
	       "PER-MIN");
	if (!db_authkey_list(db, authkey_print, &now)) {
		fprintf(stderr, "meshcoord authkey list: could not read the keys (see the error above)\n");
		return ADMIN_EXIT_FAIL;
	}
	return finish_output("authkey list");
}

static int authkey_revoke(struct db *db, const struct admin_args *a)
{
	int64_t id;

	if (a->n_positional != 2) {
		fprintf(stderr, "meshcoord authkey revoke: needs exactly one key ID (see 'meshcoord authkey list')\n");
		return ADMIN_EXIT_USAGE;
	}
	if (!id_parse(a->positional[1], &id)) {
		fprintf(stderr, "meshcoord authkey revoke: '%s' is not a key ID (see 'meshcoord authkey list')\n",
			a->positional[1]);
		return ADMIN_EXIT_USAGE;
	}
	if (!db_authkey_revoke(db, id)) {
		fprintf(stderr, "meshcoord authkey revoke: no join key with ID %" PRId64
				" (see 'meshcoord authkey list')\n", id);
		return ADMIN_EXIT_FAIL;
	}
	fprintf(stderr, "revoked join key %" PRId64 "; nodes that joined with it stay\n", id);
	return EXIT_SUCCESS;
}

struct authkey_action {
	const char *name;
	int (*run)(struct db *db, const struct coord_config *cfg, const uint8_t coord_public[32],
		   const struct admin_args *a);
};

static int authkey_list_run(struct db *db, const struct coord_config *cfg, const uint8_t coord_public[32],
			    const struct admin_args *a)
{
	return authkey_list(db, a);
}

static int authkey_revoke_run(struct db *db, const struct coord_config *cfg, const uint8_t coord_public[32],
			      const struct admin_args *a)
{
	return authkey_revoke(db, a);
}

static const struct authkey_action authkey_actions[] = {
	{ "create", authkey_create },
	{ "list", authkey_list_run },
	{ "revoke", authkey_revoke_run },
};

int admin_authkey(struct db *db, const struct coord_config *cfg, const uint8_t coord_public[32], int argc,
		  char **argv)
{
	struct admin_args a;
	char err[256];

	if (!admin_args_parse(argc, argv, AUTHKEY_NODES_OPTIONS, &a, err, sizeof(err))) {
		fprintf(stderr, "meshcoord authkey: %s; see --help\n", err);
		return ADMIN_EXIT_USAGE;
	}
	if (a.help) {
		fputs(authkey_help, stdout);
		return finish_output("authkey");
	}
	if (a.n_positional == 0) {
		fputs(authkey_help, stderr);
		return ADMIN_EXIT_USAGE;
	}
	if (a.json) {
		fprintf(stderr, "meshcoord authkey: --json is an option of 'meshcoord nodes list'\n");
		return ADMIN_EXIT_USAGE;
	}
	if (a.protocol) {
		fprintf(stderr, "meshcoord authkey: --protocol belongs to 'meshcoord publish allow|revoke'\n");
		return ADMIN_EXIT_USAGE;
	}
	for (size_t i = 0; i < sizeof(authkey_actions) / sizeof(authkey_actions[0]); i++) {
		if (strcmp(a.positional[0], authkey_actions[i].name) != 0)
			continue;
		if (authkey_actions[i].run != authkey_create && (a.reusable || a.expires)) {
			fprintf(stderr, "meshcoord authkey %s: --reusable and --expires are options of 'create'\n",
				a.positional[0]);
			return ADMIN_EXIT_USAGE;
		}
		if (!db || !cfg || !coord_public) {
			fprintf(stderr, "meshcoord authkey: no database or configuration\n");
			return ADMIN_EXIT_FAIL;
		}
		return authkey_actions[i].run(db, cfg, coord_public, &a);
	}
	fprintf(stderr, "meshcoord authkey: unknown action '%s' (create, list or revoke)\n", a.positional[0]);
	return ADMIN_EXIT_USAGE;
}

/* ------------------------------------------------------------------ nodes */

static void endpoints_format(const struct db_node *n, char *out, size_t cap)
{
	size_t off = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n->n_endpoints; i++) {
		const struct control_endpoint *e = &n->endpoints[i];
		char addr[INET6_ADDRSTRLEN];
		int w;

		if (!inet_ntop(e->family == 6 ? AF_INET6 : AF_INET, e->addr, addr, sizeof(addr)))
			continue;
		w = snprintf(out + off, cap - off, e->family == 6 ? "%s[%s]:%u" : "%s%s:%u", off ? "," : "", addr,
			     e->port);
		if (w < 0 || (size_t)w >= cap - off)
			break;
		off += (size_t)w;
	}
	if (off == 0)
		snprintf(out, cap, "-");
}

struct nodes_table {
	struct db *db;
	int64_t now;
	int name_width;
	int ipv6_width;
	bool print;
};

static void node_row(const struct db_node *n, void *ctx)
{
	struct nodes_table *t = ctx;
	char ipv4[INET_ADDRSTRLEN], ipv6[INET6_ADDRSTRLEN], seen[ISO_TIME_LEN];
	char endpoints[ENDPOINTS_TEXT_MAX], tags[ADMIN_TAGS_TEXT_MAX];
	bool online;

	inet_ntop(AF_INET, n->ipv4, ipv4, sizeof(ipv4));
	inet_ntop(AF_INET6, n->ipv6, ipv6, sizeof(ipv6));
	if (!t->print) { /* the first pass only sizes the columns */
		if ((int)strlen(n->name) > t->name_width)
			t->name_width = (int)strlen(n->name);
		if ((int)strlen(ipv6) > t->ipv6_width)
			t->ipv6_width = (int)strlen(ipv6);
		return;
	}
	online = n->last_seen != 0 && t->now - n->last_seen <= ADMIN_ONLINE_WINDOW_S;
	endpoints_format(n, endpoints, sizeof(endpoints));
	admin_tags_text(t->db, n->id, tags, sizeof(tags));
	/* TAGS last: scripts that cut the columns before it keep working */
	printf("%-*s %-*s %-*s %-6s %-20s %s %s\n", t->name_width, n->name, COLUMN_IPV4_WIDTH, ipv4, t->ipv6_width,
	       ipv6, online ? "yes" : "no", n->last_seen ? time_iso(n->last_seen, seen) : "never", endpoints, tags);
}

struct nodes_json {
	struct db *db;
	int64_t now;
	struct ipc_text out;
	size_t n;
};

/* One node as a JSON object; the names and addresses the registry holds are plain ASCII, and
 * ipc_text_json_string keeps the output valid whatever they hold. */
static void node_json(const struct db_node *n, void *ctx)
{
	struct nodes_json *j = ctx;
	char ipv4[INET_ADDRSTRLEN], ipv6[INET6_ADDRSTRLEN], key[KEY_BASE64_LEN + 1];
	bool online = n->last_seen != 0 && j->now - n->last_seen <= ADMIN_ONLINE_WINDOW_S;

	inet_ntop(AF_INET, n->ipv4, ipv4, sizeof(ipv4));
	inet_ntop(AF_INET6, n->ipv6, ipv6, sizeof(ipv6));
	key_to_base64(key, n->node_key);
	ipc_text_printf(&j->out, "%s\n  {\"name\": ", j->n++ ? "," : "");
	ipc_text_json_string(&j->out, n->name, strlen(n->name));
	ipc_text_printf(&j->out, ", \"public_key\": \"%s\", \"ipv4\": \"%s\", \"ipv6\": \"%s\", \"online\": %s, "
			"\"created_unix\": %" PRId64 ", \"last_seen_unix\": ",
			key, ipv4, ipv6, online ? "true" : "false", n->created);
	if (n->last_seen)
		ipc_text_printf(&j->out, "%" PRId64, n->last_seen);
	else
		ipc_text_printf(&j->out, "null");
	ipc_text_printf(&j->out, ", \"endpoints\": [");
	for (size_t i = 0; i < n->n_endpoints; i++) {
		const struct control_endpoint *e = &n->endpoints[i];
		char addr[INET6_ADDRSTRLEN];
		if (!inet_ntop(e->family == 6 ? AF_INET6 : AF_INET, e->addr, addr, sizeof(addr)))
			continue;
		ipc_text_printf(&j->out, e->family == 6 ? "%s\"[%s]:%u\"" : "%s\"%s:%u\"", i ? ", " : "", addr, e->port);
	}
	struct db_tags tags;
	if (!db_node_tags(j->db, n->id, &tags))
		tags.n = 0;
	ipc_text_printf(&j->out, "], \"tags\": [");
	for (size_t i = 0; i < tags.n; i++) /* tag_valid: plain ASCII, nothing to escape */
		ipc_text_printf(&j->out, "%s\"%s\"", i ? ", " : "", tags.v[i]);
	ipc_text_printf(&j->out, "]}");
}

static int nodes_list_json(struct db *db)
{
	struct nodes_json j = { .db = db, .now = (int64_t)time(NULL) };

	ipc_text_init(&j.out);
	ipc_text_printf(&j.out, "{\"nodes\": [");
	if (!db_nodes_list(db, node_json, &j)) {
		ipc_text_free(&j.out);
		fprintf(stderr, "meshcoord nodes list: could not read the nodes (see the error above)\n");
		return ADMIN_EXIT_FAIL;
	}
	ipc_text_printf(&j.out, "%s]}\n", j.n ? "\n" : "");
	if (j.out.failed) {
		ipc_text_free(&j.out);
		fprintf(stderr, "meshcoord nodes list: out of memory\n");
		return ADMIN_EXIT_FAIL;
	}
	fwrite(j.out.buf, 1, j.out.len, stdout);
	ipc_text_free(&j.out);
	return finish_output("nodes list");
}

static int nodes_list(struct db *db, const struct admin_args *a)
{
	struct nodes_table t = { .db = db, .now = (int64_t)time(NULL), .name_width = 4, .ipv6_width = 4 };

	if (a->n_positional != 1) {
		fprintf(stderr, "meshcoord nodes list: takes no arguments ('%s'); see --help\n", a->positional[1]);
		return ADMIN_EXIT_USAGE;
	}
	if (a->json)
		return nodes_list_json(db);
	if (!db_nodes_list(db, node_row, &t))
		goto fail;
	printf("%-*s %-*s %-*s %-6s %-20s %s %s\n", t.name_width, "NAME", COLUMN_IPV4_WIDTH, "IPV4", t.ipv6_width,
	       "IPV6", "ONLINE", "LAST SEEN", "ENDPOINTS", "TAGS");
	t.print = true;
	if (!db_nodes_list(db, node_row, &t))
		goto fail;
	return finish_output("nodes list");
fail:
	fprintf(stderr, "meshcoord nodes list: could not read the nodes (see the error above)\n");
	return ADMIN_EXIT_FAIL;
}

struct node_find {
	const char *name;
	bool found;
	struct db_node node;
};

static void node_match(const struct db_node *n, void *ctx)
{
	struct node_find *f = ctx;

	if (strcmp(n->name, f->name) == 0) {
		f->found = true;
		f->node = *n;
	}
}

static int nodes_remove(struct db *db, const struct admin_args *a)
{
	struct node_find f = { 0 };
	char ipv4[INET_ADDRSTRLEN];

	if (a->n_positional != 2) {
		fprintf(stderr, "meshcoord nodes remove: needs exactly one node NAME (see 'meshcoord nodes list')\n");
		return ADMIN_EXIT_USAGE;
	}
	f.name = a->positional[1];
	/* Found first so that "no such node" and "the database failed" read differently. */
	if (!db_nodes_list(db, node_match, &f)) {
		fprintf(stderr, "meshcoord nodes remove: could not read the nodes (see the error above)\n");
		return ADMIN_EXIT_FAIL;
	}
	if (!f.found) {
		fprintf(stderr, "meshcoord nodes remove: no node named '%s' (see 'meshcoord nodes list')\n", f.name);
		return ADMIN_EXIT_FAIL;
	}
	if (!db_node_remove(db, f.name)) {
		fprintf(stderr, "meshcoord nodes remove: could not remove '%s' (see the error above)\n", f.name);
		return ADMIN_EXIT_FAIL;
	}
	inet_ntop(AF_INET, f.node.ipv4, ipv4, sizeof(ipv4));
	fprintf(stderr, "removed node '%s' (%s); its key is refused from now on\n", f.name, ipv4);
	return EXIT_SUCCESS;
}

static int nodes_tag(struct db *db, const struct admin_args *a)
{
	return admin_tags_change(db, a->positional, a->n_positional, true);
}

static int nodes_untag(struct db *db, const struct admin_args *a)
{
	return admin_tags_change(db, a->positional, a->n_positional, false);
}

static const struct {
	const char *name;
	int (*run)(struct db *db, const struct admin_args *a);
} nodes_actions[] = {
	{ "list", nodes_list },
	{ "remove", nodes_remove },
	{ "tag", nodes_tag },
	{ "untag", nodes_untag },
};

int admin_nodes(struct db *db, int argc, char **argv)
{
	struct admin_args a;
	char err[256];

	if (!admin_args_parse(argc, argv, AUTHKEY_NODES_OPTIONS, &a, err, sizeof(err))) {
		fprintf(stderr, "meshcoord nodes: %s; see --help\n", err);
		return ADMIN_EXIT_USAGE;
	}
	if (a.help) {
		fputs(nodes_help, stdout);
		return finish_output("nodes");
	}
	if (a.n_positional == 0) {
		fputs(nodes_help, stderr);
		return ADMIN_EXIT_USAGE;
	}
	if (a.reusable || a.expires) {
		fprintf(stderr, "meshcoord nodes: --reusable and --expires belong to 'meshcoord authkey create'\n");
		return ADMIN_EXIT_USAGE;
	}
	if (a.protocol) {
		fprintf(stderr, "meshcoord nodes: --protocol belongs to 'meshcoord publish allow|revoke'\n");
		return ADMIN_EXIT_USAGE;
	}
	for (size_t i = 0; i < sizeof(nodes_actions) / sizeof(nodes_actions[0]); i++) {
		if (strcmp(a.positional[0], nodes_actions[i].name) != 0)
			continue;
		if (a.json && nodes_actions[i].run != nodes_list) {
			fprintf(stderr, "meshcoord nodes %s: --json is an option of 'list'\n", a.positional[0]);
			return ADMIN_EXIT_USAGE;
		}
		if (!db) {
			fprintf(stderr, "meshcoord nodes: no database\n");
			return ADMIN_EXIT_FAIL;
		}
		return nodes_actions[i].run(db, &a);
	}
	fprintf(stderr, "meshcoord nodes: unknown action '%s' (list, remove, tag or untag)\n", a.positional[0]);
	return ADMIN_EXIT_USAGE;
}
