/* Writes the seed corpus of fuzz_control: single messages, frame plaintexts of records, hellos,
 * and whole sessions sealed under the fixed keys the target uses (coordinator private key
 * 32 x 0x01 and ephemeral 32 x 0x02; node private key 32 x 0x03 and ephemeral 32 x 0x04), so
 * the fuzzer starts deep inside the coordinator's receive path. Run from the top of the tree:
 *   make tests/fuzz/gen_control_seeds && tests/fuzz/gen_control_seeds tests/fuzz/corpus/fuzz_control */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/control.h"
#include "core/keys.h"
#include "seedfile.h"

enum {
	SEED_COORD_KEY_BYTE = 0x01,       /* FUZZ_COORD_KEY_BYTE in fuzz_control.c */
	SEED_COORD_EPHEMERAL_BYTE = 0x02, /* FUZZ_COORD_EPHEMERAL_BYTE */
	SEED_NODE_KEY_BYTE = 0x03,
	SEED_NODE_EPHEMERAL_BYTE = 0x04,
	SEED_PEER_KEY_BYTE = 0x07,
	SEED_MAX = 4 * (CONTROL_FRAME_HEADER_LEN + CONTROL_MAX_FRAME),
};

struct seed {
	uint8_t data[SEED_MAX];
	size_t len;
};

static void die(const char *what)
{
	fprintf(stderr, "gen_control_seeds: %s\n", what);
	exit(1);
}


/* ---------------------------------------------------------------- sample messages */

/* An address in a documentation range (192.0.2.0/24, 203.0.113.0/24, 2001:db8::/32) whose
 * last byte is host. */
static void endpoint_doc(struct control_endpoint *e, uint8_t family, uint8_t net, uint8_t host, uint16_t port)
{
	static const uint8_t v4_nets[][3] = { { 192, 0, 2 }, { 203, 0, 113 } };
	static const uint8_t v6_net[4] = { 0x20, 0x01, 0x0d, 0xb8 };

	memset(e, 0, sizeof(*e));
	e->family = family;
	if (family == 4) {
		memcpy(e->addr, v4_nets[net % 2], 3);
		e->addr[3] = host;
	} else {
		memcpy(e->addr, v6_net, sizeof(v6_net));
		e->addr[15] = host;
	}
	e->port = port;
}

static void msg_register(struct control_message *m)
{
	memset(m, 0, sizeof(*m));
	m->type = CONTROL_MSG_REGISTER;
	snprintf(m->u.reg.hostname, sizeof(m->u.reg.hostname), "node-a.lan");
	memset(m->u.reg.join_secret, 'Z', 32);
	m->u.reg.join_secret_len = 32;
	endpoint_doc(&m->u.reg.endpoints[0], 4, 0, 10, 51820);
	endpoint_doc(&m->u.reg.endpoints[1], 6, 0, 1, 51820);
	m->u.reg.n_endpoints = 2;
}

static void msg_registered(struct control_message *m)
{
	memset(m, 0, sizeof(*m));
	m->type = CONTROL_MSG_REGISTERED;
	snprintf(m->u.registered.name, sizeof(m->u.registered.name), "node-a");
	static const uint8_t v4[4] = { 100, 64, 0, 2 };
	static const uint8_t v6[16] = { 0xfd, 0x12, 0x34, 0x56, 0x78, 0x9a, [15] = 2 };
	memcpy(m->u.registered.ipv4, v4, sizeof(v4));
	m->u.registered.ipv4_bits = 10;
	memcpy(m->u.registered.ipv6, v6, sizeof(v6));
	m->u.registered.ipv6_bits = 48;
}

static void msg_error(struct control_message *m)
{
	memset(m, 0, sizeof(*m));
	m->type = CONTROL_MSG_ERROR;
	m->u.error.code = CONTROL_ERR_JOIN_KEY_EXPIRED;
	snprintf(m->u.error.text, sizeof(m->u.error.text), "join key expired");
}

