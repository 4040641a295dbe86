/* Unit tests for core/stun: the RFC 5769 test vectors, responses we build read back by our
 * own client side and checked byte by byte, RFC 3489 (classic) requests, and tables of
 * malformed messages that must be refused. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "core/ipaddr.h"
#include "core/stun.h"

/* RFC 5769 section 2.1: a Binding request with SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME,
 * MESSAGE-INTEGRITY and FINGERPRINT (checked against its HMAC and CRC when copied). */
static const uint8_t rfc5769_request[] = {
	0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42,
	0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
	0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10,
	0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73,
	0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74,
	0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff,
	0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1,
	0x51, 0x26, 0x3b, 0x36, 0x00, 0x06, 0x00, 0x09,
	0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76,
	0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14,
	0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56,
	0x78, 0x1e, 0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49,
	0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04,
	0xe5, 0x7a, 0x3b, 0xcf,
};

/* RFC 5769 section 2.2: IPv4 response, mapped address 192.0.2.1 port 32853. */
static const uint8_t rfc5769_response_v4[] = {
	0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42,
	0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
	0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b,
	0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
	0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x08,
	0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
	0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99,
	0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9,
	0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7,
	0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96,
};

/* RFC 5769 section 2.3: IPv6 response, mapped address 2001:db8:1234:5678:11:2233:4455:6677
 * port 32853. */
static const uint8_t rfc5769_response_v6[] = {
	0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42,
	0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
	0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b,
	0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
	0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x14,
	0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa,
	0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5,
	0xbe, 0xd2, 0xb9, 0xd9, 0x00, 0x08, 0x00, 0x14,
	0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1,
	0x17, 0x84, 0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75,
	0xbf, 0xe3, 0xed, 0x41, 0x80, 0x28, 0x00, 0x04,
	0xc8, 0xfb, 0x0b, 0x4c,
};

static const uint8_t rfc5769_tid[STUN_TRANSACTION_ID_LEN] = {
	0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
};

static const char rfc5769_mapped_v4[] = "192.0.2.1:32853";
static const char rfc5769_mapped_v6[] = "[2001:db8:1234:5678:11:2233:4455:6677]:32853";

/* ---- a tiny message builder for hand-made cases ---- */

struct msg {
	uint8_t b[1024];
	size_t len;
};

static void put16(uint8_t *p, unsigned int v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void msg_begin(struct msg *m, unsigned int type, uint32_t cookie, const uint8_t *tid)
{
	memset(m, 0, sizeof(*m));
	put16(m->b, type);
	m->b[4] = (uint8_t)(cookie >> 24);
	m->b[5] = (uint8_t)(cookie >> 16);
	m->b[6] = (uint8_t)(cookie >> 8);
	m->b[7] = (uint8_t)cookie;
	memcpy(m->b + 8, tid, STUN_TRANSACTION_ID_LEN);
	m->len = STUN_HEADER_LEN;
}

/* Appends an attribute with its declared length and the value zero-padded to 4. */
static void msg_attr(struct msg *m, unsigned int type, const void *value, size_t len)
{
	size_t pad = (len + 3) & ~(size_t)3;

	assert_true(m->len + 4 + pad <= sizeof(m->b));
	put16(m->b + m->len, type);
	put16(m->b + m->len + 2, (unsigned int)len);
	if (len)
		memcpy(m->b + m->len + 4, value, len);
	m->len += 4 + pad;
	put16(m->b + 2, (unsigned int)(m->len - STUN_HEADER_LEN));
}

static void sa_from_string(const char *s, struct sockaddr_storage *ss)
{
	char host[ENDPOINT_HOST_MAX];
	uint16_t port;

	memset(ss, 0, sizeof(*ss));
	assert_true(endpoint_parse(s, host, sizeof(host), &port));
	if (strchr(host, ':')) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		assert_int_equal(inet_pton(AF_INET6, host, &in6->sin6_addr), 1);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		assert_int_equal(inet_pton(AF_INET, host, &in->sin_addr), 1);
	}
}

static void assert_sa_string(const struct sockaddr_storage *ss, const char *want)
{
	char buf[128];

	assert_string_equal(sockaddr_format((const struct sockaddr *)ss, buf, sizeof(buf)), want);
}

