/* STUN Binding requests and responses (RFC 8489), with the RFC 3489 compatibility a
 * coordinator needs: old clients send no magic cookie and understand MAPPED-ADDRESS only.
 *
 * Only what a Binding exchange needs is built; everything else a message may carry is
 * walked over (with its length checked) and ignored. */
#include "core/stun.h"

#include <netinet/in.h>
#include <sodium.h>
#include <string.h>

enum {
	STUN_OFF_TYPE = 0,
	STUN_OFF_LENGTH = 2,
	STUN_OFF_COOKIE = 4,
	STUN_OFF_TRANSACTION = 8,
	STUN_CLASSIC_ID_LEN = 16,         /* RFC 3489: the cookie field was part of the id */
	STUN_TYPE_TOP_BITS = 0xc000,      /* always 0 in STUN: tells it apart from other protocols on a port */
	STUN_ATTR_HEADER_LEN = 4,         /* type (2) | length (2) */
	STUN_ATTR_ALIGN = 4,              /* attribute values are padded to 32 bits */
	STUN_FAMILY_IPV4 = 0x01,
	STUN_FAMILY_IPV6 = 0x02,
	STUN_ADDR_FIXED_LEN = 4,          /* reserved (1) | family (1) | port (2), then the address */
	STUN_ADDR_V4_LEN = STUN_ADDR_FIXED_LEN + 4,
	STUN_ADDR_V6_LEN = STUN_ADDR_FIXED_LEN + 16,
	STUN_V4MAPPED_PREFIX_LEN = 12,    /* ::ffff:0:0/96 */
};

static const char stun_software[] = "meshcoord"; /* lets an operator tell whom a client reached */

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)((unsigned int)p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static size_t padded(size_t n)
{
	return (n + STUN_ATTR_ALIGN - 1) & ~(size_t)(STUN_ATTR_ALIGN - 1);
}

/* The header checks every message gets: the two top bits, a 4-aligned length that matches
 * the datagram exactly (a datagram holds one message, so anything else is not STUN). */
static bool header_valid(const uint8_t *buf, size_t len)
{
	size_t body;

	if (!buf || len < STUN_HEADER_LEN)
		return false;
	body = get16(buf + STUN_OFF_LENGTH);
	if (get16(buf + STUN_OFF_TYPE) & STUN_TYPE_TOP_BITS)
		return false;
	return body % STUN_ATTR_ALIGN == 0 && body == len - STUN_HEADER_LEN;
}

/* Walks the attribute list: each attribute header and its padded value must lie inside the
 * message. Calls fn (when given) for each; fn returning false stops the walk with false. */
typedef bool stun_attr_fn(uint16_t type, const uint8_t *value, size_t len, void *ctx);

static bool attrs_walk(const uint8_t *buf, size_t len, stun_attr_fn *fn, void *ctx)
{
	size_t off = STUN_HEADER_LEN;

	while (off < len) {
		uint16_t type;
		size_t alen;

		if (len - off < STUN_ATTR_HEADER_LEN)
			return false;
		type = get16(buf + off);
		alen = get16(buf + off + 2);
		off += STUN_ATTR_HEADER_LEN;
		if (padded(alen) > len - off)
			return false;
		if (fn && !fn(type, buf + off, alen, ctx))
			return false;
		off += padded(alen);
	}
	return true;
}

bool stun_parse_request(const uint8_t *buf, size_t len, struct stun_request *out)
{
	if (!header_valid(buf, len) || get16(buf + STUN_OFF_TYPE) != STUN_BINDING_REQUEST)
		return false;
	if (!attrs_walk(buf, len, NULL, NULL))
		return false;
	memset(out, 0, sizeof(*out));
	out->classic = get32(buf + STUN_OFF_COOKIE) != STUN_MAGIC_COOKIE;
	if (out->classic)
		memcpy(out->transaction_id, buf + STUN_OFF_COOKIE, STUN_CLASSIC_ID_LEN);
	else
		memcpy(out->transaction_id, buf + STUN_OFF_TRANSACTION, STUN_TRANSACTION_ID_LEN);
	return true;
}

/* An observed address, reduced to what goes on the wire. */
struct stun_addr {
	uint8_t family; /* STUN_FAMILY_* */
	uint8_t addr[16];
	size_t addr_len;
	uint16_t port;
};

static bool addr_from_sockaddr(const struct sockaddr *sa, struct stun_addr *out)
{
	static const uint8_t v4mapped[STUN_V4MAPPED_PREFIX_LEN] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	memset(out, 0, sizeof(*out));
	if (!sa)
		return false;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		out->family = STUN_FAMILY_IPV4;
		out->addr_len = 4;
		memcpy(out->addr, &in->sin_addr, 4);
		out->port = ntohs(in->sin_port);
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		out->port = ntohs(in6->sin6_port);
		/* A dual-stack socket sees IPv4 clients as ::ffff:a.b.c.d; the client's NAT
		 * mapping is the IPv4 address, and classic clients only know IPv4. */
		if (memcmp(in6->sin6_addr.s6_addr, v4mapped, sizeof(v4mapped)) == 0) {
			out->family = STUN_FAMILY_IPV4;
			out->addr_len = 4;
			memcpy(out->addr, in6->sin6_addr.s6_addr + STUN_V4MAPPED_PREFIX_LEN, 4);
		} else {
			out->family = STUN_FAMILY_IPV6;
			out->addr_len = 16;
			memcpy(out->addr, in6->sin6_addr.s6_addr, 16);
		}
		return true;
	}
	return false;
}

