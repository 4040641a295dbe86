/* relaynode: one scripted node against meshcoord's relay, for tests/netns/coord-relay.sh.
 *
 * It registers over the control channel (a join key), learns its relay token from
 * RELAY_INFO, and then does what lines on stdin say, printing what happens on stdout (line
 * buffered), so a shell script can drive two or three of them through FIFOs:
 *
 *   bind [FILE]                      send a BIND (next counter) from the data socket; FILE
 *                                    gets a copy of the frame (for a replay from elsewhere)
 *   raw FILE [PORT]                  send FILE's bytes from the data socket to the relay port
 *                                    (or PORT): a replayed BIND, a forged frame
 *   send KEY SIZE COUNT [GAP_US [PORT]]  COUNT DATA frames of SIZE payload bytes to node KEY
 *                                    (base64) over UDP, GAP_US microseconds apart; SIZE may
 *                                    exceed the protocol's maximum to test the refusal
 *   tcpsend KEY SIZE COUNT           the same as CONTROL_MSG_RELAY over the control channel
 *   stun PORT                        a STUN Binding request to the coordinator's PORT
 *   pause / resume                   stop / start reading the control connection (with
 *                                    --tcp-rcvbuf, the coordinator's queue to us then fills)
 *   stats                            print "stats udp=N tcp=M corrupt=K"
 *   quit
 *
 * Output: "registered NAME KEY", "relayinfo stun=P alt=Q rate=R", "bound COUNTER",
 * "rx udp KEY FRAME_LEN PAYLOAD_LEN ok|corrupt", "rx tcp KEY PAYLOAD_LEN ok|corrupt",
 * "stun PORT ADDRESS", "closed", "error TEXT". Payloads carry a sequence number and a
 * pattern derived from it, so a receiver sees whether a frame arrived intact.
 *
 * Bounded: --timeout seconds in all (default 120), and the coordinator must be on loopback
 * or a documentation range, like fakenode. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "core/clock.h"
#include "core/control.h"
#include "core/handshake.h"
#include "core/ipaddr.h"
#include "core/joinkey.h"
#include "core/keys.h"
#include "core/relay.h"
#include "core/stun.h"

enum {
	RN_DEFAULT_TIMEOUT_S = 120,
	RN_MAX_TIMEOUT_S = 3600,
	/* Under the coordinator's 75 s idle limit. */
	RN_KEEPALIVE_MS = 20000,
	RN_LINE_MAX = 1024,
	/* A payload's first 4 bytes: its sequence number. */
	RN_SEQ_LEN = 4,
	/* What "send" may build: a bit above the maximum, to show it is refused. */
	RN_MAX_SEND_PAYLOAD = RELAY_MAX_PAYLOAD + 64,
	RN_MAX_COUNT = 100000,
	RN_MAX_GAP_US = 1000000,
	RN_MAX_RCVBUF = 1 << 24,
};

struct rn {
	int tcp, udp;
	struct control_channel ch;
	uint8_t priv[WIRE_KEY_LEN], pub[WIRE_KEY_LEN];
	struct joinkey jk;
	struct sockaddr_in coord;
	bool established, registered, have_token;
	uint8_t token[RELAY_TOKEN_LEN];
	uint16_t stun_port;
	uint64_t counter;
	uint8_t rbuf[2 * (CONTROL_FRAME_HEADER_LEN + CONTROL_MAX_FRAME)];
	size_t rlen;
	uint64_t rx_udp, rx_tcp, rx_corrupt;
	uint8_t stun_tid[STUN_TRANSACTION_ID_LEN];
	uint16_t stun_asked_port;
	const char *hostname;
	bool paused;
};

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static bool target_allowed(uint32_t a)
{
	return (a & 0xff000000u) == 0x7f000000u || (a & 0xffffff00u) == 0xc0000200u ||
	       (a & 0xffffff00u) == 0xc6336400u || (a & 0xffffff00u) == 0xcb007100u;
}

static void fill_payload(uint8_t *p, size_t len, uint32_t seq)
{
	uint8_t s[RN_SEQ_LEN] = { (uint8_t)(seq >> 24), (uint8_t)(seq >> 16), (uint8_t)(seq >> 8), (uint8_t)seq };
	for (size_t i = 0; i < len; i++)
		p[i] = i < RN_SEQ_LEN ? s[i] : (uint8_t)(seq + i);
}

