/* meshcoord: command-line entry. One function per subcommand, picked from a table. */
#include <errno.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coord/admin.h"
#include "coord/coordconf.h"
#include "coord/db.h"
#include "coord/policy_cli.h"
#include "coord/server.h"
#include "core/keys.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/sdnotify.h"

enum {
	EXIT_USAGE = 2, /* bad command line, as most Unix tools (and ADMIN_EXIT_USAGE) */
	ERROR_LINE_MAX = 1024,
	PATH_SHOWN_MAX = 300, /* a path in an error line is cut here so the line stays whole */
};

_Static_assert((int)EXIT_USAGE == (int)ADMIN_EXIT_USAGE, "one usage exit status for every subcommand");

static const char usage_text[] =
	"Usage: meshcoord COMMAND [OPTIONS]\n"
	"\n"
	"The meshd coordinator: registers nodes with join keys, hands out overlay addresses,\n"
	"pushes live peer maps, answers STUN (on two ports, 3478 and 3479 by default) and\n"
	"relays packets between nodes that cannot reach each other directly (UDP on the\n"
	"STUN port, or their TCP control connection).\n"
	"\n"
	"Commands:\n"
	"  serve                             run in the foreground until SIGTERM/SIGINT;\n"
	"                                    SIGUSR1 logs the counters; SIGHUP reads the config\n"
	"                                    again (log_level and the relay limits change at\n"
	"                                    once; a changed listener or state_dir is logged as\n"
	"                                    needing a restart; a broken file changes nothing).\n"
	"                                    With metrics_listen in the config it serves\n"
	"                                    Prometheus metrics at http://ADDRESS/metrics\n"
	"  pubkey                            print the coordinator's public key (base64)\n"
	"  check-config                      read the config as serve would and report the first\n"
	"                                    error, if any (exit 0: valid); touches nothing else\n"
	"  authkey create [--reusable] [--expires DURATION]\n"
	"                                    print a new join key for 'meshd up --join KEY';\n"
	"                                    one-time unless --reusable; DURATION is N then s, m,\n"
	"                                    h or d (\"30m\", \"7d\"), default: never expires\n"
	"  authkey list                      list join keys (id, kind, created, expires, uses, state)\n"
	"  authkey revoke ID                 revoke a join key\n"
	"  nodes list [--json]               list nodes: name, addresses, online, last seen, endpoints,\n"
	"                                    tags\n"
	"  nodes remove NAME                 remove a node: it is disconnected, its peers drop it\n"
	"                                    within a second, and its key is refused from then on\n"
	"  nodes tag NAME TAG...             give a node tags (tag:NAME) for the access rules; the\n"
	"                                    running server applies them within a second\n"
	"  nodes untag NAME TAG...           take tags away from a node\n"
	"  policy check [--file POLICY]      read the access rules (policy_file, or POLICY) as serve\n"
	"                                    would and compile them for every registered node;\n"
	"                                    errors as FILE:LINE:COL (exit 0: valid)\n"
	"  policy show [NODE] [--file POLICY]\n"
	"                                    for each node (or NODE): who may reach it, on which\n"
	"                                    protocol and ports (a dry run)\n"
	"  routes list [--json]              list subnet routes and exit offers: advertised, approved\n"
	"  routes approve NODE PREFIX|exit   let a node's advertised prefix (or exit) take effect\n"
	"  routes revoke NODE PREFIX|exit    withdraw it: every node stops routing it at once\n"
	"  satellite add NAME --via GATEWAY [--public-key KEY] [--endpoint HOST:PORT] [--tag TAG]... [--qr]\n"
	"                                    register a stock WireGuard device (a phone) behind the\n"
	"                                    node GATEWAY and print its wg-quick file (and QR code)\n"
	"  satellite list [--json]           list satellites: name, gateway, addresses, key, tags\n"
	"  satellite config NAME [--qr]      print the file again (only with --public-key at add)\n"
	"  satellite remove NAME             remove it: its gateway drops it within a second\n"
	"  publish list [--json]             list publish grants and what is published now, with\n"
	"                                    live connection counts\n"
	"  publish allow NODE PORT [--protocol tcp|udp]\n"
	"                                    let a node publish a service on this coordinator's\n"
	"                                    public PORT (inside 'publish: ports' of the config)\n"
	"  publish revoke NODE PORT [--protocol tcp|udp]\n"
	"                                    withdraw it: its listener and connections close at once\n"
	"  --help, -h                        show this help\n"
	"  --version                         show the version\n"
	"\n"
	"Options (every command):\n"
	"  -c, --config FILE                 configuration (default " COORDCONF_DEFAULT_PATH ")\n"
	"  --log-level LEVEL                 error, warn, info (default) or debug; wins over\n"
	"                                    log_level in the config\n"
	"\n"
	"The coordinator key (coord.key, mode 0600) and the registry (registry.db) live in the\n"
	"config's state_dir. The key is created on first use by serve, pubkey or authkey, so the\n"
	"public key can be printed before the first start.\n"
	"Example config: " DOCDIR "/meshcoord.yaml\n";