static void msg_peer(struct control_message *m, uint8_t key_byte, uint8_t host)
{
	memset(m, 0, sizeof(*m));
	m->type = CONTROL_MSG_PEER;
	memset(m->u.peer.node_key, key_byte, WIRE_KEY_LEN);
	snprintf(m->u.peer.name, sizeof(m->u.peer.name), "node_%c", 'a' + host % 26);
	static const uint8_t v6[16] = { 0xfd, 0x12, 0x34, 0x56, 0x78, 0x9a };
	m->u.peer.ipv4[0] = 100;
	m->u.peer.ipv4[1] = 64;
	m->u.peer.ipv4[3] = host;
	memcpy(m->u.peer.ipv6, v6, sizeof(v6));
	m->u.peer.ipv6[15] = host;
	m->u.peer.online = host % 2 == 0;
	endpoint_doc(&m->u.peer.endpoints[0], 4, 1, host, 51820);
	endpoint_doc(&m->u.peer.endpoints[1], 6, 0, host, 41641);
	m->u.peer.n_endpoints = 2;
}

static void msg_peer_remove(struct control_message *m)
{
	memset(m, 0, sizeof(*m));
	m->type = CONTROL_MSG_PEER_REMOVE;
	memset(m->u.remove_key, SEED_PEER_KEY_BYTE, WIRE_KEY_LEN);
}

static void msg_endpoints(struct control_message *m)
{
	memset(m, 0, sizeof(*m));
	m->type = CONTROL_MSG_ENDPOINTS;
	endpoint_doc(&m->u.endpoints.list[0], 4, 0, 10, 51820);
	endpoint_doc(&m->u.endpoints.list[1], 6, 0, 1, 1);
	m->u.endpoints.n = 2;
}

static void msg_relay_info(struct control_message *m)
{
	memset(m, 0, sizeof(*m));
	m->type = CONTROL_MSG_RELAY_INFO;
	for (size_t i = 0; i < RELAY_TOKEN_LEN; i++)
		m->u.relay_info.token[i] = (uint8_t)(0x80 + i);
	m->u.relay_info.stun_port = 3478;
	m->u.relay_info.alt_stun_port = 3479;
	m->u.relay_info.relay_rate = 1 << 20;
}

/* A relayed datagram of len bytes (at most RELAY_MAX_PAYLOAD) to or from the seed peer. */
static void msg_relay(struct control_message *m, size_t len)
{
	static uint8_t payload[RELAY_MAX_PAYLOAD];

	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 31 + 7);
	payload[0] = 4; /* a data message inside, as a node would relay */
	memset(m, 0, sizeof(*m));
	m->type = CONTROL_MSG_RELAY;
	memset(m->u.relay.node_key, SEED_PEER_KEY_BYTE, WIRE_KEY_LEN);
	m->u.relay.payload = payload;
	m->u.relay.payload_len = len;
}

/* A subnet router's advertisement: a home LAN, an IPv6 LAN, and the exit pair. */
static void msg_routes(struct control_message *m)
{
	memset(m, 0, sizeof(*m));
	m->type = CONTROL_MSG_ROUTES;
	struct control_routes *rs = &m->u.routes;
	rs->list[0] = (struct control_route){ .family = 4, .bits = 24, .addr = { 192, 168, 1, 0 } };
	rs->list[1] = (struct control_route){ .family = 6, .bits = 64, .addr = { 0xfd, 0x12, 0x34, 0x56 } };
	rs->list[2] = (struct control_route){ .family = 4, .bits = 0 };
	rs->list[3] = (struct control_route){ .family = 6, .bits = 0 };
	rs->n = 4;
}

/* A FILTER part of n rules (0: allow all), as a coordinator sends for a node. */
static void msg_filter(struct control_message *m, size_t n)
{
	memset(m, 0, sizeof(*m));
	m->type = CONTROL_MSG_FILTER;
	m->u.filter.generation = 3;
	m->u.filter.parts = 1;
	m->u.filter.active = n > 0;
	m->u.filter.n_rules = (uint8_t)n;
	for (size_t i = 0; i < n; i++) {
		struct filter_rule *r = &m->u.filter.rules[i];
		bool v6 = i % 2;
		r->family = v6 ? FILTER_FAMILY_IPV6 : FILTER_FAMILY_IPV4;
		r->proto = i % 4 == 3 ? FILTER_PROTO_ICMP : i % 4 == 2 ? FILTER_PROTO_UDP : FILTER_PROTO_TCP;
		r->port_lo = r->proto == FILTER_PROTO_ICMP ? 0 : (uint16_t)(80 + i);
		r->port_hi = r->proto == FILTER_PROTO_ICMP ? 65535 : (uint16_t)(80 + 2 * i);
		if (v6) {
			r->src[0] = r->dst[0] = 0xfd;
			r->src[15] = (uint8_t)i;
			r->dst[15] = 2;
			r->src_bits = r->dst_bits = 128;
		} else {
			r->src[0] = r->dst[0] = 100;
			r->src[1] = r->dst[1] = 64;
			r->src[3] = (uint8_t)i;
			r->dst[3] = 2;
			r->src_bits = r->dst_bits = 32;
		}
	}
}

