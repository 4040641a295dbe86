/* IP prefixes, endpoint strings and inner packet headers. */
#include "core/ipaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
	IPV4_MAX_BITS = 32,
	IPV6_MAX_BITS = 128,
	PREFIX_LEN_MAX_DIGITS = 3,       /* "128" */
	PORT_MAX_DIGITS = 5,             /* "65535" */
	DNS_NAME_MAX = 253,              /* RFC 1035 limit on a name in text form */

	/* IPv4 header: version/IHL byte, total length, addresses. */
	IPV4_OFF_TOTAL_LEN = 2,
	IPV4_OFF_SRC = 12,
	IPV4_OFF_DST = 16,
	IPV4_IHL_MIN = 5,                /* in 32-bit words: a header without options */
	/* IPv6 fixed header. */
	IPV6_OFF_PAYLOAD_LEN = 4,
	IPV6_OFF_SRC = 8,
	IPV6_OFF_DST = 24,
};

static unsigned int family_max_bits(int family)
{
	return family == AF_INET ? IPV4_MAX_BITS : family == AF_INET6 ? IPV6_MAX_BITS : 0;
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

bool ip_prefix_parse(const char *s, struct ip_prefix *out)
{
	char addr[IP_PREFIX_STR_MAX];
	struct ip_prefix p;
	const char *slash;
	size_t len, addr_len;

	if (!s)
		return false;
	len = strnlen(s, IP_PREFIX_STR_MAX);
	if (len == 0 || len >= IP_PREFIX_STR_MAX)
		return false;
	slash = memchr(s, '/', len);
	addr_len = slash ? (size_t)(slash - s) : len;
	memcpy(addr, s, addr_len);
	addr[addr_len] = '\0';

	memset(&p, 0, sizeof(p));
	/* inet_pton refuses zone ids, spaces and trailing junk, and (for AF_INET) anything but
	 * four decimal parts, so "10.1" or "010.0.0.1" cannot mean something surprising. */
	p.family = memchr(addr, ':', addr_len) ? AF_INET6 : AF_INET;
	if (inet_pton(p.family, addr, p.addr) != 1)
		return false;

	if (slash) {
		const char *digits = slash + 1;
		size_t n = len - addr_len - 1;
		unsigned int bits = 0;

		/* Digits only: no sign, no spaces, no second '/'. */
		if (n == 0 || n > PREFIX_LEN_MAX_DIGITS)
			return false;
		for (size_t i = 0; i < n; i++) {
			if (!is_digit(digits[i]))
				return false;
			bits = bits * 10 + (unsigned int)(digits[i] - '0');
		}
		if (bits > family_max_bits(p.family))
			return false;
		p.bits = (uint8_t)bits;
	} else {
		p.bits = (uint8_t)family_max_bits(p.family);
	}
	*out = p;
	return true;
}

const char *ip_prefix_format(const struct ip_prefix *p, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];

	if (len == 0)
		return buf;
	if (!inet_ntop(p->family, p->addr, addr, sizeof(addr)))
		snprintf(buf, len, "(bad prefix)");
	else
		snprintf(buf, len, "%s/%u", addr, (unsigned int)p->bits);
	return buf;
}

bool ip_prefix_contains(const struct ip_prefix *p, int family, const uint8_t *addr)
{
	unsigned int bits = p->bits;
	size_t full, rest;

	if (family != p->family || bits > family_max_bits(family))
		return false;
	full = bits / 8;
	rest = bits % 8;
	if (memcmp(p->addr, addr, full) != 0)
		return false;
	if (rest) {
		uint8_t mask = (uint8_t)(0xff << (8 - rest));

		if ((p->addr[full] & mask) != (addr[full] & mask))
			return false;
	}
	return true;
}

struct ip_prefix ip_prefix_network(const struct ip_prefix *p)
{
	struct ip_prefix n = *p;
	unsigned int max = family_max_bits(p->family), bits = p->bits > max ? max : p->bits;
	for (unsigned int i = bits; i < max; i++)
		n.addr[i / 8] &= (uint8_t) ~(0x80u >> (i % 8));
	return n;
}

bool ip_prefix_within(const struct ip_prefix *inner, const struct ip_prefix *outer)
{
	return inner->family == outer->family && inner->bits >= outer->bits &&
	       ip_prefix_contains(outer, inner->family, inner->addr);
}

static uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

bool ip_packet_parse(const uint8_t *pkt, size_t len, struct ip_packet_info *out)
{
	if (!pkt || len < 1)
		return false;

	switch (pkt[0] >> 4) {
	case 4: {
		size_t hdr_len = (size_t)(pkt[0] & 0x0f) * 4;
		size_t total;

		if (len < IPV4_HEADER_MIN_LEN || hdr_len < IPV4_IHL_MIN * 4 || hdr_len > len)
			return false;
		total = get_be16(pkt + IPV4_OFF_TOTAL_LEN);
		/* total_len < len is fine: the sender's plaintext is padded, and the data path
		 * hands only total_len bytes to the TUN device. */
		if (total < hdr_len || total > len)
			return false;
		out->family = AF_INET;
		out->src = pkt + IPV4_OFF_SRC;
		out->dst = pkt + IPV4_OFF_DST;
		out->total_len = total;
		return true;
	}
	case 6: {
		size_t total;

		if (len < IPV6_HEADER_LEN)
			return false;
		/* A payload length of 0 would mean a jumbogram (RFC 2675), which cannot fit our
		 * MTU; it is treated as an empty payload, never as "read on". */
		total = IPV6_HEADER_LEN + (size_t)get_be16(pkt + IPV6_OFF_PAYLOAD_LEN);
		if (total > len)
			return false;
		out->family = AF_INET6;
		out->src = pkt + IPV6_OFF_SRC;
		out->dst = pkt + IPV6_OFF_DST;
		out->total_len = total;
		return true;
	}
	default:
		return false;
	}
}

