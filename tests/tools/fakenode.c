/* fakenode: many simulated nodes against one meshcoord, over TCP, with the real control
 * protocol (src/core/control.h). The coordinator tests and contrib/bench/coord-scale.sh use it.
 *
 * One epoll loop drives N non-blocking connections, each with its own random node key:
 * hello -> welcome -> REGISTER -> REGISTERED -> the netmap (PEER...) -> NETMAP_END, then the
 * session is held (KEEPALIVE every 25 s) and every PEER that arrives is accounted for. With
 * --measure-propagation one node announces a new endpoint once every node knows every other,
 * and the time until all the others have heard of it is the propagation figure.
 *
 * Two raw modes send bytes that are not a session at all (--raw FILE, --half-open) and report
 * how the coordinator ended each connection: the bad-input test uses them for garbage,
 * oversized frames, replayed hellos and half-open connections.
 *
 * Everything is bounded: at most FAKENODE_MAX_COUNT connections, --timeout seconds in all, and
 * the target must be loopback or a documentation (lab) range, so a typo in a test or a
 * benchmark can never point thousands of connections at a real host.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "core/clock.h"
#include "core/control.h"
#include "core/handshake.h"
#include "core/joinkey.h"
#include "core/keys.h"

enum {
	/* The scale benchmark goes to 10,000; twice that is room, more is a mistake. */
	FAKENODE_MAX_COUNT = 20000,
	FAKENODE_DEFAULT_TIMEOUT_S = 300,
	FAKENODE_MAX_TIMEOUT_S = 3600,
	/* Handshakes in flight at once: keeps a burst of connects from overflowing the
	 * coordinator's listen backlog (SYN flood) and from timing out behind each other. */
	FAKENODE_DEFAULT_MAX_PENDING = 256,
	/* Under the coordinator's 75 s idle limit with room for two losses, like meshd. */
	FAKENODE_KEEPALIVE_MS = 25000,
	/* Bytes read per call: many frames per syscall during a netmap flood. */
	FAKENODE_READ_CHUNK = 256 * 1024,
	/* A session's own output is tiny (hello, register, endpoints, keepalives). */
	FAKENODE_WBUF = 1024,
	/* Reads per readiness event per connection: fairness between connections. */
	FAKENODE_READS_PER_EVENT = 4,
	FAKENODE_EPOLL_BATCH = 512,
	/* Progress goes to stderr this often: a long benchmark shows it is alive. */
	FAKENODE_PROGRESS_MS = 10000,
	/* Once every netmap is complete, this long without any new PEER counts as "settled"
	 * even if not every node knows every other (then a warning says so). */
	FAKENODE_SETTLE_MS = 5000,
	/* How long a --raw / --half-open connection waits for the coordinator to end it. */
	FAKENODE_DEFAULT_RAW_WAIT_S = 20,
	FAKENODE_MAX_RAW_FILE = 65536,
	/* Files and stdio on top of the connections. */
	FAKENODE_SPARE_FDS = 64,
};

/* The documentation ranges (RFC 5737) and loopback: the only places fakenode connects to. */
static const struct {
	uint32_t net, mask;
	const char *name;
} allowed_targets[] = {
	{ 0x7f000000u, 0xff000000u, "127.0.0.0/8" },
	{ 0xc0000200u, 0xffffff00u, "192.0.2.0/24" },
	{ 0xc6336400u, 0xffffff00u, "198.51.100.0/24" },
	{ 0xcb007100u, 0xffffff00u, "203.0.113.0/24" },
};

enum node_state {
	NODE_IDLE = 0,     /* not started yet */
	NODE_CONNECTING,   /* TCP connect in progress */
	NODE_HELLO_SENT,   /* frame 1 sent, waiting for the welcome */
	NODE_REGISTERING,  /* REGISTER sent, waiting for REGISTERED */
	NODE_NETMAP,       /* registered, receiving the full map */
	NODE_READY,        /* map complete: holding the session */
	NODE_DONE,         /* ended (failed, or closed after registration) */
};

struct node {
	int fd;
	enum node_state state;
	bool registered;
	bool failed;
	bool saw_propagation;
	bool converged;         /* knows every other fake node */
	bool closed_by_server;  /* EOF or reset from the coordinator (not our own close) */
	uint8_t private_key[WIRE_KEY_LEN];
	uint8_t public_key[WIRE_KEY_LEN];
	struct control_channel ch;
	uint64_t t_connect_ms;
	uint64_t t_registered_ms;
	uint64_t t_netmap_ms;
	uint64_t t_last_tx_ms;
	uint64_t t_closed_ms;
	uint32_t peers_known;   /* distinct other fake nodes this one has heard of */
	uint32_t rx_bytes;      /* raw modes: what the coordinator sent back (capped) */
	char name[CONTROL_NAME_MAX + 1];
	uint8_t ipv4[4];
	/* A partial frame carried over between reads (at most one frame minus a byte). */
	uint8_t *carry;
	size_t carry_len;
	uint8_t wbuf[FAKENODE_WBUF];
	size_t wlen;
	bool want_out;
};

/* What REGISTER carries as the join secret: the real one, or the two ways to be refused. */
enum secret_mode {
	SECRET_KEY = 0, /* the join key's secret */
	SECRET_NONE,    /* empty: an unknown node must be refused (need a join key) */
	SECRET_WRONG,   /* random: refused as an unknown join key */
};

struct options {
	const char *join;
	const char *join_file;
	const char *connect_to;
	long count;
	long hold_s;
	long connect_rate;
	long max_pending;
	long timeout_s;
	long raw_wait_s;
	bool measure_propagation;
	bool bad_key;
	bool print_registered;
	bool half_open;
	bool forge;
	bool quiet;
	enum secret_mode secret;
	const char *dump_hello;
	const char *raw_file;
	const char *hostname_prefix;
};

/* Why sessions ended: the summary on stderr says which, so a failing test shows the cause. */
enum fail_reason {
	FAIL_CONNECT = 0,
	FAIL_CLOSED_BEFORE_WELCOME,
	FAIL_BAD_WELCOME,
	FAIL_CLOSED_BEFORE_REGISTERED,
	FAIL_ERROR_MESSAGE,
	FAIL_DECRYPT,
	FAIL_MALFORMED,
	FAIL_BAD_FRAME,
	FAIL_SEND,
	FAIL_TIMEOUT,
	FAIL_CLOSED_AFTER_REGISTERED,
	FAIL_REASON_COUNT,
};

