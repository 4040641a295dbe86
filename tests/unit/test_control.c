/* The control protocol (control.c, control_channel.c): golden bytes from an independent
 * implementation, round trips of every message type, strict rejection of every truncated,
 * padded or rule-breaking message, records packed into frames and every malformed record
 * length, the Noise handshake and transport frames, and the frame splitter. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/control.h"

enum {
	TEST_BUF_LEN = CONTROL_MAX_FRAME + 64, /* any frame with room to spare */
	TEST_CANARY = 0xa5,                   /* fills buffers so writes past a limit show */
	TEST_FRAMES = 5,                      /* transport frames sent each way in the round trip */
	TEST_ENDPOINT_V4_LEN = 1 + 4 + 2,     /* family, address, port */
};

/* ---------------------------------------------------------------- helpers */

static void unhex(uint8_t *out, size_t cap, const char *hex, size_t *len)
{
	size_t bin_len = 0;

	assert_int_equal(sodium_hex2bin(out, cap, hex, strlen(hex), NULL, &bin_len, NULL), 0);
	assert_int_equal(bin_len * 2, strlen(hex));
	*len = bin_len;
}

static void seq_bytes(uint8_t *out, size_t len, uint8_t start)
{
	for (size_t i = 0; i < len; i++)
		out[i] = (uint8_t)(start + i);
}

/* Decodes from a heap copy of exactly len bytes, so ASan sees any read past the end. */
static enum control_decode_result decode_exact(const uint8_t *buf, size_t len, struct control_message *m)
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

static void make_register(struct control_message *m)
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

static void make_registered(struct control_message *m)
{
	m->type = CONTROL_MSG_REGISTERED;
	strcpy(m->u.registered.name, "laptop-1");
	set_bytes_hex(m->u.registered.ipv4, 4, "64400005");
	m->u.registered.ipv4_bits = 10;
	set_bytes_hex(m->u.registered.ipv6, 16, "fd123456789a00000000000000000005");
	m->u.registered.ipv6_bits = 48;
}

static void make_error(struct control_message *m)
{
	m->type = CONTROL_MSG_ERROR;
	m->u.error.code = CONTROL_ERR_JOIN_KEY_USED;
	strcpy(m->u.error.text, "join key already used (key id 7)");
}

static void make_peer(struct control_message *m)
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

static void make_endpoints(struct control_message *m)
{
	m->type = CONTROL_MSG_ENDPOINTS;
	set_v4(&m->u.endpoints.list[0], 10, 0, 0, 2, 51820);
	set_v6(&m->u.endpoints.list[1], "fe800000000000000000000000000001", 65535);
	m->u.endpoints.n = 2;
}

static void make_keepalive(struct control_message *m)
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

static void make_endpoints_max(struct control_message *m)
{
	m->type = CONTROL_MSG_ENDPOINTS;
	fill_endpoints(m->u.endpoints.list, CONTROL_MAX_ENDPOINTS);
	m->u.endpoints.n = CONTROL_MAX_ENDPOINTS;
}

struct sample {
	const char *name;
	void (*make)(struct control_message *m);
	const char *golden; /* hex of the encoding, or NULL */
};

/* Golden encodings from a separate Python encoder written from the format in control.h. */
static const struct sample samples[] = {
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
};

enum { N_SAMPLES = sizeof(samples) / sizeof(samples[0]) };

static size_t sample_encode(size_t i, uint8_t *buf, size_t cap)
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

/* ---------------------------------------------------------------- codec */

static void test_round_trip(void **state)
{
	for (size_t i = 0; i < N_SAMPLES; i++) {
		struct control_message m, back;
		uint8_t buf[TEST_BUF_LEN], again[TEST_BUF_LEN];
		size_t len, len2;

		memset(&m, 0, sizeof(m));
		samples[i].make(&m);
		len = control_encode(&m, buf, sizeof(buf));
		assert_true(len > 0);
		assert_true(CONTROL_RECORD_HEADER_LEN + len <= CONTROL_MAX_PLAIN); /* fits a frame as a record */
		if (decode_exact(buf, len, &back) != CONTROL_DECODE_OK)
			fail_msg("sample %s does not decode", samples[i].name);
		/* decode zeroes what it does not set, as the builders start from zero */
		if (memcmp(&m, &back, sizeof(m)) != 0)
			fail_msg("sample %s decodes to something else", samples[i].name);
		len2 = control_encode(&back, again, sizeof(again));
		assert_int_equal(len2, len);
		assert_memory_equal(again, buf, len);
	}
}

static void test_golden_encodings(void **state)
{
	for (size_t i = 0; i < N_SAMPLES; i++) {
		uint8_t buf[TEST_BUF_LEN], want[TEST_BUF_LEN];
		size_t len, want_len;

		if (!samples[i].golden)
			continue;
		unhex(want, sizeof(want), samples[i].golden, &want_len);
		len = sample_encode(i, buf, sizeof(buf));
		if (len != want_len || memcmp(buf, want, len) != 0)
			fail_msg("sample %s differs from its golden encoding", samples[i].name);
	}
}

/* Exactly the bytes needed are enough; one fewer fails without writing past cap. */
static void test_encode_cap(void **state)
{
	for (size_t i = 0; i < N_SAMPLES; i++) {
		struct control_message m;
		uint8_t buf[TEST_BUF_LEN];
		size_t len = sample_encode(i, buf, sizeof(buf));

		memset(&m, 0, sizeof(m));
		samples[i].make(&m);
		for (size_t cap = 0; cap < len; cap++) {
			memset(buf, TEST_CANARY, sizeof(buf));
			assert_int_equal(control_encode(&m, buf, cap), 0);
			for (size_t j = cap; j < sizeof(buf); j++)
				assert_int_equal(buf[j], TEST_CANARY);
		}
		assert_int_equal(control_encode(&m, buf, len), len);
		assert_int_equal(control_encode(&m, NULL, 0), 0);
	}
}

static void test_every_truncation(void **state)
{
	for (size_t i = 0; i < N_SAMPLES; i++) {
		uint8_t buf[TEST_BUF_LEN];
		size_t len = sample_encode(i, buf, sizeof(buf));

		for (size_t cut = 0; cut < len; cut++) {
			struct control_message m;

			if (decode_exact(buf, cut, &m) != CONTROL_DECODE_MALFORMED)
				fail_msg("sample %s cut to %zu bytes was not refused", samples[i].name, cut);
		}
	}
}

static void test_trailing_byte(void **state)
{
	for (size_t i = 0; i < N_SAMPLES; i++) {
		uint8_t buf[TEST_BUF_LEN];
		size_t len = sample_encode(i, buf, sizeof(buf));
		struct control_message m;

		buf[len] = 0;
		if (decode_exact(buf, len + 1, &m) != CONTROL_DECODE_MALFORMED)
			fail_msg("sample %s with a trailing byte was not refused", samples[i].name);
		assert_int_equal(m.type, buf[0]); /* kept for the log line */
	}
}

static void test_empty_buffer(void **state)
{
	struct control_message m;

	assert_int_equal(decode_exact(NULL, 0, &m), CONTROL_DECODE_MALFORMED);
	assert_int_equal(control_decode(NULL, 0, &m), CONTROL_DECODE_MALFORMED);
}

