/* meshd: command-line entry. One function per subcommand, picked from a table. */
#include <errno.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/joinkey.h"
#include "core/keys.h"
#include "core/log.h"
#include "core/sdnotify.h"
#include "meshd/publish.h"
#include "meshd/config.h"
#include "meshd/cli.h"
#include "meshd/coordclient.h"
#include "meshd/ctl.h"
#include "meshd/device.h"
#include "meshd/dnsd.h"
#include "meshd/meshroutes.h"
#include "meshd/privdrop.h"
#include "meshd/reload.h"

enum {
	EXIT_USAGE = 2,              /* bad command line, as most Unix tools */
	PUBKEY_INPUT_MAX = 256,      /* a base64 key plus generous whitespace */
	STATE_DIR_MODE = 0700,       /* holds the private key and the peer map */
	ERROR_LINE_MAX = 1024,
};

static const char usage_text[] =
	"Usage: meshd COMMAND [OPTIONS]\n"
	"\n"
	"A peer-to-peer mesh VPN node.\n"
	"\n"
	"Commands:\n"
	"  up -c FILE [--join KEY] [--log-level LEVEL]\n"
	"                                  run the node in the foreground until SIGTERM/SIGINT;\n"
	"                                  SIGUSR1 logs the packet counters; SIGHUP reads the\n"
	"                                  config again: log_level, cookie_threshold, max_peers\n"
	"                                  and static peers (added, removed, endpoint,\n"
	"                                  allowed_ips, persistent_keepalive) and the route\n"
	"                                  and exit node keys change at once,\n"
	"                                  other changed keys are logged as needing a restart,\n"
	"                                  and a file with a mistake changes nothing. --log-level\n"
	"                                  wins over log_level in the config. --join registers\n"
	"                                  with the coordinator named in KEY (from 'meshcoord\n"
	"                                  authkey create'); needs state_dir in the config and is\n"
	"                                  only needed the first time. The key is wiped from the\n"
	"                                  command line at start; join_key_file: (mode 0600) keeps\n"
	"                                  it out of shell history too\n"
	"  status [--json] [-s SOCKET | -i IFNAME]\n"
	"                                  the daemon's view of this node and its peers (paths,\n"
	"                                  handshakes, latency, bytes)\n"
	"  ping [-c N] [-s SOCKET | -i IFNAME] NAME|IP\n"
	"                                  disco-ping a coordinator peer; says which path answered\n"
	"  netcheck [--json] [-s SOCKET | -i IFNAME]\n"
	"                                  UDP, reflexive address, NAT type, coordinator latency\n"
	"  set exit-node NAME|none [-s SOCKET | -i IFNAME]\n"
	"                                  send internet traffic through an exit node, or stop\n"
	"  check-config -c FILE            read FILE as 'up' would and report the first error, if\n"
	"                                  any (exit 0: valid); opens nothing else\n"
	"  genkey                          print a new private key (base64) to stdout\n"
	"  pubkey                          read a private key on stdin, print its public key\n"
	"  --help, -h                      show this help\n"
	"  --version                       show the version\n"
	"\n"
	"LEVEL is one of error, warn, info (default), debug.\n"
	"status, ping and netcheck talk to the running daemon over its control socket\n"
	"(control_socket in the config; default /run/meshd/IFNAME.sock, IFNAME defaulting to\n"
	"mesh0); 'meshd COMMAND --help' tells more.\n"
	"If the config's private_key_file does not exist, 'up' creates it (mode 0600); without\n"
	"private_key_file it is <state_dir>/node.key.\n"
	"Example config: " DOCDIR "/meshd.yaml\n";