struct global_options {
	const char *config_path;
	enum log_level level;
	bool level_given; /* --log-level: it wins over the file's log_level */
};

/* Takes --log-level out of argv (every subcommand accepts it, the admin parser does not know
 * it), leaving the rest in order. Returns the new argc, or -1 after printing an error. */
static int take_log_level(int argc, char **argv, const char *command, enum log_level *level, bool *given)
{
	int out = 0;
	for (int i = 0; i < argc; i++) {
		const char *arg = argv[i], *value = NULL;
		if (strcmp(arg, "--") == 0) {
			while (i < argc)
				argv[out++] = argv[i++];
			break;
		}
		if (strcmp(arg, "--log-level") == 0) {
			if (i + 1 == argc) {
				fprintf(stderr, "meshcoord %s: --log-level needs a value (error, warn, info or debug)\n",
					command);
				return -1;
			}
			value = argv[++i];
		} else if (strncmp(arg, "--log-level=", strlen("--log-level=")) == 0) {
			value = arg + strlen("--log-level=");
		} else {
			argv[out++] = argv[i];
			continue;
		}
		*given = true;
		if (!log_level_parse(value, level)) {
			fprintf(stderr, "meshcoord %s: unknown log level '%s' (use error, warn, info or debug)\n", command,
				value);
			return -1;
		}
	}
	argv[out] = NULL;
	return out;
}

/* Options of serve and pubkey: -c FILE and --help, nothing else. 1: go on, 0: help printed,
 * -1: usage error printed. */
static int parse_simple_options(int argc, char **argv, const char *command, struct global_options *g)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			g->config_path = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		default:
			return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "meshcoord %s: unexpected argument '%s' (see meshcoord --help)\n", command, argv[optind]);
		return -1;
	}
	return 1;
}

/* mkdir -p: parents 0755 as usual, the state directory itself 0700 (it holds the key). */
static bool make_state_dir(const char *path, char *err, size_t err_len)
{
	char buf[COORDCONF_PATH_MAX];
	struct stat st;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf) || buf[0] == '\0') {
		snprintf(err, err_len, "state_dir '%.*s' is empty or too long", PATH_SHOWN_MAX, path);
		return false;
	}
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST) {
			snprintf(err, err_len, "cannot create directory %.*s: %s", PATH_SHOWN_MAX, buf, strerror(errno));
			return false;
		}
		*p = '/';
	}
	if (mkdir(buf, 0700) < 0 && errno != EEXIST) {
		snprintf(err, err_len, "cannot create state directory %.*s: %s", PATH_SHOWN_MAX, buf, strerror(errno));
		return false;
	}
	if (stat(buf, &st) < 0 || !S_ISDIR(st.st_mode)) {
		snprintf(err, err_len, "state_dir %.*s is not a directory", PATH_SHOWN_MAX, buf);
		return false;
	}
	return true;
}

/* Reads the coordinator's key, creating it on first use. */
static bool load_or_create_key(const struct coord_config *cfg, uint8_t key[WIRE_KEY_LEN], char *err, size_t err_len)
{
	char path[COORDCONF_PATH_MAX];
	struct stat st;

	if (!coordconf_key_path(cfg, path, sizeof(path))) {
		snprintf(err, err_len, "state_dir '%.*s' is too long", PATH_SHOWN_MAX, cfg->state_dir);
		return false;
	}
	if (stat(path, &st) < 0 && errno == ENOENT) {
		key_generate_private(key);
		if (!key_file_write(path, key, err, err_len)) {
			sodium_memzero(key, WIRE_KEY_LEN);
			return false;
		}
		uint8_t pub[WIRE_KEY_LEN];
		char b64[KEY_BASE64_LEN + 1];
		key_public_from_private(pub, key);
		key_to_base64(b64, pub);
		log_info("created coordinator key %s; public key %s", path, b64);
		return true;
	}
	return key_file_read(path, key, err, err_len);
}