static void msg_empty(struct control_message *m, enum control_msg_type type)
{
	memset(m, 0, sizeof(*m));
	m->type = type;
}

/* ---------------------------------------------------------------- building blocks */

static size_t encode(const struct control_message *m, uint8_t *out, size_t cap)
{
	size_t len = control_encode(m, out, cap);
	if (len == 0)
		die("a sample message does not encode");
	return len;
}

static void append(uint8_t *plain, size_t *used, const struct control_message *m)
{
	if (!control_record_append(plain, CONTROL_MAX_PLAIN, used, m))
		die("a record does not fit");
}

/* Appends a record of raw bytes (a type we do not know, or a message broken on purpose). */
static void append_raw(uint8_t *plain, size_t *used, const uint8_t *msg, size_t len)
{
	if (*used + CONTROL_RECORD_HEADER_LEN + len > CONTROL_MAX_PLAIN)
		die("a raw record does not fit");
	plain[*used] = (uint8_t)(len >> 8);
	plain[*used + 1] = (uint8_t)len;
	memcpy(plain + *used + CONTROL_RECORD_HEADER_LEN, msg, len);
	*used += CONTROL_RECORD_HEADER_LEN + len;
}

static void seal_onto(struct control_channel *ch, struct seed *s, const uint8_t *plain, size_t len)
{
	size_t frame_len;
	if (!control_seal(ch, plain, len, s->data + s->len, sizeof(s->data) - s->len, &frame_len))
		die("seal failed");
	s->len += frame_len;
}

/* The node's hello into s, and the node's channel established as the target's coordinator
 * will see it. */
static void start_session(struct control_channel *node, struct seed *s)
{
	uint8_t node_private[WIRE_KEY_LEN], node_e[WIRE_KEY_LEN], coord_private[WIRE_KEY_LEN];
	uint8_t coord_public[WIRE_KEY_LEN], coord_e[WIRE_KEY_LEN], ts_out[WIRE_TIMESTAMP_LEN];
	uint8_t welcome[CONTROL_FRAME_HEADER_LEN + CONTROL_WELCOME_LEN];
	/* TAI64N for 2023-11-14: any fixed time works, the target keeps no replay state */
	static const uint8_t timestamp[WIRE_TIMESTAMP_LEN] = { 0x40, 0, 0, 0, 0x65, 0x53, 0xf1, 0x0a, 0x07 };
	struct control_channel coord;
	size_t welcome_len;

	memset(node_private, SEED_NODE_KEY_BYTE, sizeof(node_private));
	memset(node_e, SEED_NODE_EPHEMERAL_BYTE, sizeof(node_e));
	memset(coord_private, SEED_COORD_KEY_BYTE, sizeof(coord_private));
	memset(coord_e, SEED_COORD_EPHEMERAL_BYTE, sizeof(coord_e));
	if (!key_public_from_private(coord_public, coord_private))
		die("key");
	memset(node, 0, sizeof(*node));
	memset(&coord, 0, sizeof(coord));
	s->len = 0;
	if (!control_client_hello(node, node_private, coord_public, timestamp, node_e, s->data, sizeof(s->data),
				  &s->len) ||
	    !control_server_accept(&coord, coord_private, s->data + CONTROL_FRAME_HEADER_LEN,
				   s->len - CONTROL_FRAME_HEADER_LEN, ts_out, coord_e, welcome, sizeof(welcome),
				   &welcome_len) ||
	    !control_client_finish(node, welcome + CONTROL_FRAME_HEADER_LEN, welcome_len - CONTROL_FRAME_HEADER_LEN))
		die("handshake failed");
	control_channel_clear(&coord);
}

