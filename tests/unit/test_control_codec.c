/* The control protocol's messages and records (control.c): golden bytes from an independent
 * implementation, round trips of every message type, strict rejection of every truncated,
 * padded or rule-breaking message, and records packed into a frame's plaintext with every
 * malformed record length. The channel that carries them is in test_control_channel.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/control.h"

#include "control_fixtures.h"

enum {
	TEST_ENDPOINT_V4_LEN = 1 + 4 + 2, /* family, address, port */
};

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
	{ "relay_info empty", "09", CONTROL_DECODE_MALFORMED },
	{ "relay_info stun port 0", "09" "0000000000000000000000000000000000000000000000000000000000000000" "0000"
	  "0d97" "00000001", CONTROL_DECODE_MALFORMED },
	{ "near miss: relay_info no alt port, rate 0", "09"
	  "0000000000000000000000000000000000000000000000000000000000000000" "0d96" "0000" "00000000",
	  CONTROL_DECODE_OK },
	{ "relay_info rate cut", "09" "0000000000000000000000000000000000000000000000000000000000000000" "0d96"
	  "0000" "000000", CONTROL_DECODE_MALFORMED },
	{ "relay without a payload", "0a" "0000000000000000000000000000000000000000000000000000000000000000",
	  CONTROL_DECODE_MALFORMED },
	{ "relay with a short key", "0a" "00000000000000000000000000000000000000000000000000000000000000",
	  CONTROL_DECODE_MALFORMED },
	{ "near miss: relay of one byte", "0a" "0000000000000000000000000000000000000000000000000000000000000000" "04",
	  CONTROL_DECODE_OK },
	{ "netmap_end with a body", "06" "06", CONTROL_DECODE_MALFORMED },
	{ "dns empty", "0e", CONTROL_DECODE_MALFORMED },
	{ "dns domain of length 0", "0e" "00", CONTROL_DECODE_MALFORMED },
	{ "dns domain cut", "0e" "04" "6d6573", CONTROL_DECODE_MALFORMED },
	{ "dns domain with a trailing byte", "0e" "02" "6d65" "00", CONTROL_DECODE_MALFORMED },
	{ "dns domain in upper case", "0e" "04" "4d657368", CONTROL_DECODE_MALFORMED },
	{ "dns domain with an empty label", "0e" "05" "6d652e2e73", CONTROL_DECODE_MALFORMED },
	{ "dns domain with a final dot", "0e" "03" "6d652e", CONTROL_DECODE_MALFORMED },
	{ "dns domain with a NUL", "0e" "03" "6d0065", CONTROL_DECODE_MALFORMED },
	{ "near miss: dns domain 'me.sh'", "0e" "05" "6d652e7368", CONTROL_DECODE_OK },

	{ "type 0", "00", CONTROL_DECODE_UNKNOWN },
	{ "type 99 with a body", "63" "0102030405", CONTROL_DECODE_UNKNOWN },
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
	m->type = (enum control_msg_type)99; /* 9 and 10 are RELAY_INFO and RELAY now */
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

static void break_relay_info_port(struct control_message *m)
{
	m->type = CONTROL_MSG_RELAY_INFO;
	memset(m->u.relay_info.token, 0x11, RELAY_TOKEN_LEN);
	m->u.relay_info.alt_stun_port = 3479;
	m->u.relay_info.relay_rate = 1000;
}

static void break_relay_empty(struct control_message *m)
{
	static const uint8_t payload[1] = { 0x04 };

	m->type = CONTROL_MSG_RELAY;
	m->u.relay.payload = payload;
}

static void break_relay_null_payload(struct control_message *m)
{
	m->type = CONTROL_MSG_RELAY;
	m->u.relay.payload_len = 10;
}