static const char *const fail_reason_names[FAIL_REASON_COUNT] = {
	[FAIL_CONNECT] = "connect failed",
	[FAIL_CLOSED_BEFORE_WELCOME] = "closed by the coordinator before the welcome",
	[FAIL_BAD_WELCOME] = "welcome did not authenticate",
	[FAIL_CLOSED_BEFORE_REGISTERED] = "closed by the coordinator before REGISTERED",
	[FAIL_ERROR_MESSAGE] = "ERROR message from the coordinator",
	[FAIL_DECRYPT] = "a frame did not decrypt",
	[FAIL_MALFORMED] = "a malformed message",
	[FAIL_BAD_FRAME] = "a bad frame length",
	[FAIL_SEND] = "send failed",
	[FAIL_TIMEOUT] = "not registered before --timeout",
	[FAIL_CLOSED_AFTER_REGISTERED] = "closed by the coordinator after REGISTERED",
};

struct run {
	struct options opt;
	struct joinkey jk;
	uint8_t coord_public[WIRE_KEY_LEN];
	struct sockaddr_storage target;
	socklen_t target_len;
	char target_text[64];
	int epfd;
	struct node *nodes;
	size_t n;
	/* key -> node index, open addressing: PEER messages name nodes by key */
	int32_t *key_index;
	size_t key_index_mask;
	/* bit (i, j): node i has heard of node j */
	uint64_t *known;
	size_t known_words;
	uint64_t t_start_ms;
	uint64_t t_deadline_ms;
	uint64_t t_last_registered_ms;
	uint64_t t_last_peer_ms;
	uint64_t t_all_netmaps_ms;
	uint64_t t_converged_ms;
	uint64_t t_prop_sent_ms;
	uint64_t t_prop_done_ms;
	uint64_t next_progress_ms;
	uint64_t next_keepalive_check_ms;
	size_t next_start;
	size_t pending;
	size_t started;
	size_t registered;
	size_t netmaps;
	size_t ready;         /* sessions in NODE_READY now */
	size_t converged;
	size_t failed;
	size_t closed_after_registration;
	size_t prop_seen;
	size_t foreign_peers; /* PEER messages about nodes that are not ours */
	uint64_t frames_in;
	uint64_t peer_msgs;
	size_t fail_counts[FAIL_REASON_COUNT];
	size_t error_codes[CONTROL_ERR_INTERNAL + 2];
	char last_error_text[CONTROL_MESSAGE_TEXT_MAX + 1];
	struct control_endpoint prop_endpoint;
	bool prop_sent;
	uint64_t netmap_max_ms;
	uint8_t *rbuf;
	FILE *registered_out;
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: fakenode --join KEY | --join-file FILE [options]\n"
		"  --count N              simulated nodes (1..%d, default 1)\n"
		"  --hold SECONDS         keep the sessions open this long once everything is done\n"
		"                         (KEEPALIVE every %d s)\n"
		"  --connect-rate R       connections started per second (default: unlimited)\n"
		"  --max-pending P        handshakes in flight at once (default %d)\n"
		"  --measure-propagation  once all maps are complete, one node announces a new endpoint;\n"
		"                         report the time until every other node has it\n"
		"  --print-registered     print 'registered NAME IPV4 KEY' for each acknowledged registration\n"
		"  --hostname PREFIX      hostnames are PREFIX-<i> (default fake)\n"
		"  --bad-key              use a wrong coordinator key: every hello must be refused\n"
		"  --secret key|none|wrong  join secret sent in REGISTER (default key); none and wrong\n"
		"                         must be refused with an ERROR message\n"
		"  --forge                after the welcome, send a frame of random bytes instead of\n"
		"                         REGISTER: the coordinator must close the connection\n"
		"  --dump-hello FILE      write the first node's raw first frame (header included) to FILE\n"
		"  --raw FILE             do not register: send FILE's bytes on each of --count fresh\n"
		"                         connections and report how the coordinator ended them\n"
		"  --half-open            do not register: open --count connections that send nothing\n"
		"  --raw-wait SECONDS     how long a raw connection waits to be closed (default %d)\n"
		"  --connect HOST:PORT    connect here instead of the join key's address (IPv4 literal)\n"
		"  --timeout SECONDS      bound on the whole run (default %d, at most %d)\n"
		"  --quiet                no progress lines\n"
		"Targets: 127.0.0.0/8, 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 only.\n"
		"Output: registered=N failed=M reg_per_sec=X netmap_ms=Y propagation_ms=Z ... (-1: not measured)\n",
		FAKENODE_MAX_COUNT, FAKENODE_KEEPALIVE_MS / 1000, FAKENODE_DEFAULT_MAX_PENDING,
		FAKENODE_DEFAULT_RAW_WAIT_S, FAKENODE_DEFAULT_TIMEOUT_S, FAKENODE_MAX_TIMEOUT_S);
}

static bool parse_long(const char *what, const char *s, long min, long max, long *out)
{
	char *end;

	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "fakenode: %s: '%s' is not a number in %ld..%ld\n", what, s, min, max);
		return false;
	}
	*out = v;
	return true;
}

static uint64_t now_ms(void)
{
	return clock_monotonic_ms();
}

static bool target_allowed(uint32_t addr_host_order)
{
	for (size_t i = 0; i < sizeof(allowed_targets) / sizeof(allowed_targets[0]); i++)
		if ((addr_host_order & allowed_targets[i].mask) == allowed_targets[i].net)
			return true;
	return false;
}

/* Resolves host:port without DNS (a test never needs a name) and applies the guard. */
static bool target_set(struct run *r, const char *host, uint16_t port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&r->target;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&r->target;

	memset(&r->target, 0, sizeof(r->target));
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		if (!target_allowed(ntohl(sin->sin_addr.s_addr)))
			goto refused;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		r->target_len = sizeof(*sin);
		snprintf(r->target_text, sizeof(r->target_text), "%s:%u", host, port);
		return true;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		if (!IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr))
			goto refused;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		r->target_len = sizeof(*sin6);
		snprintf(r->target_text, sizeof(r->target_text), "[%s]:%u", host, port);
		return true;
	}
	fprintf(stderr, "fakenode: '%s' is not an IP address literal (fakenode does not resolve names)\n", host);
	return false;
refused:
	fprintf(stderr,
		"fakenode: refusing to connect to %s: only 127.0.0.0/8, 192.0.2.0/24, 198.51.100.0/24,\n"
		"          203.0.113.0/24 and ::1 are allowed (loopback and the test lab)\n",
		host);
	return false;
}

static bool read_small_file(const char *path, char *buf, size_t cap, size_t *len_out)
{
	FILE *f = fopen(path, "rb");
	size_t len;

	if (!f) {
		fprintf(stderr, "fakenode: %s: %s\n", path, strerror(errno));
		return false;
	}
	len = fread(buf, 1, cap, f);
	if (ferror(f) || (len == cap && fgetc(f) != EOF)) {
		fprintf(stderr, "fakenode: %s: unreadable or larger than %zu bytes\n", path, cap - 1);
		fclose(f);
		return false;
	}
	fclose(f);
	*len_out = len;
	return true;
}