/* ---------------------------------------------------------------- the seeds */

static void write_messages(const char *dir)
{
	static const struct {
		const char *name;
		int which;
	} list[] = {
		{ "msg-register", 0 }, { "msg-registered", 1 }, { "msg-error", 2 }, { "msg-peer", 3 },
		{ "msg-peer-remove", 4 }, { "msg-endpoints", 5 },
	};
	for (size_t i = 0; i < sizeof(list) / sizeof(list[0]); i++) {
		struct control_message m;
		uint8_t buf[CONTROL_MAX_PLAIN];
		char name[64];

		switch (list[i].which) {
		case 0: msg_register(&m); break;
		case 1: msg_registered(&m); break;
		case 2: msg_error(&m); break;
		case 3: msg_peer(&m, SEED_PEER_KEY_BYTE, 2); break;
		case 4: msg_peer_remove(&m); break;
		default: msg_endpoints(&m); break;
		}
		size_t len = encode(&m, buf, sizeof(buf));
		seedfile_write(dir, list[i].name, buf, len);
		snprintf(name, sizeof(name), "%s-truncated", list[i].name);
		seedfile_write(dir, name, buf, len - 1);
	}
	static const uint8_t keepalive[] = { CONTROL_MSG_KEEPALIVE }, netmap_end[] = { CONTROL_MSG_NETMAP_END };
	static const uint8_t unknown[] = { 0x42, 0x01, 0x02, 0x03 };
	seedfile_write(dir, "msg-keepalive", keepalive, sizeof(keepalive));
	seedfile_write(dir, "msg-netmap-end", netmap_end, sizeof(netmap_end));
	seedfile_write(dir, "msg-unknown-type", unknown, sizeof(unknown));

	/* the relay messages, and each broken: stun port 0, no payload, one byte too many */
	struct control_message m;
	static uint8_t buf[CONTROL_MAX_PLAIN];
	size_t len;

	msg_relay_info(&m);
	len = encode(&m, buf, sizeof(buf));
	seedfile_write(dir, "msg-relay-info", buf, len);
	seedfile_write(dir, "msg-relay-info-truncated", buf, len - 1);
	buf[1 + RELAY_TOKEN_LEN] = 0;
	buf[1 + RELAY_TOKEN_LEN + 1] = 0;
	seedfile_write(dir, "msg-relay-info-port-0", buf, len);
	/* the mesh's DNS domain, and broken: cut, upper case */
	memset(&m, 0, sizeof(m));
	m.type = CONTROL_MSG_DNS;
	snprintf(m.u.dns.domain, sizeof(m.u.dns.domain), "mesh.internal");
	len = encode(&m, buf, sizeof(buf));
	seedfile_write(dir, "msg-dns", buf, len);
	seedfile_write(dir, "msg-dns-truncated", buf, len - 1);
	buf[2] = 'M';
	seedfile_write(dir, "msg-dns-upper", buf, len);

	/* access rules: a few, a full part, allow all; broken: cut short, a rule with host
	 * bits, a count past the end, part beyond parts */
	msg_filter(&m, 4);
	len = encode(&m, buf, sizeof(buf));
	seedfile_write(dir, "msg-filter", buf, len);
	seedfile_write(dir, "msg-filter-truncated", buf, len - 1);
	buf[1 + 8 + 1] = 24; /* the first rule's source: 100.64.0.0/24 with host bits */
	seedfile_write(dir, "msg-filter-host-bits", buf, len);
	msg_filter(&m, CONTROL_FILTER_RULES_PER_MSG);
	len = encode(&m, buf, sizeof(buf));
	seedfile_write(dir, "msg-filter-max", buf, len);
	buf[8] = CONTROL_FILTER_RULES_PER_MSG + 1;
	seedfile_write(dir, "msg-filter-count-past-end", buf, len);
	msg_filter(&m, 0);
	len = encode(&m, buf, sizeof(buf));
	seedfile_write(dir, "msg-filter-allow-all", buf, len);
	buf[5] = 1; /* part 1 of 1 */
	seedfile_write(dir, "msg-filter-bad-part", buf, len);
	msg_relay(&m, 148);
	len = encode(&m, buf, sizeof(buf));
	seedfile_write(dir, "msg-relay", buf, len);
	seedfile_write(dir, "msg-relay-no-payload", buf, 1 + WIRE_KEY_LEN);
	msg_relay(&m, RELAY_MAX_PAYLOAD);
	len = encode(&m, buf, sizeof(buf));
	seedfile_write(dir, "msg-relay-max", buf, len);
	buf[len] = 0;
	seedfile_write(dir, "msg-relay-oversize", buf, len + 1);

	/* routes both ways, and broken: a host bit set, a /33, one byte short */
	msg_routes(&m);
	len = encode(&m, buf, sizeof(buf));
	seedfile_write(dir, "msg-routes", buf, len);
	seedfile_write(dir, "msg-routes-truncated", buf, len - 1);
	buf[2 + 2 + 3] = 1; /* 192.168.1.1/24 */
	seedfile_write(dir, "msg-routes-host-bits", buf, len);
	buf[2 + 2 + 3] = 0;
	buf[2 + 1] = 33;
	seedfile_write(dir, "msg-routes-bits-33", buf, len);
	struct control_routes rs = m.u.routes;
	memset(&m, 0, sizeof(m));
	m.type = CONTROL_MSG_PEER_ROUTES;
	memset(m.u.peer_routes.node_key, SEED_PEER_KEY_BYTE, WIRE_KEY_LEN);
	m.u.peer_routes.routes = rs;
	len = encode(&m, buf, sizeof(buf));
	seedfile_write(dir, "msg-peer-routes", buf, len);
	m.u.peer_routes.routes.n = 0;
	len = encode(&m, buf, sizeof(buf));
	seedfile_write(dir, "msg-peer-routes-none", buf, len);
	buf[1 + WIRE_KEY_LEN] = CONTROL_MAX_ROUTES + 1;
	seedfile_write(dir, "msg-peer-routes-count-over", buf, len);

	/* satellites: one with a preshared key and one without, none, and broken */
	memset(&m, 0, sizeof(m));
	m.type = CONTROL_MSG_SATELLITES;
	for (size_t i = 0; i < 2; i++) {
		struct control_satellite *sat = &m.u.satellites.list[i];
		memset(sat->public_key, (int)(0x50 + i), WIRE_KEY_LEN);
		snprintf(sat->name, sizeof(sat->name), "phone-%zu", i);
		sat->ipv4[0] = 100, sat->ipv4[1] = 64, sat->ipv4[3] = (uint8_t)(20 + i);
		sat->ipv6[0] = 0xfd, sat->ipv6[15] = (uint8_t)(20 + i);
		sat->has_psk = i == 0;
		memset(sat->psk, sat->has_psk ? 0x77 : 0, WIRE_KEY_LEN);
	}
	m.u.satellites.n = 2;
	len = encode(&m, buf, sizeof(buf));
	seedfile_write(dir, "msg-satellites", buf, len);
	seedfile_write(dir, "msg-satellites-truncated", buf, len - 1);
	buf[1] = CONTROL_MAX_SATELLITES + 1;
	seedfile_write(dir, "msg-satellites-count-over", buf, len);
	m.u.satellites.n = 0;
	len = encode(&m, buf, sizeof(buf));
	seedfile_write(dir, "msg-satellites-none", buf, len);

	/* what every node hears of a gateway's satellites */
	memset(&m, 0, sizeof(m));
	m.type = CONTROL_MSG_PEER_SATELLITES;
	memset(m.u.peer_satellites.node_key, SEED_PEER_KEY_BYTE, WIRE_KEY_LEN);
	snprintf(m.u.peer_satellites.list[0].name, sizeof(m.u.peer_satellites.list[0].name), "phone");
	m.u.peer_satellites.list[0].ipv4[0] = 100, m.u.peer_satellites.list[0].ipv4[1] = 64;
	m.u.peer_satellites.list[0].ipv4[3] = 20;
	m.u.peer_satellites.list[0].ipv6[0] = 0xfd;
	m.u.peer_satellites.n = 1;
	len = encode(&m, buf, sizeof(buf));
	seedfile_write(dir, "msg-peer-satellites", buf, len);
	seedfile_write(dir, "msg-peer-satellites-truncated", buf, len - 1);
	buf[1 + WIRE_KEY_LEN] = CONTROL_MAX_SATELLITES + 1;
	seedfile_write(dir, "msg-peer-satellites-count-over", buf, len);
}

