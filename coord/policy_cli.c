/* meshcoord policy check|show; see policy_cli.h. */
#include "coord/policy_cli.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "coord/coordconf.h"
#include "coord/db.h"
#include "coord/policy.h"

enum { EXIT_USAGE = 2, ERR_MAX = 512, PORT_MAX = 65535 };

static const char policy_usage[] =
	"Usage: meshcoord policy check [-c FILE] [--file POLICY]\n"
	"       meshcoord policy show [NODE] [-c FILE] [--file POLICY]\n"
	"\n"
	"check: reads the policy file (policy_file in the config, or --file) as 'serve' would,\n"
	"       compiles it for every node in the registry, and reports the first error as\n"
	"       FILE:LINE:COL, and names that match no node as warnings (exit 0: valid)\n"
	"show:  for each node (or NODE), who may reach it: source, protocol and ports\n";

struct nodes {
	struct db_node *v;
	struct db_tags *tags;            /* one per node (v), from the registry */
	struct control_routes *routes;   /* one per node: advertised and approved */
	size_t n, cap;
	bool failed;
};

static void collect(const struct db_node *n, void *ctx)
{
	struct nodes *ns = ctx;

	if (ns->n == ns->cap) {
		size_t cap = ns->cap ? ns->cap * 2 : 16;
		struct db_node *v = realloc(ns->v, cap * sizeof(*v));
		if (!v) {
			ns->failed = true;
			return;
		}
		ns->v = v;
		ns->cap = cap;
	}
	ns->v[ns->n++] = *n;
}

static size_t index_of(const struct nodes *ns, const uint8_t key[WIRE_KEY_LEN])
{
	for (size_t i = 0; i < ns->n; i++)
		if (memcmp(ns->v[i].node_key, key, WIRE_KEY_LEN) == 0)
			return i;
	return ns->n;
}

static void collect_tag(const uint8_t key[WIRE_KEY_LEN], const char *tag, void *ctx)
{
	struct nodes *ns = ctx;
	size_t i = index_of(ns, key);

	if (i < ns->n && ns->tags[i].n < TAGS_PER_NODE_MAX)
		snprintf(ns->tags[i].v[ns->tags[i].n++], TAG_MAX + 1, "%s", tag);
}

/* As the server compiles: a route counts when both advertised and approved. */
static void collect_route(const struct db_route *r, void *ctx)
{
	struct nodes *ns = ctx;
	size_t i = index_of(ns, r->node_key);

	if (i < ns->n && r->advertised && r->approved && ns->routes[i].n < CONTROL_MAX_ROUTES)
		ns->routes[i].list[ns->routes[i].n++] = r->route;
}

/* A satellite is a node to the rules (its name, addresses and tags), and its addresses are
 * host routes of its gateway, as the server compiles them (coord/satellites.c). */
static void collect_satellite(const struct db_satellite *sat, void *ctx)
{
	struct nodes *ns = ctx;
	size_t gw = index_of(ns, sat->gateway_key);
	struct db_node node;

	memset(&node, 0, sizeof(node));
	memcpy(node.node_key, sat->public_key, WIRE_KEY_LEN);
	memcpy(node.name, sat->name, sizeof(node.name));
	memcpy(node.ipv4, sat->ipv4, 4);
	memcpy(node.ipv6, sat->ipv6, 16);
	size_t before = ns->n;
	collect(&node, ns);
	if (ns->n == before)
		return;
	struct db_tags *tags = realloc(ns->tags, ns->n * sizeof(*tags));
	struct control_routes *routes = tags ? realloc(ns->routes, ns->n * sizeof(*routes)) : NULL;
	if (tags)
		ns->tags = tags;
	if (routes)
		ns->routes = routes;
	if (!tags || !routes) {
		ns->failed = true;
		ns->n = before;
		return;
	}
	memset(&ns->tags[before], 0, sizeof(ns->tags[before]));
	memset(&ns->routes[before], 0, sizeof(ns->routes[before]));
	for (const char *p = sat->tags; *p && ns->tags[before].n < TAGS_PER_NODE_MAX;) {
		size_t len = strcspn(p, " ");
		if (len > 0 && len <= TAG_MAX)
			memcpy(ns->tags[before].v[ns->tags[before].n++], p, len);
		p += len + (p[len] == ' ');
	}
	if (gw < before && ns->routes[gw].n + 2 <= CONTROL_MAX_ROUTES) {
		struct control_route *r = &ns->routes[gw].list[ns->routes[gw].n];
		memset(r, 0, 2 * sizeof(*r));
		r[0].family = 4;
		r[0].bits = 32;
		memcpy(r[0].addr, sat->ipv4, 4);
		r[1].family = 6;
		r[1].bits = 128;
		memcpy(r[1].addr, sat->ipv6, 16);
		ns->routes[gw].n += 2;
	}
}

