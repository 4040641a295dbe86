/* The control socket clients (see cli.h). Blocking I/O with a receive timeout: a CLI has
 * nothing else to do, but must never hang on a stuck daemon. */
#include "meshd/cli.h"

#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/ipc.h"
#include "meshd/config.h"
#include "meshd/ctl.h"

enum {
	CLI_EXIT_USAGE = 2,
	CLI_ERROR = -1, /* request() failed and said why */
	/* The daemon answers status at once and ping/netcheck within a few seconds (their own
	 * timeouts); beyond this it is stuck. */
	CLI_TIMEOUT_S = 10,
	CLI_PING_COUNT_MAX = 1000,      /* -c N: bounded, like everything that loops */
	CLI_PING_INTERVAL_US = 1000000, /* after a pong, wait before the next attempt, as ping(8) */
};

static const char default_interface[] = "mesh0";

struct cli_target {
	const char *cmd; /* "status", for messages */
	char path[CONFIG_SOCKET_PATH_MAX];
};

/* -s PATH or -i IFNAME (at most one), else the default interface's socket. */
static bool pick_socket(struct cli_target *t, const char *sock, const char *ifname)
{
	if (sock && ifname) {
		fprintf(stderr, "meshd %s: give -s PATH or -i IFNAME, not both\n", t->cmd);
		return false;
	}
	if (sock) {
		if (strlen(sock) >= sizeof(t->path)) {
			fprintf(stderr, "meshd %s: socket path too long (at most %zu bytes)\n", t->cmd, sizeof(t->path) - 1);
			return false;
		}
		snprintf(t->path, sizeof(t->path), "%s", sock);
		return true;
	}
	const char *name = ifname ? ifname : default_interface;
	if (strlen(name) >= IFNAMSIZ || strchr(name, '/') || !config_default_control_socket(name, t->path, sizeof(t->path))) {
		fprintf(stderr, "meshd %s: '%s' is not an interface name\n", t->cmd, name);
		return false;
	}
	return true;
}

static int connect_daemon(const struct cli_target *t)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	memcpy(sun.sun_path, t->path, strlen(t->path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "meshd %s: cannot create a UNIX socket: %s\n", t->cmd, strerror(errno));
		return -1;
	}
	struct timeval tv = { .tv_sec = CLI_TIMEOUT_S };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
		return fd;
	int e = errno;
	close(fd);
	if (e == ENOENT || e == ECONNREFUSED)
		fprintf(stderr, "meshd %s: no daemon on %s (is `meshd up` running? pass -i IFNAME or -s PATH)\n", t->cmd,
			t->path);
	else if (e == EACCES || e == EPERM)
		fprintf(stderr, "meshd %s: permission denied on %s (run as root, or as a member of the daemon's "
			"control_group)\n", t->cmd, t->path);
	else
		fprintf(stderr, "meshd %s: cannot connect to %s: %s\n", t->cmd, t->path, strerror(e));
	return -1;
}

/* Reads exactly len bytes; false at EOF, error or timeout (*why says which). */
static bool read_all(int fd, uint8_t *buf, size_t len, const char **why)
{
	size_t got = 0;
	while (got < len) {
		ssize_t n = recv(fd, buf + got, len - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0) {
			*why = "the daemon closed the connection without a complete answer";
			return false;
		}
		if (n < 0) {
			*why = errno == EAGAIN ? "no answer from the daemon within 10 s" : strerror(errno);
			return false;
		}
		got += (size_t)n;
	}
	return true;
}

/* One request, one answer: prints it. Returns EXIT_SUCCESS, EXIT_FAILURE for a negative
 * answer (ping: no direct pong), CLI_EXIT_USAGE, or -1 for an error (already reported). */