/* Frame plaintexts, as check_records and every opened frame see them. */
static void write_records(const char *dir)
{
	uint8_t plain[CONTROL_MAX_PLAIN];
	struct control_message m;
	size_t used = 0;
	static const uint8_t unknown[] = { 0x42, 0x09, 0x09 };

	/* a map as the coordinator streams it: a full frame of PEERs */
	for (uint8_t i = 0;; i++) {
		size_t before = used;
		msg_peer(&m, (uint8_t)(0x10 + i), (uint8_t)(2 + i));
		if (!control_record_append(plain, sizeof(plain), &used, &m)) {
			used = before;
			break;
		}
	}
	seedfile_write(dir, "records-full-map", plain, used);

	used = 0;
	msg_peer(&m, SEED_PEER_KEY_BYTE, 2);
	append(plain, &used, &m);
	msg_peer_remove(&m);
	append(plain, &used, &m);
	msg_empty(&m, CONTROL_MSG_NETMAP_END);
	append(plain, &used, &m);
	seedfile_write(dir, "records-map-end", plain, used);

	used = 0;
	msg_empty(&m, CONTROL_MSG_KEEPALIVE);
	append(plain, &used, &m);
	append_raw(plain, &used, unknown, sizeof(unknown));
	msg_endpoints(&m);
	append(plain, &used, &m);
	seedfile_write(dir, "records-mixed", plain, used);
	/* keepalive and unknown records, then one byte of the endpoints record's header */
	seedfile_write(dir, "records-cut-header", plain, (2 + 1) + (2 + sizeof(unknown)) + 1);

	static const uint8_t zero_length[] = { 0x00, 0x01, CONTROL_MSG_KEEPALIVE, 0x00, 0x00 };
	static const uint8_t past_end[] = { 0x00, 0x01, CONTROL_MSG_KEEPALIVE, 0x00, 0x05, CONTROL_MSG_ENDPOINTS, 0x00 };
	seedfile_write(dir, "records-zero-length", zero_length, sizeof(zero_length));
	seedfile_write(dir, "records-past-end", past_end, sizeof(past_end));

	/* what a coordinator sends after REGISTERED, then relayed datagrams */
	used = 0;
	msg_relay_info(&m);
	append(plain, &used, &m);
	memset(&m, 0, sizeof(m));
	m.type = CONTROL_MSG_DNS;
	snprintf(m.u.dns.domain, sizeof(m.u.dns.domain), "home.arpa");
	append(plain, &used, &m);
	msg_relay(&m, 1);
	append(plain, &used, &m);
	msg_relay(&m, 92);
	append(plain, &used, &m);
	seedfile_write(dir, "records-relay", plain, used);
	/* the largest relay record fills a frame on its own */
	used = 0;
	msg_relay(&m, RELAY_MAX_PAYLOAD);
	append(plain, &used, &m);
	seedfile_write(dir, "records-relay-max", plain, used);
}