static bool parse_options(int argc, char **argv, struct options *o)
{
	enum {
		OPT_JOIN = 256, OPT_JOIN_FILE, OPT_CONNECT, OPT_COUNT, OPT_HOLD, OPT_RATE, OPT_PENDING, OPT_TIMEOUT,
		OPT_MEASURE, OPT_BAD_KEY, OPT_PRINT, OPT_DUMP, OPT_RAW, OPT_HALF_OPEN, OPT_RAW_WAIT, OPT_HOSTNAME,
		OPT_QUIET, OPT_SECRET, OPT_FORGE, OPT_HELP,
	};
	static const struct option longopts[] = {
		{ "join", required_argument, NULL, OPT_JOIN },
		{ "join-file", required_argument, NULL, OPT_JOIN_FILE },
		{ "connect", required_argument, NULL, OPT_CONNECT },
		{ "count", required_argument, NULL, OPT_COUNT },
		{ "hold", required_argument, NULL, OPT_HOLD },
		{ "connect-rate", required_argument, NULL, OPT_RATE },
		{ "max-pending", required_argument, NULL, OPT_PENDING },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "measure-propagation", no_argument, NULL, OPT_MEASURE },
		{ "bad-key", no_argument, NULL, OPT_BAD_KEY },
		{ "print-registered", no_argument, NULL, OPT_PRINT },
		{ "dump-hello", required_argument, NULL, OPT_DUMP },
		{ "raw", required_argument, NULL, OPT_RAW },
		{ "half-open", no_argument, NULL, OPT_HALF_OPEN },
		{ "raw-wait", required_argument, NULL, OPT_RAW_WAIT },
		{ "hostname", required_argument, NULL, OPT_HOSTNAME },
		{ "quiet", no_argument, NULL, OPT_QUIET },
		{ "secret", required_argument, NULL, OPT_SECRET },
		{ "forge", no_argument, NULL, OPT_FORGE },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->count = 1;
	o->max_pending = FAKENODE_DEFAULT_MAX_PENDING;
	o->timeout_s = FAKENODE_DEFAULT_TIMEOUT_S;
	o->raw_wait_s = FAKENODE_DEFAULT_RAW_WAIT_S;
	o->hostname_prefix = "fake";
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_JOIN: o->join = optarg; break;
		case OPT_JOIN_FILE: o->join_file = optarg; break;
		case OPT_CONNECT: o->connect_to = optarg; break;
		case OPT_COUNT:
			if (!parse_long("--count", optarg, 1, FAKENODE_MAX_COUNT, &o->count))
				return false;
			break;
		case OPT_HOLD:
			if (!parse_long("--hold", optarg, 0, FAKENODE_MAX_TIMEOUT_S, &o->hold_s))
				return false;
			break;
		case OPT_RATE:
			if (!parse_long("--connect-rate", optarg, 0, 1000000, &o->connect_rate))
				return false;
			break;
		case OPT_PENDING:
			if (!parse_long("--max-pending", optarg, 1, FAKENODE_MAX_COUNT, &o->max_pending))
				return false;
			break;
		case OPT_TIMEOUT:
			if (!parse_long("--timeout", optarg, 1, FAKENODE_MAX_TIMEOUT_S, &o->timeout_s))
				return false;
			break;
		case OPT_RAW_WAIT:
			if (!parse_long("--raw-wait", optarg, 1, FAKENODE_MAX_TIMEOUT_S, &o->raw_wait_s))
				return false;
			break;
		case OPT_MEASURE: o->measure_propagation = true; break;
		case OPT_BAD_KEY: o->bad_key = true; break;
		case OPT_PRINT: o->print_registered = true; break;
		case OPT_DUMP: o->dump_hello = optarg; break;
		case OPT_RAW: o->raw_file = optarg; break;
		case OPT_HALF_OPEN: o->half_open = true; break;
		case OPT_HOSTNAME: o->hostname_prefix = optarg; break;
		case OPT_QUIET: o->quiet = true; break;
		case OPT_FORGE: o->forge = true; break;
		case OPT_SECRET:
			if (strcmp(optarg, "key") == 0) {
				o->secret = SECRET_KEY;
			} else if (strcmp(optarg, "none") == 0) {
				o->secret = SECRET_NONE;
			} else if (strcmp(optarg, "wrong") == 0) {
				o->secret = SECRET_WRONG;
			} else {
				fprintf(stderr, "fakenode: --secret: key, none or wrong\n");
				return false;
			}
			break;
		case OPT_HELP: usage(stdout); exit(0);
		default: usage(stderr); return false;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "fakenode: unexpected argument '%s'\n", argv[optind]);
		return false;
	}
	if (!o->join == !o->join_file && !(o->connect_to && (o->raw_file || o->half_open))) {
		fprintf(stderr, "fakenode: give exactly one of --join KEY and --join-file FILE\n");
		return false;
	}
	if (o->raw_file && o->half_open) {
		fprintf(stderr, "fakenode: --raw and --half-open exclude each other\n");
		return false;
	}
	if (o->measure_propagation && o->count < 2) {
		fprintf(stderr, "fakenode: --measure-propagation needs --count 2 or more\n");
		return false;
	}
	/* hostname PREFIX-<5 digits> must stay a valid name */
	if (strlen(o->hostname_prefix) == 0 || strlen(o->hostname_prefix) > CONTROL_NAME_MAX - 7) {
		fprintf(stderr, "fakenode: --hostname: 1..%d characters\n", CONTROL_NAME_MAX - 7);
		return false;
	}
	return true;
}

/* ---------------------------------------------------------------- bookkeeping */

static size_t node_index(const struct run *r, const struct node *nd)
{
	return (size_t)(nd - r->nodes);
}

static uint64_t key_hash(const uint8_t key[WIRE_KEY_LEN])
{
	uint64_t h;

	/* keys are random: their first bytes are already a good hash */
	memcpy(&h, key, sizeof(h));
	return h;
}

static bool key_index_build(struct run *r)
{
	size_t slots = 1;

	while (slots < r->n * 2)
		slots <<= 1;
	r->key_index = malloc(slots * sizeof(*r->key_index));
	if (!r->key_index)
		return false;
	for (size_t i = 0; i < slots; i++)
		r->key_index[i] = -1;
	r->key_index_mask = slots - 1;
	for (size_t i = 0; i < r->n; i++) {
		size_t s = (size_t)key_hash(r->nodes[i].public_key) & r->key_index_mask;

		while (r->key_index[s] >= 0)
			s = (s + 1) & r->key_index_mask;
		r->key_index[s] = (int32_t)i;
	}
	return true;
}

