/* Helpers and sample messages shared by the control protocol tests: see control_fixtures.h. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "control_fixtures.h"

void unhex(uint8_t *out, size_t cap, const char *hex, size_t *len)
{
	size_t bin_len = 0;

	assert_int_equal(sodium_hex2bin(out, cap, hex, strlen(hex), NULL, &bin_len, NULL), 0);
	assert_int_equal(bin_len * 2, strlen(hex));
	*len = bin_len;
}

void seq_bytes(uint8_t *out, size_t len, uint8_t start)
{
	for (size_t i = 0; i < len; i++)
		out[i] = (uint8_t)(start + i);
}

static void set_v4(struct control_endpoint *e, uint8_t a, uint8_t b, uint8_t c, uint8_t d, uint16_t port)
{
	memset(e, 0, sizeof(*e));
	e->family = 4;
	e->addr[0] = a;
	e->addr[1] = b;
	e->addr[2] = c;
	e->addr[3] = d;
	e->port = port;
}

/* An IPv6 address given as 16 bytes of hex. */
static void set_v6(struct control_endpoint *e, const char *hex, uint16_t port)
{
	size_t len;

	memset(e, 0, sizeof(*e));
	e->family = 6;
	unhex(e->addr, sizeof(e->addr), hex, &len);
	assert_int_equal(len, 16);
	e->port = port;
}

static void set_bytes_hex(uint8_t *out, size_t want, const char *hex)
{
	size_t len;

	unhex(out, want, hex, &len);
	assert_int_equal(len, want);
}

/* ---------------------------------------------------------------- sample messages
 *
 * The first eight are the ones the golden encodings below describe; the rest push every
 * field to its limits. Each builder fills a zeroed message. */

void make_register(struct control_message *m)
{
	m->type = CONTROL_MSG_REGISTER;
	strcpy(m->u.reg.hostname, "laptop-1.home_lan");
	seq_bytes(m->u.reg.join_secret, 20, 0x30);
	m->u.reg.join_secret_len = 20;
	set_v4(&m->u.reg.endpoints[0], 192, 168, 1, 10, 51820);
	set_v6(&m->u.reg.endpoints[1], "20010db8000000000000000000000001", 51820);
	set_v4(&m->u.reg.endpoints[2], 203, 0, 113, 7, 40000);
	m->u.reg.n_endpoints = 3;
}

void make_registered(struct control_message *m)
{
	m->type = CONTROL_MSG_REGISTERED;
	strcpy(m->u.registered.name, "laptop-1");
	set_bytes_hex(m->u.registered.ipv4, 4, "64400005");
	m->u.registered.ipv4_bits = 10;
	set_bytes_hex(m->u.registered.ipv6, 16, "fd123456789a00000000000000000005");
	m->u.registered.ipv6_bits = 48;
}

void make_error(struct control_message *m)
{
	m->type = CONTROL_MSG_ERROR;
	m->u.error.code = CONTROL_ERR_JOIN_KEY_USED;
	strcpy(m->u.error.text, "join key already used (key id 7)");
}

void make_peer(struct control_message *m)
{
	m->type = CONTROL_MSG_PEER;
	seq_bytes(m->u.peer.node_key, WIRE_KEY_LEN, 0x50);
	strcpy(m->u.peer.name, "server");
	set_bytes_hex(m->u.peer.ipv4, 4, "64400009");
	set_bytes_hex(m->u.peer.ipv6, 16, "fd123456789a00000000000000000009");
	m->u.peer.online = true;
	set_v6(&m->u.peer.endpoints[0], "20010db8000100000000000000000002", 51820);
	set_v4(&m->u.peer.endpoints[1], 198, 51, 100, 2, 1);
	m->u.peer.n_endpoints = 2;
}

static void make_peer_remove(struct control_message *m)
{
	m->type = CONTROL_MSG_PEER_REMOVE;
	seq_bytes(m->u.remove_key, WIRE_KEY_LEN, 0x60);
}

static void make_netmap_end(struct control_message *m)
{
	m->type = CONTROL_MSG_NETMAP_END;
}

void make_endpoints(struct control_message *m)
{
	m->type = CONTROL_MSG_ENDPOINTS;
	set_v4(&m->u.endpoints.list[0], 10, 0, 0, 2, 51820);
	set_v6(&m->u.endpoints.list[1], "fe800000000000000000000000000001", 65535);
	m->u.endpoints.n = 2;
}

void make_keepalive(struct control_message *m)
{
	m->type = CONTROL_MSG_KEEPALIVE;
}