/* Config, state directory, and (when key is not NULL) the key. err gets one line. */
static bool open_config(const char *config_path, struct coord_config *cfg, uint8_t *key, char *err, size_t err_len)
{
	if (!coordconf_load(cfg, config_path, err, err_len))
		return false;
	if (!make_state_dir(cfg->state_dir, err, err_len))
		return false;
	return !key || load_or_create_key(cfg, key, err, err_len);
}

static struct db *open_db(const struct coord_config *cfg, char *err, size_t err_len)
{
	char path[COORDCONF_PATH_MAX];
	if (!coordconf_db_path(cfg, path, sizeof(path))) {
		snprintf(err, err_len, "state_dir '%.*s' is too long", PATH_SHOWN_MAX, cfg->state_dir);
		return NULL;
	}
	return db_open(path, err, err_len);
}

static int cmd_serve(int argc, char **argv, struct global_options *g)
{
	int r = parse_simple_options(argc, argv, "serve", g);
	if (r <= 0)
		return r == 0 ? EXIT_SUCCESS : EXIT_USAGE;

	struct coord_config cfg;
	uint8_t key[WIRE_KEY_LEN];
	char err[ERROR_LINE_MAX];
	/* systemd's readiness (core/sdnotify.h): READY=1 once the listeners are bound and the
	 * registry is open, so units ordered after us find the coordinator answering. */
	sdnotify_init(clock_monotonic_ms());
	if (!open_config(g->config_path, &cfg, key, err, sizeof(err))) {
		log_error("%s", err);
		sdnotify_send("STATUS=%s", err);
		sdnotify_close();
		return EXIT_FAILURE;
	}
	if (cfg.has_log_level && !g->level_given)
		log_set_level(cfg.log_level);
	struct db *db = open_db(&cfg, err, sizeof(err));
	if (!db) {
		log_error("%s", err);
		sdnotify_send("STATUS=%s", err);
		sdnotify_close();
		sodium_memzero(key, sizeof(key));
		return EXIT_FAILURE;
	}
	int rc = EXIT_FAILURE;
	struct coord_server *s = coord_server_open(&cfg, db, key, err, sizeof(err));
	sodium_memzero(key, sizeof(key)); /* the server keeps its own copy */
	if (s)
		coord_server_set_config(s, g->config_path, &cfg, g->level_given);
	if (!s) {
		log_error("%s", err);
		sdnotify_send("STATUS=%s", err);
	} else {
		sdnotify_send("READY=1\nSTATUS=serving: control on %s, nodes join at %s", cfg.listen_host,
			      cfg.public_host);
		if (coord_server_run(s) == 0)
			rc = EXIT_SUCCESS;
		sdnotify_send("STOPPING=1\nSTATUS=stopping");
	}
	if (s)
		coord_server_log_counters(s);
	coord_server_close(s);
	db_close(db);
	if (rc == EXIT_SUCCESS)
		log_info("stopped");
	sdnotify_close();
	return rc;
}

/* The config parser of serve alone (no state directory, key or registry is touched): for
 * an edit about to be applied and for the tests that keep conf/ from rotting. */
