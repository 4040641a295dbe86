/* core/dns: queries from hex, table-driven (what parses, what is refused and why), answers
 * built and read back, and the name helpers. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/dns.h"

static size_t unhex(uint8_t *out, size_t cap, const char *hex)
{
	size_t n = 0;
	for (; hex[0] && hex[1]; hex += 2) {
		unsigned int b;
		assert_true(n < cap);
		assert_int_equal(sscanf(hex, "%2x", &b), 1);
		out[n++] = (uint8_t)b;
	}
	return n;
}

/* header: id 1234, RD, one question; "b.mesh.internal" A IN */
#define HDR_Q1 "1234" "0100" "0001" "0000" "0000" "0000"
#define HDR_Q1_AR1 "1234" "0100" "0001" "0000" "0000" "0001"
#define NAME_B "01" "62" "04" "6d657368" "08" "696e7465726e616c" "00"
#define NAME_B_UPPER "01" "42" "04" "4d455348" "08" "696e7465726e616c" "00"
#define A_IN "0001" "0001"
#define OPT_4096_DO "00" "0029" "1000" "00" "00" "8000" "0000"

struct query_case {
	const char *what;
	const char *hex;
	enum dns_parse_result want;
	const char *text; /* for OK */
	uint16_t qtype;
	bool edns;
	uint16_t edns_size;
};

static const struct query_case query_cases[] = {
	{ "plain A", HDR_Q1 NAME_B A_IN, DNS_PARSE_OK, "b.mesh.internal", 1, false, 0 },
	{ "upper case is looked up lower", HDR_Q1 NAME_B_UPPER "001c0001", DNS_PARSE_OK, "b.mesh.internal", 28, false, 0 },
	{ "EDNS0 OPT noted", HDR_Q1_AR1 NAME_B A_IN OPT_4096_DO, DNS_PARSE_OK, "b.mesh.internal", 1, true, 4096 },
	{ "EDNS0 size below 512 counts as 512", HDR_Q1_AR1 NAME_B A_IN "0000290100000000000000", DNS_PARSE_OK,
	  "b.mesh.internal", 1, true, 512 },
	{ "root name", HDR_Q1 "00" "00020001", DNS_PARSE_OK, "", 2, false, 0 },
	{ "trailing bytes ignored", HDR_Q1 NAME_B A_IN "ffff", DNS_PARSE_OK, "b.mesh.internal", 1, false, 0 },
	{ "additional record named by a pointer", HDR_Q1_AR1 NAME_B A_IN "c00c" "0001" "0001" "00000000" "0000", DNS_PARSE_OK,
	  "b.mesh.internal", 1, false, 0 },
	{ "pointer loop through a label", HDR_Q1 "01" "61" "c00c" A_IN, DNS_PARSE_FORMERR, NULL, 0, false, 0 },
	{ "a dot inside a label is not a separator", HDR_Q1 "03" "612e62" "00" A_IN, DNS_PARSE_OK, "a?b", 1, false, 0 },
	{ "empty", "", DNS_PARSE_DROP, NULL, 0, false, 0 },
	{ "short header", "12340100000100000000", DNS_PARSE_DROP, NULL, 0, false, 0 },
	{ "a response", "1234" "8180" "0001" "0000" "0000" "0000" NAME_B A_IN, DNS_PARSE_DROP, NULL, 0, false, 0 },
	{ "opcode STATUS", "1234" "1000" "0001" "0000" "0000" "0000" NAME_B A_IN, DNS_PARSE_NOTIMP, NULL, 0, false, 0 },
	{ "no question", "1234" "0100" "0000" "0000" "0000" "0000", DNS_PARSE_FORMERR, NULL, 0, false, 0 },
	{ "two questions", "1234" "0100" "0002" "0000" "0000" "0000" NAME_B A_IN NAME_B A_IN, DNS_PARSE_FORMERR, NULL, 0,
	  false, 0 },
	{ "an answer record in a query", "1234" "0100" "0001" "0001" "0000" "0000" NAME_B A_IN, DNS_PARSE_FORMERR, NULL, 0,
	  false, 0 },
	{ "name cut", HDR_Q1 "01" "62" "04" "6d65", DNS_PARSE_FORMERR, NULL, 0, false, 0 },
	{ "no qtype", HDR_Q1 NAME_B "00", DNS_PARSE_FORMERR, NULL, 0, false, 0 },
	{ "pointer to itself", HDR_Q1 "c00c" A_IN, DNS_PARSE_FORMERR, NULL, 0, false, 0 },
	{ "pointer forward", HDR_Q1 "c010" A_IN "00", DNS_PARSE_FORMERR, NULL, 0, false, 0 },
	{ "pointer into the header", HDR_Q1 "c002" A_IN, DNS_PARSE_FORMERR, NULL, 0, false, 0 },
	{ "pointer cut", HDR_Q1 "c0", DNS_PARSE_FORMERR, NULL, 0, false, 0 },
	{ "label type 01", HDR_Q1 "41" A_IN, DNS_PARSE_FORMERR, NULL, 0, false, 0 },
	{ "OPT not at the root", HDR_Q1_AR1 NAME_B A_IN "0161" "0029100000008000" "0000", DNS_PARSE_FORMERR, NULL, 0, false,
	  0 },
	{ "two OPTs", "1234" "0100" "0001" "0000" "0000" "0002" NAME_B A_IN OPT_4096_DO OPT_4096_DO, DNS_PARSE_FORMERR, NULL,
	  0, false, 0 },
	{ "OPT rdata past the end", HDR_Q1_AR1 NAME_B A_IN "00" "0029" "1000" "00000000" "0004" "0001", DNS_PARSE_FORMERR,
	  NULL, 0, false, 0 },
	{ "additional count past the end", HDR_Q1_AR1 NAME_B A_IN, DNS_PARSE_FORMERR, NULL, 0, false, 0 },
};