/* Each is one valid message with one rule broken (or a near miss that is valid). */
static const struct {
	const char *why;
	const char *hex;
	enum control_decode_result want;
} decode_cases[] = {
	{ "endpoint family 5", "07" "01" "05" "0a000001" "1f90", CONTROL_DECODE_MALFORMED },
	{ "endpoint family 0", "07" "01" "00" "0a000001" "1f90", CONTROL_DECODE_MALFORMED },
	{ "endpoint family 4 with v6 length", "07" "01" "04" "20010db8000000000000000000000001" "1f90",
	  CONTROL_DECODE_MALFORMED },
	{ "endpoint port 0", "07" "01" "04" "0a000001" "0000", CONTROL_DECODE_MALFORMED },
	{ "endpoint count beyond the list", "07" "02" "04" "0a000001" "1f90", CONTROL_DECODE_MALFORMED },
	{ "endpoint count 255", "07" "ff" "04" "0a000001" "1f90", CONTROL_DECODE_MALFORMED },
	{ "near miss: one endpoint", "07" "01" "04" "0a000001" "1f90", CONTROL_DECODE_OK },

	{ "online 2", "04" "0000000000000000000000000000000000000000000000000000000000000000" "0178"
	  "64400009" "fd123456789a00000000000000000009" "02" "00", CONTROL_DECODE_MALFORMED },
	{ "online ff", "04" "0000000000000000000000000000000000000000000000000000000000000000" "0178"
	  "64400009" "fd123456789a00000000000000000009" "ff" "00", CONTROL_DECODE_MALFORMED },
	{ "near miss: online 0", "04" "0000000000000000000000000000000000000000000000000000000000000000" "0178"
	  "64400009" "fd123456789a00000000000000000009" "00" "00", CONTROL_DECODE_OK },

	{ "name with a space", "02" "03" "612062" "64400005" "0a" "fd123456789a00000000000000000005" "30",
	  CONTROL_DECODE_MALFORMED },
	{ "name with a slash", "02" "03" "612f62" "64400005" "0a" "fd123456789a00000000000000000005" "30",
	  CONTROL_DECODE_MALFORMED },
	{ "name with a NUL", "02" "03" "610062" "64400005" "0a" "fd123456789a00000000000000000005" "30",
	  CONTROL_DECODE_MALFORMED },
	{ "name with UTF-8", "02" "02" "c3a9" "64400005" "0a" "fd123456789a00000000000000000005" "30",
	  CONTROL_DECODE_MALFORMED },
	{ "empty name", "02" "00" "64400005" "0a" "fd123456789a00000000000000000005" "30",
	  CONTROL_DECODE_MALFORMED },
	{ "name of 64", "02" "40"
	  "61616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161"
	  "64400005" "0a" "fd123456789a00000000000000000005" "30", CONTROL_DECODE_MALFORMED },
	{ "name longer than the message", "02" "30" "616263", CONTROL_DECODE_MALFORMED },
	{ "ipv4 bits 33", "02" "01" "61" "64400005" "21" "fd123456789a00000000000000000005" "30",
	  CONTROL_DECODE_MALFORMED },
	{ "ipv6 bits 129", "02" "01" "61" "64400005" "0a" "fd123456789a00000000000000000005" "81",
	  CONTROL_DECODE_MALFORMED },
	{ "near miss: name a-b_c.d", "02" "07" "612d625f632e64" "64400005" "0a" "fd123456789a00000000000000000005"
	  "30", CONTROL_DECODE_OK },

	{ "hostname with a space", "01" "03" "612062" "00" "00", CONTROL_DECODE_MALFORMED },
	{ "secret of 65", "01" "01" "61" "41"
	  "0000000000000000000000000000000000000000000000000000000000000000"
	  "0000000000000000000000000000000000000000000000000000000000000000" "00" "00", CONTROL_DECODE_MALFORMED },
	{ "secret longer than the message", "01" "01" "61" "10" "0000", CONTROL_DECODE_MALFORMED },
	{ "register without endpoint count", "01" "01" "61" "00", CONTROL_DECODE_MALFORMED },

	{ "error text with BEL", "03" "0001" "03" "610762", CONTROL_DECODE_MALFORMED },
	{ "error text with DEL", "03" "0001" "01" "7f", CONTROL_DECODE_MALFORMED },
	{ "error text with a high byte", "03" "0001" "01" "80", CONTROL_DECODE_MALFORMED },
	{ "error text with a newline", "03" "0001" "01" "0a", CONTROL_DECODE_MALFORMED },
	{ "error text of 201", "03" "0001" "c9"
	  "6161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161"
	  "6161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161"
	  "6161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161"
	  "6161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161616161"
	  "61", CONTROL_DECODE_MALFORMED },
	{ "near miss: error text ' ~'", "03" "0001" "02" "207e", CONTROL_DECODE_OK },

	{ "peer_remove short key", "05" "00", CONTROL_DECODE_MALFORMED },
	{ "keepalive with a body", "08" "00", CONTROL_DECODE_MALFORMED },
	{ "netmap_end with a body", "06" "06", CONTROL_DECODE_MALFORMED },

	{ "type 0", "00", CONTROL_DECODE_UNKNOWN },
	{ "type 9 with a body", "09" "0102030405", CONTROL_DECODE_UNKNOWN },
	{ "type 0x80", "80", CONTROL_DECODE_UNKNOWN },
	{ "type 0xff with a body", "ff" "ffffffff", CONTROL_DECODE_UNKNOWN },
};

static void test_decode_cases(void **state)
{
	for (size_t i = 0; i < sizeof(decode_cases) / sizeof(decode_cases[0]); i++) {
		uint8_t buf[TEST_BUF_LEN];
		size_t len;
		struct control_message m;
		enum control_decode_result r;

		unhex(buf, sizeof(buf), decode_cases[i].hex, &len);
		r = decode_exact(buf, len, &m);
		if (r != decode_cases[i].want)
			fail_msg("%s: got %d, want %d", decode_cases[i].why, r, decode_cases[i].want);
		if (r == CONTROL_DECODE_UNKNOWN)
			assert_int_equal(m.type, buf[0]); /* the caller can log what it skipped */
	}
}

/* One more endpoint than allowed, every one of them well formed. */
static void test_too_many_endpoints(void **state)
{
	uint8_t buf[2 + (CONTROL_MAX_ENDPOINTS + 1) * TEST_ENDPOINT_V4_LEN];
	struct control_message m;
	size_t off = 0;

	buf[off++] = CONTROL_MSG_ENDPOINTS;
	buf[off++] = CONTROL_MAX_ENDPOINTS + 1;
	for (int i = 0; i < CONTROL_MAX_ENDPOINTS + 1; i++) {
		static const uint8_t ep[TEST_ENDPOINT_V4_LEN] = { 4, 10, 0, 0, 1, 0x1f, 0x90 };

		memcpy(buf + off, ep, sizeof(ep));
		off += sizeof(ep);
	}
	assert_int_equal(off, sizeof(buf));
	assert_int_equal(decode_exact(buf, off, &m), CONTROL_DECODE_MALFORMED);
	/* the same list one shorter is fine */
	buf[1] = CONTROL_MAX_ENDPOINTS;
	assert_int_equal(decode_exact(buf, off - TEST_ENDPOINT_V4_LEN, &m), CONTROL_DECODE_OK);
	assert_int_equal(m.u.endpoints.n, CONTROL_MAX_ENDPOINTS);
}