/* Letters, digits, '-', '.' and '_' (seen in some internal names): enough for any DNS name
 * or IPv4 literal, and nothing that could confuse a log line or a resolver. */
static bool is_host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-' || c == '.' ||
	       c == '_';
}

static bool parse_port(const char *s, uint16_t *port)
{
	unsigned long v;
	char *end;
	size_t n = strlen(s);

	/* strtoul alone would take leading spaces, a sign, and wrap "-1" to ULONG_MAX. */
	if (n == 0 || n > PORT_MAX_DIGITS)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit(s[i]))
			return false;
	}
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < 1 || v > UINT16_MAX)
		return false;
	*port = (uint16_t)v;
	return true;
}

bool endpoint_parse(const char *s, char *host, size_t host_cap, uint16_t *port)
{
	/* "[" host "]" ":" port, plus one byte to notice longer input */
	enum { ENDPOINT_STR_MAX = ENDPOINT_HOST_MAX + 3 + PORT_MAX_DIGITS + 1 };
	const char *host_start, *host_end, *colon;
	char tmp[ENDPOINT_HOST_MAX];
	size_t len, host_len;

	if (!s || !host || host_cap == 0)
		return false;
	len = strnlen(s, ENDPOINT_STR_MAX);
	if (len == 0 || len >= ENDPOINT_STR_MAX)
		return false;

	if (s[0] == '[') {
		const char *close = memchr(s, ']', len);

		if (!close || close[1] != ':')
			return false;
		host_start = s + 1;
		host_end = close;
		colon = close + 1;
	} else {
		colon = strrchr(s, ':'); /* s[len] is the terminator */
		if (!colon)
			return false;
		host_start = s;
		host_end = colon;
		/* An unbracketed IPv6 literal is ambiguous ("::1:80"): brackets are required. */
		if (memchr(host_start, ':', (size_t)(host_end - host_start)))
			return false;
	}
	host_len = (size_t)(host_end - host_start);
	if (host_len == 0 || host_len >= sizeof(tmp) || host_len >= host_cap)
		return false;
	memcpy(tmp, host_start, host_len);
	tmp[host_len] = '\0';

	if (s[0] == '[') {
		struct in6_addr a6;

		/* Brackets are for IPv6 literals only. */
		if (inet_pton(AF_INET6, tmp, &a6) != 1)
			return false;
	} else {
		if (host_len > DNS_NAME_MAX)
			return false;
		for (size_t i = 0; i < host_len; i++) {
			if (!is_host_char(tmp[i]))
				return false;
		}
	}
	if (!parse_port(colon + 1, port))
		return false;
	memcpy(host, tmp, host_len + 1);
	return true;
}

bool sockaddr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const struct sockaddr_in *)a, *y = (const struct sockaddr_in *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a, *y = (const struct sockaddr_in6 *)b;
		return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	return false;
}

void sockaddr_inet_set(union sockaddr_inet *out, const struct sockaddr_storage *in)
{
	memset(out, 0, sizeof(*out));
	if (in->ss_family == AF_INET)
		memcpy(&out->in, in, sizeof(out->in));
	else if (in->ss_family == AF_INET6)
		memcpy(&out->in6, in, sizeof(out->in6));
	else
		out->sa.sa_family = AF_UNSPEC;
}

struct sockaddr_storage sockaddr_inet_get(const union sockaddr_inet *in)
{
	struct sockaddr_storage out;
	memset(&out, 0, sizeof(out));
	memcpy(&out, in, sizeof(*in));
	return out;
}

bool sockaddr_inet_equal(const union sockaddr_inet *a, const struct sockaddr_storage *b)
{
	struct sockaddr_storage wide = sockaddr_inet_get(a);
	return sockaddr_equal(&wide, b);
}

const char *sockaddr_format(const struct sockaddr *sa, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];

	if (len == 0)
		return buf;
	if (!sa) {
		snprintf(buf, len, "(none)");
		return buf;
	}
	switch (sa->sa_family) {
	case AF_INET: {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &in->sin_addr, addr, sizeof(addr));
		snprintf(buf, len, "%s:%u", addr, (unsigned int)ntohs(in->sin_port));
		break;
	}
	case AF_INET6: {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		/* A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; show them as people wrote them. */
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], addr, sizeof(addr));
			snprintf(buf, len, "%s:%u", addr, (unsigned int)ntohs(in6->sin6_port));
			break;
		}
		inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof(addr));
		/* The scope matters for link-local peers: fe80::1 on two links are two hosts. */
		if (in6->sin6_scope_id)
			snprintf(buf, len, "[%s%%%u]:%u", addr, (unsigned int)in6->sin6_scope_id,
				 (unsigned int)ntohs(in6->sin6_port));
		else
			snprintf(buf, len, "[%s]:%u", addr, (unsigned int)ntohs(in6->sin6_port));
		break;
	}
	default:
		snprintf(buf, len, "(address family %d)", (int)sa->sa_family);
		break;
	}
	return buf;
}