/* Appends one attribute (value zero-padded); false if it does not fit. */
static bool put_attr(uint8_t *out, size_t cap, size_t *off, uint16_t type, const uint8_t *value, size_t len)
{
	if (len > UINT16_MAX || cap - *off < STUN_ATTR_HEADER_LEN || cap - *off - STUN_ATTR_HEADER_LEN < padded(len))
		return false;
	put16(out + *off, type);
	put16(out + *off + 2, (uint16_t)len);
	memcpy(out + *off + STUN_ATTR_HEADER_LEN, value, len);
	memset(out + *off + STUN_ATTR_HEADER_LEN + len, 0, padded(len) - len);
	*off += STUN_ATTR_HEADER_LEN + padded(len);
	return true;
}

/* MAPPED-ADDRESS, or XOR-MAPPED-ADDRESS when xor_key (the 16 header bytes from the cookie
 * on) is given: the XOR keeps NATs that rewrite addresses they find in payloads away from it. */
static bool put_addr_attr(uint8_t *out, size_t cap, size_t *off, const struct stun_addr *a, const uint8_t *xor_key)
{
	uint8_t v[STUN_ADDR_V6_LEN];
	uint16_t port = a->port;

	v[0] = 0;
	v[1] = a->family;
	memcpy(v + STUN_ADDR_FIXED_LEN, a->addr, a->addr_len);
	if (xor_key) {
		port ^= get16(xor_key);
		for (size_t i = 0; i < a->addr_len; i++)
			v[STUN_ADDR_FIXED_LEN + i] ^= xor_key[i];
	}
	put16(v + 2, port);
	return put_attr(out, cap, off, xor_key ? STUN_ATTR_XOR_MAPPED_ADDRESS : STUN_ATTR_MAPPED_ADDRESS, v,
			STUN_ADDR_FIXED_LEN + a->addr_len);
}

size_t stun_build_response(const struct stun_request *req, const struct sockaddr *observed, uint8_t *out,
			   size_t cap)
{
	struct stun_addr a;
	size_t off = STUN_HEADER_LEN;

	if (!req || !out || cap < STUN_HEADER_LEN || !addr_from_sockaddr(observed, &a))
		return 0;
	put16(out + STUN_OFF_TYPE, STUN_BINDING_RESPONSE);
	if (req->classic) {
		memcpy(out + STUN_OFF_COOKIE, req->transaction_id, STUN_CLASSIC_ID_LEN);
	} else {
		put32(out + STUN_OFF_COOKIE, STUN_MAGIC_COOKIE);
		memcpy(out + STUN_OFF_TRANSACTION, req->transaction_id, STUN_TRANSACTION_ID_LEN);
		/* RFC 8489 clients read XOR-MAPPED-ADDRESS. */
		if (!put_addr_attr(out, cap, &off, &a, out + STUN_OFF_COOKIE))
			return 0;
	}
	/* Everyone gets MAPPED-ADDRESS: RFC 3489 clients know nothing else (and refuse
	 * XOR-MAPPED-ADDRESS, a comprehension-required type they do not know), and some modern
	 * clients still fall back to it. No CHANGED-ADDRESS: we have one address, and the
	 * NAT-type tests that would use it cannot run against a single address anyway. */
	if (!put_addr_attr(out, cap, &off, &a, NULL))
		return 0;
	/* Not for RFC 3489 clients: they read 0x8022 as SERVER, whose length had to be a
	 * multiple of 4, and the stund client refuses the whole response otherwise. */
	if (!req->classic &&
	    !put_attr(out, cap, &off, STUN_ATTR_SOFTWARE, (const uint8_t *)stun_software, sizeof(stun_software) - 1))
		return 0;
	put16(out + STUN_OFF_LENGTH, (uint16_t)(off - STUN_HEADER_LEN));
	return off;
}

