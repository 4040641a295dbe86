/* The packet side of access rules: reading the transport header of a decrypted packet and
 * matching it against a node's rules. */
#include "filter.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "bytes.h"

enum {
	IPV4_OFF_PROTO = 9,
	IPV4_OFF_FRAG = 6,
	IPV4_FRAG_OFFSET_MASK = 0x1fff,
	IPV4_OFF_SRC = 12,
	IPV4_OFF_DST = 16,
	IPV6_OFF_NEXT = 6,
	IPV6_OFF_SRC = 8,
	IPV6_OFF_DST = 24,
	IPV6_HDR_LEN = 40,
	IPV6_EXT_HOP = 0,
	IPV6_EXT_ROUTING = 43,
	IPV6_EXT_FRAGMENT = 44,
	IPV6_EXT_DSTOPTS = 60,
	IPV6_FRAG_HDR_LEN = 8,
	IPV6_FRAG_OFFSET_MASK = 0xfff8,
	/* More extension headers than this is no honest packet; it is not read further. */
	IPV6_EXT_MAX = 8,
	L4_PORTS_LEN = 4,  /* source and destination port: the first 4 bytes of TCP and UDP */
	ICMP_HDR_LEN = 8,  /* type, code, checksum, then id and sequence (echo) or unused */
	ICMP_OFF_ID = 4,
	ICMP4_ECHO_REPLY = 0,
	ICMP4_UNREACH = 3,
	ICMP4_ECHO_REQUEST = 8,
	ICMP4_TIME_EXCEEDED = 11,
	ICMP4_PARAM_PROBLEM = 12,
	ICMP6_UNREACH = 1,
	ICMP6_TOO_BIG = 2,
	ICMP6_TIME_EXCEEDED = 3,
	ICMP6_PARAM_PROBLEM = 4,
	ICMP6_ECHO_REQUEST = 128,
	ICMP6_ECHO_REPLY = 129,
	PORT_MAX = 65535,
};

bool filter_rule_valid(const struct filter_rule *r)
{
	size_t alen;
	unsigned int max_bits;

	if (r->family == FILTER_FAMILY_IPV4) {
		alen = 4;
		max_bits = 32;
	} else if (r->family == FILTER_FAMILY_IPV6) {
		alen = 16;
		max_bits = 128;
	} else {
		return false;
	}
	if (r->src_bits > max_bits || r->dst_bits > max_bits || r->port_lo > r->port_hi)
		return false;
	if (r->proto != FILTER_PROTO_ANY && r->proto != FILTER_PROTO_ICMP && r->proto != FILTER_PROTO_TCP &&
	    r->proto != FILTER_PROTO_UDP)
		return false;
	/* ICMP has no ports: a range there could only mislead a reader. */
	if (r->proto == FILTER_PROTO_ICMP && (r->port_lo != 0 || r->port_hi != PORT_MAX))
		return false;
	const uint8_t *addrs[2] = { r->src, r->dst };
	unsigned int bits[2] = { r->src_bits, r->dst_bits };
	for (int k = 0; k < 2; k++) {
		for (size_t i = 0; i < 16; i++) {
			unsigned int first_bit = (unsigned int)i * 8;
			uint8_t host_mask;
			if (i >= alen)
				host_mask = 0xff;
			else if (bits[k] >= first_bit + 8)
				host_mask = 0;
			else if (bits[k] <= first_bit)
				host_mask = 0xff;
			else
				host_mask = (uint8_t)(0xffu >> (bits[k] - first_bit));
			if (addrs[k][i] & host_mask)
				return false;
		}
	}
	return true;
}