static int cmd_genkey(int argc, char **argv)
{
	if (argc > 1) {
		fprintf(stderr, "meshd genkey: takes no arguments\n");
		return EXIT_USAGE;
	}
	uint8_t key[WIRE_KEY_LEN];
	char b64[KEY_BASE64_LEN + 1];
	key_generate_private(key);
	key_to_base64(b64, key);
	printf("%s\n", b64);
	sodium_memzero(key, sizeof(key));
	sodium_memzero(b64, sizeof(b64));
	return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

static int cmd_pubkey(int argc, char **argv)
{
	if (argc > 1) {
		fprintf(stderr, "meshd pubkey: takes no arguments; give the private key on stdin\n");
		return EXIT_USAGE;
	}
	char input[PUBKEY_INPUT_MAX + 1];
	size_t len = fread(input, 1, sizeof(input), stdin);
	uint8_t priv[WIRE_KEY_LEN], pub[WIRE_KEY_LEN];
	int rc = EXIT_FAILURE;
	if (len > PUBKEY_INPUT_MAX || !key_from_base64(priv, input, len)) {
		fprintf(stderr, "meshd pubkey: stdin is not a base64 private key (make one with 'meshd genkey')\n");
	} else if (!key_public_from_private(pub, priv)) {
		fprintf(stderr, "meshd pubkey: that private key is unusable; make a new one with 'meshd genkey'\n");
	} else {
		char b64[KEY_BASE64_LEN + 1];
		key_to_base64(b64, pub);
		printf("%s\n", b64);
		rc = fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
	}
	sodium_memzero(input, sizeof(input));
	sodium_memzero(priv, sizeof(priv));
	return rc;
}

/* Reads the node's private key, creating it on first start. */
static bool load_or_create_private_key(const char *path, uint8_t key[WIRE_KEY_LEN], char *err, size_t err_len)
{
	struct stat st;
	if (stat(path, &st) < 0 && errno == ENOENT) {
		key_generate_private(key);
		if (!key_file_write(path, key, err, err_len))
			return false;
		uint8_t pub[WIRE_KEY_LEN];
		char b64[KEY_BASE64_LEN + 1];
		key_public_from_private(pub, key);
		key_to_base64(b64, pub);
		log_info("created private key %s; this node's public key is %s", path, b64);
		return true;
	}
	return key_file_read(path, key, err, err_len);
}

/* With a state directory: create it (0700) and default the key file into it. */
static bool prepare_state_dir(struct config *cfg, char *err, size_t err_len)
{
	if (!cfg->state_dir[0])
		return true;
	if (mkdir(cfg->state_dir, STATE_DIR_MODE) < 0 && errno != EEXIST) {
		snprintf(err, err_len, "cannot create state directory %.300s: %s", cfg->state_dir, strerror(errno));
		return false;
	}
	if (!cfg->private_key_file[0] &&
	    snprintf(cfg->private_key_file, sizeof(cfg->private_key_file), "%s/node.key", cfg->state_dir) >=
		    (int)sizeof(cfg->private_key_file)) {
		snprintf(err, err_len, "state directory path is too long");
		return false;
	}
	return true;
}

/* The join key from --join (already copied out of argv: join_arg, join_arg_len), else from
 * join_key_file (a missing file is an error: the user asked for it). */
static bool read_join_key(const struct config *cfg, const char *join_arg, size_t join_arg_len, struct joinkey *join,
			  bool *have, char *err, size_t err_len)
{
	char text[JOINKEY_MAX_LEN + 1], why[256];
	size_t len = 0;
	const bool from_arg = join_arg != NULL;

	memset(join, 0, sizeof(*join));
	*have = false;
	if (from_arg) {
		if (join_arg_len > JOINKEY_MAX_LEN) {
			snprintf(err, err_len, "--join: not a join key (too long)");
			return false;
		}
		len = join_arg_len;
		memcpy(text, join_arg, len);
	} else if (cfg->join_key_file[0]) {
		/* Checked like a private key: regular file, ours or root's, mode 0600. */
		ssize_t n = secret_file_read(cfg->join_key_file, "join_key_file", text, sizeof(text), err, err_len);
		if (n < 0)
			return false;
		len = (size_t)n;
	} else {
		return true;
	}
	bool ok = len <= JOINKEY_MAX_LEN && joinkey_parse(text, len, join, why, sizeof(why));
	sodium_memzero(text, sizeof(text));
	if (!ok) {
		snprintf(err, err_len, "%.200s: %.200s", from_arg ? "--join" : cfg->join_key_file,
			 len > JOINKEY_MAX_LEN ? "not a join key (too long)" : why);
		return false;
	}
	if (!cfg->state_dir[0]) {
		snprintf(err, err_len, "joining a coordinator needs 'state_dir:' in the config (where the node keeps "
			 "its key and what the coordinator assigns)");
		joinkey_clear(join);
		return false;
	}
	*have = true;
	return true;
}

static int cmd_up(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "join", required_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_path = NULL;
	/* --join's key, copied here and wiped from argv at once: /proc/PID/cmdline shows argv
	 * to every local user for the daemon's whole life. */
	char join_arg[JOINKEY_MAX_LEN + 1];
	size_t join_arg_len = 0;
	bool join_given = false, level_given = false;
	enum log_level level = LOG_LEVEL_INFO;
	int opt;

	while ((opt = getopt_long(argc, argv, "c:l:h", options, NULL)) != -1) {
		switch (opt) {
		case 'j':
			join_given = true;
			join_arg_len = strlen(optarg);
			memcpy(join_arg, optarg, join_arg_len < sizeof(join_arg) ? join_arg_len : sizeof(join_arg));
			sodium_memzero(optarg, join_arg_len);
			break;
		case 'c':
			config_path = optarg;
			break;
		case 'l':
			level_given = true;
			if (!log_level_parse(optarg, &level)) {
				fprintf(stderr, "meshd up: unknown log level '%s' (use error, warn, info or debug)\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h':
			fputs(usage_text, stdout);
			return EXIT_SUCCESS;
		default:
			return EXIT_USAGE;
		}
	}
	if (!config_path || optind != argc) {
		fprintf(stderr, "meshd up: needs -c FILE and nothing else (see meshd --help)\n");
		return EXIT_USAGE;
	}
	log_init("meshd", level);
	/* Before anything can fail (systemd shows the STATUS= of a failed start) and before the
	 * privilege drop (the notify socket may be root's only). */
	sdnotify_init(clock_monotonic_ms());

	struct config cfg;
	char err[ERROR_LINE_MAX] = "";
	if (!config_load(&cfg, config_path, err, sizeof(err))) {
		log_error("%s", err);
		sodium_memzero(join_arg, sizeof(join_arg));
		return EXIT_FAILURE;
	}
	if (cfg.has_log_level && !level_given)
		log_set_level(cfg.log_level);
	struct joinkey join;
	bool have_join = false;
	uint8_t private_key[WIRE_KEY_LEN];
	struct device dev;
	struct ctl ctl;
	int rc = EXIT_FAILURE;
	ctl_init(&ctl);
	memset(&dev, 0, sizeof(dev));
	dev.tun_fd = dev.udp_fd = dev.epoll_fd = dev.signal_fd = -1;

	if (!prepare_state_dir(&cfg, err, sizeof(err)) || !read_join_key(&cfg, join_given ? join_arg : NULL, join_arg_len, &join, &have_join, err,
							  sizeof(err)))
		goto out;
	if (cfg.n_addresses == 0 && !have_join && !coordclient_state_has_addresses(cfg.state_dir)) {
		snprintf(err, sizeof(err), "%s: no overlay address: set 'address:', or join a coordinator with "
			 "--join KEY (or join_key_file:)", config_path);
		goto out;
	}
	if (!load_or_create_private_key(cfg.private_key_file, private_key, err, sizeof(err)))
		goto out;
	/* The control socket first: a second daemon for the same interface stops here, with a
	 * message that says so, before it could fail on the UDP port or the TUN device. */
	if (!ctl_open(&ctl, &cfg, err, sizeof(err)) || !device_open(&dev, &cfg, private_key, err, sizeof(err)) ||
	    (cfg.state_dir[0] && !meshroutes_open(&dev, &cfg, err, sizeof(err))) ||
	    !coordclient_open(&dev, &cfg, have_join ? &join : NULL, err, sizeof(err)) ||
	    !publish_open(&dev, &cfg) ||
	    !dnsd_open(&dev, &cfg, NULL, err, sizeof(err)))
		goto out;
	if (!ctl_attach(&ctl, &dev)) {
		snprintf(err, sizeof(err), "cannot watch the control socket: %s", strerror(errno));
		goto out;
	}
	/* Everything that needs root is open: from here on, the configured user (privdrop.h). */
	if (cfg.user[0]) {
		if (!privdrop_to_user(cfg.user, cfg.state_dir, err, sizeof(err)))
			goto out;
		log_info("running as user %s, keeping only CAP_NET_ADMIN", cfg.user);
	}
	reload_init(&dev, config_path, &cfg, level_given);
	err[0] = '\0';
	if (device_run(&dev) == 0)
		rc = dev.exit_code;
out:
	if (rc == EXIT_FAILURE && err[0]) {
		log_error("%s", err);
		sdnotify_send("STATUS=%s", err);
	}
	sodium_memzero(private_key, sizeof(private_key));
	sodium_memzero(join_arg, sizeof(join_arg));
	joinkey_clear(&join);
	ctl_close(&ctl);
	dev.ctl = NULL;
	device_close(&dev);
	config_free(&cfg);
	if (rc == EXIT_SUCCESS)
		log_info("stopped");
	sdnotify_close();
	return rc;
}

/* The config parser of 'up' alone: for an edit about to be applied (a restart, a reload)
 * and for the tests that keep conf/ from rotting. */
static int cmd_check_config(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_path = NULL;
	int opt;

	while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return EXIT_SUCCESS;
		default:
			return EXIT_USAGE;
		}
	}
	if (!config_path || optind != argc) {
		fprintf(stderr, "meshd check-config: needs -c FILE and nothing else (see meshd --help)\n");
		return EXIT_USAGE;
	}
	struct config cfg;
	char err[ERROR_LINE_MAX];
	if (!config_load(&cfg, config_path, err, sizeof(err))) {
		fprintf(stderr, "meshd check-config: %s\n", err);
		return EXIT_FAILURE;
	}
	printf("%s: valid (interface %s, static peers: %zu%s)\n", config_path, cfg.interface, cfg.n_peers,
	       cfg.state_dir[0] ? ", state_dir for a coordinator" : "");
	config_free(&cfg);
	return fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
};

static const struct command commands[] = {
	{ "up", cmd_up },
	{ "status", cli_status },
	{ "ping", cli_ping },
	{ "netcheck", cli_netcheck },
	{ "set", cli_set },
	{ "check-config", cmd_check_config },
	{ "genkey", cmd_genkey },
	{ "pubkey", cmd_pubkey },
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
		printf("meshd %s\n", PACKAGE_VERSION);
		return EXIT_SUCCESS;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "meshd: libsodium failed to initialize\n");
		return EXIT_FAILURE;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "meshd: unknown command '%s' (see meshd --help)\n", argv[1]);
	return EXIT_USAGE;
}