/* A register that fails to parse leaves none of its join secret in the output. */
static void test_malformed_register_wiped(void **state)
{
	uint8_t buf[TEST_BUF_LEN];
	size_t len;
	struct control_message m;

	len = sample_encode(0, buf, sizeof(buf)); /* "register" */
	buf[len - 2] = 0; /* the last endpoint's port 0: refused after the secret was read */
	buf[len - 1] = 0;
	assert_int_equal(decode_exact(buf, len, &m), CONTROL_DECODE_MALFORMED);
	assert_int_equal(m.type, CONTROL_MSG_REGISTER);
	assert_true(sodium_is_zero((const uint8_t *)&m.u, sizeof(m.u)));
}

typedef void (*breaker_fn)(struct control_message *m);

static void break_type(struct control_message *m)
{
	make_keepalive(m);
	m->type = (enum control_msg_type)9;
}

static void break_endpoint_count(struct control_message *m)
{
	make_endpoints_max(m);
	m->u.endpoints.n = CONTROL_MAX_ENDPOINTS + 1;
}

static void break_family(struct control_message *m)
{
	make_endpoints(m);
	m->u.endpoints.list[1].family = 5;
}

static void break_port(struct control_message *m)
{
	make_peer(m);
	m->u.peer.endpoints[0].port = 0;
}

static void break_register_count(struct control_message *m)
{
	make_register(m);
	m->u.reg.n_endpoints = SIZE_MAX;
}

static void break_hostname_chars(struct control_message *m)
{
	make_register(m);
	strcpy(m->u.reg.hostname, "my laptop");
}

static void break_hostname_empty(struct control_message *m)
{
	make_register(m);
	m->u.reg.hostname[0] = '\0';
}

static void break_hostname_unterminated(struct control_message *m)
{
	make_register(m);
	memset(m->u.reg.hostname, 'a', sizeof(m->u.reg.hostname));
}

static void break_secret_len(struct control_message *m)
{
	make_register(m);
	m->u.reg.join_secret_len = CONTROL_SECRET_MAX + 1;
}

static void break_ipv4_bits(struct control_message *m)
{
	make_registered(m);
	m->u.registered.ipv4_bits = 33;
}

static void break_ipv6_bits(struct control_message *m)
{
	make_registered(m);
	m->u.registered.ipv6_bits = 129;
}

static void break_peer_name(struct control_message *m)
{
	make_peer(m);
	strcpy(m->u.peer.name, "a\tb");
}

static void break_error_text(struct control_message *m)
{
	make_error(m);
	strcpy(m->u.error.text, "line\nbreak");
}

static void break_error_unterminated(struct control_message *m)
{
	make_error(m);
	memset(m->u.error.text, 'a', sizeof(m->u.error.text));
}

static void test_encode_refuses_invalid(void **state)
{
	static const struct {
		const char *why;
		breaker_fn make;
	} cases[] = {
		{ "unknown type", break_type },
		{ "17 endpoints", break_endpoint_count },
		{ "family 5", break_family },
		{ "port 0", break_port },
		{ "endpoint count SIZE_MAX", break_register_count },
		{ "hostname with a space", break_hostname_chars },
		{ "empty hostname", break_hostname_empty },
		{ "unterminated hostname", break_hostname_unterminated },
		{ "secret of 65", break_secret_len },
		{ "ipv4 bits 33", break_ipv4_bits },
		{ "ipv6 bits 129", break_ipv6_bits },
		{ "peer name with a tab", break_peer_name },
		{ "error text with a newline", break_error_text },
		{ "unterminated error text", break_error_unterminated },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct control_message m;
		uint8_t buf[TEST_BUF_LEN];

		memset(&m, 0, sizeof(m));
		cases[i].make(&m);
		memset(buf, TEST_CANARY, sizeof(buf));
		if (control_encode(&m, buf, sizeof(buf)) != 0)
			fail_msg("%s was encoded", cases[i].why);
	}
}

/* ---------------------------------------------------------------- channel
 *
 * Golden frames from a separate Python implementation (hashlib BLAKE2b and hmac, the
 * `cryptography` package's X25519 and ChaCha20-Poly1305) written from the Noise spec and
 * control.h. Keys are the byte sequences start, start+1, ...: node static 0x10.., coordinator
 * static 0x40.., node ephemeral 0x70.., coordinator ephemeral 0xa0..; the timestamp is
 * TAI64N 1700000000 s. They pin the protocol name, the prologue "meshcoord v1", the framing
 * and the key order; the sealed frames are the "register" and "registered" samples (nonce 0)
 * and a keepalive (coordinator's nonce 1). */
static const char golden_timestamp[] = "400000006553f10a07000000";
static const char golden_hello[] =
	"00714d5348430123b7bb8c91ae008711fb12846780bcdf1e065f821bdfec49f57e7c7dcd4c4823a4294bbcb53c3af958"
	"2995ed0287a610dc6d7cdd36a4511d11803c6fbb3258358dea5ee5d517c24ae941b0677a3e4b0c8f48906fb16ba6dd16"
	"d7c65777d2c821f5f3e45a55ebbc4716215b81";
static const char golden_welcome[] =
	"0030605a725d2a4adfeeb1a29e17edd621c1b7593ee8cdbc44ac6c4ab6e2f805d23cfe1e78b4a7c5cbf034d93c372332"
	"3bee";
static const char golden_k1[] = "7ca8962d3b3d35feec7ba29d66746ba48e871aecc4cab3012d3d3d252034e99d";
static const char golden_k2[] = "c17810a8381c5ba73deb2397df4de75d76487161a5747f194f440eea458ba55a";
static const char golden_node_public[] = "d89e3bad79437dbed9f843418304f460ff05c7fe81fe4a9577a804cb9367ff66";
static const char golden_seal_node0[] =
	"005ad38b7f46fb43f47908d0b661ba096c87e8af3ef3eaa4da3977237bb32f81c54be8806c792aa0a46f868d5192c98c"
	"1dd50172edf1525204b7cb3425929ae1135566c90711a9c6894316e20d43055b85a0c9ab1df44871fec3fc79";
static const char golden_seal_coord0[] =
	"0030f0eb3b0ede5a1d20eb63fce93fd4a0c29bdff46dff26446639329775379a4fc4d795e5111280af569a4c4b09156a"
	"9c26";
static const char golden_seal_coord1[] = "001144ed294879c2c789a99ed24ef8349fc362";

struct fixture {
	uint8_t node_private[WIRE_KEY_LEN], coord_private[WIRE_KEY_LEN], coord_public[WIRE_KEY_LEN];
	uint8_t node_e[WIRE_KEY_LEN], coord_e[WIRE_KEY_LEN];
	uint8_t timestamp[WIRE_TIMESTAMP_LEN];
	uint8_t hello[TEST_BUF_LEN], welcome[TEST_BUF_LEN];
	size_t hello_len, welcome_len;
	struct control_channel node, coord; /* after the hello, and after the accept */
};