static void break_relay_oversize(struct control_message *m)
{
	static const uint8_t payload[RELAY_MAX_PAYLOAD + 1];

	m->type = CONTROL_MSG_RELAY;
	m->u.relay.payload = payload;
	m->u.relay.payload_len = RELAY_MAX_PAYLOAD + 1;
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
		{ "relay_info with stun port 0", break_relay_info_port },
		{ "relay with an empty payload", break_relay_empty },
		{ "relay with a NULL payload", break_relay_null_payload },
		{ "relay with a payload over RELAY_MAX_PAYLOAD", break_relay_oversize },
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

/* ---------------------------------------------------------------- the DNS domain */

static void test_dns_domain(void **state)
{
	struct control_message m, back;
	uint8_t buf[TEST_BUF_LEN];
	size_t len;
	(void)state;

	memset(&m, 0, sizeof(m));
	m.type = CONTROL_MSG_DNS;
	snprintf(m.u.dns.domain, sizeof(m.u.dns.domain), "mesh.internal");
	len = control_encode(&m, buf, sizeof(buf));
	assert_int_equal(len, 2 + 13);
	assert_memory_equal(buf, "\x0e\x0dmesh.internal", len);
	assert_int_equal(decode_exact(buf, len, &back), CONTROL_DECODE_OK);
	assert_memory_equal(&back, &m, sizeof(m));

	/* the longest: 253 characters (labels of 63, 63, 63, 61) */
	memset(m.u.dns.domain, 'a', CONTROL_DOMAIN_MAX);
	m.u.dns.domain[63] = m.u.dns.domain[127] = m.u.dns.domain[191] = '.';
	m.u.dns.domain[CONTROL_DOMAIN_MAX] = '\0';
	len = control_encode(&m, buf, sizeof(buf));
	assert_int_equal(len, 2 + CONTROL_DOMAIN_MAX);
	assert_int_equal(decode_exact(buf, len, &back), CONTROL_DECODE_OK);
	assert_string_equal(back.u.dns.domain, m.u.dns.domain);

	/* the encoder refuses what the decoder would */
	static const char *const bad[] = { "", "Mesh", "a..b", "-a", "a_b", "a." };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(m.u.dns.domain, sizeof(m.u.dns.domain), "%s", bad[i]);
		if (control_encode(&m, buf, sizeof(buf)) != 0)
			fail_msg("domain '%s' was encoded", bad[i]);
	}
	memset(m.u.dns.domain, 'a', sizeof(m.u.dns.domain)); /* unterminated */
	assert_int_equal(control_encode(&m, buf, sizeof(buf)), 0);
}

/* ---------------------------------------------------------------- satellites */

static void make_relay_info(struct control_message *m)
{
	memset(m, 0, sizeof(*m));
	m->type = CONTROL_MSG_RELAY_INFO;
	seq_bytes(m->u.relay_info.token, RELAY_TOKEN_LEN, 0x20);
	m->u.relay_info.stun_port = 3478;
	m->u.relay_info.alt_stun_port = 3479;
	m->u.relay_info.relay_rate = 0x01020304;
}

/* The bytes of make_relay_info, from the layout in control.c. */
static const char relay_info_golden[] = "09"
					"202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
					"0d96" "0d97" "01020304";