size_t stun_build_request(const uint8_t transaction_id[STUN_TRANSACTION_ID_LEN], uint8_t *out, size_t cap)
{
	if (!transaction_id || !out || cap < STUN_HEADER_LEN)
		return 0;
	put16(out + STUN_OFF_TYPE, STUN_BINDING_REQUEST);
	put16(out + STUN_OFF_LENGTH, 0);
	put32(out + STUN_OFF_COOKIE, STUN_MAGIC_COOKIE);
	memcpy(out + STUN_OFF_TRANSACTION, transaction_id, STUN_TRANSACTION_ID_LEN);
	return STUN_HEADER_LEN;
}

bool stun_is_message(const uint8_t *buf, size_t len)
{
	return header_valid(buf, len) && get32(buf + STUN_OFF_COOKIE) == STUN_MAGIC_COOKIE;
}

/* What the attribute walk of a response found. */
struct response_scan {
	const uint8_t *header;    /* the message, for the XOR key */
	bool have_xor, have_plain;
	bool bad;                 /* an address attribute we must use was malformed */
	struct sockaddr_storage xor_addr, plain_addr;
};

static bool decode_addr(const uint8_t *v, size_t len, const uint8_t *xor_key, struct sockaddr_storage *out)
{
	uint8_t addr[16];
	uint16_t port;
	size_t alen;

	if (len < STUN_ADDR_FIXED_LEN)
		return false;
	/* v[0] is reserved: RFC 8489 says receivers ignore it. */
	if (v[1] == STUN_FAMILY_IPV4 && len == STUN_ADDR_V4_LEN)
		alen = 4;
	else if (v[1] == STUN_FAMILY_IPV6 && len == STUN_ADDR_V6_LEN)
		alen = 16;
	else
		return false;
	port = get16(v + 2);
	memcpy(addr, v + STUN_ADDR_FIXED_LEN, alen);
	if (xor_key) {
		port ^= get16(xor_key);
		for (size_t i = 0; i < alen; i++)
			addr[i] ^= xor_key[i];
	}
	/* Port 0 cannot be a mapping: a server that says so is broken or lying. */
	if (port == 0)
		return false;
	memset(out, 0, sizeof(*out));
	if (alen == 4) {
		struct sockaddr_in *in = (struct sockaddr_in *)out;

		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		memcpy(&in->sin_addr, addr, 4);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		memcpy(&in6->sin6_addr, addr, 16);
	}
	return true;
}

static bool scan_response_attr(uint16_t type, const uint8_t *value, size_t len, void *ctx)
{
	struct response_scan *s = ctx;

	/* Only the first of each counts (RFC 8489 section 14). Other attributes, including
	 * comprehension-required ones such as the SOURCE-ADDRESS and CHANGED-ADDRESS many
	 * servers still send, are ignored: we need nothing from them. */
	if (type == STUN_ATTR_XOR_MAPPED_ADDRESS && !s->have_xor) {
		if (!decode_addr(value, len, s->header + STUN_OFF_COOKIE, &s->xor_addr))
			s->bad = true;
		s->have_xor = true;
	} else if (type == STUN_ATTR_MAPPED_ADDRESS && !s->have_plain) {
		if (!decode_addr(value, len, NULL, &s->plain_addr))
			s->bad = true;
		s->have_plain = true;
	}
	return !s->bad;
}

bool stun_parse_response(const uint8_t *buf, size_t len, const uint8_t transaction_id[STUN_TRANSACTION_ID_LEN],
			 struct sockaddr_storage *mapped)
{
	struct response_scan s;

	if (!transaction_id || !mapped || !stun_is_message(buf, len) ||
	    get16(buf + STUN_OFF_TYPE) != STUN_BINDING_RESPONSE)
		return false;
	/* The transaction id is what keeps an off-path sender from feeding us an address. */
	if (sodium_memcmp(buf + STUN_OFF_TRANSACTION, transaction_id, STUN_TRANSACTION_ID_LEN) != 0)
		return false;
	memset(&s, 0, sizeof(s));
	s.header = buf;
	if (!attrs_walk(buf, len, scan_response_attr, &s))
		return false;
	if (s.have_xor)
		*mapped = s.xor_addr;
	else if (s.have_plain)
		*mapped = s.plain_addr;
	else
		return false;
	return true;
}