/* The registry's nodes (and satellites), if there is a registry; never creates one. */
static bool load_nodes(const struct coord_config *cfg, struct nodes *ns, bool *have_registry, char *err, size_t cap)
{
	char path[COORDCONF_PATH_MAX];
	struct stat st;

	*have_registry = false;
	if (!cfg || !coordconf_db_path(cfg, path, sizeof(path)) || stat(path, &st) < 0)
		return true;
	struct db *db = db_open(path, err, cap);
	if (!db)
		return false;
	bool ok = db_nodes_list(db, collect, ns) && !ns->failed;
	if (ok) {
		ns->tags = calloc(ns->n ? ns->n : 1, sizeof(*ns->tags));
		ns->routes = calloc(ns->n ? ns->n : 1, sizeof(*ns->routes));
		ok = ns->tags && ns->routes && db_tags_list(db, collect_tag, ns) &&
		     db_routes_list(db, collect_route, ns) && db_satellites_list(db, collect_satellite, ns) && !ns->failed;
	}
	db_close(db);
	if (!ok)
		snprintf(err, cap, "%.300s: cannot read the node list", path);
	*have_registry = ok;
	return ok;
}

static void warn_unknown(const struct policy_ref *ref, void *ctx)
{
	const char *source = ctx;

	if (ref->kind == POLICY_REF_TAG)
		fprintf(stderr, "%s:%zu:%zu: warning: no node has tag '%s' (yet): rules naming it have no effect\n",
			source, ref->line, ref->col, ref->tag);
	else
		fprintf(stderr, "%s:%zu:%zu: warning: no node named '%s' in the registry (yet): it gets no rules\n",
			source, ref->line, ref->col, ref->node);
}

static const char *node_of(const struct policy_node *nodes, size_t n, const struct filter_rule *r)
{
	unsigned int full = r->family == FILTER_FAMILY_IPV4 ? 32 : 128;

	if (r->src_bits == 0)
		return "anyone";
	for (size_t i = 0; r->src_bits == full && i < n; i++)
		if (memcmp(r->src, r->family == FILTER_FAMILY_IPV4 ? nodes[i].ipv4 : nodes[i].ipv6,
			   r->family == FILTER_FAMILY_IPV4 ? 4 : 16) == 0)
			return nodes[i].name;
	return NULL;
}

static void show_node(const struct policy *p, const struct policy_node *nodes, size_t n, size_t self)
{
	char v4[INET_ADDRSTRLEN], v6[INET6_ADDRSTRLEN], err[ERR_MAX], src[INET6_ADDRSTRLEN];
	struct filter_rule *rules;
	size_t n_rules;

	inet_ntop(AF_INET, nodes[self].ipv4, v4, sizeof(v4));
	inet_ntop(AF_INET6, nodes[self].ipv6, v6, sizeof(v6));
	printf("%s (%s, %s) may be reached by:\n", nodes[self].name, v4, v6);
	if (!policy_compile(p, nodes, n, self, &rules, &n_rules, err, sizeof(err))) {
		printf("  (error: %s)\n", err);
		return;
	}
	if (n_rules == 0)
		printf("  nobody (replies to its own connections only)\n");
	for (size_t i = 0; i < n_rules; i++) {
		const struct filter_rule *r = &rules[i];
		const char *who = node_of(nodes, n, r);
		char ports[16];
		inet_ntop(r->family == FILTER_FAMILY_IPV4 ? AF_INET : AF_INET6, r->src, src, sizeof(src));
		if (r->port_lo == 0 && r->port_hi == PORT_MAX)
			snprintf(ports, sizeof(ports), "*");
		else if (r->port_lo == r->port_hi)
			snprintf(ports, sizeof(ports), "%u", r->port_lo);
		else
			snprintf(ports, sizeof(ports), "%u-%u", r->port_lo, r->port_hi);
		char from[INET6_ADDRSTRLEN + 8];
		snprintf(from, sizeof(from), "%s/%u", src, r->src_bits);
		/* its own address, or a subnet or the internet behind it (a router, an exit) */
		char to[INET6_ADDRSTRLEN + 8];
		unsigned int full = r->family == FILTER_FAMILY_IPV4 ? 32 : 128;
		const uint8_t *own = r->family == FILTER_FAMILY_IPV4 ? nodes[self].ipv4 : nodes[self].ipv6;
		if (r->dst_bits == full && memcmp(r->dst, own, r->family == FILTER_FAMILY_IPV4 ? 4 : 16) == 0) {
			snprintf(to, sizeof(to), "%s", r->family == FILTER_FAMILY_IPV4 ? v4 : v6);
		} else {
			char dst[INET6_ADDRSTRLEN];
			inet_ntop(r->family == FILTER_FAMILY_IPV4 ? AF_INET : AF_INET6, r->dst, dst, sizeof(dst));
			snprintf(to, sizeof(to), "%s/%u", dst, r->dst_bits);
		}
		printf("  %-16s %-24s %-4s %-12s to %s\n", who ? who : "-", from, filter_proto_name(r->proto), ports,
		       to);
	}
	free(rules);
}