static void test_relay_info(void **state)
{
	struct control_message m, back;
	uint8_t buf[TEST_BUF_LEN], want[TEST_BUF_LEN];
	size_t len, want_len;

	make_relay_info(&m);
	len = control_encode(&m, buf, sizeof(buf));
	unhex(want, sizeof(want), relay_info_golden, &want_len);
	assert_int_equal(len, 41);
	assert_int_equal(want_len, 41);
	assert_memory_equal(buf, want, len);
	assert_int_equal(decode_exact(buf, len, &back), CONTROL_DECODE_OK);
	assert_memory_equal(&back, &m, sizeof(m));

	/* the limits: no alt port, the largest numbers */
	m.u.relay_info.alt_stun_port = 0;
	m.u.relay_info.stun_port = 65535;
	m.u.relay_info.relay_rate = UINT32_MAX;
	len = control_encode(&m, buf, sizeof(buf));
	assert_int_equal(len, 41);
	assert_memory_equal(buf + 33, "\xff\xff\x00\x00\xff\xff\xff\xff", 8);
	assert_int_equal(decode_exact(buf, len, &back), CONTROL_DECODE_OK);
	assert_memory_equal(&back, &m, sizeof(m));

	/* the encoder's cap, every truncation and one extra byte */
	for (size_t cap = 0; cap < len; cap++)
		assert_int_equal(control_encode(&m, want, cap), 0);
	for (size_t cut = 0; cut < len; cut++)
		assert_int_equal(decode_exact(buf, cut, &back), CONTROL_DECODE_MALFORMED);
	buf[len] = 0;
	assert_int_equal(decode_exact(buf, len + 1, &back), CONTROL_DECODE_MALFORMED);

	/* stun port 0 both ways */
	m.u.relay_info.stun_port = 0;
	assert_int_equal(control_encode(&m, buf, sizeof(buf)), 0);
	unhex(want, sizeof(want), relay_info_golden, &want_len);
	want[33] = 0;
	want[34] = 0;
	assert_int_equal(decode_exact(want, want_len, &back), CONTROL_DECODE_MALFORMED);
	want[34] = 1;
	assert_int_equal(decode_exact(want, want_len, &back), CONTROL_DECODE_OK);
	assert_int_equal(back.u.relay_info.stun_port, 1);
}

static void make_relay(struct control_message *m, const uint8_t *payload, size_t len)
{
	memset(m, 0, sizeof(*m));
	m->type = CONTROL_MSG_RELAY;
	seq_bytes(m->u.relay.node_key, WIRE_KEY_LEN, 0x70);
	m->u.relay.payload = payload;
	m->u.relay.payload_len = len;
}

static void test_relay(void **state)
{
	static uint8_t payload[RELAY_MAX_PAYLOAD + 1], buf[TEST_BUF_LEN];
	static const size_t sizes[] = { 1, 2, 148, 1452, RELAY_MAX_PAYLOAD - 1, RELAY_MAX_PAYLOAD };
	struct control_message m, back;
	size_t len;

	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7 + 1);
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		uint8_t *copy;

		make_relay(&m, payload, sizes[s]);
		len = control_encode(&m, buf, sizeof(buf));
		assert_int_equal(len, 1 + 32 + sizes[s]);
		assert_int_equal(buf[0], 10);
		assert_memory_equal(buf + 1, m.u.relay.node_key, WIRE_KEY_LEN);
		assert_memory_equal(buf + 33, payload, sizes[s]);

		copy = malloc(len);
		assert_non_null(copy);
		memcpy(copy, buf, len);
		assert_int_equal(control_decode(copy, len, &back), CONTROL_DECODE_OK);
		assert_int_equal(back.type, CONTROL_MSG_RELAY);
		assert_memory_equal(back.u.relay.node_key, m.u.relay.node_key, WIRE_KEY_LEN);
		assert_ptr_equal(back.u.relay.payload, copy + 33); /* points into the decoded buffer */
		assert_int_equal(back.u.relay.payload_len, sizes[s]);
		assert_memory_equal(back.u.relay.payload, payload, sizes[s]);
		assert_int_equal(control_encode(&back, buf, sizeof(buf)), len); /* and re-encodes the same */
		assert_memory_equal(buf, copy, len);
		free(copy);
		for (size_t cap = len - 3; cap < len; cap++)
			assert_int_equal(control_encode(&m, buf, cap), 0); /* buf is not read again */
	}

	/* empty and oversized payloads refused both ways; a short key is malformed */
	make_relay(&m, payload, 0);
	assert_int_equal(control_encode(&m, buf, sizeof(buf)), 0);
	make_relay(&m, payload, RELAY_MAX_PAYLOAD + 1);
	assert_int_equal(control_encode(&m, buf, sizeof(buf)), 0);
	make_relay(&m, NULL, 1);
	assert_int_equal(control_encode(&m, buf, sizeof(buf)), 0);

	buf[0] = CONTROL_MSG_RELAY;
	memset(buf + 1, 0x70, WIRE_KEY_LEN);
	memcpy(buf + 33, payload, RELAY_MAX_PAYLOAD + 1);
	for (size_t cut = 0; cut <= 33; cut++) /* up to the key and nothing after it */
		assert_int_equal(decode_exact(buf, cut, &back), CONTROL_DECODE_MALFORMED);
	assert_int_equal(decode_exact(buf, 34, &back), CONTROL_DECODE_OK);
	assert_int_equal(decode_exact(buf, 33 + RELAY_MAX_PAYLOAD, &back), CONTROL_DECODE_OK);
	assert_int_equal(decode_exact(buf, 33 + RELAY_MAX_PAYLOAD + 1, &back), CONTROL_DECODE_MALFORMED);
}