static int request(const struct cli_target *t, uint16_t command, uint16_t flags, const char *arg)
{
	uint8_t req[IPC_REQUEST_MAX];
	size_t req_len = ipc_request_encode(command, flags, arg, req, sizeof(req));
	if (!req_len) {
		fprintf(stderr, "meshd %s: '%s' is not a peer name or address\n", t->cmd, arg ? arg : "");
		return CLI_EXIT_USAGE;
	}
	int fd = connect_daemon(t);
	if (fd < 0)
		return CLI_ERROR;
	int rc = CLI_ERROR;
	uint8_t *body = NULL;
	uint8_t head[IPC_RESPONSE_HEADER_LEN];
	struct ipc_response_header h;
	const char *why = NULL;
	if (send(fd, req, req_len, MSG_NOSIGNAL) != (ssize_t)req_len) {
		fprintf(stderr, "meshd %s: cannot send to the daemon on %s: %s\n", t->cmd, t->path, strerror(errno));
		goto out;
	}
	/* The magic and version first: a daemon of another version may send any header after. */
	if (!read_all(fd, head, IPC_PREFIX_LEN, &why))
		goto failed;
	enum ipc_decode d = ipc_response_header_decode(head, IPC_PREFIX_LEN, &h);
	if (d == IPC_DECODE_VERSION) {
		fprintf(stderr, "meshd %s: the daemon speaks control protocol %u, this CLI %d: use the meshd binary "
			"that matches the daemon\n", t->cmd, h.version, IPC_VERSION);
		goto out;
	}
	if (d == IPC_DECODE_BAD_MAGIC) {
		fprintf(stderr, "meshd %s: %s does not speak the meshd control protocol\n", t->cmd, t->path);
		goto out;
	}
	if (!read_all(fd, head + IPC_PREFIX_LEN, IPC_RESPONSE_HEADER_LEN - IPC_PREFIX_LEN, &why))
		goto failed;
	if (ipc_response_header_decode(head, sizeof(head), &h) != IPC_DECODE_OK || h.status == IPC_STATUS_VERSION) {
		fprintf(stderr, "meshd %s: the daemon sent a malformed answer\n", t->cmd);
		goto out;
	}
	body = malloc((size_t)h.body_len + 1);
	if (!body) {
		fprintf(stderr, "meshd %s: out of memory for the answer (%u bytes)\n", t->cmd, h.body_len);
		goto out;
	}
	if (!read_all(fd, body, h.body_len, &why))
		goto failed;
	body[h.body_len] = '\0';
	if (h.status == IPC_STATUS_ERROR) {
		fprintf(stderr, "meshd %s: %s", t->cmd, (const char *)body);
		if (h.body_len == 0 || body[h.body_len - 1] != '\n')
			fputc('\n', stderr);
	} else {
		fwrite(body, 1, h.body_len, stdout);
		rc = fflush(stdout) != 0 ? CLI_ERROR : h.status == IPC_STATUS_OK ? EXIT_SUCCESS : EXIT_FAILURE;
	}
	goto out;
failed:
	fprintf(stderr, "meshd %s: %s\n", t->cmd, why);
out:
	free(body);
	close(fd);
	return rc;
}

/* ---------------------------------------------------------------- subcommands */

static const char status_help[] =
	"Usage: meshd status [--json] [-s SOCKET | -i IFNAME]\n"
	"\n"
	"Shows the running daemon's view: this node (name, overlay addresses, public key, whether\n"
	"it is connected to its coordinator and whether the relay is reached over UDP or TCP) and\n"
	"each peer: name, overlay addresses, path (\"direct ADDRESS:PORT\", \"relay\" or \"none\"),\n"
	"last handshake, latency of the direct path (disco round trip; \"-\" when unknown or\n"
	"relayed) and bytes received and sent through the tunnel.\n"
	"A static peer shows \"direct ENDPOINT\" while a session with it is live.\n"
	"\n"
	"  --json            print JSON instead of a table: the same data, plus \"counters\",\n"
	"                    every packet counter of the daemon (as SIGUSR1 logs them)\n"
	"  -s, --socket PATH the daemon's control socket\n"
	"  -i, --interface IFNAME\n"
	"                    the daemon of this interface: /run/meshd/IFNAME.sock (default mesh0)\n";

static const char ping_help[] =
	"Usage: meshd ping [-c N] [-s SOCKET | -i IFNAME] NAME|IP\n"
	"\n"
	"Asks the daemon to send disco pings to every candidate address of the peer (by name, or\n"
	"by one of its overlay addresses) and reports the path that answered:\n"
	"  pong from NAME (IP) via ADDRESS:PORT in T ms\n"
	"or, when no direct path answers within 2 s, that traffic goes through the relay.\n"
	"Only coordinator peers speak disco; static peers are refused (see meshd status).\n"
	"Exit status 0 if a direct pong came back, 1 otherwise.\n"
	"\n"
	"  -c, --count N     attempts (1 to 1000; default 1), one second apart after a pong\n"
	"  -s, --socket PATH the daemon's control socket\n"
	"  -i, --interface IFNAME\n"
	"                    the daemon of this interface (default mesh0)\n";

static const char netcheck_help[] =
	"Usage: meshd netcheck [--json] [-s SOCKET | -i IFNAME]\n"
	"\n"
	"Has the daemon send STUN requests from its data socket to the coordinator's two STUN\n"
	"ports and reports: whether UDP works (a STUN answer, or the relay acknowledging our\n"
	"UDP bind), this node's reflexive address, whether the NAT mapping varies by destination,\n"
	"the NAT type in plain words, and the STUN round trip to the coordinator. Takes up to 2 s.\n"
	"Needs a coordinator.\n"
	"\n"
	"  --json            print JSON instead of text\n"
	"  -s, --socket PATH the daemon's control socket\n"
	"  -i, --interface IFNAME\n"
	"                    the daemon of this interface (default mesh0)\n";

enum { OPT_JSON = 256 };