static long key_lookup(const struct run *r, const uint8_t key[WIRE_KEY_LEN])
{
	size_t s = (size_t)key_hash(key) & r->key_index_mask;

	/* the table is at most half full, so an empty slot ends every search */
	while (r->key_index[s] >= 0) {
		if (memcmp(r->nodes[r->key_index[s]].public_key, key, WIRE_KEY_LEN) == 0)
			return r->key_index[s];
		s = (s + 1) & r->key_index_mask;
	}
	return -1;
}

static bool node_in_handshake(const struct node *nd)
{
	return nd->state == NODE_CONNECTING || nd->state == NODE_HELLO_SENT || nd->state == NODE_REGISTERING;
}

static void node_close(struct run *r, struct node *nd)
{
	if (nd->fd >= 0) {
		epoll_ctl(r->epfd, EPOLL_CTL_DEL, nd->fd, NULL);
		close(nd->fd);
		nd->fd = -1;
	}
	if (node_in_handshake(nd) && r->pending > 0)
		r->pending--;
	if (nd->state == NODE_READY && r->ready > 0)
		r->ready--;
	nd->t_closed_ms = now_ms();
	free(nd->carry);
	nd->carry = NULL;
	nd->carry_len = 0;
	control_channel_clear(&nd->ch);
	nd->state = NODE_DONE;
}

static void node_fail(struct run *r, struct node *nd, enum fail_reason why)
{
	if (nd->state == NODE_DONE)
		return;
	if (nd->registered) {
		/* counted as registered; it just did not last */
		r->closed_after_registration++;
		r->fail_counts[FAIL_CLOSED_AFTER_REGISTERED]++;
	} else {
		nd->failed = true;
		r->failed++;
		r->fail_counts[why]++;
	}
	node_close(r, nd);
}

static void epoll_update(struct run *r, struct node *nd)
{
	struct epoll_event ev = { .events = EPOLLIN | (nd->want_out ? EPOLLOUT : 0), .data.ptr = nd };

	epoll_ctl(r->epfd, EPOLL_CTL_MOD, nd->fd, &ev);
}