static void test_query_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(query_cases) / sizeof(query_cases[0]); i++) {
		const struct query_case *c = &query_cases[i];
		uint8_t msg[600];
		struct dns_query q;
		size_t len = unhex(msg, sizeof(msg), c->hex);
		enum dns_parse_result r = dns_query_parse(msg, len, &q);
		if (r != c->want)
			fail_msg("%s: got %d, want %d", c->what, (int)r, (int)c->want);
		if (r != DNS_PARSE_OK)
			continue;
		if (strcmp(q.q.text, c->text) != 0)
			fail_msg("%s: name '%s', want '%s'", c->what, q.q.text, c->text);
		assert_int_equal(q.q.qtype, c->qtype);
		assert_int_equal(q.has_edns, c->edns);
		if (c->edns)
			assert_int_equal(q.edns_udp_size, c->edns_size);
		assert_int_equal(q.h.id, 0x1234);
	}
}

/* A name longer than 255 bytes on the wire is refused; exactly 255 parses. */
static void test_name_length(void **state)
{
	(void)state;
	uint8_t msg[400];
	struct dns_query q;
	size_t len = unhex(msg, sizeof(msg), HDR_Q1);
	/* 3 labels of 63 and one of 61: 3 * 64 + 62 + 1 = 255 */
	for (int l = 0; l < 4; l++) {
		int n = l < 3 ? 63 : 61;
		msg[len++] = (uint8_t)n;
		memset(msg + len, 'a', (size_t)n);
		len += (size_t)n;
	}
	msg[len++] = 0;
	len += unhex(msg + len, sizeof(msg) - len, A_IN);
	assert_int_equal(dns_query_parse(msg, len, &q), DNS_PARSE_OK);
	assert_int_equal(q.q.wire_len, 255);
	assert_int_equal(strlen(q.q.text), 253);

	/* one more byte in the last label: 256 */
	len = unhex(msg, sizeof(msg), HDR_Q1);
	for (int l = 0; l < 4; l++) {
		int n = l < 3 ? 63 : 62;
		msg[len++] = (uint8_t)n;
		memset(msg + len, 'a', (size_t)n);
		len += (size_t)n;
	}
	msg[len++] = 0;
	len += unhex(msg + len, sizeof(msg) - len, A_IN);
	assert_int_equal(dns_query_parse(msg, len, &q), DNS_PARSE_FORMERR);
}