/* Options all three share; ping adds -c. Returns -1 to go on, else an exit status. */
static int parse_common(int argc, char **argv, const char *help, bool allow_json, bool allow_count,
			struct cli_target *t, bool *json, long *count)
{
	static const struct option options[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "socket", required_argument, NULL, 's' },
		{ "interface", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sock = NULL, *ifname = NULL;
	int opt;
	while ((opt = getopt_long(argc, argv, allow_count ? "s:i:c:h" : "s:i:h", options, NULL)) != -1) {
		switch (opt) {
		case OPT_JSON:
			if (!allow_json)
				goto usage;
			*json = true;
			break;
		case 's':
			sock = optarg;
			break;
		case 'i':
			ifname = optarg;
			break;
		case 'c': {
			char *end;
			errno = 0;
			*count = strtol(optarg, &end, 10);
			if (!allow_count || errno || *end || end == optarg || *count < 1 || *count > CLI_PING_COUNT_MAX) {
				fprintf(stderr, "meshd %s: -c takes a count from 1 to %d, got '%s'\n", t->cmd,
					CLI_PING_COUNT_MAX, optarg);
				return CLI_EXIT_USAGE;
			}
			break;
		}
		case 'h':
			fputs(help, stdout);
			return EXIT_SUCCESS;
		default:
			goto usage;
		}
	}
	return pick_socket(t, sock, ifname) ? -1 : CLI_EXIT_USAGE;
usage:
	fprintf(stderr, "meshd %s: see meshd %s --help\n", t->cmd, t->cmd);
	return CLI_EXIT_USAGE;
}

int cli_status(int argc, char **argv)
{
	struct cli_target t = { .cmd = "status" };
	bool json = false;
	long count = 1;
	int rc = parse_common(argc, argv, status_help, true, false, &t, &json, &count);
	if (rc >= 0)
		return rc;
	if (optind != argc) {
		fprintf(stderr, "meshd status: takes no arguments (see meshd status --help)\n");
		return CLI_EXIT_USAGE;
	}
	rc = request(&t, IPC_CMD_STATUS, json ? IPC_FLAG_JSON : 0, NULL);
	return rc == CLI_ERROR ? EXIT_FAILURE : rc;
}

int cli_netcheck(int argc, char **argv)
{
	struct cli_target t = { .cmd = "netcheck" };
	bool json = false;
	long count = 1;
	int rc = parse_common(argc, argv, netcheck_help, true, false, &t, &json, &count);
	if (rc >= 0)
		return rc;
	if (optind != argc) {
		fprintf(stderr, "meshd netcheck: takes no arguments (see meshd netcheck --help)\n");
		return CLI_EXIT_USAGE;
	}
	rc = request(&t, IPC_CMD_NETCHECK, json ? IPC_FLAG_JSON : 0, NULL);
	return rc == CLI_ERROR ? EXIT_FAILURE : rc;
}

static const char set_help[] =
	"Usage: meshd set exit-node NAME|none [-s SOCKET | -i IFNAME]\n"
	"\n"
	"Sends all internet traffic through the exit node NAME (a peer whose exit offer the\n"
	"coordinator approved), or stops doing so (none). meshd's own traffic to the\n"
	"coordinator and to peers' direct endpoints stays outside the tunnel. While the exit\n"
	"node is away (removed, revoked, offline) internet traffic is dropped, not sent\n"
	"directly; 'meshd status' says so. Lasts until meshd restarts (exit_node: in the\n"
	"config makes it permanent).\n"
	"\n"
	"  -s, --socket PATH the daemon's control socket\n"
	"  -i, --interface IFNAME\n"
	"                    the daemon of this interface (default mesh0)\n";

int cli_set(int argc, char **argv)
{
	struct cli_target t = { .cmd = "set" };
	bool json = false;
	long count = 1;
	int rc = parse_common(argc, argv, set_help, false, false, &t, &json, &count);
	if (rc >= 0)
		return rc;
	if (optind != argc - 2 || strcmp(argv[optind], "exit-node") != 0) {
		fprintf(stderr, "meshd set: expected 'exit-node NAME|none' (see meshd set --help)\n");
		return CLI_EXIT_USAGE;
	}
	rc = request(&t, IPC_CMD_SET_EXIT_NODE, 0, argv[optind + 1]);
	return rc == CLI_ERROR ? EXIT_FAILURE : rc;
}

int cli_ping(int argc, char **argv)
{
	struct cli_target t = { .cmd = "ping" };
	bool json = false;
	long count = 1;
	int rc = parse_common(argc, argv, ping_help, false, true, &t, &json, &count);
	if (rc >= 0)
		return rc;
	if (optind != argc - 1) {
		fprintf(stderr, "meshd ping: needs one peer name or overlay address (see meshd ping --help)\n");
		return CLI_EXIT_USAGE;
	}
	bool any_pong = false;
	for (long i = 0; i < count; i++) {
		rc = request(&t, IPC_CMD_PING, 0, argv[optind]);
		if (rc == EXIT_SUCCESS)
			any_pong = true;
		else if (rc != EXIT_FAILURE) /* an error or a usage problem: another try says the same */
			return rc == CLI_ERROR ? EXIT_FAILURE : rc;
		if (rc == EXIT_SUCCESS && i + 1 < count)
			usleep(CLI_PING_INTERVAL_US);
	}
	return any_pong ? EXIT_SUCCESS : EXIT_FAILURE;
}