/* Sends what is queued; keeps the rest for EPOLLOUT. False: the connection is gone. */
static bool node_flush(struct run *r, struct node *nd)
{
	while (nd->wlen > 0) {
		ssize_t w = send(nd->fd, nd->wbuf, nd->wlen, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (w <= 0)
			return false;
		memmove(nd->wbuf, nd->wbuf + w, nd->wlen - (size_t)w);
		nd->wlen -= (size_t)w;
	}
	bool want = nd->wlen > 0;

	if (want != nd->want_out) {
		nd->want_out = want;
		epoll_update(r, nd);
	}
	return true;
}

static bool node_queue(struct node *nd, const uint8_t *data, size_t len)
{
	if (len > sizeof(nd->wbuf) - nd->wlen)
		return false;
	memcpy(nd->wbuf + nd->wlen, data, len);
	nd->wlen += len;
	return true;
}

static bool node_send_message(struct run *r, struct node *nd, const struct control_message *m)
{
	uint8_t plain[CONTROL_MAX_PLAIN];
	uint8_t frame[CONTROL_FRAME_HEADER_LEN + CONTROL_MAX_FRAME];
	size_t plain_len = control_encode(m, plain, sizeof(plain));
	size_t frame_len;
	bool ok = plain_len > 0 && control_seal(&nd->ch, plain, plain_len, frame, sizeof(frame), &frame_len) &&
		  node_queue(nd, frame, frame_len);

	sodium_memzero(plain, sizeof(plain));
	if (!ok)
		return false;
	nd->t_last_tx_ms = now_ms();
	return node_flush(r, nd);
}

/* Each fake node reports one candidate endpoint in TEST-NET-3: distinct per node, never sent
 * to (fakenode speaks no UDP, and meshd nodes in the lab have no route there). */
static void fake_endpoint(size_t i, struct control_endpoint *ep)
{
	memset(ep, 0, sizeof(*ep));
	ep->family = 4;
	ep->addr[0] = 203;
	ep->addr[1] = 0;
	ep->addr[2] = 113;
	ep->addr[3] = (uint8_t)(1 + i % 250);
	ep->port = (uint16_t)(20000 + i / 250);
}

static bool endpoint_equal(const struct control_endpoint *a, const struct control_endpoint *b)
{
	size_t alen = a->family == 6 ? 16 : 4;

	return a->family == b->family && a->port == b->port && memcmp(a->addr, b->addr, alen) == 0;
}

/* ---------------------------------------------------------------- node state machine */

static bool hello_dump(const char *path, const uint8_t *frame, size_t len)
{
	FILE *f = fopen(path, "wb");
	bool ok = f && fwrite(frame, 1, len, f) == len;

	if (f && fclose(f) != 0)
		ok = false;
	if (!ok)
		fprintf(stderr, "fakenode: --dump-hello %s: %s\n", path, strerror(errno));
	return ok;
}

static void node_connected(struct run *r, struct node *nd)
{
	int err = 0;
	socklen_t elen = sizeof(err);
	uint8_t stamp[WIRE_TIMESTAMP_LEN];
	uint8_t frame[CONTROL_FRAME_HEADER_LEN + CONTROL_HELLO_LEN];
	size_t frame_len;

	if (getsockopt(nd->fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0 || err != 0) {
		if (r->fail_counts[FAIL_CONNECT] == 0)
			fprintf(stderr, "fakenode: connect to %s: %s\n", r->target_text, strerror(err ? err : errno));
		node_fail(r, nd, FAIL_CONNECT);
		return;
	}
	if (r->opt.raw_file || r->opt.half_open) {
		nd->state = NODE_HELLO_SENT; /* waiting for the coordinator to end it */
		if (!node_flush(r, nd))
			node_fail(r, nd, FAIL_SEND);
		return;
	}
	handshake_tai64n(stamp, clock_realtime());
	if (!control_client_hello(&nd->ch, nd->private_key, r->coord_public, stamp, NULL, frame, sizeof(frame),
				  &frame_len)) {
		fprintf(stderr, "fakenode: control_client_hello failed\n");
		node_fail(r, nd, FAIL_SEND);
		return;
	}
	if (r->opt.dump_hello && node_index(r, nd) == 0 && !hello_dump(r->opt.dump_hello, frame, frame_len))
		stop_requested = 1;
	nd->state = NODE_HELLO_SENT;
	if (!node_queue(nd, frame, frame_len) || !node_flush(r, nd))
		node_fail(r, nd, FAIL_SEND);
}

static void node_on_welcome(struct run *r, struct node *nd, const uint8_t *body, size_t len)
{
	struct control_message m;
	size_t i = node_index(r, nd);

	if (!control_client_finish(&nd->ch, body, len)) {
		node_fail(r, nd, FAIL_BAD_WELCOME);
		return;
	}
	if (r->opt.forge) {
		/* a transport frame nobody sealed: as long as a REGISTER, contents random */
		uint8_t frame[CONTROL_FRAME_HEADER_LEN + 64];

		randombytes_buf(frame, sizeof(frame));
		frame[0] = 0;
		frame[1] = (uint8_t)(sizeof(frame) - CONTROL_FRAME_HEADER_LEN);
		nd->state = NODE_REGISTERING;
		if (!node_queue(nd, frame, sizeof(frame)) || !node_flush(r, nd))
			node_fail(r, nd, FAIL_SEND);
		return;
	}
	memset(&m, 0, sizeof(m));
	m.type = CONTROL_MSG_REGISTER;
	snprintf(m.u.reg.hostname, sizeof(m.u.reg.hostname), "%s-%zu", r->opt.hostname_prefix, i);
	switch (r->opt.secret) {
	case SECRET_KEY:
		memcpy(m.u.reg.join_secret, r->jk.secret, JOINKEY_SECRET_LEN);
		m.u.reg.join_secret_len = JOINKEY_SECRET_LEN;
		break;
	case SECRET_WRONG:
		randombytes_buf(m.u.reg.join_secret, JOINKEY_SECRET_LEN);
		m.u.reg.join_secret_len = JOINKEY_SECRET_LEN;
		break;
	case SECRET_NONE:
		m.u.reg.join_secret_len = 0;
		break;
	}
	fake_endpoint(i, &m.u.reg.endpoints[0]);
	m.u.reg.n_endpoints = 1;
	nd->state = NODE_REGISTERING;
	bool ok = node_send_message(r, nd, &m);

	sodium_memzero(&m, sizeof(m));
	if (!ok)
		node_fail(r, nd, FAIL_SEND);
}

static void node_on_registered(struct run *r, struct node *nd, const struct control_registered *reg)
{
	char ip[INET_ADDRSTRLEN] = "?";
	char key[KEY_BASE64_LEN + 1];

	nd->registered = true;
	nd->t_registered_ms = now_ms();
	snprintf(nd->name, sizeof(nd->name), "%s", reg->name);
	memcpy(nd->ipv4, reg->ipv4, sizeof(nd->ipv4));
	nd->state = NODE_NETMAP;
	if (r->pending > 0)
		r->pending--;
	r->registered++;
	r->t_last_registered_ms = nd->t_registered_ms;
	if (r->opt.print_registered) {
		inet_ntop(AF_INET, reg->ipv4, ip, sizeof(ip));
		key_to_base64(key, nd->public_key);
		/* line-buffered: a test that kills the coordinator mid-run sees every line printed */
		printf("registered %s %s %s\n", nd->name, ip, key);
		fflush(stdout);
	}
}

static void node_check_converged(struct run *r, struct node *nd)
{
	if (nd->converged || nd->peers_known != r->n - 1)
		return;
	nd->converged = true;
	r->converged++;
	if (r->converged == r->n - r->failed && r->t_converged_ms == 0)
		r->t_converged_ms = now_ms();
}

static void node_on_peer(struct run *r, struct node *nd, const struct control_peer *p)
{
	size_t self = node_index(r, nd);
	long other = key_lookup(r, p->node_key);

	r->peer_msgs++;
	r->t_last_peer_ms = now_ms();
	if (other < 0) {
		r->foreign_peers++;
		return;
	}
	if ((size_t)other == self)
		return;
	uint64_t *row = r->known + self * r->known_words;
	uint64_t bit = UINT64_C(1) << ((size_t)other % 64);

	if (!(row[(size_t)other / 64] & bit)) {
		row[(size_t)other / 64] |= bit;
		nd->peers_known++;
		node_check_converged(r, nd);
	}
	if (r->prop_sent && !nd->saw_propagation && (size_t)other == 0) {
		for (size_t e = 0; e < p->n_endpoints; e++) {
			if (endpoint_equal(&p->endpoints[e], &r->prop_endpoint)) {
				nd->saw_propagation = true;
				r->prop_seen++;
				break;
			}
		}
	}
}

static void node_on_message(struct run *r, struct node *nd, const uint8_t *plain, size_t len)
{
	struct control_message m;
	enum control_decode_result res = control_decode(plain, len, &m);

	if (res == CONTROL_DECODE_UNKNOWN)
		return;
	if (res != CONTROL_DECODE_OK) {
		node_fail(r, nd, FAIL_MALFORMED);
		return;
	}
	switch (m.type) {
	case CONTROL_MSG_REGISTERED:
		if (nd->state != NODE_REGISTERING) {
			node_fail(r, nd, FAIL_MALFORMED);
			return;
		}
		node_on_registered(r, nd, &m.u.registered);
		break;
	case CONTROL_MSG_ERROR:
		r->error_codes[m.u.error.code <= CONTROL_ERR_INTERNAL ? m.u.error.code : CONTROL_ERR_INTERNAL + 1]++;
		snprintf(r->last_error_text, sizeof(r->last_error_text), "%s", m.u.error.text);
		node_fail(r, nd, FAIL_ERROR_MESSAGE);
		break;
	case CONTROL_MSG_PEER:
		if (nd->registered)
			node_on_peer(r, nd, &m.u.peer);
		break;
	case CONTROL_MSG_NETMAP_END:
		if (nd->state == NODE_NETMAP) {
			nd->state = NODE_READY;
			r->ready++;
			nd->t_netmap_ms = now_ms();
			/* real nodes are not in step: spread the keepalives over the period, so any
			 * window of an idle measurement carries its share of them */
			nd->t_last_tx_ms = nd->t_netmap_ms - randombytes_uniform(FAKENODE_KEEPALIVE_MS);
			if (nd->t_netmap_ms - nd->t_registered_ms > r->netmap_max_ms)
				r->netmap_max_ms = nd->t_netmap_ms - nd->t_registered_ms;
			r->netmaps++;
			/* a lone node knows everyone as soon as its (empty) map is complete */
			node_check_converged(r, nd);
			if (r->netmaps + r->failed == r->n)
				r->t_all_netmaps_ms = nd->t_netmap_ms;
		}
		break;
	default:
		/* PEER_REMOVE, KEEPALIVE and anything newer: nothing to account for */
		break;
	}
}

static void node_on_frame(struct run *r, struct node *nd, const uint8_t *body, size_t len)
{
	uint8_t plain[CONTROL_MAX_FRAME];
	size_t plain_len;

	r->frames_in++;
	if (nd->state == NODE_HELLO_SENT) {
		node_on_welcome(r, nd, body, len);
		return;
	}
	if (!control_open(&nd->ch, body, len, plain, sizeof(plain), &plain_len)) {
		node_fail(r, nd, FAIL_DECRYPT);
		return;
	}
	node_on_message(r, nd, plain, plain_len);
}

/* Why a connection closed, from where it was in the exchange. */
static enum fail_reason close_reason(const struct node *nd)
{
	return nd->state == NODE_HELLO_SENT ? FAIL_CLOSED_BEFORE_WELCOME : FAIL_CLOSED_BEFORE_REGISTERED;
}

static void node_readable(struct run *r, struct node *nd)
{
	uint8_t *buf = r->rbuf;

	for (int reads = 0; reads < FAKENODE_READS_PER_EVENT && nd->state != NODE_DONE; reads++) {
		size_t have = nd->carry_len;
		ssize_t got;

		if (have)
			memcpy(buf, nd->carry, have);
		got = recv(nd->fd, buf + have, FAKENODE_READ_CHUNK, 0);
		if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		if (got <= 0) {
			nd->closed_by_server = true;
			node_fail(r, nd, close_reason(nd));
			return;
		}
		if (r->opt.raw_file || r->opt.half_open) {
			nd->rx_bytes += (uint32_t)got;
			nd->carry_len = 0;
			continue;
		}
		have += (size_t)got;

		size_t off = 0;
		while (nd->state != NODE_DONE) {
			const uint8_t *body;
			size_t body_len, consumed;
			int f = control_frame_next(buf + off, have - off, &body, &body_len, &consumed);

			if (f == 0)
				break;
			if (f < 0) {
				node_fail(r, nd, FAIL_BAD_FRAME);
				return;
			}
			node_on_frame(r, nd, body, body_len);
			off += consumed;
		}
		if (nd->state == NODE_DONE)
			return;
		nd->carry_len = have - off;
		if (nd->carry_len) {
			if (!nd->carry) {
				nd->carry = malloc(CONTROL_FRAME_HEADER_LEN + CONTROL_MAX_FRAME);
				if (!nd->carry) {
					node_fail(r, nd, FAIL_SEND);
					return;
				}
			}
			memcpy(nd->carry, buf + off, nd->carry_len);
		}
		if ((size_t)got < FAKENODE_READ_CHUNK)
			return; /* drained */
	}
}

static void node_start(struct run *r, struct node *nd, const uint8_t *raw, size_t raw_len)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = nd };
	int one = 1;

	r->started++;
	r->pending++;
	nd->state = NODE_CONNECTING;
	nd->t_connect_ms = now_ms();
	nd->fd = socket(r->target.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (nd->fd < 0) {
		fprintf(stderr, "fakenode: socket: %s\n", strerror(errno));
		node_fail(r, nd, FAIL_CONNECT);
		return;
	}
	/* small frames, latency measured: no Nagle delay */
	setsockopt(nd->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (raw_len && !node_queue(nd, raw, raw_len)) {
		node_fail(r, nd, FAIL_SEND);
		return;
	}
	if (connect(nd->fd, (const struct sockaddr *)&r->target, r->target_len) < 0 && errno != EINPROGRESS) {
		if (r->fail_counts[FAIL_CONNECT] == 0)
			fprintf(stderr, "fakenode: connect to %s: %s\n", r->target_text, strerror(errno));
		close(nd->fd);
		nd->fd = -1;
		node_fail(r, nd, FAIL_CONNECT);
		return;
	}
	nd->want_out = true;
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, nd->fd, &ev) < 0) {
		fprintf(stderr, "fakenode: epoll_ctl: %s\n", strerror(errno));
		node_fail(r, nd, FAIL_CONNECT);
	}
}

