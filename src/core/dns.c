/* DNS message parsing and building for meshd's resolver (dns.h).
 *
 *   header     id (2) | flags (2) | qdcount | ancount | nscount | arcount (2 each)
 *   question   name | qtype (2) | qclass (2)
 *   record     name | type (2) | class (2) | ttl (4) | rdlength (2) | rdata
 *   name       labels: a length byte 1..63 then that many bytes, ending in a 0 byte; or,
 *              in place of the rest, a pointer: two bytes 11xxxxxx xxxxxxxx, an offset from
 *              the message's start (RFC 1035 4.1.4)
 *   OPT        name 0 (root) | type 41 | class: the UDP size the sender accepts | ttl:
 *              extended rcode (1), version (1), flags (2: DO) | rdlength | options (RFC 6891)
 */
#include "dns.h"

#include <string.h>

enum {
	LABEL_POINTER = 0xc0,     /* the top two bits of a length byte: a compression pointer */
	LABEL_EXTENDED = 0x40,    /* 01xxxxxx and 10xxxxxx: obsolete label types, refused */
	QUESTION_FIXED_LEN = 4,   /* qtype, qclass */
	RECORD_FIXED_LEN = 10,    /* type, class, ttl, rdlength */
	OPT_RECORD_LEN = 1 + RECORD_FIXED_LEN, /* a root name and no options */
	POINTER_TO_QUESTION = 0xc000 | DNS_HEADER_LEN, /* the question's name sits right after the header */
	EDNS_VERSION = 0,
};

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

uint16_t dns_id_get(const uint8_t *msg)
{
	return get16(msg);
}

void dns_id_set(uint8_t *msg, uint16_t id)
{
	put16(msg, id);
}

bool dns_header_parse(const uint8_t *msg, size_t len, struct dns_header *out)
{
	if (!msg || len < DNS_HEADER_LEN)
		return false;
	out->id = get16(msg);
	out->flags = get16(msg + 2);
	out->qdcount = get16(msg + 4);
	out->ancount = get16(msg + 6);
	out->nscount = get16(msg + 8);
	out->arcount = get16(msg + 10);
	return true;
}