/* ---- RFC 5769 ---- */

static void test_rfc5769_request(void **state)
{
	struct stun_request req;
	struct sockaddr_storage ss;

	assert_true(stun_is_message(rfc5769_request, sizeof(rfc5769_request)));
	assert_true(stun_parse_request(rfc5769_request, sizeof(rfc5769_request), &req));
	assert_false(req.classic);
	assert_memory_equal(req.transaction_id, rfc5769_tid, STUN_TRANSACTION_ID_LEN);
	/* A request is not a response. */
	assert_false(stun_parse_response(rfc5769_request, sizeof(rfc5769_request), rfc5769_tid, &ss));
	/* Every truncation is refused (the length field no longer matches). */
	for (size_t n = 0; n < sizeof(rfc5769_request); n++)
		assert_false(stun_parse_request(rfc5769_request, n, &req));
}

static void test_rfc5769_responses(void **state)
{
	static const struct {
		const uint8_t *msg;
		size_t len;
		const char *mapped;
	} cases[] = {
		{ rfc5769_response_v4, sizeof(rfc5769_response_v4), rfc5769_mapped_v4 },
		{ rfc5769_response_v6, sizeof(rfc5769_response_v6), rfc5769_mapped_v6 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sockaddr_storage ss;
		struct stun_request req;
		uint8_t other_tid[STUN_TRANSACTION_ID_LEN];

		assert_true(stun_is_message(cases[i].msg, cases[i].len));
		assert_true(stun_parse_response(cases[i].msg, cases[i].len, rfc5769_tid, &ss));
		assert_sa_string(&ss, cases[i].mapped);
		/* Somebody else's transaction. */
		memcpy(other_tid, rfc5769_tid, sizeof(other_tid));
		other_tid[STUN_TRANSACTION_ID_LEN - 1] ^= 1;
		assert_false(stun_parse_response(cases[i].msg, cases[i].len, other_tid, &ss));
		/* A response is not a request. */
		assert_false(stun_parse_request(cases[i].msg, cases[i].len, &req));
		for (size_t n = 0; n < cases[i].len; n++)
			assert_false(stun_parse_response(cases[i].msg, n, rfc5769_tid, &ss));
	}
}

/* Our XOR-MAPPED-ADDRESS for the RFC's address must be the RFC's bytes. */
static void test_build_matches_rfc5769(void **state)
{
	static const struct {
		const char *observed;
		const uint8_t *vector;
		size_t xor_off, xor_len; /* the XOR-MAPPED-ADDRESS attribute inside the vector */
	} cases[] = {
		{ rfc5769_mapped_v4, rfc5769_response_v4, 36, 12 },
		{ rfc5769_mapped_v6, rfc5769_response_v6, 36, 24 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct stun_request req;
		struct sockaddr_storage ss;
		uint8_t out[STUN_MAX_MESSAGE];
		size_t n;

		assert_true(stun_parse_request(rfc5769_request, sizeof(rfc5769_request), &req));
		sa_from_string(cases[i].observed, &ss);
		n = stun_build_response(&req, (struct sockaddr *)&ss, out, sizeof(out));
		assert_true(n > STUN_HEADER_LEN);
		/* Header: type, cookie and transaction id as in the vector. */
		assert_memory_equal(out, cases[i].vector, 2);
		assert_memory_equal(out + 4, cases[i].vector + 4, 16);
		/* XOR-MAPPED-ADDRESS comes first. */
		assert_memory_equal(out + STUN_HEADER_LEN, cases[i].vector + cases[i].xor_off, cases[i].xor_len);
	}
}

/* ---- building responses ---- */

/* Walks a message we built: the attribute types in order. */
static size_t attr_types(const uint8_t *m, size_t len, unsigned int *types, size_t max)
{
	size_t off = STUN_HEADER_LEN, n = 0;

	while (off + 4 <= len && n < max) {
		size_t alen = (size_t)m[off + 2] << 8 | m[off + 3];

		types[n++] = (unsigned int)m[off] << 8 | m[off + 1];
		off += 4 + ((alen + 3) & ~(size_t)3);
	}
	assert_int_equal(off, len);
	return n;
}

static void test_build_response_modern(void **state)
{
	static const struct {
		const char *observed;
		int family;            /* written as AF_INET6 v4-mapped when this is AF_INET6 and the string is IPv4 */
		const char *reported;
		size_t len;
	} cases[] = {
		{ "203.0.113.7:54321", AF_INET, "203.0.113.7:54321", 20 + 12 + 12 + 16 },
		{ "[2001:db8::7]:1", AF_INET6, "[2001:db8::7]:1", 20 + 24 + 24 + 16 },
		{ "[::ffff:198.51.100.9]:65535", AF_INET6, "198.51.100.9:65535", 20 + 12 + 12 + 16 },
		{ "[::1]:3478", AF_INET6, "[::1]:3478", 20 + 24 + 24 + 16 },
	};
	uint8_t tid[STUN_TRANSACTION_ID_LEN];

	for (size_t i = 0; i < sizeof(tid); i++)
		tid[i] = (uint8_t)(0xa0 + i);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct stun_request req;
		struct sockaddr_storage ss, mapped;
		uint8_t reqbuf[STUN_HEADER_LEN], out[STUN_MAX_MESSAGE];
		unsigned int types[8];
		size_t n;

		assert_int_equal(stun_build_request(tid, reqbuf, sizeof(reqbuf)), STUN_HEADER_LEN);
		assert_true(stun_parse_request(reqbuf, sizeof(reqbuf), &req));
		assert_false(req.classic);
		sa_from_string(cases[i].observed, &ss);
		assert_int_equal(ss.ss_family, cases[i].family);
		n = stun_build_response(&req, (struct sockaddr *)&ss, out, sizeof(out));
		assert_int_equal(n, cases[i].len);
		assert_true(stun_is_message(out, n));
		assert_int_equal(out[0] << 8 | out[1], STUN_BINDING_RESPONSE);
		assert_int_equal(attr_types(out, n, types, 8), 3);
		assert_int_equal(types[0], STUN_ATTR_XOR_MAPPED_ADDRESS);
		assert_int_equal(types[1], STUN_ATTR_MAPPED_ADDRESS);
		assert_int_equal(types[2], STUN_ATTR_SOFTWARE);
		assert_memory_equal(out + n - 12, "meshcoord\0\0\0", 12);
		assert_true(stun_parse_response(out, n, tid, &mapped));
		assert_sa_string(&mapped, cases[i].reported);

		/* The plain MAPPED-ADDRESS says the same as the XOR one: hide the XOR attribute
		 * (an optional type nobody knows) and read again. */
		out[STUN_HEADER_LEN] = 0xbf;
		assert_true(stun_parse_response(out, n, tid, &mapped));
		assert_sa_string(&mapped, cases[i].reported);

		/* Every buffer too small is refused, never overrun. */
		for (size_t cap = 0; cap < n; cap++)
			assert_int_equal(stun_build_response(&req, (struct sockaddr *)&ss, out, cap), 0);
	}
}

/* RFC 3489 clients (the Debian `stun` program among them): 16-byte transaction id echoed,
 * MAPPED-ADDRESS only. */
static void test_classic(void **state)
{
	static const uint8_t id16[16] = { 0x11, 0x22, 0x33, 0x44, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
	static const uint8_t change_request[4] = { 0, 0, 0, 6 }; /* change IP and port */
	static const uint8_t want[] = {
		0x01, 0x01, 0x00, 0x0c, 0x11, 0x22, 0x33, 0x44, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
		0x00, 0x01, 0x00, 0x08, 0x00, 0x01, 0xd4, 0x31, 192, 0, 2, 77, /* 192.0.2.77:54321 */
	};
	struct stun_request req;
	struct sockaddr_storage ss;
	struct msg m;
	uint8_t out[STUN_MAX_MESSAGE];
	size_t n;

	msg_begin(&m, STUN_BINDING_REQUEST, 0x11223344, id16 + 4);
	msg_attr(&m, 0x0003, change_request, sizeof(change_request));
	assert_true(stun_parse_request(m.b, m.len, &req));
	assert_true(req.classic);
	assert_memory_equal(req.transaction_id, id16, 16);
	/* Not for the data socket: no cookie. */
	assert_false(stun_is_message(m.b, m.len));

	sa_from_string("192.0.2.77:54321", &ss);
	n = stun_build_response(&req, (struct sockaddr *)&ss, out, sizeof(out));
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(out, want, sizeof(want));

	/* Seen on a dual-stack socket: still IPv4. */
	sa_from_string("[::ffff:192.0.2.77]:54321", &ss);
	n = stun_build_response(&req, (struct sockaddr *)&ss, out, sizeof(out));
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(out, want, sizeof(want));

	/* An IPv6 classic client gets the RFC 5389 IPv6 family. */
	sa_from_string("[2001:db8::1]:80", &ss);
	n = stun_build_response(&req, (struct sockaddr *)&ss, out, sizeof(out));
	assert_int_equal(n, STUN_HEADER_LEN + 4 + 20);
	assert_int_equal(out[STUN_HEADER_LEN + 5], 0x02);
}

static void test_build_response_refused(void **state)
{
	struct stun_request req = { 0 };
	struct sockaddr_storage ss;
	uint8_t out[STUN_MAX_MESSAGE];

	memset(&ss, 0, sizeof(ss));
	ss.ss_family = AF_UNIX;
	assert_int_equal(stun_build_response(&req, (struct sockaddr *)&ss, out, sizeof(out)), 0);
	assert_int_equal(stun_build_response(&req, NULL, out, sizeof(out)), 0);
	assert_int_equal(stun_build_response(NULL, (struct sockaddr *)&ss, out, sizeof(out)), 0);
}

static void test_build_request(void **state)
{
	static const uint8_t want[STUN_HEADER_LEN] = {
		0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
		0xfa, 0x87, 0xdf, 0xae,
	};
	uint8_t out[STUN_HEADER_LEN + 4];

	assert_int_equal(stun_build_request(rfc5769_tid, out, sizeof(out)), STUN_HEADER_LEN);
	assert_memory_equal(out, want, sizeof(want));
	assert_true(stun_is_message(out, STUN_HEADER_LEN));
	assert_int_equal(stun_build_request(rfc5769_tid, out, STUN_HEADER_LEN - 1), 0);
}

/* ---- refusals ---- */

enum mutation {
	MUT_NONE,
	MUT_TOP_BIT,          /* first byte 0x80 */
	MUT_SECOND_BIT,       /* first byte 0x40 */
	MUT_LEN_PLUS4,        /* length field larger than the datagram */
	MUT_LEN_MINUS4,       /* length field smaller: trailing bytes */
	MUT_LEN_ODD,          /* length field not a multiple of 4, datagram to match */
	MUT_ATTR_OVERRUN,     /* last attribute claims 4 more bytes than there are */
	MUT_ATTR_PAD_OVERRUN, /* last attribute's padding would run past the end */
	MUT_ATTR_HALF_HEADER, /* one more attribute header whose value is missing */
};

/* Applies a mutation to a message that ends with an attribute of 4 value bytes. */
static void mutate(struct msg *m, enum mutation mut)
{
	size_t body = m->len - STUN_HEADER_LEN;

	switch (mut) {
	case MUT_NONE:
		break;
	case MUT_TOP_BIT:
		m->b[0] |= 0x80;
		break;
	case MUT_SECOND_BIT:
		m->b[0] |= 0x40;
		break;
	case MUT_LEN_PLUS4:
		put16(m->b + 2, (unsigned int)(body + 4));
		break;
	case MUT_LEN_MINUS4:
		put16(m->b + 2, (unsigned int)(body - 4));
		break;
	case MUT_LEN_ODD:
		m->len += 2;
		put16(m->b + 2, (unsigned int)(body + 2));
		break;
	case MUT_ATTR_OVERRUN:
		put16(m->b + m->len - 6, 8);
		break;
	case MUT_ATTR_PAD_OVERRUN:
		put16(m->b + m->len - 6, 5);
		break;
	case MUT_ATTR_HALF_HEADER:
		/* 4 more bytes: an attribute header whose value (4 bytes) is missing. */
		put16(m->b + m->len, 0x8000);
		put16(m->b + m->len + 2, 4);
		m->len += 4;
		put16(m->b + 2, (unsigned int)(body + 4));
		break;
	}
}

static void test_request_refused(void **state)
{
	static const uint8_t four[4] = { 1, 2, 3, 4 };
	static const struct {
		unsigned int type;
		enum mutation mut;
		bool ok;
	} cases[] = {
		{ STUN_BINDING_REQUEST, MUT_NONE, true },
		{ STUN_BINDING_REQUEST, MUT_TOP_BIT, false },
		{ STUN_BINDING_REQUEST, MUT_SECOND_BIT, false },
		{ STUN_BINDING_REQUEST, MUT_LEN_PLUS4, false },
		{ STUN_BINDING_REQUEST, MUT_LEN_MINUS4, false },
		{ STUN_BINDING_REQUEST, MUT_LEN_ODD, false },
		{ STUN_BINDING_REQUEST, MUT_ATTR_OVERRUN, false },
		{ STUN_BINDING_REQUEST, MUT_ATTR_PAD_OVERRUN, false },
		{ STUN_BINDING_REQUEST, MUT_ATTR_HALF_HEADER, false },
		{ STUN_BINDING_RESPONSE, MUT_NONE, false },
		{ 0x0011, MUT_NONE, false },   /* Binding indication */
		{ 0x0111, MUT_NONE, false },   /* Binding error response */
		{ 0x0003, MUT_NONE, false },   /* TURN Allocate */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		for (int classic = 0; classic < 2; classic++) {
			struct stun_request req;
			struct msg m;

			msg_begin(&m, cases[i].type, classic ? 0xdeadbeef : STUN_MAGIC_COOKIE, rfc5769_tid);
			msg_attr(&m, 0x8022, "ab", 2);
			msg_attr(&m, 0x0024, four, sizeof(four));
			mutate(&m, cases[i].mut);
			if (stun_parse_request(m.b, m.len, &req) != cases[i].ok)
				fail_msg("case %zu (classic %d): expected %s", i, classic, cases[i].ok ? "accept" : "refuse");
			if (cases[i].ok)
				assert_int_equal(req.classic, classic);
		}
	}
	/* Too short for a header, and a header alone. */
	{
		uint8_t hdr[STUN_HEADER_LEN];
		struct stun_request req;

		assert_int_equal(stun_build_request(rfc5769_tid, hdr, sizeof(hdr)), STUN_HEADER_LEN);
		for (size_t n = 0; n < STUN_HEADER_LEN; n++) {
			assert_false(stun_parse_request(hdr, n, &req));
			assert_false(stun_is_message(hdr, n));
		}
		assert_true(stun_parse_request(hdr, sizeof(hdr), &req));
		assert_false(stun_parse_request(NULL, 0, &req));
		assert_false(stun_is_message(NULL, 0));
	}
}

/* An address attribute value: reserved, family, port, address (already XORed or not, as given). */
static size_t addr_value(uint8_t *v, uint8_t family, unsigned int port, const uint8_t *addr, size_t alen)
{
	v[0] = 0;
	v[1] = family;
	put16(v + 2, port);
	memcpy(v + 4, addr, alen);
	return 4 + alen;
}

static void test_response_cases(void **state)
{
	static const uint8_t a4[4] = { 198, 51, 100, 1 };
	static const uint8_t a4_other[4] = { 198, 51, 100, 2 };
	static const uint8_t a16[16] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 5 };
	enum shape {
		PLAIN_ONLY,          /* MAPPED-ADDRESS only: accepted, read as is */
		XOR_AFTER_PLAIN,     /* both, plain first with another address: XOR wins */
		PLAIN_BAD_FAMILY,
		PLAIN_V4_LEN_12,     /* family IPv4 with an IPv6-sized value */
		PLAIN_V6_LEN_8,
		PLAIN_SHORT,         /* 3 bytes: not even family and port */
		PLAIN_PORT_0,
		NO_ADDRESS,          /* SOFTWARE only */
		TWO_PLAIN,           /* the first one counts */
		UNKNOWN_REQUIRED,    /* CHANGED-ADDRESS (0x0005) then MAPPED-ADDRESS: ignored, accepted */
		WRONG_COOKIE,
		ERROR_RESPONSE,      /* type 0x0111 */
		PLAIN_V6,
	};
	static const struct {
		enum shape shape;
		const char *want; /* NULL: refused */
	} cases[] = {
		{ PLAIN_ONLY, "198.51.100.1:4660" },
		{ XOR_AFTER_PLAIN, "198.51.100.1:4660" },
		{ PLAIN_BAD_FAMILY, NULL },
		{ PLAIN_V4_LEN_12, NULL },
		{ PLAIN_V6_LEN_8, NULL },
		{ PLAIN_SHORT, NULL },
		{ PLAIN_PORT_0, NULL },
		{ NO_ADDRESS, NULL },
		{ TWO_PLAIN, "198.51.100.1:4660" },
		{ UNKNOWN_REQUIRED, "198.51.100.1:4660" },
		{ WRONG_COOKIE, NULL },
		{ ERROR_RESPONSE, NULL },
		{ PLAIN_V6, "[2001:db8::5]:4660" },
	};
	const unsigned int port = 0x1234;
	const uint8_t cookie[4] = { 0x21, 0x12, 0xa4, 0x42 };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sockaddr_storage ss;
		uint8_t v[32], x[4];
		struct msg m;

		msg_begin(&m, cases[i].shape == ERROR_RESPONSE ? 0x0111 : STUN_BINDING_RESPONSE,
			  cases[i].shape == WRONG_COOKIE ? 0x2112a443 : STUN_MAGIC_COOKIE, rfc5769_tid);
		switch (cases[i].shape) {
		case PLAIN_ONLY:
		case WRONG_COOKIE:
		case ERROR_RESPONSE:
			msg_attr(&m, STUN_ATTR_MAPPED_ADDRESS, v, addr_value(v, 1, port, a4, 4));
			break;
		case XOR_AFTER_PLAIN:
			msg_attr(&m, STUN_ATTR_MAPPED_ADDRESS, v, addr_value(v, 1, port, a4_other, 4));
			for (size_t j = 0; j < 4; j++)
				x[j] = a4[j] ^ cookie[j];
			msg_attr(&m, STUN_ATTR_XOR_MAPPED_ADDRESS, v, addr_value(v, 1, port ^ 0x2112, x, 4));
			break;
		case PLAIN_BAD_FAMILY:
			msg_attr(&m, STUN_ATTR_MAPPED_ADDRESS, v, addr_value(v, 3, port, a4, 4));
			break;
		case PLAIN_V4_LEN_12:
			msg_attr(&m, STUN_ATTR_MAPPED_ADDRESS, v, addr_value(v, 1, port, a16, 8));
			break;
		case PLAIN_V6_LEN_8:
			msg_attr(&m, STUN_ATTR_MAPPED_ADDRESS, v, addr_value(v, 2, port, a4, 4));
			break;
		case PLAIN_SHORT:
			addr_value(v, 1, port, a4, 4);
			msg_attr(&m, STUN_ATTR_MAPPED_ADDRESS, v, 3);
			break;
		case PLAIN_PORT_0:
			msg_attr(&m, STUN_ATTR_MAPPED_ADDRESS, v, addr_value(v, 1, 0, a4, 4));
			break;
		case NO_ADDRESS:
			msg_attr(&m, STUN_ATTR_SOFTWARE, "x", 1);
			break;
		case TWO_PLAIN:
			msg_attr(&m, STUN_ATTR_MAPPED_ADDRESS, v, addr_value(v, 1, port, a4, 4));
			msg_attr(&m, STUN_ATTR_MAPPED_ADDRESS, v, addr_value(v, 1, port, a4_other, 4));
			break;
		case UNKNOWN_REQUIRED:
			msg_attr(&m, 0x0005, v, addr_value(v, 1, port, a4_other, 4));
			msg_attr(&m, STUN_ATTR_MAPPED_ADDRESS, v, addr_value(v, 1, port, a4, 4));
			break;
		case PLAIN_V6:
			msg_attr(&m, STUN_ATTR_MAPPED_ADDRESS, v, addr_value(v, 2, port, a16, 16));
			break;
		}
		if (stun_parse_response(m.b, m.len, rfc5769_tid, &ss) != (cases[i].want != NULL))
			fail_msg("case %zu: expected %s", i, cases[i].want ? "accept" : "refuse");
		if (cases[i].want)
			assert_sa_string(&ss, cases[i].want);
	}
}