static bool payload_ok(const uint8_t *p, size_t len)
{
	if (len < RN_SEQ_LEN)
		return true; /* too short to carry a sequence: nothing to check */
	uint32_t seq = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	for (size_t i = RN_SEQ_LEN; i < len; i++)
		if (p[i] != (uint8_t)(seq + i))
			return false;
	return true;
}

static bool tcp_send_msg(struct rn *r, const struct control_message *m)
{
	uint8_t frame[CONTROL_FRAME_HEADER_LEN + CONTROL_MAX_FRAME];
	size_t len, off = 0;

	if (!control_seal_message(&r->ch, m, frame, sizeof(frame), &len))
		return false;
	while (off < len) {
		ssize_t w = send(r->tcp, frame + off, len - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		off += (size_t)w;
	}
	return true;
}

static void udp_to(struct rn *r, const uint8_t *buf, size_t len, uint16_t port)
{
	struct sockaddr_in to = r->coord;
	to.sin_port = htons(port ? port : r->stun_port);
	if (sendto(r->udp, buf, len, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		say("error sendto: %s", strerror(errno));
}

/* ---------------------------------------------------------------- control channel */

static void on_message(struct rn *r, const struct control_message *m)
{
	char key[KEY_BASE64_LEN + 1];

	switch (m->type) {
	case CONTROL_MSG_REGISTERED:
		r->registered = true;
		key_to_base64(key, r->pub);
		say("registered %s %s", m->u.registered.name, key);
		break;
	case CONTROL_MSG_RELAY_INFO:
		memcpy(r->token, m->u.relay_info.token, RELAY_TOKEN_LEN);
		r->have_token = true;
		r->stun_port = m->u.relay_info.stun_port;
		r->counter = 0;
		say("relayinfo stun=%u alt=%u rate=%u", (unsigned int)m->u.relay_info.stun_port,
		    (unsigned int)m->u.relay_info.alt_stun_port, (unsigned int)m->u.relay_info.relay_rate);
		break;
	case CONTROL_MSG_RELAY: {
		bool ok = payload_ok(m->u.relay.payload, m->u.relay.payload_len);
		key_to_base64(key, m->u.relay.node_key);
		r->rx_tcp++;
		r->rx_corrupt += !ok;
		say("rx tcp %s %zu %s", key, m->u.relay.payload_len, ok ? "ok" : "corrupt");
		break;
	}
	case CONTROL_MSG_ERROR:
		say("error from coordinator: %u %s", (unsigned int)m->u.error.code, m->u.error.text);
		break;
	default:
		break; /* the netmap, keepalives: not what this tool is about */
	}
}

/* false: the connection is over */
static bool on_tcp_readable(struct rn *r)
{
	ssize_t n = recv(r->tcp, r->rbuf + r->rlen, sizeof(r->rbuf) - r->rlen, 0);
	if (n < 0 && errno == EINTR)
		return true;
	if (n <= 0)
		return false;
	r->rlen += (size_t)n;
	size_t off = 0;
	for (;;) {
		const uint8_t *body;
		size_t body_len, consumed;
		int f = control_frame_next(r->rbuf + off, r->rlen - off, &body, &body_len, &consumed);
		if (f == 0)
			break;
		if (f < 0)
			return false;
		off += consumed;
		if (!r->established) {
			if (!control_client_finish(&r->ch, body, body_len))
				return false;
			r->established = true;
			struct control_message m;
			memset(&m, 0, sizeof(m));
			m.type = CONTROL_MSG_REGISTER;
			snprintf(m.u.reg.hostname, sizeof(m.u.reg.hostname), "%s", r->hostname);
			memcpy(m.u.reg.join_secret, r->jk.secret, JOINKEY_SECRET_LEN);
			m.u.reg.join_secret_len = JOINKEY_SECRET_LEN;
			bool ok = tcp_send_msg(r, &m);
			sodium_memzero(&m, sizeof(m));
			if (!ok)
				return false;
			continue;
		}
		uint8_t plain[CONTROL_MAX_FRAME];
		size_t plain_len, roff = 0, msg_len;
		const uint8_t *msg;
		if (!control_open(&r->ch, body, body_len, plain, sizeof(plain), &plain_len))
			return false;
		while (control_record_next(plain, plain_len, &roff, &msg, &msg_len) > 0) {
			struct control_message m;
			if (control_decode(msg, msg_len, &m) == CONTROL_DECODE_OK)
				on_message(r, &m);
		}
	}
	memmove(r->rbuf, r->rbuf + off, r->rlen - off);
	r->rlen -= off;
	return true;
}

/* ---------------------------------------------------------------- UDP */

static void on_udp_readable(struct rn *r)
{
	uint8_t buf[RELAY_MAX_FRAME + 64];
	char key[KEY_BASE64_LEN + 1];

	for (;;) {
		ssize_t n = recv(r->udp, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0)
			return;
		const uint8_t *k, *payload;
		size_t payload_len;
		uint64_t counter;
		struct sockaddr_storage mapped;
		if (r->have_token && relay_check_bind_ack(buf, (size_t)n, r->token, &counter)) {
			say("bound %llu", (unsigned long long)counter);
		} else if (relay_parse_data(buf, (size_t)n, &k, &payload, &payload_len)) {
			bool ok = payload_ok(payload, payload_len);
			key_to_base64(key, k);
			r->rx_udp++;
			r->rx_corrupt += !ok;
			say("rx udp %s %zd %zu %s", key, n, payload_len, ok ? "ok" : "corrupt");
		} else if (stun_parse_response(buf, (size_t)n, r->stun_tid, &mapped)) {
			char a[64];
			say("stun %u %s", (unsigned int)r->stun_asked_port,
			    sockaddr_format((struct sockaddr *)&mapped, a, sizeof(a)));
		} else {
			say("rx other %zd bytes", n);
		}
	}
}

/* ---------------------------------------------------------------- commands */

static bool read_file(const char *path, uint8_t *buf, size_t cap, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return false;
	*len = fread(buf, 1, cap, f);
	fclose(f);
	return *len > 0;
}

static bool parse_num(const char *s, long min, long max, long *out)
{
	char *end;
	if (!s)
		return false;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static void cmd_send(struct rn *r, char *args, bool tcp)
{
	char *ks = strtok(args, " "), *ss = strtok(NULL, " "), *cs = strtok(NULL, " ");
	char *gs = strtok(NULL, " "), *ps = strtok(NULL, " ");
	uint8_t key[WIRE_KEY_LEN];
	long size, count, gap = 0, port = 0;
	static uint8_t frame[RELAY_DATA_HEADER_LEN + RN_MAX_SEND_PAYLOAD];
	static uint32_t seq;

	if (!ks || !key_from_base64(key, ks, strlen(ks)) || !parse_num(ss, 1, RN_MAX_SEND_PAYLOAD, &size) ||
	    !parse_num(cs, 1, RN_MAX_COUNT, &count) || (gs && !parse_num(gs, 0, RN_MAX_GAP_US, &gap)) ||
	    (ps && !parse_num(ps, 1, 65535, &port)) || (tcp && size > RELAY_MAX_PAYLOAD)) {
		say("error usage: send KEY SIZE COUNT [GAP_US [PORT]] / tcpsend KEY SIZE COUNT");
		return;
	}
	for (long i = 0; i < count; i++) {
		fill_payload(frame + RELAY_DATA_OFF_PAYLOAD, (size_t)size, seq++);
		if (tcp) {
			struct control_message m;
			memset(&m, 0, sizeof(m));
			m.type = CONTROL_MSG_RELAY;
			memcpy(m.u.relay.node_key, key, WIRE_KEY_LEN);
			m.u.relay.payload = frame + RELAY_DATA_OFF_PAYLOAD;
			m.u.relay.payload_len = (size_t)size;
			if (!tcp_send_msg(r, &m)) {
				say("error tcpsend failed");
				return;
			}
		} else {
			/* Built by hand, not relay_wrap_data: SIZE may be over the limit on purpose. */
			wire_put_header(frame, MSG_RELAY_DATA);
			memcpy(frame + RELAY_DATA_OFF_KEY, key, WIRE_KEY_LEN);
			udp_to(r, frame, RELAY_DATA_HEADER_LEN + (size_t)size, (uint16_t)port);
		}
		if (gap)
			usleep((useconds_t)gap);
	}
	say("sent %ld", count);
}

static bool command(struct rn *r, char *line)
{
	char *cmd = strtok(line, " ");
	char *rest = strtok(NULL, "");

	if (!cmd)
		return true;
	if (!strcmp(cmd, "quit"))
		return false;
	if (!strcmp(cmd, "pause") || !strcmp(cmd, "resume")) {
		r->paused = cmd[0] == 'p';
		say("%s", r->paused ? "paused" : "resumed");
	} else if (!strcmp(cmd, "stats")) {
		say("stats udp=%llu tcp=%llu corrupt=%llu", (unsigned long long)r->rx_udp, (unsigned long long)r->rx_tcp,
		    (unsigned long long)r->rx_corrupt);
	} else if (!strcmp(cmd, "bind")) {
		uint8_t b[RELAY_BIND_LEN];
		if (!r->have_token) {
			say("error no relay token yet");
			return true;
		}
		relay_build_bind(b, r->pub, ++r->counter, r->token);
		if (rest) {
			FILE *f = fopen(rest, "wb");
			if (!f || fwrite(b, 1, sizeof(b), f) != sizeof(b))
				say("error cannot write %s", rest);
			if (f)
				fclose(f);
		}
		udp_to(r, b, sizeof(b), 0);
	} else if (!strcmp(cmd, "raw")) {
		char *path = rest ? strtok(rest, " ") : NULL, *ps = strtok(NULL, " ");
		uint8_t b[RELAY_MAX_FRAME];
		size_t len;
		long port = 0;
		if (!path || !read_file(path, b, sizeof(b), &len) || (ps && !parse_num(ps, 1, 65535, &port)))
			say("error usage: raw FILE [PORT]");
		else
			udp_to(r, b, len, (uint16_t)port);
	} else if (!strcmp(cmd, "send") || !strcmp(cmd, "tcpsend")) {
		cmd_send(r, rest ? rest : (char[]){ "" }, cmd[0] == 't');
	} else if (!strcmp(cmd, "stun")) {
		uint8_t req[STUN_MAX_MESSAGE];
		long port;
		if (!parse_num(rest, 1, 65535, &port)) {
			say("error usage: stun PORT");
			return true;
		}
		randombytes_buf(r->stun_tid, sizeof(r->stun_tid));
		r->stun_asked_port = (uint16_t)port;
		udp_to(r, req, stun_build_request(r->stun_tid, req, sizeof(req)), (uint16_t)port);
	} else {
		say("error unknown command '%s'", cmd);
	}
	return true;
}

/* ---------------------------------------------------------------- main */

static void usage(FILE *out)
{
	fprintf(out, "usage: relaynode --join KEY --udp-port PORT [--hostname NAME] [--timeout SECONDS]\n"
		     "                 [--tcp-rcvbuf BYTES] [--key-file FILE (read, or created)]\n"
		     "Commands on stdin, events on stdout: see the top of tests/tools/relaynode.c.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "join", required_argument, NULL, 'j' },    { "udp-port", required_argument, NULL, 'u' },
		{ "hostname", required_argument, NULL, 'n' }, { "timeout", required_argument, NULL, 't' },
		{ "tcp-rcvbuf", required_argument, NULL, 'b' }, { "key-file", required_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct rn r;
	const char *join = NULL, *key_file = NULL;
	long udp_port = 0, timeout = RN_DEFAULT_TIMEOUT_S, rcvbuf = 0;
	char err[256];
	int c;

	r.hostname = "relaynode";
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			join = optarg;
			break;
		case 'u':
			if (!parse_num(optarg, 1, 65535, &udp_port))
				return 2;
			break;
		case 'n':
			r.hostname = optarg;
			break;
		case 't':
			if (!parse_num(optarg, 1, RN_MAX_TIMEOUT_S, &timeout))
				return 2;
			break;
		case 'k':
			key_file = optarg;
			break;
		case 'b':
			if (!parse_num(optarg, 1, RN_MAX_RCVBUF, &rcvbuf))
				return 2;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!join || !udp_port) {
		usage(stderr);
		return 2;
	}
	if (sodium_init() < 0)
		return 1;
	if (!joinkey_parse(join, strlen(join), &r.jk, err, sizeof(err))) {
		fprintf(stderr, "relaynode: %s\n", err);
		return 2;
	}
	memset(&r.coord, 0, sizeof(r.coord));
	r.coord.sin_family = AF_INET;
	r.coord.sin_port = htons(r.jk.port);
	if (inet_pton(AF_INET, r.jk.host, &r.coord.sin_addr) != 1 || !target_allowed(ntohl(r.coord.sin_addr.s_addr))) {
		fprintf(stderr, "relaynode: the join key's host %s is not loopback or a documentation range\n", r.jk.host);
		return 2;
	}

	r.udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in local = { .sin_family = AF_INET, .sin_port = htons((uint16_t)udp_port) };
	if (r.udp < 0 || bind(r.udp, (struct sockaddr *)&local, sizeof(local)) < 0) {
		fprintf(stderr, "relaynode: UDP port %ld: %s\n", udp_port, strerror(errno));
		return 1;
	}
	r.tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	/* Before connect, so the window scale and autotuning follow it. */
	if (r.tcp >= 0 && rcvbuf) {
		int v = (int)rcvbuf;
		setsockopt(r.tcp, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
	}
	if (r.tcp < 0 || connect(r.tcp, (struct sockaddr *)&r.coord, sizeof(r.coord)) < 0) {
		fprintf(stderr, "relaynode: connect %s:%u: %s\n", r.jk.host, (unsigned int)r.jk.port, strerror(errno));
		return 1;
	}
	/* With --key-file, a second relaynode can be the same node (a restart or a move). */
	if (key_file && access(key_file, F_OK) == 0) {
		if (!key_file_read(key_file, r.priv, err, sizeof(err))) {
			fprintf(stderr, "relaynode: %s\n", err);
			return 1;
		}
	} else {
		key_generate_private(r.priv);
		if (key_file && !key_file_write(key_file, r.priv, err, sizeof(err))) {
			fprintf(stderr, "relaynode: %s\n", err);
			return 1;
		}
	}
	key_public_from_private(r.pub, r.priv);
	uint8_t stamp[WIRE_TIMESTAMP_LEN], hello[CONTROL_FRAME_HEADER_LEN + CONTROL_HELLO_LEN];
	size_t hello_len;
	handshake_tai64n(stamp, clock_realtime());
	if (!control_client_hello(&r.ch, r.priv, r.jk.coord_public, stamp, NULL, hello, sizeof(hello), &hello_len) ||
	    send(r.tcp, hello, hello_len, MSG_NOSIGNAL) != (ssize_t)hello_len) {
		fprintf(stderr, "relaynode: cannot send the hello\n");
		return 1;
	}

	uint64_t deadline = clock_monotonic_ms() + (uint64_t)timeout * 1000u, next_ka = clock_monotonic_ms() + RN_KEEPALIVE_MS;
	char line[RN_LINE_MAX];
	size_t line_len = 0;
	bool run = true, stdin_open = true;
	while (run && clock_monotonic_ms() < deadline) {
		struct pollfd p[3] = {
			{ .fd = r.paused ? -1 : r.tcp, .events = POLLIN },
			{ .fd = r.udp, .events = POLLIN },
			{ .fd = stdin_open ? STDIN_FILENO : -1, .events = POLLIN },
		};
		if (poll(p, 3, 200) < 0 && errno != EINTR)
			break;
		if (r.tcp >= 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR)) && !on_tcp_readable(&r)) {
			say("closed");
			close(r.tcp);
			r.tcp = -1;
		}
		if (p[1].revents & POLLIN)
			on_udp_readable(&r);
		if (p[2].revents & (POLLIN | POLLHUP)) {
			ssize_t n = read(STDIN_FILENO, line + line_len, sizeof(line) - 1 - line_len);
			if (n <= 0) {
				stdin_open = false;
				run = false;
			} else {
				line_len += (size_t)n;
				char *nl;
				while (run && (nl = memchr(line, '\n', line_len))) {
					*nl = '\0';
					size_t used = (size_t)(nl - line) + 1;
					run = command(&r, line);
					memmove(line, line + used, line_len - used);
					line_len -= used;
				}
				if (line_len == sizeof(line) - 1)
					line_len = 0; /* an overlong line: dropped */
			}
		}
		if (r.tcp >= 0 && r.registered && clock_monotonic_ms() >= next_ka) {
			struct control_message ka = { .type = CONTROL_MSG_KEEPALIVE };
			tcp_send_msg(&r, &ka);
			next_ka = clock_monotonic_ms() + RN_KEEPALIVE_MS;
		}
	}
	control_channel_clear(&r.ch);
	sodium_memzero(r.priv, sizeof(r.priv));
	sodium_memzero(r.token, sizeof(r.token));
	return 0;
}
