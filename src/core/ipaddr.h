/* IP prefixes (overlay addresses, allowed IPs), endpoint strings, and the minimal view
 * of an inner IP packet the data path needs: version, source, destination, length. */
#ifndef MESHD_IPADDR_H
#define MESHD_IPADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

enum {
	IP_ADDR_MAX_LEN = 16,       /* an IPv6 address */
	IP_PREFIX_STR_MAX = 64,     /* "ffff:...:ffff/128" plus slack */
	ENDPOINT_HOST_MAX = 256,    /* a DNS name is at most 253 characters */
	IPV4_HEADER_MIN_LEN = 20,
	IPV6_HEADER_LEN = 40,
};

struct ip_prefix {
	int family;   /* AF_INET or AF_INET6 */
	uint8_t bits; /* prefix length: 0..32 or 0..128 */
	uint8_t addr[IP_ADDR_MAX_LEN]; /* network byte order; for AF_INET the first 4 bytes */
};

/* Parses "100.64.0.1/10", "fd00::1/64" or a bare address (a host prefix: /32 or /128).
 * Host bits are kept (an interface address is "address/prefix"). */
bool ip_prefix_parse(const char *s, struct ip_prefix *out);
/* Writes "addr/bits" into buf; returns buf. */
const char *ip_prefix_format(const struct ip_prefix *p, char *buf, size_t len);
/* True when addr (of the given family) lies inside the prefix. */
bool ip_prefix_contains(const struct ip_prefix *p, int family, const uint8_t *addr);
/* The network of p: its host bits cleared ("100.64.0.7/10" -> "100.64.0.0/10"). */
struct ip_prefix ip_prefix_network(const struct ip_prefix *p);
/* True when every address of inner lies inside outer (same family, at least as long). */
bool ip_prefix_within(const struct ip_prefix *inner, const struct ip_prefix *outer);

/* IP protocol numbers (IANA) the data path looks at. */
enum {
	IP_PROTO_ICMP = 1,
	IP_PROTO_TCP = 6,
	IP_PROTO_UDP = 17,
	IP_PROTO_ICMPV6 = 58,
};

/* The parts of an inner IP packet the data path looks at. Pointers point into the packet. */
struct ip_packet_info {
	int family;          /* AF_INET or AF_INET6 */
	const uint8_t *src;  /* 4 or 16 bytes */
	const uint8_t *dst;
	size_t total_len;    /* length claimed by the header, <= the buffer length */
};
/* Validates version and header lengths against `len`. Returns false for anything that is
 * not a well-formed IPv4 or IPv6 header whose total length fits in the buffer. */
bool ip_packet_parse(const uint8_t *pkt, size_t len, struct ip_packet_info *out);

/* Splits "host:port", "[v6]:port" or "v4:port" into host and port (1..65535).
 * Does not resolve; host may be a name. */
bool endpoint_parse(const char *s, char *host, size_t host_cap, uint16_t *port);
/* Same family, address and port (IPv4 or IPv6; other families never compare equal). */
bool sockaddr_equal(const struct sockaddr_storage *a, const struct sockaddr_storage *b);
/* An IPv4 or IPv6 socket address in 28 bytes where sockaddr_storage takes 128: what a peer
 * keeps for each of its paths. Socket calls take the sockaddr_storage that _get rebuilds. */
union sockaddr_inet {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};
/* Copies an IPv4 or IPv6 address (any other family becomes AF_UNSPEC). */
void sockaddr_inet_set(union sockaddr_inet *out, const struct sockaddr_storage *in);
struct sockaddr_storage sockaddr_inet_get(const union sockaddr_inet *in);
/* sockaddr_equal between the two forms. */
bool sockaddr_inet_equal(const union sockaddr_inet *a, const struct sockaddr_storage *b);
/* Formats a socket address as "a.b.c.d:port" or "[v6]:port". */
const char *sockaddr_format(const struct sockaddr *sa, char *buf, size_t len);

#endif