/* A response whose attribute list is broken is refused even with a good address before it. */
static void test_response_bad_attrs(void **state)
{
	static const enum mutation muts[] = {
		MUT_TOP_BIT, MUT_LEN_PLUS4, MUT_LEN_MINUS4, MUT_LEN_ODD, MUT_ATTR_OVERRUN, MUT_ATTR_PAD_OVERRUN,
		MUT_ATTR_HALF_HEADER,
	};
	static const uint8_t a4[4] = { 198, 51, 100, 1 };
	static const uint8_t four[4] = { 0 };

	for (size_t i = 0; i < sizeof(muts) / sizeof(muts[0]); i++) {
		struct sockaddr_storage ss;
		uint8_t v[8];
		struct msg m;

		msg_begin(&m, STUN_BINDING_RESPONSE, STUN_MAGIC_COOKIE, rfc5769_tid);
		msg_attr(&m, STUN_ATTR_MAPPED_ADDRESS, v, addr_value(v, 1, 1, a4, 4));
		msg_attr(&m, 0x8029, four, sizeof(four));
		assert_true(stun_parse_response(m.b, m.len, rfc5769_tid, &ss));
		mutate(&m, muts[i]);
		if (stun_parse_response(m.b, m.len, rfc5769_tid, &ss))
			fail_msg("mutation %d accepted", (int)muts[i]);
	}
}

