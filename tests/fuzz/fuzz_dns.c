/* Fuzz target: the DNS parsers of core/dns.h. The input is one datagram with its exact
 * length, read as a client's query and as an upstream answer. A query that parses must get
 * an answer that parses back (as an upstream answer would) to the same question, whatever
 * records and sizes it holds; an error answer is built for anything with a header. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_answer(const struct dns_query *q)
{
	static const struct dns_record recs[2] = {
		{ .type = DNS_TYPE_A, .data = { 100, 64, 0, 2 }, .len = 4 },
		{ .type = DNS_TYPE_AAAA, .data = { 0xfd, 0x7a, [15] = 2 }, .len = 16 },
	};
	uint8_t out[DNS_EDNS_UDP_SIZE];
	struct dns_header h;
	struct dns_question back;

	for (size_t n = 0; n <= 2; n++) {
		size_t len = dns_answer_build(q, DNS_RCODE_NOERROR, recs, n, out, sizeof(out));
		if (len == 0)
			continue; /* a question too long for the client's size: nothing to send */
		size_t limit = q->has_edns ? DNS_EDNS_UDP_SIZE : DNS_UDP_PLAIN_MAX;
		if (len > limit || len > sizeof(out))
			abort();
		if (!dns_response_question(out, len, &h, &back) || !dns_question_equal(&back, &q->q))
			abort();
		if (h.id != q->h.id || h.ancount > n || strcmp(back.text, q->q.text) != 0)
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_query q;
	struct dns_header h;
	struct dns_question rq;
	uint8_t out[DNS_HEADER_LEN];

	if (dns_query_parse(data, size, &q) == DNS_PARSE_OK) {
		if (q.q.wire_len == 0 || q.q.wire_len > DNS_NAME_WIRE_MAX || strlen(q.q.text) > DNS_NAME_TEXT_MAX)
			abort();
		check_answer(&q);
		size_t prefix;
		(void)dns_name_in_domain(q.q.text, "mesh.internal", &prefix);
	}
	if (dns_response_question(data, size, &h, &rq) && rq.wire_len > DNS_NAME_WIRE_MAX)
		abort();
	size_t n = dns_error_build(data, size, DNS_RCODE_FORMERR, out, sizeof(out));
	if ((size >= DNS_HEADER_LEN) != (n == DNS_HEADER_LEN))
		abort();
	return 0;
}