static void node_event(struct run *r, struct node *nd, uint32_t events)
{
	if (nd->state == NODE_CONNECTING) {
		if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			node_connected(r, nd);
		return;
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP))
		node_readable(r, nd);
	if (nd->state != NODE_DONE && (events & EPOLLOUT) && !node_flush(r, nd))
		node_fail(r, nd, FAIL_SEND);
}

/* ---------------------------------------------------------------- the run */

/* Starts as many connections as the rate and the in-flight bound allow now. */
static void start_more(struct run *r, uint64_t now, const uint8_t *raw, size_t raw_len)
{
	while (r->next_start < r->n && r->pending < (size_t)r->opt.max_pending) {
		if (r->opt.connect_rate > 0) {
			uint64_t allowed = 1 + (now - r->t_start_ms) * (uint64_t)r->opt.connect_rate / 1000;

			if (r->started >= allowed)
				break;
		}
		node_start(r, &r->nodes[r->next_start++], raw, raw_len);
	}
}

static void send_keepalives(struct run *r, uint64_t now)
{
	struct control_message m = { .type = CONTROL_MSG_KEEPALIVE };

	/* a scan of every session: once a second is plenty for a 25 s period */
	if (now < r->next_keepalive_check_ms)
		return;
	r->next_keepalive_check_ms = now + 1000;
	for (size_t i = 0; i < r->n; i++) {
		struct node *nd = &r->nodes[i];

		if ((nd->state == NODE_READY || nd->state == NODE_NETMAP) && now - nd->t_last_tx_ms >= FAKENODE_KEEPALIVE_MS &&
		    !node_send_message(r, nd, &m))
			node_fail(r, nd, FAIL_SEND);
	}
}

/* Node 0 announces a new endpoint; every other live node must hear of it. */
static void propagation_start(struct run *r)
{
	struct node *nd = &r->nodes[0];
	struct control_message m;

	memset(&m, 0, sizeof(m));
	m.type = CONTROL_MSG_ENDPOINTS;
	r->prop_endpoint.family = 4;
	r->prop_endpoint.addr[0] = 198;
	r->prop_endpoint.addr[1] = 51;
	r->prop_endpoint.addr[2] = 100;
	r->prop_endpoint.addr[3] = 200;
	/* a port no registration used: the change is unmistakable */
	r->prop_endpoint.port = (uint16_t)(40000 + randombytes_uniform(20000));
	m.u.endpoints.list[0] = r->prop_endpoint;
	fake_endpoint(0, &m.u.endpoints.list[1]);
	m.u.endpoints.n = 2;
	r->prop_sent = true;
	r->t_prop_sent_ms = now_ms();
	if (!node_send_message(r, nd, &m)) {
		fprintf(stderr, "fakenode: could not send the endpoint change\n");
		node_fail(r, nd, FAIL_SEND);
	}
}

static void progress(struct run *r, uint64_t now, bool force)
{
	if (r->opt.quiet || (!force && now < r->next_progress_ms))
		return;
	r->next_progress_ms = now + FAKENODE_PROGRESS_MS;
	fprintf(stderr,
		"fakenode: %" PRIu64 " s: started=%zu in_flight=%zu registered=%zu netmaps=%zu converged=%zu failed=%zu "
		"peer_msgs=%" PRIu64 "\n",
		(now - r->t_start_ms) / 1000, r->started, r->pending, r->registered, r->netmaps, r->converged, r->failed,
		r->peer_msgs);
}

