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
 *
 * This file holds the options, the guard, the run loops and the summary; each connection's
 * side of the protocol is in fakenode_session.c.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <sodium.h>

#include "core/clock.h"
#include "core/ipaddr.h"
#include "core/keys.h"
#include "fakenode.h"

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

volatile sig_atomic_t fakenode_stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	fakenode_stop_requested = 1;
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
		"  --raw-hangup           a raw connection closes as soon as anything comes back (a\n"
		"                         flood: the next connection starts at once)\n"
		"  --endpoint-storm SECONDS  once its map is complete, node 0 sends frames packed with\n"
		"                         ENDPOINTS records (each a new port) as fast as it can\n"
		"  --storm-records N      records per storm frame (default 32)\n"
		"  --storm-keepalive      every other storm record a KEEPALIVE\n"
		"  --connect HOST:PORT    connect here instead of the join key's address (IPv4 literal)\n"
		"  --spread-sources       to a 127.x target: node i connects from its own loopback source\n"
		"                         address (127.1.0.1 on), so per-source limits see many hosts\n"
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

uint64_t fakenode_now_ms(void)
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
		OPT_QUIET, OPT_SECRET, OPT_FORGE, OPT_HELP, OPT_STORM, OPT_STORM_RECORDS, OPT_STORM_KEEPALIVE, OPT_RAW_HANGUP, OPT_SPREAD,
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
		{ "endpoint-storm", required_argument, NULL, OPT_STORM },
		{ "storm-records", required_argument, NULL, OPT_STORM_RECORDS },
		{ "storm-keepalive", no_argument, NULL, OPT_STORM_KEEPALIVE },
		{ "raw-hangup", no_argument, NULL, OPT_RAW_HANGUP },
		{ "spread-sources", no_argument, NULL, OPT_SPREAD },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->count = 1;
	o->max_pending = FAKENODE_DEFAULT_MAX_PENDING;
	o->timeout_s = FAKENODE_DEFAULT_TIMEOUT_S;
	o->raw_wait_s = FAKENODE_DEFAULT_RAW_WAIT_S;
	o->hostname_prefix = "fake";
	o->storm_records = 32;
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
		case OPT_STORM:
			if (!parse_long("--endpoint-storm", optarg, 1, FAKENODE_MAX_TIMEOUT_S, &o->storm_s))
				return false;
			break;
		case OPT_STORM_RECORDS:
			if (!parse_long("--storm-records", optarg, 1, CONTROL_MAX_PLAIN, &o->storm_records))
				return false;
			break;
		case OPT_STORM_KEEPALIVE: o->storm_keepalive = true; break;
		case OPT_RAW_HANGUP: o->raw_hangup = true; break;
		case OPT_SPREAD: o->spread_sources = true; break;
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
		fakenode_start(r, &r->nodes[r->next_start++], raw, raw_len);
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
	while (!fakenode_stop_requested) {
		uint64_t now = fakenode_now_ms();

		if (now >= r->t_deadline_ms) {
			timed_out = true;
			break;
		}
		start_more(r, now, NULL, 0);
		fakenode_send_keepalives(r, now);
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
				fakenode_propagation_start(r);
			}
		}
		bool prop_done = !r->opt.measure_propagation ||
				 (r->prop_sent && r->prop_seen + (r->nodes[0].state == NODE_READY) >= r->ready);

		if (r->prop_sent && prop_done && r->t_prop_done_ms == 0)
			r->t_prop_done_ms = fakenode_now_ms();
		if (settled_enough && prop_done) {
			if (hold_end == 0) {
				hold_end = now + (uint64_t)r->opt.hold_s * 1000;
				if (r->opt.hold_s && !r->opt.quiet)
					fprintf(stderr, "fakenode: all done; holding %zu sessions for %ld s\n", r->ready,
						r->opt.hold_s);
			}
			if (now >= hold_end && (r->opt.storm_s == 0 || r->storm_done))
				break;
		}

		int timeout = fakenode_storm(r, now) ? 0 : 100;
		int n = epoll_wait(r->epfd, evs, FAKENODE_EPOLL_BATCH, timeout);

		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "fakenode: epoll_wait: %s\n", strerror(errno));
			break;
		}
		for (int i = 0; i < n; i++)
			fakenode_event(r, evs[i].data.ptr, evs[i].events);
	}
	if (timed_out) {
		fprintf(stderr, "fakenode: --timeout %ld s reached\n", r->opt.timeout_s);
		if (hold_end)
			fprintf(stderr, "fakenode: the hold was cut short by --timeout\n");
	}
	progress(r, fakenode_now_ms(), true);
	for (size_t i = 0; i < r->n; i++) {
		struct node *nd = &r->nodes[i];

		if (nd->state != NODE_DONE && nd->state != NODE_IDLE && !nd->registered)
			fakenode_fail(r, nd, FAIL_TIMEOUT);
		else if (nd->state == NODE_IDLE) {
			nd->failed = true;
			r->failed++;
			r->fail_counts[FAIL_TIMEOUT]++;
		}
		if (nd->state != NODE_DONE)
			fakenode_close(r, nd);
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
	       r->closed_after_registration, r->peer_msgs, r->foreign_peers, fakenode_now_ms() - r->t_start_ms);
	if (r->opt.storm_s)
		printf("storm_frames=%" PRIu64 " storm_records=%" PRIu64 " storm_closed=%d\n", r->storm_frames,
		       r->storm_records_sent, r->nodes[0].failed || r->closed_after_registration > 0);
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

	while (!fakenode_stop_requested) {
		uint64_t now = fakenode_now_ms();

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
			fakenode_event(r, evs[i].data.ptr, evs[i].events);
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
			fakenode_close(r, nd);
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
	if (!fakenode_index_keys(r)) {
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

	r->t_start_ms = fakenode_now_ms();
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
	return fakenode_stop_requested && rc == 0 ? 1 : rc;
}