static void write_hellos(const char *dir)
{
	struct control_channel node;
	struct seed s;

	start_session(&node, &s);
	control_channel_clear(&node);
	seedfile_write(dir, "hello", s.data, s.len);
	seedfile_write(dir, "hello-body", s.data + CONTROL_FRAME_HEADER_LEN, s.len - CONTROL_FRAME_HEADER_LEN);
	seedfile_write(dir, "hello-truncated", s.data, s.len - 10);
	s.data[CONTROL_FRAME_HEADER_LEN] ^= 0x20; /* "mSHC" */
	seedfile_write(dir, "hello-bad-magic", s.data, s.len);
	s.data[CONTROL_FRAME_HEADER_LEN] ^= 0x20;
	s.data[CONTROL_FRAME_HEADER_LEN + 4] = CONTROL_PROTOCOL_VERSION + 1;
	seedfile_write(dir, "hello-bad-version", s.data, s.len);
}

/* One frame from the node: the messages of list (n of them) as records, plus raw records. */
static void seal_frame(struct control_channel *node, struct seed *s, const struct control_message *list, size_t n,
		       const uint8_t *raw, size_t raw_len)
{
	uint8_t plain[CONTROL_MAX_PLAIN];
	size_t used = 0;

	for (size_t i = 0; i < n; i++)
		append(plain, &used, &list[i]);
	if (raw_len)
		append_raw(plain, &used, raw, raw_len);
	seal_onto(node, s, plain, used);
}