static int fixture_setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	size_t len;

	assert_non_null(f);
	assert_true(sodium_init() >= 0);
	seq_bytes(f->node_private, WIRE_KEY_LEN, 0x10);
	seq_bytes(f->coord_private, WIRE_KEY_LEN, 0x40);
	seq_bytes(f->node_e, WIRE_KEY_LEN, 0x70);
	seq_bytes(f->coord_e, WIRE_KEY_LEN, 0xa0);
	assert_int_equal(crypto_scalarmult_base(f->coord_public, f->coord_private), 0);
	unhex(f->timestamp, sizeof(f->timestamp), golden_timestamp, &len);
	assert_int_equal(len, WIRE_TIMESTAMP_LEN);

	assert_true(control_client_hello(&f->node, f->node_private, f->coord_public, f->timestamp, f->node_e, f->hello,
					 sizeof(f->hello), &f->hello_len));
	*state = f;
	return 0;
}

static int fixture_teardown(void **state)
{
	struct fixture *f = *state;

	control_channel_clear(&f->node);
	control_channel_clear(&f->coord);
	free(f);
	return 0;
}

/* Frame 1 through the coordinator, frame 2 back: both ends established. */
static void handshake_complete(struct fixture *f)
{
	uint8_t ts[WIRE_TIMESTAMP_LEN];

	assert_true(control_server_accept(&f->coord, f->coord_private, f->hello + CONTROL_FRAME_HEADER_LEN,
					  f->hello_len - CONTROL_FRAME_HEADER_LEN, ts, f->coord_e, f->welcome,
					  sizeof(f->welcome), &f->welcome_len));
	assert_memory_equal(ts, f->timestamp, WIRE_TIMESTAMP_LEN);
	assert_true(control_client_finish(&f->node, f->welcome + CONTROL_FRAME_HEADER_LEN,
					  f->welcome_len - CONTROL_FRAME_HEADER_LEN));
}

static void expect_frame_hex(const uint8_t *frame, size_t len, const char *hex)
{
	uint8_t want[TEST_BUF_LEN];
	size_t want_len;

	unhex(want, sizeof(want), hex, &want_len);
	assert_int_equal(len, want_len);
	assert_memory_equal(frame, want, len);
}

static void test_handshake_golden(void **state)
{
	struct fixture *f = *state;
	uint8_t key[WIRE_KEY_LEN], plain[TEST_BUF_LEN], frame[TEST_BUF_LEN];
	size_t len, plain_len;

	assert_int_equal(f->hello_len, CONTROL_FRAME_HEADER_LEN + CONTROL_HELLO_LEN);
	expect_frame_hex(f->hello, f->hello_len, golden_hello);
	handshake_complete(f);
	assert_int_equal(f->welcome_len, CONTROL_FRAME_HEADER_LEN + CONTROL_WELCOME_LEN);
	expect_frame_hex(f->welcome, f->welcome_len, golden_welcome);

	unhex(key, sizeof(key), golden_node_public, &len);
	assert_memory_equal(f->coord.remote_static, key, WIRE_KEY_LEN);
	assert_memory_equal(f->node.remote_static, f->coord_public, WIRE_KEY_LEN);
	unhex(key, sizeof(key), golden_k1, &len);
	assert_memory_equal(f->node.send_key, key, WIRE_KEY_LEN);
	assert_memory_equal(f->coord.recv_key, key, WIRE_KEY_LEN);
	unhex(key, sizeof(key), golden_k2, &len);
	assert_memory_equal(f->node.recv_key, key, WIRE_KEY_LEN);
	assert_memory_equal(f->coord.send_key, key, WIRE_KEY_LEN);
	/* the handshake state is of no use once split, and holds secrets */
	assert_true(sodium_is_zero((const uint8_t *)&f->node.hs, sizeof(f->node.hs)));
	assert_true(sodium_is_zero((const uint8_t *)&f->coord.hs, sizeof(f->coord.hs)));

	/* sample 0 is "register", sample 1 "registered" */
	len = sample_encode(0, plain, sizeof(plain));
	assert_true(control_seal(&f->node, plain, len, frame, sizeof(frame), &len));
	expect_frame_hex(frame, len, golden_seal_node0);
	len = sample_encode(1, plain, sizeof(plain));
	assert_true(control_seal(&f->coord, plain, len, frame, sizeof(frame), &len));
	expect_frame_hex(frame, len, golden_seal_coord0);
	plain[0] = CONTROL_MSG_KEEPALIVE;
	assert_true(control_seal(&f->coord, plain, 1, frame, sizeof(frame), &len));
	expect_frame_hex(frame, len, golden_seal_coord1);
	/* the node opens frames in order only: this one is its second */
	assert_false(control_open(&f->node, frame + CONTROL_FRAME_HEADER_LEN, len - CONTROL_FRAME_HEADER_LEN, plain,
				  sizeof(plain), &plain_len));
}

/* Sends `count` frames from one side to the other through control_frame_next, frame i
 * holding i + 1 records of consecutive samples, and checks they arrive as sent. */
static void exchange(struct control_channel *from, struct control_channel *to, size_t count, size_t first_sample)
{
	uint8_t stream[TEST_FRAMES * (CONTROL_MAX_FRAME + CONTROL_FRAME_HEADER_LEN)];
	size_t stream_len = 0, off = 0, sample = first_sample;

	assert_true(count <= TEST_FRAMES);
	for (size_t i = 0; i < count; i++) {
		uint8_t plain[CONTROL_MAX_PLAIN];
		size_t len = 0, frame_len;

		for (size_t r = 0; r <= i; r++) {
			struct control_message m;

			memset(&m, 0, sizeof(m));
			samples[sample++ % N_SAMPLES].make(&m);
			assert_true(control_record_append(plain, sizeof(plain), &len, &m));
		}
		assert_true(control_seal(from, plain, len, stream + stream_len, sizeof(stream) - stream_len, &frame_len));
		assert_int_equal(frame_len, CONTROL_FRAME_HEADER_LEN + len + NOISE_TAG_LEN);
		stream_len += frame_len;
	}
	sample = first_sample;
	for (size_t i = 0; i < count; i++) {
		uint8_t plain[CONTROL_MAX_PLAIN], want[CONTROL_MAX_PLAIN];
		const uint8_t *body, *msg;
		size_t body_len, consumed, plain_len, want_len, msg_len, rec_off = 0;
		struct control_message m;

		assert_int_equal(control_frame_next(stream + off, stream_len - off, &body, &body_len, &consumed), 1);
		assert_true(control_open(to, body, body_len, plain, sizeof(plain), &plain_len));
		for (size_t r = 0; r <= i; r++) {
			assert_int_equal(control_record_next(plain, plain_len, &rec_off, &msg, &msg_len), 1);
			want_len = sample_encode(sample++ % N_SAMPLES, want, sizeof(want));
			assert_int_equal(msg_len, want_len);
			assert_memory_equal(msg, want, want_len);
			assert_int_equal(control_decode(msg, msg_len, &m), CONTROL_DECODE_OK);
		}
		assert_int_equal(control_record_next(plain, plain_len, &rec_off, &msg, &msg_len), 0);
		off += consumed;
	}
	assert_int_equal(off, stream_len);
}