/* Phases of a node run, in order; each ends when its condition holds or time runs out. */
static int run_nodes(struct run *r)
{
	struct epoll_event evs[FAKENODE_EPOLL_BATCH];
	uint64_t hold_end = 0;
	bool timed_out = false;

	r->next_progress_ms = r->t_start_ms + FAKENODE_PROGRESS_MS;
	while (!stop_requested) {
		uint64_t now = now_ms();

		if (now >= r->t_deadline_ms) {
			timed_out = true;
			break;
		}
		start_more(r, now, NULL, 0);
		send_keepalives(r, now);
		progress(r, now, false);

		bool all_settled = r->next_start == r->n && r->netmaps + r->failed + r->closed_after_registration >= r->n &&
				   r->pending == 0;
		bool converged = r->converged + r->failed >= r->n;
		bool settled_enough = all_settled && (converged || now - r->t_last_peer_ms >= FAKENODE_SETTLE_MS);

		if (r->opt.measure_propagation && !r->prop_sent && settled_enough) {
			if (!converged)
				fprintf(stderr,
					"fakenode: warning: maps settled but only %zu of %zu nodes know every other one\n",
					r->converged, r->n - r->failed);
			if (r->nodes[0].state != NODE_READY) {
				fprintf(stderr, "fakenode: node 0 is not registered: cannot measure propagation\n");
				r->opt.measure_propagation = false;
			} else {
				propagation_start(r);
			}
		}
		bool prop_done = !r->opt.measure_propagation ||
				 (r->prop_sent && r->prop_seen + (r->nodes[0].state == NODE_READY) >= r->ready);

		if (r->prop_sent && prop_done && r->t_prop_done_ms == 0)
			r->t_prop_done_ms = now_ms();
		if (settled_enough && prop_done) {
			if (hold_end == 0) {
				hold_end = now + (uint64_t)r->opt.hold_s * 1000;
				if (r->opt.hold_s && !r->opt.quiet)
					fprintf(stderr, "fakenode: all done; holding %zu sessions for %ld s\n", r->ready,
						r->opt.hold_s);
			}
			if (now >= hold_end)
				break;
		}

		int timeout = 100;
		int n = epoll_wait(r->epfd, evs, FAKENODE_EPOLL_BATCH, timeout);

		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "fakenode: epoll_wait: %s\n", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++)
			node_event(r, evs[i].data.ptr, evs[i].events);
	}
	if (timed_out) {
		fprintf(stderr, "fakenode: --timeout %ld s reached\n", r->opt.timeout_s);
		if (hold_end)
			fprintf(stderr, "fakenode: the hold was cut short by --timeout\n");
	}
	progress(r, now_ms(), true);
	for (size_t i = 0; i < r->n; i++) {
		struct node *nd = &r->nodes[i];

		if (nd->state != NODE_DONE && nd->state != NODE_IDLE && !nd->registered)
			node_fail(r, nd, FAIL_TIMEOUT);
		else if (nd->state == NODE_IDLE) {
			nd->failed = true;
			r->failed++;
			r->fail_counts[FAIL_TIMEOUT]++;
		}
		if (nd->state != NODE_DONE)
			node_close(r, nd);
	}

	uint64_t reg_span = r->t_last_registered_ms > r->t_start_ms ? r->t_last_registered_ms - r->t_start_ms : 1;
	double reg_per_sec = r->registered ? (double)r->registered * 1000.0 / (double)reg_span : 0.0;
	long long netmap_ms = r->netmaps ? (long long)r->netmap_max_ms : -1;
	long long prop_ms = r->t_prop_done_ms ? (long long)(r->t_prop_done_ms - r->t_prop_sent_ms) : -1;
	long long conv_ms = r->t_converged_ms ? (long long)(r->t_converged_ms - r->t_start_ms) : -1;
	long long all_netmaps_ms = r->t_all_netmaps_ms ? (long long)(r->t_all_netmaps_ms - r->t_start_ms) : -1;

	for (int i = 0; i < FAIL_REASON_COUNT; i++)
		if (r->fail_counts[i])
			fprintf(stderr, "fakenode: %zu session(s): %s\n", r->fail_counts[i], fail_reason_names[i]);
	for (int c = 0; c <= CONTROL_ERR_INTERNAL + 1; c++)
		if (r->error_codes[c])
			fprintf(stderr, "fakenode: %zu ERROR message(s) with code %d (last text: \"%s\")\n", r->error_codes[c],
				c, r->last_error_text);
	if (r->opt.measure_propagation && r->prop_sent && !r->t_prop_done_ms)
		fprintf(stderr, "fakenode: the endpoint change reached only %zu of %zu nodes\n", r->prop_seen,
			r->ready ? r->ready - 1 : 0);

	printf("registered=%zu failed=%zu reg_per_sec=%.1f netmap_ms=%lld propagation_ms=%lld converge_ms=%lld "
	       "all_netmaps_ms=%lld propagated_to=%zu closed_after_registration=%zu peer_msgs=%" PRIu64
	       " foreign_peers=%zu elapsed_ms=%" PRIu64 "\n",
	       r->registered, r->failed, reg_per_sec, netmap_ms, prop_ms, conv_ms, all_netmaps_ms, r->prop_seen,
	       r->closed_after_registration, r->peer_msgs, r->foreign_peers, now_ms() - r->t_start_ms);
	if (r->fail_counts[FAIL_ERROR_MESSAGE]) {
		/* "refused_codes=4:2,6:1": which ERROR codes came back, how often */
		const char *sep = "";

		printf("refused_codes=");
		for (int c = 0; c <= CONTROL_ERR_INTERNAL + 1; c++) {
			if (r->error_codes[c]) {
				printf("%s%d:%zu", sep, c, r->error_codes[c]);
				sep = ",";
			}
		}
		printf("\n");
	}
	fflush(stdout);

	if (r->opt.forge)
		return r->fail_counts[FAIL_CLOSED_BEFORE_REGISTERED] == r->n ? 0 : 1;
	if (r->opt.secret != SECRET_KEY)
		return r->fail_counts[FAIL_ERROR_MESSAGE] == r->n ? 0 : 1;
	if (r->opt.bad_key) {
		/* every hello must have been turned away, none answered */
		size_t refused = r->fail_counts[FAIL_CLOSED_BEFORE_WELCOME];

		printf("bad_key_refused=%zu of %zu\n", refused, r->n);
		return refused == r->n ? 0 : 1;
	}
	if (r->registered != r->n || r->closed_after_registration)
		return 1;
	if (r->opt.measure_propagation && !r->t_prop_done_ms)
		return 1;
	return 0;
}