static bool prefix_has(const uint8_t *net, unsigned int bits, const uint8_t *addr)
{
	size_t whole = bits / 8;
	unsigned int rest = bits % 8;

	if (memcmp(net, addr, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff00u >> rest);
	return (net[whole] & mask) == (addr[whole] & mask);
}

static void read_l4(struct filter_flow *f, const uint8_t *l4, size_t l4_len)
{
	f->l4 = l4;
	f->l4_len = l4_len;
	if ((f->proto == IP_PROTO_TCP || f->proto == IP_PROTO_UDP) && l4_len >= L4_PORTS_LEN) {
		f->has_ports = true;
		f->sport = get16(l4);
		f->dport = get16(l4 + 2);
	}
	bool icmp = f->family == 4 ? f->proto == IP_PROTO_ICMP : f->proto == IP_PROTO_ICMPV6;
	if (icmp && l4_len >= ICMP_HDR_LEN) {
		f->icmp = true;
		f->icmp_type = l4[0];
		f->icmp_code = l4[1];
		f->icmp_id = get16(l4 + ICMP_OFF_ID);
	}
}

bool filter_flow_parse(const uint8_t *pkt, size_t len, struct filter_flow *f)
{
	memset(f, 0, sizeof(*f));
	if (len < 1)
		return false;
	if (pkt[0] >> 4 == 4) {
		size_t hl = (size_t)(pkt[0] & 0x0f) * 4;
		if (len < 20 || hl < 20 || hl > len)
			return false;
		f->family = 4;
		f->proto = pkt[IPV4_OFF_PROTO];
		f->src = pkt + IPV4_OFF_SRC;
		f->dst = pkt + IPV4_OFF_DST;
		if (get16(pkt + IPV4_OFF_FRAG) & IPV4_FRAG_OFFSET_MASK) {
			f->later_fragment = true;
			return true;
		}
		read_l4(f, pkt + hl, len - hl);
		return true;
	}
	if (pkt[0] >> 4 != 6 || len < IPV6_HDR_LEN)
		return false;
	f->family = 6;
	f->src = pkt + IPV6_OFF_SRC;
	f->dst = pkt + IPV6_OFF_DST;
	uint8_t next = pkt[IPV6_OFF_NEXT];
	size_t off = IPV6_HDR_LEN;
	for (int i = 0;; i++) {
		if (next != IPV6_EXT_HOP && next != IPV6_EXT_ROUTING && next != IPV6_EXT_DSTOPTS &&
		    next != IPV6_EXT_FRAGMENT)
			break;
		if (i == IPV6_EXT_MAX || len - off < 8)
			return false;
		uint8_t hnext = pkt[off];
		size_t hlen = next == IPV6_EXT_FRAGMENT ? IPV6_FRAG_HDR_LEN : ((size_t)pkt[off + 1] + 1) * 8;
		if (hlen > len - off)
			return false;
		if (next == IPV6_EXT_FRAGMENT && (get16(pkt + off + 2) & IPV6_FRAG_OFFSET_MASK)) {
			f->proto = hnext;
			f->later_fragment = true;
			return true;
		}
		next = hnext;
		off += hlen;
	}
	f->proto = next;
	read_l4(f, pkt + off, len - off);
	return true;
}

bool filter_icmp_is_echo_request(const struct filter_flow *f)
{
	return f->icmp && f->icmp_type == (f->family == 4 ? ICMP4_ECHO_REQUEST : ICMP6_ECHO_REQUEST);
}

bool filter_icmp_is_echo_reply(const struct filter_flow *f)
{
	return f->icmp && f->icmp_type == (f->family == 4 ? ICMP4_ECHO_REPLY : ICMP6_ECHO_REPLY);
}

bool filter_icmp_is_error(const struct filter_flow *f)
{
	if (!f->icmp)
		return false;
	if (f->family == 4)
		return f->icmp_type == ICMP4_UNREACH || f->icmp_type == ICMP4_TIME_EXCEEDED ||
		       f->icmp_type == ICMP4_PARAM_PROBLEM;
	return f->icmp_type == ICMP6_UNREACH || f->icmp_type == ICMP6_TOO_BIG || f->icmp_type == ICMP6_TIME_EXCEEDED ||
	       f->icmp_type == ICMP6_PARAM_PROBLEM;
}

bool filter_icmp_error_inner(const struct filter_flow *f, struct filter_flow *inner)
{
	size_t alen = f->family == 4 ? 4 : 16;

	return f->l4_len > ICMP_HDR_LEN && filter_flow_parse(f->l4 + ICMP_HDR_LEN, f->l4_len - ICMP_HDR_LEN, inner) &&
	       inner->family == f->family && memcmp(inner->src, f->dst, alen) == 0;
}

static bool proto_matches(uint8_t rule_proto, const struct filter_flow *f)
{
	switch (rule_proto) {
	case FILTER_PROTO_ANY:
		return true;
	case FILTER_PROTO_ICMP:
		return f->family == 4 ? f->proto == IP_PROTO_ICMP : f->proto == IP_PROTO_ICMPV6;
	default:
		return f->proto == rule_proto;
	}
}

bool filter_rules_allow(const struct filter_rule *rules, size_t n, const struct filter_flow *f)
{
	for (size_t i = 0; i < n; i++) {
		const struct filter_rule *r = &rules[i];
		if (r->family != f->family || !proto_matches(r->proto, f) || !prefix_has(r->src, r->src_bits, f->src) ||
		    !prefix_has(r->dst, r->dst_bits, f->dst))
			continue;
		bool all_ports = r->port_lo == 0 && r->port_hi == PORT_MAX;
		if (all_ports)
			return true;
		/* A port range: TCP and UDP with a port inside it; a later fragment (no ports) of
		 * a protocol the rule names. Port-less protocols need a rule for all ports. */
		if (f->later_fragment && (f->proto == IP_PROTO_TCP || f->proto == IP_PROTO_UDP))
			return true;
		if (f->has_ports && f->dport >= r->port_lo && f->dport <= r->port_hi)
			return true;
	}
	return false;
}

const char *filter_proto_name(uint8_t proto)
{
	switch (proto) {
	case FILTER_PROTO_ANY:
		return "any";
	case FILTER_PROTO_ICMP:
		return "icmp";
	case FILTER_PROTO_TCP:
		return "tcp";
	case FILTER_PROTO_UDP:
		return "udp";
	default:
		return "?";
	}
}

const char *filter_rule_format(const struct filter_rule *r, char *buf, size_t cap)
{
	char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN], ports[16];
	int af = r->family == FILTER_FAMILY_IPV4 ? AF_INET : AF_INET6;

	inet_ntop(af, r->src, s, sizeof(s));
	inet_ntop(af, r->dst, d, sizeof(d));
	if (r->port_lo == 0 && r->port_hi == PORT_MAX)
		snprintf(ports, sizeof(ports), "*");
	else if (r->port_lo == r->port_hi)
		snprintf(ports, sizeof(ports), "%u", r->port_lo);
	else
		snprintf(ports, sizeof(ports), "%u-%u", r->port_lo, r->port_hi);
	snprintf(buf, cap, "%s/%u -> %s/%u %s %s", s, r->src_bits, d, r->dst_bits, filter_proto_name(r->proto), ports);
	return buf;
}