static void test_handshake_and_transport(void **state)
{
	struct fixture *f = *state;

	assert_false(f->node.established);
	handshake_complete(f);
	assert_true(f->node.established);
	assert_true(f->coord.established);
	for (size_t round = 0; round < 3; round++) {
		exchange(&f->node, &f->coord, TEST_FRAMES, round);
		exchange(&f->coord, &f->node, TEST_FRAMES, round + 7);
	}
	assert_int_equal(f->node.send_nonce, 3 * TEST_FRAMES);
	assert_int_equal(f->coord.recv_nonce, 3 * TEST_FRAMES);
	assert_int_equal(f->coord.send_nonce, 3 * TEST_FRAMES);
	assert_int_equal(f->node.recv_nonce, 3 * TEST_FRAMES);
}

/* Fresh ephemerals (NULL) still agree; only the injected ones are fixed. */
static void test_handshake_random_ephemerals(void **state)
{
	struct fixture *f = *state;
	uint8_t ts[WIRE_TIMESTAMP_LEN];

	assert_true(control_client_hello(&f->node, f->node_private, f->coord_public, f->timestamp, NULL, f->hello,
					 sizeof(f->hello), &f->hello_len));
	assert_true(control_server_accept(&f->coord, f->coord_private, f->hello + CONTROL_FRAME_HEADER_LEN,
					  f->hello_len - CONTROL_FRAME_HEADER_LEN, ts, NULL, f->welcome,
					  sizeof(f->welcome), &f->welcome_len));
	assert_true(control_client_finish(&f->node, f->welcome + CONTROL_FRAME_HEADER_LEN,
					  f->welcome_len - CONTROL_FRAME_HEADER_LEN));
	exchange(&f->node, &f->coord, 2, 0);
	exchange(&f->coord, &f->node, 2, 3);
}

static void seal_sample(struct control_channel *ch, size_t sample, uint8_t *frame, size_t cap, size_t *len)
{
	uint8_t plain[CONTROL_MAX_PLAIN];
	size_t plain_len = sample_encode(sample, plain, sizeof(plain));

	assert_true(control_seal(ch, plain, plain_len, frame, cap, len));
}

/* Every flipped bit of a frame (header aside) is refused without moving the nonce; the
 * genuine frame still opens afterwards. */
static void test_tampered_frame(void **state)
{
	struct fixture *f = *state;
	uint8_t frame[TEST_BUF_LEN], plain[TEST_BUF_LEN];
	size_t len, plain_len;
	struct control_channel before;

	handshake_complete(f);
	seal_sample(&f->node, 3, frame, sizeof(frame), &len);
	before = f->coord;
	for (size_t i = CONTROL_FRAME_HEADER_LEN; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			frame[i] ^= (uint8_t)(1u << bit);
			memset(plain, TEST_CANARY, sizeof(plain));
			assert_false(control_open(&f->coord, frame + CONTROL_FRAME_HEADER_LEN, len - CONTROL_FRAME_HEADER_LEN,
						  plain, sizeof(plain), &plain_len));
			assert_memory_equal(&f->coord, &before, sizeof(before));
			/* no unauthenticated plaintext reaches the caller */
			assert_true(sodium_is_zero(plain, len - CONTROL_FRAME_HEADER_LEN - NOISE_TAG_LEN));
			frame[i] ^= (uint8_t)(1u << bit);
		}
	}
	/* shorter and longer bodies too */
	assert_false(control_open(&f->coord, frame + CONTROL_FRAME_HEADER_LEN, len - CONTROL_FRAME_HEADER_LEN - 1, plain,
				  sizeof(plain), &plain_len));
	assert_false(control_open(&f->coord, frame + CONTROL_FRAME_HEADER_LEN, len - CONTROL_FRAME_HEADER_LEN + 1, plain,
				  sizeof(plain), &plain_len));
	assert_memory_equal(&f->coord, &before, sizeof(before));
	assert_true(control_open(&f->coord, frame + CONTROL_FRAME_HEADER_LEN, len - CONTROL_FRAME_HEADER_LEN, plain,
				 sizeof(plain), &plain_len));
	assert_int_equal(f->coord.recv_nonce, 1);
}

static bool open_frame(struct control_channel *ch, const uint8_t *frame, size_t len)
{
	uint8_t plain[TEST_BUF_LEN];
	size_t plain_len;

	return control_open(ch, frame + CONTROL_FRAME_HEADER_LEN, len - CONTROL_FRAME_HEADER_LEN, plain, sizeof(plain),
			    &plain_len);
}

static void test_replay_and_reorder(void **state)
{
	struct fixture *f = *state;
	uint8_t a[TEST_BUF_LEN], b[TEST_BUF_LEN], c[TEST_BUF_LEN];
	size_t a_len, b_len, c_len;

	handshake_complete(f);
	seal_sample(&f->coord, 0, a, sizeof(a), &a_len);
	seal_sample(&f->coord, 1, b, sizeof(b), &b_len);
	seal_sample(&f->coord, 2, c, sizeof(c), &c_len);

	assert_false(open_frame(&f->node, b, b_len)); /* reordered: b before a */
	assert_true(open_frame(&f->node, a, a_len));
	assert_false(open_frame(&f->node, a, a_len)); /* replayed */
	assert_true(open_frame(&f->node, b, b_len));
	assert_false(open_frame(&f->node, a, a_len));
	assert_false(open_frame(&f->node, b, b_len));
	assert_true(open_frame(&f->node, c, c_len));

	/* a frame sealed for the other direction does not open either */
	seal_sample(&f->node, 0, a, sizeof(a), &a_len);
	assert_false(open_frame(&f->node, a, a_len));
	assert_true(open_frame(&f->coord, a, a_len));
}

static void test_wrong_coordinator_key(void **state)
{
	struct fixture *f = *state;
	uint8_t other_private[WIRE_KEY_LEN], other_public[WIRE_KEY_LEN], ts[WIRE_TIMESTAMP_LEN];

	seq_bytes(other_private, sizeof(other_private), 0x41);
	assert_int_equal(crypto_scalarmult_base(other_public, other_private), 0);
	assert_true(control_client_hello(&f->node, f->node_private, other_public, f->timestamp, f->node_e, f->hello,
					 sizeof(f->hello), &f->hello_len));
	memset(&f->coord, 0x5a, sizeof(f->coord));
	assert_false(control_server_accept(&f->coord, f->coord_private, f->hello + CONTROL_FRAME_HEADER_LEN,
					   f->hello_len - CONTROL_FRAME_HEADER_LEN, ts, f->coord_e, f->welcome,
					   sizeof(f->welcome), &f->welcome_len));
	/* a failed accept leaves an empty channel and no half-written welcome */
	assert_true(sodium_is_zero((const uint8_t *)&f->coord, sizeof(f->coord)));
	assert_true(sodium_is_zero(f->welcome, CONTROL_FRAME_HEADER_LEN + CONTROL_WELCOME_LEN));
	/* the key it was meant for accepts it */
	assert_true(control_server_accept(&f->coord, other_private, f->hello + CONTROL_FRAME_HEADER_LEN,
					  f->hello_len - CONTROL_FRAME_HEADER_LEN, ts, f->coord_e, f->welcome,
					  sizeof(f->welcome), &f->welcome_len));
}