static int cmd_check_config(int argc, char **argv, struct global_options *g)
{
	int r = parse_simple_options(argc, argv, "check-config", g);
	if (r <= 0)
		return r == 0 ? EXIT_SUCCESS : EXIT_USAGE;

	struct coord_config cfg;
	char err[ERROR_LINE_MAX];
	if (!coordconf_load(&cfg, g->config_path, err, sizeof(err))) {
		fprintf(stderr, "meshcoord check-config: %s\n", err);
		return EXIT_FAILURE;
	}
	printf("%s: valid (nodes join at %s:%u, state in %s)\n", g->config_path, cfg.public_host,
	       (unsigned int)cfg.public_port, cfg.state_dir);
	return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

static int cmd_pubkey(int argc, char **argv, struct global_options *g)
{
	int r = parse_simple_options(argc, argv, "pubkey", g);
	if (r <= 0)
		return r == 0 ? EXIT_SUCCESS : EXIT_USAGE;

	struct coord_config cfg;
	uint8_t key[WIRE_KEY_LEN], pub[WIRE_KEY_LEN];
	char err[ERROR_LINE_MAX];
	if (!open_config(g->config_path, &cfg, key, err, sizeof(err))) {
		log_error("%s", err);
		return EXIT_FAILURE;
	}
	bool ok = key_public_from_private(pub, key);
	sodium_memzero(key, sizeof(key));
	if (!ok) {
		log_error("the coordinator key is unusable; move it away and run 'meshcoord serve' to make a new one");
		return EXIT_FAILURE;
	}
	char b64[KEY_BASE64_LEN + 1];
	key_to_base64(b64, pub);
	printf("%s\n", b64);
	return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* routes, publish and satellite: nodes' kind of command, with its own arguments. */
static int admin_other(struct db *db, const struct coord_config *cfg, int argc, char **argv)
{
	if (!strcmp(argv[0], "publish"))
		return admin_publish(db, cfg, argc, argv);
	if (!strcmp(argv[0], "satellite"))
		return admin_satellite(db, cfg, argc, argv);
	return !strcmp(argv[0], "routes") ? admin_routes(db, argc, argv) : admin_nodes(db, argc, argv);
}

/* The admin subcommands: each parses its own arguments (coord/admin_args.h; and -c). */
static int run_admin(int argc, char **argv, struct global_options *g, bool needs_key)
{
	if (admin_wants_help(argc, argv))
		return needs_key ? admin_authkey(NULL, NULL, NULL, argc, argv) : admin_other(NULL, NULL, argc, argv);

	const char *config_path = admin_config_path(argc, argv);
	struct coord_config cfg;
	uint8_t key[WIRE_KEY_LEN], pub[WIRE_KEY_LEN];
	char err[ERROR_LINE_MAX];

	if (!open_config(config_path ? config_path : g->config_path, &cfg, needs_key ? key : NULL, err, sizeof(err))) {
		fprintf(stderr, "meshcoord %s: %s\n", argv[0], err);
		return EXIT_FAILURE;
	}
	if (needs_key) {
		bool ok = key_public_from_private(pub, key);
		sodium_memzero(key, sizeof(key));
		if (!ok) {
			fprintf(stderr, "meshcoord %s: the coordinator key is unusable\n", argv[0]);
			return EXIT_FAILURE;
		}
	}
	struct db *db = open_db(&cfg, err, sizeof(err));
	if (!db) {
		fprintf(stderr, "meshcoord %s: %s\n", argv[0], err);
		return EXIT_FAILURE;
	}
	int rc = needs_key ? admin_authkey(db, &cfg, pub, argc, argv) : admin_other(db, &cfg, argc, argv);
	db_close(db);
	return rc;
}

static int cmd_authkey(int argc, char **argv, struct global_options *g)
{
	return run_admin(argc, argv, g, true);
}

static int cmd_nodes(int argc, char **argv, struct global_options *g)
{
	return run_admin(argc, argv, g, false);
}

static int cmd_satellite(int argc, char **argv, struct global_options *g)
{
	return run_admin(argc, argv, g, false);
}

static int cmd_policy(int argc, char **argv, struct global_options *g)
{
	return policy_cli(g->config_path, argc, argv);
}

struct command {
	const char *name;
	int (*run)(int argc, char **argv, struct global_options *g);
};

static const struct command commands[] = {
	{ "serve", cmd_serve },
	{ "pubkey", cmd_pubkey },
	{ "check-config", cmd_check_config },
	{ "authkey", cmd_authkey },
	{ "nodes", cmd_nodes },
	{ "policy", cmd_policy },
	{ "routes", cmd_nodes }, /* run_admin tells them apart by argv[0] */
	{ "satellite", cmd_satellite },
	{ "publish", cmd_nodes },
};

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage_text, stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		fputs(usage_text, stdout);
		return EXIT_SUCCESS;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("meshcoord %s\n", PACKAGE_VERSION);
		return EXIT_SUCCESS;
	}
	const struct command *cmd = NULL;
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			cmd = &commands[i];
	if (!cmd) {
		fprintf(stderr, "meshcoord: unknown command '%s' (see meshcoord --help)\n", argv[1]);
		return EXIT_USAGE;
	}
	struct global_options g = { .config_path = COORDCONF_DEFAULT_PATH, .level = LOG_LEVEL_INFO };
	int sub_argc = take_log_level(argc - 1, argv + 1, cmd->name, &g.level, &g.level_given);
	if (sub_argc < 0)
		return EXIT_USAGE;
	log_init("meshcoord", g.level);
	if (sodium_init() < 0) {
		fprintf(stderr, "meshcoord: libsodium failed to initialize\n");
		return EXIT_FAILURE;
	}
	return cmd->run(sub_argc, argv + 1, &g);
}