static void test_answer_round_trip(void **state)
{
	(void)state;
	uint8_t msg[100], out[600];
	struct dns_query q;
	struct dns_header h;
	struct dns_question back;
	struct dns_record recs[2] = {
		{ .type = DNS_TYPE_A, .data = { 100, 64, 0, 3 }, .len = 4 },
		{ .type = DNS_TYPE_A, .data = { 100, 64, 0, 4 }, .len = 4 },
	};
	size_t len = unhex(msg, sizeof(msg), HDR_Q1_AR1 NAME_B_UPPER A_IN OPT_4096_DO);
	assert_int_equal(dns_query_parse(msg, len, &q), DNS_PARSE_OK);

	size_t n = dns_answer_build(&q, DNS_RCODE_NOERROR, recs, 2, out, sizeof(out));
	/* header, question (17 + 4), two answers (2 + 10 + 4 each), OPT (11) */
	assert_int_equal(n, 12 + 21 + 32 + 11);
	assert_true(dns_response_question(out, n, &h, &back));
	assert_true(dns_question_equal(&back, &q.q)); /* the case as sent */
	assert_int_equal(h.id, 0x1234);
	assert_int_equal(h.flags, DNS_FLAG_QR | DNS_FLAG_AA | DNS_FLAG_RD | DNS_FLAG_RA);
	assert_int_equal(h.ancount, 2);
	assert_int_equal(h.arcount, 1);
	/* the first answer: pointer to the question, A, IN, TTL, 4 bytes */
	uint8_t want[16];
	unhex(want, sizeof(want), "c00c" "0001" "0001" "0000003c" "0004" "64400003");
	assert_memory_equal(out + 33, want, 16);

	/* NXDOMAIN: no records; without EDNS no OPT either */
	len = unhex(msg, sizeof(msg), HDR_Q1 NAME_B A_IN);
	assert_int_equal(dns_query_parse(msg, len, &q), DNS_PARSE_OK);
	n = dns_answer_build(&q, DNS_RCODE_NXDOMAIN, NULL, 0, out, sizeof(out));
	assert_int_equal(n, 12 + 21);
	assert_true(dns_header_parse(out, n, &h));
	assert_int_equal(h.flags & DNS_RCODE_MASK, DNS_RCODE_NXDOMAIN);
	assert_int_equal(h.arcount, 0);

	/* too small a buffer for the records: TC, the question still there */
	n = dns_answer_build(&q, DNS_RCODE_NOERROR, recs, 2, out, 12 + 21 + 16);
	assert_int_equal(n, 12 + 21 + 16);
	assert_true(dns_header_parse(out, n, &h));
	assert_int_equal(h.ancount, 1);
	assert_true(h.flags & DNS_FLAG_TC);
	assert_int_equal(dns_answer_build(&q, DNS_RCODE_NOERROR, recs, 2, out, 20), 0);
}

static void test_error_and_id(void **state)
{
	(void)state;
	uint8_t msg[100], out[20];
	struct dns_header h;
	size_t len = unhex(msg, sizeof(msg), "abcd" "2900" "0000" "0000" "0000" "0000");
	assert_int_equal(dns_error_build(msg, len, DNS_RCODE_NOTIMP, out, sizeof(out)), DNS_HEADER_LEN);
	assert_true(dns_header_parse(out, DNS_HEADER_LEN, &h));
	assert_int_equal(h.id, 0xabcd);
	assert_int_equal(h.flags, DNS_FLAG_QR | 0x2800 | DNS_FLAG_RD | DNS_FLAG_RA | DNS_RCODE_NOTIMP);
	assert_int_equal(dns_error_build(msg, 11, DNS_RCODE_NOTIMP, out, sizeof(out)), 0);
	dns_id_set(out, 0x0102);
	assert_int_equal(dns_id_get(out), 0x0102);
	/* a query is not a response */
	struct dns_question q;
	len = unhex(msg, sizeof(msg), HDR_Q1 NAME_B A_IN);
	assert_false(dns_response_question(msg, len, &h, &q));
}

static void test_names(void **state)
{
	(void)state;
	size_t p = 99;
	assert_true(dns_name_in_domain("b.mesh.internal", "mesh.internal", &p));
	assert_int_equal(p, 1);
	assert_true(dns_name_in_domain("mesh.internal", "mesh.internal", &p));
	assert_int_equal(p, 0);
	assert_true(dns_name_in_domain("x.b.mesh.internal", "mesh.internal", &p));
	assert_int_equal(p, 3);
	assert_false(dns_name_in_domain("xmesh.internal", "mesh.internal", &p));
	assert_false(dns_name_in_domain("internal", "mesh.internal", &p));
	assert_false(dns_name_in_domain(".mesh.internal", "mesh.internal", &p));
	assert_false(dns_name_in_domain("b.mesh.internal", "", &p));

	assert_true(dns_domain_valid("mesh.internal"));
	assert_true(dns_domain_valid("home"));
	assert_true(dns_domain_valid("a-1.b2"));
	assert_false(dns_domain_valid(""));
	assert_false(dns_domain_valid("Mesh.internal"));
	assert_false(dns_domain_valid("mesh..internal"));
	assert_false(dns_domain_valid(".mesh"));
	assert_false(dns_domain_valid("mesh."));
	assert_false(dns_domain_valid("-mesh"));
	assert_false(dns_domain_valid("mesh-.x"));
	assert_false(dns_domain_valid("me_sh"));
	char big[300];
	memset(big, 'a', 64);
	big[64] = '\0';
	assert_false(dns_domain_valid(big)); /* a 64-byte label */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_query_table),     cmocka_unit_test(test_name_length),
		cmocka_unit_test(test_answer_round_trip), cmocka_unit_test(test_error_and_id),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