static bool accept_body(struct fixture *f, const uint8_t *body, size_t len)
{
	uint8_t ts[WIRE_TIMESTAMP_LEN];

	return control_server_accept(&f->coord, f->coord_private, body, len, ts, f->coord_e, f->welcome,
				     sizeof(f->welcome), &f->welcome_len);
}

static void test_bad_hello(void **state)
{
	struct fixture *f = *state;
	uint8_t body[TEST_BUF_LEN], ts[WIRE_TIMESTAMP_LEN];
	const size_t len = f->hello_len - CONTROL_FRAME_HEADER_LEN;

	assert_int_equal(len, CONTROL_HELLO_LEN);
	memcpy(body, f->hello + CONTROL_FRAME_HEADER_LEN, len);
	body[len] = 0;

	assert_false(accept_body(f, body, len - 1));
	assert_false(accept_body(f, body, len + 1));
	assert_false(accept_body(f, body, 0));
	assert_false(accept_body(f, NULL, 0));
	/* every bit of magic, version and Noise message matters */
	for (size_t i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			body[i] ^= (uint8_t)(1u << bit);
			if (accept_body(f, body, len))
				fail_msg("hello with byte %zu bit %d flipped was accepted", i, bit);
			body[i] ^= (uint8_t)(1u << bit);
		}
	}
	/* too small an output buffer for the welcome */
	assert_false(control_server_accept(&f->coord, f->coord_private, body, len, ts, f->coord_e, f->welcome,
					   CONTROL_FRAME_HEADER_LEN + CONTROL_WELCOME_LEN - 1, &f->welcome_len));
	assert_true(accept_body(f, body, len));

	/* a hello cannot be written into too small a buffer */
	assert_false(control_client_hello(&f->node, f->node_private, f->coord_public, f->timestamp, f->node_e, f->hello,
					  CONTROL_FRAME_HEADER_LEN + CONTROL_HELLO_LEN - 1, &f->hello_len));
	assert_true(sodium_is_zero((const uint8_t *)&f->node, sizeof(f->node)));
}

static void test_bad_welcome(void **state)
{
	struct fixture *f = *state;
	uint8_t ts[WIRE_TIMESTAMP_LEN], body[TEST_BUF_LEN];
	struct control_channel before;
	size_t len;

	assert_true(control_server_accept(&f->coord, f->coord_private, f->hello + CONTROL_FRAME_HEADER_LEN,
					  f->hello_len - CONTROL_FRAME_HEADER_LEN, ts, f->coord_e, f->welcome,
					  sizeof(f->welcome), &f->welcome_len));
	len = f->welcome_len - CONTROL_FRAME_HEADER_LEN;
	memcpy(body, f->welcome + CONTROL_FRAME_HEADER_LEN, len);
	body[len] = 0;
	before = f->node;

	assert_false(control_client_finish(&f->node, body, len - 1));
	assert_false(control_client_finish(&f->node, body, len + 1));
	assert_false(control_client_finish(&f->node, NULL, 0));
	for (size_t i = 0; i < len; i++) {
		body[i] ^= 0x01;
		assert_false(control_client_finish(&f->node, body, len));
		body[i] ^= 0x01;
	}
	/* a forged welcome changes nothing: the genuine one still completes */
	assert_memory_equal(&f->node, &before, sizeof(before));
	assert_true(control_client_finish(&f->node, body, len));
	/* and only once */
	assert_false(control_client_finish(&f->node, body, len));

	/* finish on a channel that never said hello */
	control_channel_clear(&f->node);
	assert_false(control_client_finish(&f->node, body, len));
	assert_false(f->node.established);
}

static void test_seal_limits(void **state)
{
	struct fixture *f = *state;
	static uint8_t plain[CONTROL_MAX_PLAIN + 1], frame[CONTROL_MAX_FRAME + CONTROL_FRAME_HEADER_LEN + 1];
	uint8_t out[TEST_BUF_LEN];
	size_t len, out_len;
	const uint8_t *body;
	size_t body_len, consumed;

	/* not before the handshake is done */
	assert_false(control_seal(&f->node, plain, 1, frame, sizeof(frame), &len));
	assert_false(control_open(&f->node, frame, NOISE_TAG_LEN, out, sizeof(out), &out_len));
	handshake_complete(f);

	memset(plain, 0x42, sizeof(plain));
	assert_false(control_seal(&f->node, plain, CONTROL_MAX_PLAIN + 1, frame, sizeof(frame), &len));
	assert_false(control_seal(&f->node, plain, 10, frame, CONTROL_FRAME_HEADER_LEN + 10 + NOISE_TAG_LEN - 1, &len));
	assert_false(control_seal(&f->node, NULL, 10, frame, sizeof(frame), &len));
	assert_int_equal(f->node.send_nonce, 0);

	/* the largest frame fits the limit exactly and opens */
	assert_true(control_seal(&f->node, plain, CONTROL_MAX_PLAIN, frame, sizeof(frame), &len));
	assert_int_equal(len, CONTROL_FRAME_HEADER_LEN + CONTROL_MAX_FRAME);
	assert_int_equal(control_frame_next(frame, len, &body, &body_len, &consumed), 1);
	assert_int_equal(body_len, CONTROL_MAX_FRAME);
	assert_false(control_open(&f->coord, body, body_len, out, CONTROL_MAX_PLAIN - 1, &out_len)); /* cap */
	assert_true(control_open(&f->coord, body, body_len, out, sizeof(out), &out_len));
	assert_int_equal(out_len, CONTROL_MAX_PLAIN);
	assert_memory_equal(out, plain, CONTROL_MAX_PLAIN);

	/* an empty plaintext is a valid frame of just the tag */
	assert_true(control_seal(&f->node, NULL, 0, frame, sizeof(frame), &len));
	assert_int_equal(len, CONTROL_FRAME_HEADER_LEN + NOISE_TAG_LEN);
	assert_true(control_open(&f->coord, frame + CONTROL_FRAME_HEADER_LEN, NOISE_TAG_LEN, NULL, 0, &out_len));
	assert_int_equal(out_len, 0);

	/* bodies no frame can carry */
	assert_false(control_open(&f->coord, frame, NOISE_TAG_LEN - 1, out, sizeof(out), &out_len));
	assert_false(control_open(&f->coord, frame, CONTROL_MAX_FRAME + 1, out, sizeof(out), &out_len));
	assert_false(control_open(&f->coord, NULL, NOISE_TAG_LEN, out, sizeof(out), &out_len));
}

/* The last nonce Noise allows is 2^64-2; past it both directions stop for good. */
static void test_nonce_limit(void **state)
{
	static const uint8_t keepalive[] = { CONTROL_MSG_KEEPALIVE };
	struct fixture *f = *state;
	uint8_t frame[TEST_BUF_LEN];
	size_t len;

	handshake_complete(f);
	f->node.send_nonce = UINT64_MAX - 1;
	f->coord.recv_nonce = UINT64_MAX - 1;
	seal_sample(&f->node, 7, frame, sizeof(frame), &len);
	assert_true(f->node.send_nonce == UINT64_MAX);
	assert_true(open_frame(&f->coord, frame, len));
	assert_true(f->coord.recv_nonce == UINT64_MAX);

	assert_false(control_seal(&f->node, keepalive, sizeof(keepalive), frame, sizeof(frame), &len));
	assert_true(f->node.send_nonce == UINT64_MAX);
	/* a frame sealed under 2^64-1 by anyone still does not open */
	f->coord.send_nonce = UINT64_MAX - 1;
	f->node.recv_nonce = UINT64_MAX;
	seal_sample(&f->coord, 7, frame, sizeof(frame), &len);
	assert_false(open_frame(&f->node, frame, len));
}