/* The largest RELAY fits an empty frame as one record, and comes back out of it. */
static void test_relay_largest_record(void **state)
{
	static uint8_t payload[RELAY_MAX_PAYLOAD], plain[CONTROL_MAX_PLAIN];
	struct control_message m, back, keepalive = { .type = CONTROL_MSG_KEEPALIVE };
	const uint8_t *msg;
	size_t used = 0, off = 0, msg_len;

	memset(payload, 0x42, sizeof(payload));
	make_relay(&m, payload, RELAY_MAX_PAYLOAD);
	assert_true(control_record_append(plain, sizeof(plain), &used, &m));
	assert_int_equal(used, 2 + 1 + 32 + 3968);
	assert_true(used <= CONTROL_MAX_PLAIN);
	assert_int_equal(plain[0], (4001 >> 8));
	assert_int_equal(plain[1], (4001 & 0xff));
	assert_int_equal(control_record_next(plain, used, &off, &msg, &msg_len), 1);
	assert_int_equal(msg_len, 4001);
	assert_int_equal(control_decode(msg, msg_len, &back), CONTROL_DECODE_OK);
	assert_int_equal(back.u.relay.payload_len, RELAY_MAX_PAYLOAD);
	assert_memory_equal(back.u.relay.payload, payload, RELAY_MAX_PAYLOAD);
	assert_int_equal(control_record_next(plain, used, &off, &msg, &msg_len), 0);

	/* one byte of room short refuses and leaves the frame alone */
	used = 0;
	assert_false(control_record_append(plain, 4002, &used, &m));
	assert_int_equal(used, 0);
	assert_true(control_record_append(plain, 4003, &used, &m));

	/* behind a keepalive it still fits a frame (4078 bytes of room for records) */
	used = 0;
	assert_true(control_record_append(plain, sizeof(plain), &used, &keepalive));
	assert_true(control_record_append(plain, sizeof(plain), &used, &m));
	assert_int_equal(used, 3 + 4003);

	/* and an invalid one does not fit even an empty frame */
	used = 0;
	make_relay(&m, payload, 0);
	assert_false(control_record_append(plain, sizeof(plain), &used, &m));
	make_relay_info(&m);
	m.u.relay_info.stun_port = 0;
	assert_false(control_record_append(plain, sizeof(plain), &used, &m));
	assert_int_equal(used, 0);
	make_relay_info(&m);
	assert_true(control_record_append(plain, sizeof(plain), &used, &m));
	assert_int_equal(used, 2 + 41);
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

/* Publishing messages: every field rule is enforced both ways. */
int main(void)
{
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
		cmocka_unit_test(test_relay_info),
		cmocka_unit_test(test_dns_domain),
		cmocka_unit_test(test_relay),
		cmocka_unit_test(test_relay_largest_record),
		cmocka_unit_test(test_record_append_next),
		cmocka_unit_test(test_record_append_limits),
		cmocka_unit_test(test_record_next_malformed),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