static void write_sessions(const char *dir)
{
	struct control_channel node;
	struct control_message m[2];
	struct seed s;
	static const uint8_t unknown[] = { 0x42, 0x09, 0x09 };
	static const uint8_t endpoints_cut[] = { CONTROL_MSG_ENDPOINTS, 0x01 }; /* a malformed message */
	static const uint8_t keepalive_past_end[] = { 0x00, 0x02, CONTROL_MSG_KEEPALIVE }; /* claims 2, has 1 */

	/* hello, REGISTER, then frames a node sends (and a few it should not) */
	start_session(&node, &s);
	msg_register(&m[0]);
	seal_frame(&node, &s, m, 1, NULL, 0);
	msg_endpoints(&m[0]);
	msg_empty(&m[1], CONTROL_MSG_KEEPALIVE);
	seal_frame(&node, &s, m, 2, NULL, 0);
	msg_peer(&m[0], SEED_PEER_KEY_BYTE, 3);
	msg_peer_remove(&m[1]);
	seal_frame(&node, &s, m, 2, unknown, sizeof(unknown));
	seal_frame(&node, &s, m, 0, endpoints_cut, sizeof(endpoints_cut));
	seedfile_write(dir, "session", s.data, s.len);
	{
		/* the same session going on with relayed datagrams, the largest alone in its frame */
		struct seed r = s;

		msg_relay(&m[0], 148);
		msg_empty(&m[1], CONTROL_MSG_KEEPALIVE);
		seal_frame(&node, &r, m, 2, NULL, 0);
		msg_relay(&m[0], RELAY_MAX_PAYLOAD);
		seal_frame(&node, &r, m, 1, NULL, 0);
		seedfile_write(dir, "session-relay", r.data, r.len);
	}
	seedfile_write(dir, "session-cut", s.data, s.len - 7);
	s.data[s.len - 3] ^= 0x01;
	seedfile_write(dir, "session-tampered", s.data, s.len);
	control_channel_clear(&node);

	/* well sealed, badly packed: a record length past the end, and an empty frame */
	start_session(&node, &s);
	msg_register(&m[0]);
	seal_frame(&node, &s, m, 1, NULL, 0);
	seal_onto(&node, &s, keepalive_past_end, sizeof(keepalive_past_end));
	seedfile_write(dir, "session-record-past-end", s.data, s.len);
	control_channel_clear(&node);

	start_session(&node, &s);
	seal_onto(&node, &s, NULL, 0);
	seedfile_write(dir, "session-empty-frame", s.data, s.len);
	control_channel_clear(&node);
}

static void write_streams(const char *dir)
{
	static const uint8_t oversize[] = { 0x10, 0x01, 0x01 };      /* CONTROL_MAX_FRAME + 1 */
	static const uint8_t two_frames[] = { 0x00, 0x02, 0x08, 0x08, 0x00, 0x01, 0x06 };
	static const uint8_t zero_length[] = { 0x00, 0x00, 0x01 };
	seedfile_write(dir, "stream-oversize", oversize, sizeof(oversize));
	seedfile_write(dir, "stream-two-frames", two_frames, sizeof(two_frames));
	seedfile_write(dir, "stream-zero-length", zero_length, sizeof(zero_length));
	seedfile_write(dir, "empty", NULL, 0);
}

int main(int argc, char **argv)
{
	if (argc != 2 || sodium_init() < 0) {
		fprintf(stderr, "usage: gen_control_seeds DIR\n");
		return 2;
	}
	write_messages(argv[1]);
	write_records(argv[1]);
	write_hellos(argv[1]);
	write_sessions(argv[1]);
	write_streams(argv[1]);
	return 0;
}