/* The data socket must not take meshd's own messages for STUN, nor the reverse. */
static void test_is_message(void **state)
{
	uint8_t data[32] = { 4, 1, 0, 0 }; /* a MSG_DATA header */
	uint8_t init[148] = { 1, 1, 0, 0 };

	assert_false(stun_is_message(data, sizeof(data)));
	assert_false(stun_is_message(init, sizeof(init)));
	/* Even with our cookie in place, the length field must agree. */
	memcpy(data + 4, "\x21\x12\xa4\x42", 4);
	assert_false(stun_is_message(data, sizeof(data)));
	assert_true(stun_is_message(rfc5769_response_v4, sizeof(rfc5769_response_v4)));
}

/* Any single corrupted byte in a vector: no crash, and never a different address accepted
 * silently for a header change (the sanitizers watch the reads). */
static void test_corrupt_every_byte(void **state)
{
	const struct {
		const uint8_t *msg;
		size_t len;
	} vecs[] = {
		{ rfc5769_request, sizeof(rfc5769_request) },
		{ rfc5769_response_v4, sizeof(rfc5769_response_v4) },
		{ rfc5769_response_v6, sizeof(rfc5769_response_v6) },
	};

	for (size_t v = 0; v < sizeof(vecs) / sizeof(vecs[0]); v++) {
		for (size_t i = 0; i < vecs[v].len; i++) {
			static const uint8_t flips[] = { 0x01, 0x80, 0xff };

			for (size_t f = 0; f < sizeof(flips); f++) {
				uint8_t buf[128];
				struct stun_request req;
				struct sockaddr_storage ss;
				bool ok;

				memcpy(buf, vecs[v].msg, vecs[v].len);
				buf[i] ^= flips[f];
				(void)stun_parse_request(buf, vecs[v].len, &req);
				(void)stun_is_message(buf, vecs[v].len);
				ok = stun_parse_response(buf, vecs[v].len, rfc5769_tid, &ss);
				/* Header bytes other than the transaction id's are all checked. */
				if (i < 8 && ok)
					fail_msg("vector %zu: byte %zu ^ 0x%02x accepted", v, i, flips[f]);
				if (i >= 8 && i < STUN_HEADER_LEN && ok)
					fail_msg("vector %zu: transaction id byte %zu changed, accepted", v, i);
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc5769_request),
		cmocka_unit_test(test_rfc5769_responses),
		cmocka_unit_test(test_build_matches_rfc5769),
		cmocka_unit_test(test_build_response_modern),
		cmocka_unit_test(test_classic),
		cmocka_unit_test(test_build_response_refused),
		cmocka_unit_test(test_build_request),
		cmocka_unit_test(test_request_refused),
		cmocka_unit_test(test_response_cases),
		cmocka_unit_test(test_response_bad_attrs),
		cmocka_unit_test(test_is_message),
		cmocka_unit_test(test_corrupt_every_byte),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
