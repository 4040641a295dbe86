/* meshd: command-line entry. One function per subcommand, picked from a table. */
#include <errno.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/keys.h"
#include "core/log.h"
#include "meshd/config.h"
#include "meshd/device.h"

enum {
	EXIT_USAGE = 2,              /* bad command line, as most Unix tools */
	PUBKEY_INPUT_MAX = 256,      /* a base64 key plus generous whitespace */
	ERROR_LINE_MAX = 512,
};

static const char usage_text[] =
	"Usage: meshd COMMAND [OPTIONS]\n"
	"\n"
	"A peer-to-peer mesh VPN node.\n"
	"\n"
	"Commands:\n"
	"  up -c FILE [--log-level LEVEL]  run the node in the foreground until SIGTERM/SIGINT;\n"
	"                                  SIGUSR1 logs the packet counters\n"
	"  genkey                          print a new private key (base64) to stdout\n"
	"  pubkey                          read a private key on stdin, print its public key\n"
	"  --help, -h                      show this help\n"
	"  --version                       show the version\n"
	"\n"
	"LEVEL is one of error, warn, info (default), debug.\n"
	"If the config's private_key_file does not exist, 'up' creates it (mode 0600).\n"
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

static int cmd_up(int argc, char **argv)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_path = NULL;
	enum log_level level = LOG_LEVEL_INFO;
	int opt;

	while ((opt = getopt_long(argc, argv, "c:l:h", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config_path = optarg;
			break;
		case 'l':
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

	struct config cfg;
	char err[ERROR_LINE_MAX];
	if (!config_load(&cfg, config_path, err, sizeof(err))) {
		log_error("%s", err);
		return EXIT_FAILURE;
	}
	uint8_t private_key[WIRE_KEY_LEN];
	if (!load_or_create_private_key(cfg.private_key_file, private_key, err, sizeof(err))) {
		log_error("%s", err);
		config_free(&cfg);
		return EXIT_FAILURE;
	}

	struct device dev;
	int rc = EXIT_FAILURE;
	if (!device_open(&dev, &cfg, private_key, err, sizeof(err)))
		log_error("%s", err);
	else if (device_run(&dev) == 0)
		rc = EXIT_SUCCESS;
	sodium_memzero(private_key, sizeof(private_key));
	device_close(&dev);
	config_free(&cfg);
	if (rc == EXIT_SUCCESS)
		log_info("stopped");
	return rc;
}

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
};

static const struct command commands[] = {
	{ "up", cmd_up },
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
