/* Access rules as a node enforces them: the rules the coordinator compiled for this node
 * (who may reach it, on which protocol and ports), and the packet matcher that applies them
 * to decrypted packets before they are written to the TUN device.
 *
 * A rule allows; nothing denies. With a filter active, an incoming packet passes when
 *   - it answers a flow this node opened (the connection table, core/conntrack.h), or
 *   - an ICMP error or echo reply relates to such a flow, or
 *   - a rule matches: source inside src/src_bits, destination inside dst/dst_bits, and the
 *     protocol and destination port in the rule's, or
 *   - an ICMP error is about this node's reply on a connection a rule allows (path MTU
 *     discovery for allowed connections).
 * An inactive filter (no policy on the coordinator) passes everything, as before rules
 * existed. The matcher is a linear scan over this node's rules: O(rules for this node). */
#ifndef MESHD_FILTER_H
#define MESHD_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ipaddr.h"

enum filter_proto {
	FILTER_PROTO_ANY = 0,
	FILTER_PROTO_ICMP = 1, /* ICMP for IPv4 rules, ICMPv6 for IPv6 rules */
	FILTER_PROTO_TCP = 6,
	FILTER_PROTO_UDP = 17,
};

enum {
	FILTER_FAMILY_IPV4 = 4,
	FILTER_FAMILY_IPV6 = 6,
	/* Rules for one node: bounds the coordinator's message parts and the node's memory
	 * and per-packet scan; a policy that compiles to more for any node is refused. */
	FILTER_MAX_RULES = 4096,
};

struct filter_rule {
	uint8_t family;   /* FILTER_FAMILY_IPV4 or _IPV6; src and dst are of this family */
	uint8_t src_bits; /* 0..32 or 0..128 */
	uint8_t dst_bits;
	uint8_t proto;    /* enum filter_proto */
	uint16_t port_lo; /* destination ports, inclusive; 0..65535 for all */
	uint16_t port_hi;
	uint8_t src[16];  /* IPv4: the first 4 bytes, the rest zero */
	uint8_t dst[16];
};

/* True when the rule's fields are in range (family, prefix lengths, protocol, port order,
 * unused address bytes zero, host bits clear). Decoders and the state file check this. */
bool filter_rule_valid(const struct filter_rule *r);

/* What the matcher and the connection table read from an IP packet. */
struct filter_flow {
	uint8_t family;      /* 4 or 6 */
	uint8_t proto;       /* the IP protocol number (the last IPv6 next header) */
	bool has_ports;      /* TCP or UDP with its header present */
	bool later_fragment; /* not the first fragment: no transport header to read */
	const uint8_t *src, *dst;
	uint16_t sport, dport;
	bool icmp;           /* ICMP (v4) or ICMPv6 with its first 8 bytes present */
	uint8_t icmp_type, icmp_code;
	uint16_t icmp_id;    /* echo request/reply identifier */
	const uint8_t *l4;   /* the transport header and its length, for ICMP errors' payload */
	size_t l4_len;
};

/* Reads a well-formed IP packet (ip_packet_parse has checked it) into *f. False if the
 * headers are truncated or IPv6 extension headers do not end within the packet. */
bool filter_flow_parse(const uint8_t *pkt, size_t len, struct filter_flow *f);

/* The ICMP message types the matcher treats specially. */
bool filter_icmp_is_echo_request(const struct filter_flow *f);
bool filter_icmp_is_echo_reply(const struct filter_flow *f);
bool filter_icmp_is_error(const struct filter_flow *f);

/* An ICMP error (filter_icmp_is_error) quotes the packet it is about: that packet, which
 * this node sent (its source is f's destination), is read into *inner. False if the quote
 * is not a readable packet of the same family from this node. */
bool filter_icmp_error_inner(const struct filter_flow *f, struct filter_flow *inner);

/* True when some rule allows f as a new incoming packet. A later fragment carries no ports:
 * it passes when a rule allows its source and protocol on any port (its first fragment was
 * checked with ports, and without that one the packet cannot be reassembled). */
bool filter_rules_allow(const struct filter_rule *rules, size_t n, const struct filter_flow *f);

/* "tcp", "udp", "icmp" or "any". */
const char *filter_proto_name(uint8_t proto);
/* "100.64.0.1/32 -> 100.64.0.2/32 tcp 80-81" into buf (at least FILTER_RULE_STR_MAX). */
enum { FILTER_RULE_STR_MAX = 128 };
const char *filter_rule_format(const struct filter_rule *r, char *buf, size_t cap);

#endif