/* --raw / --half-open: connections that are not sessions; the coordinator must end each. */
static int run_raw(struct run *r, const uint8_t *raw, size_t raw_len)
{
	struct epoll_event evs[FAKENODE_EPOLL_BATCH];
	uint64_t wait_end = 0;
	size_t closed = 0, replied = 0, connect_failed;
	uint64_t first_close = 0, last_close = 0;

	while (!stop_requested) {
		uint64_t now = now_ms();

		if (now >= r->t_deadline_ms)
			break;
		start_more(r, now, raw, raw_len);
		if (r->next_start == r->n && wait_end == 0)
			wait_end = now + (uint64_t)r->opt.raw_wait_s * 1000;
		if (wait_end && now >= wait_end)
			break;

		bool all_done = r->next_start == r->n;
		for (size_t i = 0; all_done && i < r->n; i++)
			all_done = r->nodes[i].state == NODE_DONE;
		if (all_done)
			break;

		int n = epoll_wait(r->epfd, evs, FAKENODE_EPOLL_BATCH, 50);

		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++)
			node_event(r, evs[i].data.ptr, evs[i].events);
	}
	connect_failed = r->fail_counts[FAIL_CONNECT] + r->fail_counts[FAIL_SEND];
	for (size_t i = 0; i < r->n; i++) {
		struct node *nd = &r->nodes[i];

		if (nd->rx_bytes)
			replied++;
		if (nd->closed_by_server) {
			uint64_t ms = nd->t_closed_ms - nd->t_connect_ms;

			closed++;
			if (first_close == 0 || ms < first_close)
				first_close = ms;
			if (ms > last_close)
				last_close = ms;
		}
		if (nd->state != NODE_DONE)
			node_close(r, nd);
	}
	printf("raw_connections=%zu closed_by_server=%zu replied=%zu connect_failed=%zu first_close_ms=%" PRIu64
	       " last_close_ms=%" PRIu64 "\n",
	       r->n, closed, replied, connect_failed, first_close, last_close);
	fflush(stdout);
	return closed == r->n && replied == 0 ? 0 : 1;
}

static bool raise_fd_limit(size_t need)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return false;
	if (rl.rlim_cur >= need)
		return true;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
		fprintf(stderr, "fakenode: needs %zu file descriptors, the hard limit is %llu (raise ulimit -Hn)\n", need,
			(unsigned long long)rl.rlim_max);
		return false;
	}
	rl.rlim_cur = need;
	return setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

int main(int argc, char **argv)
{
	static struct run run;
	struct run *r = &run;
	char joinbuf[JOINKEY_MAX_LEN + 2];
	const char *join_text = NULL;
	size_t join_len = 0;
	char err[256];
	static uint8_t raw[FAKENODE_MAX_RAW_FILE + 1];
	size_t raw_len = 0;
	int rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!parse_options(argc, argv, &r->opt))
		return 2;
	if (sodium_init() < 0) {
		fprintf(stderr, "fakenode: libsodium failed to start\n");
		return 1;
	}
	if (r->opt.join_file) {
		if (!read_small_file(r->opt.join_file, joinbuf, sizeof(joinbuf), &join_len))
			return 2;
		join_text = joinbuf;
	} else if (r->opt.join) {
		join_text = r->opt.join;
		join_len = strlen(join_text);
	}
	if (join_text && !joinkey_parse(join_text, join_len, &r->jk, err, sizeof(err))) {
		fprintf(stderr, "fakenode: join key: %s\n", err);
		return 2;
	}
	sodium_memzero(joinbuf, sizeof(joinbuf));
	if (r->opt.connect_to) {
		char host[ENDPOINT_HOST_MAX];
		uint16_t port;

		if (!endpoint_parse(r->opt.connect_to, host, sizeof(host), &port)) {
			fprintf(stderr, "fakenode: --connect: '%s' is not HOST:PORT\n", r->opt.connect_to);
			return 2;
		}
		if (!target_set(r, host, port))
			return 2;
	} else if (!target_set(r, r->jk.host, r->jk.port)) {
		return 2;
	}
	if (r->opt.bad_key) {
		uint8_t priv[WIRE_KEY_LEN];

		key_generate_private(priv);
		key_public_from_private(r->coord_public, priv);
		sodium_memzero(priv, sizeof(priv));
	} else {
		memcpy(r->coord_public, r->jk.coord_public, WIRE_KEY_LEN);
	}
	if (r->opt.raw_file && !read_small_file(r->opt.raw_file, (char *)raw, sizeof(raw), &raw_len))
		return 2;
	if (r->opt.raw_file && raw_len > FAKENODE_WBUF) {
		fprintf(stderr, "fakenode: --raw: at most %d bytes\n", FAKENODE_WBUF);
		return 2;
	}

	r->n = (size_t)r->opt.count;
	if (!raise_fd_limit(r->n + FAKENODE_SPARE_FDS))
		return 1;
	r->nodes = calloc(r->n, sizeof(*r->nodes));
	r->rbuf = malloc(CONTROL_FRAME_HEADER_LEN + CONTROL_MAX_FRAME + FAKENODE_READ_CHUNK);
	r->known_words = (r->n + 63) / 64;
	r->known = calloc(r->n * r->known_words, sizeof(uint64_t));
	if (!r->nodes || !r->rbuf || !r->known) {
		fprintf(stderr, "fakenode: out of memory for %zu nodes\n", r->n);
		return 1;
	}
	for (size_t i = 0; i < r->n; i++) {
		r->nodes[i].fd = -1;
		key_generate_private(r->nodes[i].private_key);
		if (!key_public_from_private(r->nodes[i].public_key, r->nodes[i].private_key)) {
			fprintf(stderr, "fakenode: key generation failed\n");
			return 1;
		}
	}
	if (!key_index_build(r)) {
		fprintf(stderr, "fakenode: out of memory\n");
		return 1;
	}
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->epfd < 0) {
		fprintf(stderr, "fakenode: epoll_create1: %s\n", strerror(errno));
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	r->t_start_ms = now_ms();
	r->t_deadline_ms = r->t_start_ms + (uint64_t)r->opt.timeout_s * 1000;
	if (!r->opt.quiet)
		fprintf(stderr, "fakenode: %zu %s to %s\n", r->n,
			r->opt.raw_file ? "raw connections" : r->opt.half_open ? "half-open connections" : "nodes",
			r->target_text);
	if (r->opt.raw_file || r->opt.half_open)
		rc = run_raw(r, raw, raw_len);
	else
		rc = run_nodes(r);

	for (size_t i = 0; i < r->n; i++) {
		sodium_memzero(r->nodes[i].private_key, WIRE_KEY_LEN);
		control_channel_clear(&r->nodes[i].ch);
	}
	joinkey_clear(&r->jk);
	close(r->epfd);
	free(r->nodes);
	free(r->rbuf);
	free(r->known);
	free(r->key_index);
	return stop_requested && rc == 0 ? 1 : rc;
}