static void test_channel_clear(void **state)
{
	struct fixture *f = *state;

	handshake_complete(f);
	control_channel_clear(&f->node);
	assert_true(sodium_is_zero((const uint8_t *)&f->node, sizeof(f->node)));
	assert_false(f->node.established);
}

/* ---------------------------------------------------------------- records */

/* Every sample, one record each, in one frame: each comes back whole and in order. */
static void test_record_append_next(void **state)
{
	uint8_t plain[CONTROL_MAX_PLAIN];
	size_t used = 0, off = 0, msg_len;
	const uint8_t *msg;

	for (size_t i = 0; i < N_SAMPLES; i++) {
		struct control_message m;
		size_t before = used;

		memset(&m, 0, sizeof(m));
		samples[i].make(&m);
		if (!control_record_append(plain, sizeof(plain), &used, &m))
			fail_msg("sample %s does not fit the frame", samples[i].name);
		/* the header says how long the message after it is */
		assert_int_equal((size_t)plain[before] << 8 | plain[before + 1], used - before - CONTROL_RECORD_HEADER_LEN);
	}
	for (size_t i = 0; i < N_SAMPLES; i++) {
		uint8_t want[TEST_BUF_LEN];
		size_t want_len = sample_encode(i, want, sizeof(want));
		struct control_message m;

		assert_int_equal(control_record_next(plain, used, &off, &msg, &msg_len), 1);
		assert_int_equal(msg_len, want_len);
		assert_memory_equal(msg, want, want_len);
		assert_int_equal(control_decode(msg, msg_len, &m), CONTROL_DECODE_OK);
	}
	assert_int_equal(off, used);
	assert_int_equal(control_record_next(plain, used, &off, &msg, &msg_len), 0);
	assert_int_equal(control_record_next(plain, used, &off, &msg, &msg_len), 0); /* and stays there */
}

/* A record that does not fit leaves the frame as it was and writes nothing past cap. */
static void test_record_append_limits(void **state)
{
	uint8_t plain[TEST_BUF_LEN], snapshot[TEST_BUF_LEN];
	struct control_message m, keepalive = { .type = CONTROL_MSG_KEEPALIVE };
	size_t len, used;

	memset(&m, 0, sizeof(m));
	make_peer(&m);
	len = control_encode(&m, plain, sizeof(plain));
	assert_true(len > 0);
	for (size_t cap = 0; cap < CONTROL_RECORD_HEADER_LEN + len; cap++) {
		memset(plain, TEST_CANARY, sizeof(plain));
		used = 0;
		assert_false(control_record_append(plain, cap, &used, &m));
		assert_int_equal(used, 0);
		for (size_t j = cap; j < sizeof(plain); j++)
			assert_int_equal(plain[j], TEST_CANARY);
	}
	used = 0;
	assert_true(control_record_append(plain, CONTROL_RECORD_HEADER_LEN + len, &used, &m));
	assert_int_equal(used, CONTROL_RECORD_HEADER_LEN + len);

	/* behind a record: the first stays intact when the second does not fit */
	used = 0;
	assert_true(control_record_append(plain, sizeof(plain), &used, &keepalive));
	memcpy(snapshot, plain, used);
	assert_false(control_record_append(plain, used + CONTROL_RECORD_HEADER_LEN + len - 1, &used, &m));
	assert_int_equal(used, CONTROL_RECORD_HEADER_LEN + 1);
	assert_memory_equal(plain, snapshot, used);

	/* an invalid message does not fit even an empty frame; nor does anything past cap */
	m.type = (enum control_msg_type)0x42;
	used = 0;
	assert_false(control_record_append(plain, CONTROL_MAX_PLAIN, &used, &m));
	assert_int_equal(used, 0);
	used = 10;
	assert_false(control_record_append(plain, 5, &used, &keepalive));
	assert_int_equal(used, 10);
	used = 0;
	assert_false(control_record_append(NULL, CONTROL_MAX_PLAIN, &used, &keepalive));
}

/* Each case is a frame's plaintext and what successive control_record_next calls return. */
static void test_record_next_malformed(void **state)
{
	static const struct {
		const char *why;
		const char *hex;
		int want[3];
	} cases[] = {
		{ "one record", "000108", { 1, 0, 0 } },
		{ "two records", "000108" "000106", { 1, 1, 0 } },
		{ "an unknown type is still a record", "0003" "420102", { 1, 0, 0 } },
		{ "empty frame", "", { -1, -1, -1 } },
		{ "half a header", "00", { -1, -1, -1 } },
		{ "zero-length record", "0000", { -1, -1, -1 } },
		{ "zero-length record with bytes after it", "0000" "0808", { -1, -1, -1 } },
		{ "zero-length record after a good one", "000108" "0000", { 1, -1, -1 } },
		{ "length one past the end", "0002" "08", { -1, -1, -1 } },
		{ "length past the end after a good one", "000108" "0005" "0102", { 1, -1, -1 } },
		{ "half a header after a good one", "000108" "00", { 1, -1, -1 } },
		{ "largest length", "ffff" "08", { -1, -1, -1 } },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t buf[64], *exact;
		size_t len, off = 0;

		unhex(buf, sizeof(buf), cases[i].hex, &len);
		exact = malloc(len ? len : 1); /* exactly len bytes, so ASan sees a read past the end */
		assert_non_null(exact);
		memcpy(exact, buf, len);
		for (size_t step = 0; step < 3; step++) {
			const uint8_t *msg = NULL;
			size_t msg_len = 0, before = off;
			int r = control_record_next(exact, len, &off, &msg, &msg_len);

			if (r != cases[i].want[step])
				fail_msg("%s, call %zu: got %d, want %d", cases[i].why, step + 1, r, cases[i].want[step]);
			if (r == 1) {
				assert_ptr_equal(msg, exact + before + CONTROL_RECORD_HEADER_LEN);
				assert_int_equal(off, before + CONTROL_RECORD_HEADER_LEN + msg_len);
				assert_true(msg_len > 0 && off <= len);
			} else {
				assert_int_equal(off, before); /* the end and a fault leave *off alone */
			}
		}
		free(exact);
	}
	/* an offset past the end and a NULL buffer are faults, not the end */
	{
		uint8_t one[3] = { 0, 1, CONTROL_MSG_KEEPALIVE };
		const uint8_t *msg;
		size_t msg_len, off = 4;

		assert_int_equal(control_record_next(one, sizeof(one), &off, &msg, &msg_len), -1);
		off = 0;
		assert_int_equal(control_record_next(NULL, 3, &off, &msg, &msg_len), -1);
	}
}

/* A frame packed with PEER records as the coordinator streams a map: sealed, split off the
 * stream, opened and walked, every peer arrives as sent. */