static void fill_endpoints(struct control_endpoint *list, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (i % 2)
			set_v6(&list[i], "20010db8000000000000000000000042", (uint16_t)(1000 + i));
		else
			set_v4(&list[i], 10, 1, 2, (uint8_t)i, (uint16_t)(1000 + i));
	}
}

/* Every character a name may hold, at the longest a name may be. */
static void fill_max_name(char *name)
{
	static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.";

	for (size_t i = 0; i < CONTROL_NAME_MAX; i++)
		name[i] = allowed[i % (sizeof(allowed) - 1)];
	name[CONTROL_NAME_MAX] = '\0';
}

static void make_register_minimal(struct control_message *m)
{
	m->type = CONTROL_MSG_REGISTER;
	strcpy(m->u.reg.hostname, "a"); /* no join secret (a known node), no endpoints */
}

static void make_register_max(struct control_message *m)
{
	m->type = CONTROL_MSG_REGISTER;
	fill_max_name(m->u.reg.hostname);
	memset(m->u.reg.join_secret, 0, CONTROL_SECRET_MAX); /* secrets are bytes: NUL is fine */
	seq_bytes(m->u.reg.join_secret + 1, CONTROL_SECRET_MAX - 1, 0xc0);
	m->u.reg.join_secret_len = CONTROL_SECRET_MAX;
	fill_endpoints(m->u.reg.endpoints, CONTROL_MAX_ENDPOINTS);
	m->u.reg.n_endpoints = CONTROL_MAX_ENDPOINTS;
}

static void make_registered_max(struct control_message *m)
{
	m->type = CONTROL_MSG_REGISTERED;
	fill_max_name(m->u.registered.name);
	memset(m->u.registered.ipv4, 0xff, 4);
	m->u.registered.ipv4_bits = 32;
	memset(m->u.registered.ipv6, 0xff, 16);
	m->u.registered.ipv6_bits = 128;
}

static void make_error_empty(struct control_message *m)
{
	m->type = CONTROL_MSG_ERROR;
	m->u.error.code = 0xffff; /* a code from a newer coordinator still parses */
}

static void make_error_max(struct control_message *m)
{
	m->type = CONTROL_MSG_ERROR;
	m->u.error.code = CONTROL_ERR_INTERNAL;
	for (size_t i = 0; i < CONTROL_MESSAGE_TEXT_MAX; i++)
		m->u.error.text[i] = (char)(0x20 + i % (0x7f - 0x20)); /* every printable character */
}

static void make_peer_offline(struct control_message *m)
{
	m->type = CONTROL_MSG_PEER;
	memset(m->u.peer.node_key, 0xee, WIRE_KEY_LEN);
	strcpy(m->u.peer.name, "x");
}

static void make_peer_max(struct control_message *m)
{
	m->type = CONTROL_MSG_PEER;
	seq_bytes(m->u.peer.node_key, WIRE_KEY_LEN, 0xe0);
	fill_max_name(m->u.peer.name);
	m->u.peer.online = true;
	fill_endpoints(m->u.peer.endpoints, CONTROL_MAX_ENDPOINTS);
	m->u.peer.n_endpoints = CONTROL_MAX_ENDPOINTS;
}

static void make_endpoints_empty(struct control_message *m)
{
	m->type = CONTROL_MSG_ENDPOINTS;
}

void make_endpoints_max(struct control_message *m)
{
	m->type = CONTROL_MSG_ENDPOINTS;
	fill_endpoints(m->u.endpoints.list, CONTROL_MAX_ENDPOINTS);
	m->u.endpoints.n = CONTROL_MAX_ENDPOINTS;
}

/* Publishing (issue 11). */
void make_publish_for_test(struct control_message *m)
{
	m->type = CONTROL_MSG_PUBLISH;
	strcpy(m->u.publish.list[0].name, "web");
	m->u.publish.list[0].proto = CONTROL_PROTO_TCP;
	m->u.publish.list[0].port = 20080;
	strcpy(m->u.publish.list[1].name, "game");
	m->u.publish.list[1].proto = CONTROL_PROTO_UDP;
	m->u.publish.list[1].port = 27015;
	m->u.publish.n = 2;
}

static void make_publish_empty(struct control_message *m)
{
	m->type = CONTROL_MSG_PUBLISH;
}