static char lower(uint8_t c)
{
	return (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
}

/* Reads the name at *off into q (wire form and text form; q may be NULL to skip it) and
 * moves *off past it: past the first pointer if there is one, else past the root label.
 * Text form: a label holding '.' or a byte outside printable ASCII cannot be one of our
 * names, so it is kept as '?' (the lookup then finds nothing, as it should). */
static bool name_read(const uint8_t *msg, size_t len, size_t *off, struct dns_question *q)
{
	size_t pos = *off, end = 0, wire_len = 0, text_len = 0;
	unsigned int hops = 0;
	bool jumped = false;

	for (;;) {
		if (pos >= len)
			return false;
		uint8_t l = msg[pos];
		if ((l & LABEL_POINTER) == LABEL_POINTER) {
			if (pos + 1 >= len || ++hops > DNS_POINTER_HOPS_MAX)
				return false;
			size_t target = (size_t)(get16(msg + pos) & 0x3fff);
			/* only backwards (no reads of what follows) and never into the header */
			if (target >= pos || target < DNS_HEADER_LEN)
				return false;
			if (!jumped)
				end = pos + 2;
			jumped = true;
			pos = target;
			continue;
		}
		if (l & LABEL_POINTER) /* 01 or 10: not a length */
			return false;
		if (l == 0) {
			if (!jumped)
				end = pos + 1;
			break;
		}
		/* this label, its length byte and the root's 0 that must still follow */
		if (wire_len + 1 + l + 1 > DNS_NAME_WIRE_MAX || pos + 1 + l > len)
			return false;
		if (q) {
			q->wire[wire_len] = l;
			memcpy(q->wire + wire_len + 1, msg + pos + 1, l);
			if (text_len > 0)
				q->text[text_len++] = '.';
			for (size_t i = 0; i < l; i++) {
				uint8_t c = msg[pos + 1 + i];
				q->text[text_len++] = (c > 0x20 && c < 0x7f && c != '.') ? lower(c) : '?';
			}
		}
		wire_len += 1 + l;
		pos += 1 + l;
	}
	if (q) {
		q->wire[wire_len] = 0;
		q->wire_len = wire_len + 1;
		q->text[text_len] = '\0';
	}
	*off = end;
	return true;
}

/* The text form is at most DNS_NAME_TEXT_MAX: a wire name of 255 bytes has at most 253
 * characters dotted (the first length byte and the root byte add none). */
_Static_assert(DNS_NAME_WIRE_MAX - 2 == DNS_NAME_TEXT_MAX, "text form bound");

static bool question_read(const uint8_t *msg, size_t len, size_t *off, struct dns_question *q)
{
	if (!name_read(msg, len, off, q) || len - *off < QUESTION_FIXED_LEN)
		return false;
	q->qtype = get16(msg + *off);
	q->qclass = get16(msg + *off + 2);
	*off += QUESTION_FIXED_LEN;
	return true;
}

/* One resource record of the additional section: an OPT is noted in out, others skipped. */
static bool additional_read(const uint8_t *msg, size_t len, size_t *off, struct dns_query *out)
{
	size_t name_start = *off;
	if (!name_read(msg, len, off, NULL) || len - *off < RECORD_FIXED_LEN)
		return false;
	const uint8_t *r = msg + *off;
	uint16_t type = get16(r), rdlen = get16(r + 8);
	if (len - *off - RECORD_FIXED_LEN < rdlen)
		return false;
	*off += RECORD_FIXED_LEN + rdlen;
	if (type != DNS_TYPE_OPT)
		return true;
	/* RFC 6891 6.1.1: one OPT, owned by the root; a second one is a FORMERR */
	if (out->has_edns || msg[name_start] != 0)
		return false;
	out->has_edns = true;
	uint16_t size = get16(r + 2);
	out->edns_udp_size = size < DNS_UDP_PLAIN_MAX ? DNS_UDP_PLAIN_MAX : size;
	return true;
}

enum dns_parse_result dns_query_parse(const uint8_t *msg, size_t len, struct dns_query *out)
{
	size_t off = DNS_HEADER_LEN;

	memset(out, 0, sizeof(*out));
	if (!dns_header_parse(msg, len, &out->h) || (out->h.flags & DNS_FLAG_QR))
		return DNS_PARSE_DROP;
	if (out->h.flags & DNS_OPCODE_MASK)
		return DNS_PARSE_NOTIMP;
	if (out->h.qdcount != 1 || out->h.ancount != 0 || out->h.nscount != 0)
		return DNS_PARSE_FORMERR;
	if (!question_read(msg, len, &off, &out->q))
		return DNS_PARSE_FORMERR;
	for (unsigned int i = 0; i < out->h.arcount; i++)
		if (!additional_read(msg, len, &off, out))
			return DNS_PARSE_FORMERR;
	/* trailing bytes after the counted records: lenient, like most servers (ignored) */
	return DNS_PARSE_OK;
}

bool dns_response_question(const uint8_t *msg, size_t len, struct dns_header *h, struct dns_question *q)
{
	size_t off = DNS_HEADER_LEN;

	memset(q, 0, sizeof(*q));
	if (!dns_header_parse(msg, len, h) || !(h->flags & DNS_FLAG_QR) || h->qdcount != 1)
		return false;
	return question_read(msg, len, &off, q);
}

bool dns_question_equal(const struct dns_question *a, const struct dns_question *b)
{
	return a->wire_len == b->wire_len && memcmp(a->wire, b->wire, a->wire_len) == 0 && a->qtype == b->qtype &&
	       a->qclass == b->qclass;
}

static void header_write(uint8_t *out, uint16_t id, uint16_t flags, uint16_t qd, uint16_t an, uint16_t ar)
{
	put16(out, id);
	put16(out + 2, flags);
	put16(out + 4, qd);
	put16(out + 6, an);
	put16(out + 8, 0);
	put16(out + 10, ar);
}

static uint16_t answer_flags(uint16_t query_flags, enum dns_rcode rcode)
{
	/* RA: we do recurse (forward) for names outside the mesh */
	return (uint16_t)(DNS_FLAG_QR | (query_flags & DNS_FLAG_RD) | DNS_FLAG_RA | ((unsigned)rcode & DNS_RCODE_MASK));
}

size_t dns_answer_build(const struct dns_query *q, enum dns_rcode rcode, const struct dns_record *records, size_t n,
			uint8_t *out, size_t cap)
{
	size_t limit = q->has_edns ? (q->edns_udp_size < DNS_EDNS_UDP_SIZE ? q->edns_udp_size : DNS_EDNS_UDP_SIZE)
				   : DNS_UDP_PLAIN_MAX;
	if (limit > cap)
		limit = cap;
	size_t opt = q->has_edns ? OPT_RECORD_LEN : 0;
	size_t len = DNS_HEADER_LEN + q->q.wire_len + QUESTION_FIXED_LEN;
	if (q->q.wire_len == 0 || len + opt > limit)
		return 0;
	memcpy(out + DNS_HEADER_LEN, q->q.wire, q->q.wire_len);
	put16(out + DNS_HEADER_LEN + q->q.wire_len, q->q.qtype);
	put16(out + DNS_HEADER_LEN + q->q.wire_len + 2, q->q.qclass);

	uint16_t flags = (uint16_t)(answer_flags(q->h.flags, rcode) | DNS_FLAG_AA);
	size_t written = 0;
	for (size_t i = 0; i < n; i++) {
		size_t rlen = 2 + RECORD_FIXED_LEN + records[i].len;
		if (records[i].len > sizeof(records[i].data) || len + rlen + opt > limit) {
			flags |= DNS_FLAG_TC;
			break;
		}
		uint8_t *r = out + len;
		put16(r, POINTER_TO_QUESTION);
		put16(r + 2, records[i].type);
		put16(r + 4, DNS_CLASS_IN);
		put16(r + 6, 0);
		put16(r + 8, DNS_ANSWER_TTL_S);
		put16(r + 10, records[i].len);
		memcpy(r + 12, records[i].data, records[i].len);
		len += rlen;
		written++;
	}
	if (q->has_edns) {
		uint8_t *r = out + len;
		r[0] = 0; /* root */
		put16(r + 1, DNS_TYPE_OPT);
		put16(r + 3, DNS_EDNS_UDP_SIZE);
		r[5] = 0;           /* extended rcode */
		r[6] = EDNS_VERSION;
		put16(r + 7, 0);    /* flags: we sign nothing, so DO stays clear */
		put16(r + 9, 0);    /* no options */
		len += OPT_RECORD_LEN;
	}
	header_write(out, q->h.id, flags, 1, (uint16_t)written, q->has_edns ? 1 : 0);
	return len;
}

size_t dns_error_build(const uint8_t *msg, size_t len, enum dns_rcode rcode, uint8_t *out, size_t cap)
{
	if (!msg || len < DNS_HEADER_LEN || cap < DNS_HEADER_LEN)
		return 0;
	uint16_t flags = get16(msg + 2);
	/* the opcode is echoed (RFC 1035 4.1.1: "copied into the response") */
	header_write(out, get16(msg), (uint16_t)(answer_flags(flags, rcode) | (flags & DNS_OPCODE_MASK)), 0, 0, 0);
	return DNS_HEADER_LEN;
}

bool dns_name_in_domain(const char *name, const char *domain, size_t *prefix_len)
{
	size_t n = strlen(name), d = strlen(domain);

	if (d == 0 || n < d || strcmp(name + n - d, domain) != 0)
		return false;
	if (n == d) {
		*prefix_len = 0;
		return true;
	}
	if (n == d + 1 || name[n - d - 1] != '.') /* "xmesh.internal" is not inside */
		return false;
	*prefix_len = n - d - 1;
	return true;
}

bool dns_domain_valid(const char *s)
{
	size_t len = s ? strnlen(s, DNS_NAME_TEXT_MAX + 1) : 0, label = 0;

	if (len == 0 || len > DNS_NAME_TEXT_MAX)
		return false;
	for (size_t i = 0; i <= len; i++) {
		char c = s[i];
		if (c == '.' || c == '\0') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && label > 0);
		if (!ok || ++label > DNS_LABEL_MAX)
			return false;
	}
	return true;
}
