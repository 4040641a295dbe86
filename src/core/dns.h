/* DNS messages (RFC 1035, EDNS0 RFC 6891), only as far as meshd's resolver needs them:
 * parse a query (header, one question, an OPT record), build an answer to it, and read an
 * upstream answer's header and question so it can be matched to the query it answers.
 *
 * Pure functions over (buffer, length): no I/O, no logging, no allocation. Every read is
 * checked against the length first; a compression pointer is followed only backwards
 * (to an offset before the one that holds it), so a loop or a forward jump is refused. */
#ifndef MESHD_DNS_H
#define MESHD_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
	DNS_PORT = 53,
	DNS_HEADER_LEN = 12,
	DNS_NAME_WIRE_MAX = 255,   /* RFC 1035 2.3.4: a name on the wire, length bytes included */
	DNS_NAME_TEXT_MAX = 253,   /* the same name dotted, without the trailing dot */
	DNS_LABEL_MAX = 63,
	DNS_UDP_PLAIN_MAX = 512,   /* a UDP answer without EDNS0 (RFC 1035 4.2.1) */
	/* What we say we accept and the most we send over UDP with EDNS0: the 2020 DNS flag
	 * day's value, which fits a 1280-byte IPv6 MTU without fragments. */
	DNS_EDNS_UDP_SIZE = 1232,
	/* TTL of our own answers: short, since peers come and go with the map. */
	DNS_ANSWER_TTL_S = 60,
	/* Compression pointers followed in one name: more than a real message needs, and a
	 * bound on the work a crafted one can cause. */
	DNS_POINTER_HOPS_MAX = 16,
};

/* Where every node answers DNS for the mesh, on its own TUN: 100.100.100.100, inside the
 * overlay 100.64.0.0/10 (Tailscale's choice too, so it is familiar) and never handed to a
 * node (coord/db_register.c skips it). The IPv6 one is the overlay's /48 with these four
 * bytes at the end, as a node's IPv6 address carries its IPv4 one, so it is never a node's
 * either. */
#define DNS_MESH_SERVICE_IPV4 UINT32_C(0x64646464)

enum dns_type {
	DNS_TYPE_A = 1,
	DNS_TYPE_NS = 2,
	DNS_TYPE_SOA = 6,
	DNS_TYPE_AAAA = 28,
	DNS_TYPE_OPT = 41,
	DNS_TYPE_ANY = 255,
};

enum { DNS_CLASS_IN = 1, DNS_CLASS_ANY = 255 };

enum dns_rcode {
	DNS_RCODE_NOERROR = 0,
	DNS_RCODE_FORMERR = 1,
	DNS_RCODE_SERVFAIL = 2,
	DNS_RCODE_NXDOMAIN = 3,
	DNS_RCODE_NOTIMP = 4,
	DNS_RCODE_REFUSED = 5,
};

/* Header flag bits (the 16-bit word after the ID). */
enum {
	DNS_FLAG_QR = 0x8000,
	DNS_FLAG_AA = 0x0400,
	DNS_FLAG_TC = 0x0200,
	DNS_FLAG_RD = 0x0100,
	DNS_FLAG_RA = 0x0080,
	DNS_OPCODE_MASK = 0x7800,
	DNS_RCODE_MASK = 0x000f,
	DNS_EDNS_DO = 0x8000, /* in the OPT record's TTL field: DNSSEC OK */
};

struct dns_header {
	uint16_t id;
	uint16_t flags;
	uint16_t qdcount, ancount, nscount, arcount;
};

struct dns_question {
	/* The name as sent, uncompressed wire form (labels with their lengths, ending in the
	 * root's 0), case kept: an answer echoes it exactly (resolvers that randomise case,
	 * "0x20", check it). */
	uint8_t wire[DNS_NAME_WIRE_MAX];
	size_t wire_len;
	/* The same name in lower case, dotted, no trailing dot ("" for the root): for lookups. */
	char text[DNS_NAME_TEXT_MAX + 1];
	uint16_t qtype, qclass;
};

struct dns_query {
	struct dns_header h;
	struct dns_question q;
	bool has_edns;
	uint16_t edns_udp_size; /* what the client accepts (at least DNS_UDP_PLAIN_MAX) */
};

enum dns_parse_result {
	DNS_PARSE_OK = 0,
	/* Not worth an answer: shorter than a header, or a response (QR set). */
	DNS_PARSE_DROP = 1,
	/* A query we answer with this rcode and no records (the header was readable). */
	DNS_PARSE_FORMERR = 2,
	DNS_PARSE_NOTIMP = 3, /* an opcode other than QUERY */
};

bool dns_header_parse(const uint8_t *msg, size_t len, struct dns_header *out);

/* A query from a client: exactly one question, no answer or authority records, at most one
 * OPT record (anything else in the additional section is skipped). */
enum dns_parse_result dns_query_parse(const uint8_t *msg, size_t len, struct dns_query *out);

/* The question of an upstream answer (header, then one question): false if it has none or
 * it does not parse. */
bool dns_response_question(const uint8_t *msg, size_t len, struct dns_header *h, struct dns_question *q);

/* True when a and b are the same question, byte for byte (case included: see wire). */
bool dns_question_equal(const struct dns_question *a, const struct dns_question *b);

/* One record of an answer: an A (4 bytes) or AAAA (16 bytes) for the question's name. */
struct dns_record {
	uint16_t type;
	uint8_t data[16];
	uint8_t len;
};

/* Builds the answer to q: rcode, AA set, the question echoed, n records (owner: the
 * question's name, by a compression pointer), an OPT record if the query had one. Records
 * that do not fit the client's size are left out and TC is set. Returns the length, or 0
 * if not even the header and question fit cap. */
size_t dns_answer_build(const struct dns_query *q, enum dns_rcode rcode, const struct dns_record *records, size_t n,
			uint8_t *out, size_t cap);

/* An answer with an rcode and nothing else (FORMERR, NOTIMP, SERVFAIL) to the message in
 * msg, of which only the header is trusted: the ID and RD are kept. 0 if len < header. */
size_t dns_error_build(const uint8_t *msg, size_t len, enum dns_rcode rcode, uint8_t *out, size_t cap);

/* Reads and writes the ID of a message of at least DNS_HEADER_LEN bytes. */
uint16_t dns_id_get(const uint8_t *msg);
void dns_id_set(uint8_t *msg, uint16_t id);

/* True when name (lower case, dotted) is domain or ends in ".domain"; *label_len gets the
 * length of what comes before ".domain" (0 for the domain itself). */
bool dns_name_in_domain(const char *name, const char *domain, size_t *prefix_len);

/* True when s (NUL-terminated, at most DNS_NAME_TEXT_MAX) is a domain we serve: dotted
 * labels of 1..63 [a-z0-9-], not starting or ending with '-', at least one label. */
bool dns_domain_valid(const char *s);

#endif