int policy_cli(const char *config_path, int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "file", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *file = NULL;
	char err[ERR_MAX];
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 'f':
			file = optarg;
			break;
		case 'h':
			fputs(policy_usage, stdout);
			return 0;
		default:
			return EXIT_USAGE;
		}
	}
	if (optind == argc) {
		fputs(policy_usage, stderr);
		return EXIT_USAGE;
	}
	const char *action = argv[optind++];
	bool show = strcmp(action, "show") == 0;
	if (!show && strcmp(action, "check") != 0) {
		fprintf(stderr, "meshcoord policy: unknown action '%s' (check or show)\n", action);
		return EXIT_USAGE;
	}
	const char *only = show && optind < argc ? argv[optind++] : NULL;
	if (optind != argc) {
		fprintf(stderr, "meshcoord policy %s: unexpected argument '%s'\n", action, argv[optind]);
		return EXIT_USAGE;
	}

	/* The config names the policy and the registry; with --file it may be absent. */
	struct coord_config cfg;
	bool have_cfg = coordconf_load(&cfg, config_path, err, sizeof(err));
	if (!have_cfg && !file) {
		fprintf(stderr, "meshcoord policy %s: %s\n", action, err);
		return 1;
	}
	if (!file && !cfg.policy_file[0]) {
		printf("%s: no policy_file: every node may reach every other (allow all)\n", config_path);
		return 0;
	}
	if (!file)
		file = cfg.policy_file;

	struct policy p;
	if (!policy_load(&p, file, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	struct nodes ns = { 0 };
	bool have_registry;
	if (!load_nodes(have_cfg ? &cfg : NULL, &ns, &have_registry, err, sizeof(err))) {
		fprintf(stderr, "meshcoord policy %s: %s\n", action, err);
		policy_free(&p);
		free(ns.v);
		free(ns.tags);
		free(ns.routes);
		return 1;
	}
	struct policy_node *nodes = calloc(ns.n ? ns.n : 1, sizeof(*nodes));
	int rc = 1;
	if (!nodes) {
		fprintf(stderr, "meshcoord policy %s: out of memory\n", action);
		goto out;
	}
	for (size_t i = 0; i < ns.n; i++) {
		nodes[i].name = ns.v[i].name;
		memcpy(nodes[i].ipv4, ns.v[i].ipv4, 4);
		memcpy(nodes[i].ipv6, ns.v[i].ipv6, 16);
		if (ns.tags) {
			nodes[i].tags = (const char(*)[TAG_MAX + 1])ns.tags[i].v;
			nodes[i].n_tags = ns.tags[i].n;
		}
		if (ns.routes) {
			nodes[i].routes = ns.routes[i].list;
			nodes[i].n_routes = ns.routes[i].n;
		}
	}
	if (!policy_check_nodes(&p, nodes, ns.n, err, sizeof(err))) {
		fprintf(stderr, "%s: %s\n", file, err);
		goto out;
	}
	if (!show) {
		if (have_registry)
			policy_unknown_nodes(&p, nodes, ns.n, warn_unknown, (void *)file);
		printf("%s: valid (%zu hosts, %zu groups, %zu rules; %s)\n", file, p.n_hosts, p.n_groups, p.n_rules,
		       have_registry ? "compiled for every node in the registry" : "no registry: names not checked");
		rc = 0;
		goto out;
	}
	bool found = false;
	for (size_t i = 0; i < ns.n; i++) {
		if (only && strcmp(only, nodes[i].name) != 0)
			continue;
		found = true;
		show_node(&p, nodes, ns.n, i);
	}
	if (only && !found)
		fprintf(stderr, "meshcoord policy show: no node named '%s'\n", only);
	else if (!found)
		printf("no nodes in the registry\n");
	rc = only && !found ? 1 : 0;
out:
	free(nodes);
	free(ns.v);
	free(ns.tags);
	free(ns.routes);
	policy_free(&p);
	return fflush(stdout) == 0 ? rc : 1;
}