static void test_frame_full_of_records(void **state)
{
	struct fixture *f = *state;
	uint8_t plain[CONTROL_MAX_PLAIN], frame[CONTROL_FRAME_HEADER_LEN + CONTROL_MAX_FRAME];
	uint8_t opened[CONTROL_MAX_PLAIN];
	size_t used = 0, n = 0, frame_len, body_len, consumed, opened_len, off = 0, msg_len, peer_len;
	const uint8_t *body, *msg;
	struct control_message m;

	handshake_complete(f);
	for (;;) {
		memset(&m, 0, sizeof(m));
		make_peer(&m);
		m.u.peer.node_key[0] = (uint8_t)n;
		m.u.peer.node_key[1] = (uint8_t)(n >> 8);
		if (!control_record_append(plain, sizeof(plain), &used, &m))
			break;
		n++;
	}
	peer_len = CONTROL_RECORD_HEADER_LEN + control_encode(&m, opened, sizeof(opened));
	assert_int_equal(used, n * peer_len);
	assert_true(used + peer_len > CONTROL_MAX_PLAIN); /* full: the next one did not fit */
	assert_true(n > 20);
	assert_true(control_seal(&f->coord, plain, used, frame, sizeof(frame), &frame_len));
	assert_true(frame_len <= sizeof(frame));

	assert_int_equal(control_frame_next(frame, frame_len, &body, &body_len, &consumed), 1);
	assert_int_equal(consumed, frame_len);
	assert_true(control_open(&f->node, body, body_len, opened, sizeof(opened), &opened_len));
	assert_int_equal(opened_len, used);
	for (size_t i = 0; i < n; i++) {
		struct control_message want;

		assert_int_equal(control_record_next(opened, opened_len, &off, &msg, &msg_len), 1);
		assert_int_equal(control_decode(msg, msg_len, &m), CONTROL_DECODE_OK);
		memset(&want, 0, sizeof(want));
		make_peer(&want);
		want.u.peer.node_key[0] = (uint8_t)i;
		want.u.peer.node_key[1] = (uint8_t)(i >> 8);
		assert_memory_equal(&m, &want, sizeof(m));
	}
	assert_int_equal(control_record_next(opened, opened_len, &off, &msg, &msg_len), 0);
}

/* ---------------------------------------------------------------- frame splitter */

static void test_frame_next(void **state)
{
	static const struct {
		const char *why;
		const char *hex;
		int want;
		size_t body_len;
	} cases[] = {
		{ "nothing", "", 0, 0 },
		{ "half a header", "00", 0, 0 },
		{ "header only", "0003", 0, 0 },
		{ "partial body", "0003aabb", 0, 0 },
		{ "exact frame", "0003aabbcc", 1, 3 },
		{ "one-byte frame", "0001ff", 1, 1 },
		{ "frame and the start of the next", "0001ff00", 1, 1 },
		{ "two frames", "0002aabb0001cc", 1, 2 },
		{ "zero length", "0000", -1, 0 },
		{ "zero length with bytes after it", "0000aabb", -1, 0 },
		{ "one over the limit, header only", "1001", -1, 0 },
		{ "largest length", "ffff", -1, 0 },
		{ "limit exactly, body missing", "1000", 0, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t buf[64];
		size_t len, body_len = 0, consumed = 0;
		const uint8_t *body = NULL;
		uint8_t *exact;
		int r;

		unhex(buf, sizeof(buf), cases[i].hex, &len);
		exact = malloc(len ? len : 1);
		assert_non_null(exact);
		memcpy(exact, buf, len);
		r = control_frame_next(exact, len, &body, &body_len, &consumed);
		if (r != cases[i].want)
			fail_msg("%s: got %d, want %d", cases[i].why, r, cases[i].want);
		if (r == 1) {
			assert_int_equal(body_len, cases[i].body_len);
			assert_ptr_equal(body, exact + CONTROL_FRAME_HEADER_LEN);
			assert_int_equal(consumed, CONTROL_FRAME_HEADER_LEN + body_len);
		}
		free(exact);
	}
}

/* A stream of two frames is split in order, whatever the byte boundaries it arrives in. */
static void test_frame_next_stream(void **state)
{
	static uint8_t stream[2 * CONTROL_FRAME_HEADER_LEN + CONTROL_MAX_FRAME + 1];
	const size_t total = sizeof(stream);
	const uint8_t *body;
	size_t body_len, consumed;

	memset(stream, 0x77, sizeof(stream));
	stream[0] = CONTROL_MAX_FRAME >> 8;
	stream[1] = CONTROL_MAX_FRAME & 0xff;
	stream[CONTROL_FRAME_HEADER_LEN + CONTROL_MAX_FRAME] = 0;
	stream[CONTROL_FRAME_HEADER_LEN + CONTROL_MAX_FRAME + 1] = 1;

	for (size_t have = 0; have < CONTROL_FRAME_HEADER_LEN + CONTROL_MAX_FRAME; have++)
		assert_int_equal(control_frame_next(stream, have, &body, &body_len, &consumed), 0);
	assert_int_equal(control_frame_next(stream, total, &body, &body_len, &consumed), 1);
	assert_int_equal(body_len, CONTROL_MAX_FRAME);
	assert_int_equal(consumed, CONTROL_FRAME_HEADER_LEN + CONTROL_MAX_FRAME);
	assert_int_equal(control_frame_next(stream + consumed, total - consumed, &body, &body_len, &consumed), 1);
	assert_int_equal(body_len, 1);
	assert_ptr_equal(body, stream + total - 1);
	assert_int_equal(consumed, 3);
}

int main(void)
{
#define FIXTURE_TEST(t) cmocka_unit_test_setup_teardown(t, fixture_setup, fixture_teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_golden_encodings),
		cmocka_unit_test(test_encode_cap),
		cmocka_unit_test(test_every_truncation),
		cmocka_unit_test(test_trailing_byte),
		cmocka_unit_test(test_empty_buffer),
		cmocka_unit_test(test_decode_cases),
		cmocka_unit_test(test_too_many_endpoints),
		cmocka_unit_test(test_malformed_register_wiped),
		cmocka_unit_test(test_encode_refuses_invalid),
		FIXTURE_TEST(test_handshake_golden),
		FIXTURE_TEST(test_handshake_and_transport),
		FIXTURE_TEST(test_handshake_random_ephemerals),
		FIXTURE_TEST(test_tampered_frame),
		FIXTURE_TEST(test_replay_and_reorder),
		FIXTURE_TEST(test_wrong_coordinator_key),
		FIXTURE_TEST(test_bad_hello),
		FIXTURE_TEST(test_bad_welcome),
		FIXTURE_TEST(test_seal_limits),
		FIXTURE_TEST(test_nonce_limit),
		FIXTURE_TEST(test_channel_clear),
		cmocka_unit_test(test_record_append_next),
		cmocka_unit_test(test_record_append_limits),
		cmocka_unit_test(test_record_next_malformed),
		FIXTURE_TEST(test_frame_full_of_records),
		cmocka_unit_test(test_frame_next),
		cmocka_unit_test(test_frame_next_stream),
	};
#undef FIXTURE_TEST

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