static void make_publish_state(struct control_message *m)
{
	m->type = CONTROL_MSG_PUBLISH_STATE;
	strcpy(m->u.publish_state.service.name, "web");
	m->u.publish_state.service.proto = CONTROL_PROTO_TCP;
	m->u.publish_state.service.port = 20080;
	m->u.publish_state.state = CONTROL_PUBLISH_OPEN;
}

static void make_stream_open(struct control_message *m)
{
	m->type = CONTROL_MSG_STREAM_OPEN;
	m->u.stream_open.stream_id = 0x0102030405060708u;
	seq_bytes(m->u.stream_open.secret, CONTROL_STREAM_SECRET_LEN, 0x40);
	m->u.stream_open.proto = CONTROL_PROTO_TCP;
	m->u.stream_open.port = 20080;
	m->u.stream_open.client.family = 4;
	memcpy(m->u.stream_open.client.addr, (const uint8_t[]){ 198, 51, 100, 80 }, 4);
	m->u.stream_open.client.port = 40000;
}

static void make_stream_open_v6(struct control_message *m)
{
	make_stream_open(m);
	m->u.stream_open.proto = CONTROL_PROTO_UDP;
	m->u.stream_open.client.family = 6;
	seq_bytes(m->u.stream_open.client.addr, 16, 0x20);
}

static void make_stream_refuse(struct control_message *m)
{
	m->type = CONTROL_MSG_STREAM_REFUSE;
	m->u.stream_refuse = 0x0102030405060708u;
}

/* Golden encodings from a separate Python encoder written from the format in control.h:
 * tests/tools/gen_golden.py (standard library only) prints them, and its --check compares
 * them with this table. */
const struct sample samples[] = {
	{ "register", make_register,
	  "01116c6170746f702d312e686f6d655f6c616e14303132333435363738393a3b3c3d3e3f404142430304c0a8010aca6c"
	  "0620010db8000000000000000000000001ca6c04cb0071079c40" },
	{ "registered", make_registered, "02086c6170746f702d31644000050afd123456789a0000000000000000000530" },
	{ "error", make_error, "030004206a6f696e206b657920616c7265616479207573656420286b6579206964203729" },
	{ "peer", make_peer,
	  "04505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f0673657276657264400009fd1234"
	  "56789a0000000000000000000901020620010db8000100000000000000000002ca6c04c63364020001" },
	{ "peer_remove", make_peer_remove, "05606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f" },
	{ "netmap_end", make_netmap_end, "06" },
	{ "endpoints", make_endpoints, "0702040a000002ca6c06fe800000000000000000000000000001ffff" },
	{ "keepalive", make_keepalive, "08" },
	{ "register_minimal", make_register_minimal, "0101610000" },
	{ "register_max", make_register_max, NULL },
	{ "registered_max", make_registered_max, NULL },
	{ "error_empty", make_error_empty, "03ffff00" },
	{ "error_max", make_error_max, NULL },
	{ "peer_offline", make_peer_offline, NULL },
	{ "peer_max", make_peer_max, NULL },
	{ "endpoints_empty", make_endpoints_empty, "0700" },
	{ "endpoints_max", make_endpoints_max, NULL },
	/* hand-written from control.h: type, count, then name (length, bytes), proto, port */
	{ "publish", make_publish_for_test, "110203776562064e7004" "67616d65" "11" "6987" },
	{ "publish_empty", make_publish_empty, "1100" },
	{ "publish_state", make_publish_state, "1203776562064e7001" },
	{ "stream_open", make_stream_open, NULL },
	{ "stream_open_v6", make_stream_open_v6, NULL },
	{ "stream_refuse", make_stream_refuse, "140102030405060708" },
};

_Static_assert(sizeof(samples) / sizeof(samples[0]) == N_SAMPLES, "N_SAMPLES in control_fixtures.h is out of date");

size_t sample_encode(size_t i, uint8_t *buf, size_t cap)
{
	struct control_message m;
	size_t len;

	memset(&m, 0, sizeof(m));
	samples[i].make(&m);
	len = control_encode(&m, buf, cap);
	if (len == 0)
		fail_msg("sample %s does not encode", samples[i].name);
	return len;
}

/* Decodes from a heap copy of exactly len bytes, so ASan sees any read past the end. */
enum control_decode_result decode_exact(const uint8_t *buf, size_t len, struct control_message *m)
{
	uint8_t *copy = malloc(len ? len : 1);
	enum control_decode_result r;

	assert_non_null(copy);
	if (len)
		memcpy(copy, buf, len);
	r = control_decode(copy, len, m);
	free(copy);
	return r;
}
