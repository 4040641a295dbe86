/* udpinject: send crafted UDP datagrams to a meshd under test.
 *
 * The netns integration test uses it to throw garbage, truncated handshakes and
 * replayed captures at a running node and then checks the node's drop counters.
 * Everything it sends is bounded (count, runtime) and it refuses any destination
 * outside the documentation, loopback and CGNAT ranges, so a typo in a test can
 * never put traffic on the internet.
 *
 * Only libc: the test must not depend on the code it is testing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum {
	/* A test that needs more than this is a flood, not a test. */
	INJECT_MAX_COUNT = 100000,
	/* Keeps a broken test from hanging make check. */
	INJECT_MAX_RUNTIME_MS = 30000,
	/* Largest UDP payload over IPv4: 65535 - 20 (IPv4) - 8 (UDP). */
	INJECT_MAX_DATAGRAM = 65507,
	/* Default upper length for --random: covers every meshd message type (data up to an MTU). */
	INJECT_DEFAULT_RANDOM_MAX_LEN = 1500,
	/* Largest raw file --file will read: one datagram. */
	INJECT_MAX_FILE = INJECT_MAX_DATAGRAM,
	/* The largest pcap record we accept (libpcap's own MAXIMUM_SNAPLEN). */
	PCAP_MAX_RECORD = 262144,
	/* --index bound: a capture the test made has a handful of packets. */
	PCAP_MAX_INDEX = 1000000,
};

/* Classic libpcap file format (not pcapng). */
enum {
	PCAP_GLOBAL_HEADER_LEN = 24,
	PCAP_RECORD_HEADER_LEN = 16,
	PCAP_OFF_LINKTYPE = 20,
	PCAP_REC_OFF_INCL_LEN = 8,
	/* The link type is the low 16 bits; bits 28-31 may carry FCS information. */
	PCAP_LINKTYPE_MASK = 0xffff,
};

/* The file's byte order is the writer's: we accept both, so the magic is read both ways.
 * (Kept out of the enum: ISO C enumerators must fit an int.) */
static const uint32_t PCAP_MAGIC_USEC = 0xa1b2c3d4u; /* microsecond timestamps */
static const uint32_t PCAP_MAGIC_NSEC = 0xa1b23c4du; /* nanosecond timestamps */

/* Link types tcpdump writes on Linux (and the raw IP variants). */
enum {
	LINKTYPE_ETHERNET = 1,
	LINKTYPE_RAW = 101,
	LINKTYPE_LINUX_SLL = 113,
	LINKTYPE_IPV4 = 228,
	LINKTYPE_IPV6 = 229,
	LINKTYPE_LINUX_SLL2 = 276,
};

enum {
	ETH_HEADER_LEN = 14,
	ETH_OFF_TYPE = 12,
	VLAN_TAG_LEN = 4,
	/* QinQ at most: deeper stacks do not occur in a test capture. */
	VLAN_MAX_TAGS = 2,
	SLL_HEADER_LEN = 16,
	SLL_OFF_PROTOCOL = 14,
	SLL2_HEADER_LEN = 20,
	SLL2_OFF_PROTOCOL = 0,

	ETHERTYPE_IPV4 = 0x0800,
	ETHERTYPE_IPV6 = 0x86dd,
	ETHERTYPE_VLAN = 0x8100,
	ETHERTYPE_QINQ = 0x88a8,

	IPV4_MIN_HEADER_LEN = 20,
	IPV4_OFF_TOTAL_LEN = 2,
	IPV4_OFF_FRAG = 6,
	IPV4_OFF_PROTOCOL = 9,
	/* More-fragments flag and fragment offset: anything but a whole datagram. */
	IPV4_FRAG_MASK = 0x3fff,
	IPV6_HEADER_LEN = 40,
	IPV6_OFF_PAYLOAD_LEN = 4,
	IPV6_OFF_NEXT_HEADER = 6,
	/* Extension headers we step over to reach UDP; a fragment header ends the search. */
	IPV6_EXT_HOP_BY_HOP = 0,
	IPV6_EXT_ROUTING = 43,
	IPV6_EXT_FRAGMENT = 44,
	IPV6_EXT_DEST_OPTS = 60,
	IPV6_EXT_MIN_LEN = 8,
	/* A real packet never chains more than a few; bounds the loop on a malicious file. */
	IPV6_MAX_EXT_HEADERS = 8,
	IP_PROTO_UDP = 17,
	UDP_HEADER_LEN = 8,
	UDP_OFF_LEN = 4,
};

/* meshd's wire format (src/core/wire.h), copied rather than included: this tool must not
 * share a mistake with the code it tests. Used by --shaped to get past the first checks. */
enum {
	MESH_TYPE_INITIATION = 1,
	MESH_TYPE_RESPONSE = 2,
	MESH_TYPE_COOKIE = 3,
	MESH_TYPE_DATA = 4,
	MESH_HEADER_LEN = 4,
	MESH_INITIATION_LEN = 148,
	MESH_RESPONSE_LEN = 92,
	MESH_COOKIE_LEN = 64,      /* WireGuard's cookie reply size */
	MESH_DATA_MIN_LEN = 32,    /* header, index, counter, tag: an empty keepalive */
};

enum payload_source { SRC_NONE, SRC_RANDOM, SRC_HEX, SRC_FILE, SRC_PCAP };

struct options {
	const char *to;
	long from_port;              /* -1: let the kernel choose */
	enum payload_source source;
	long random_count;
	long max_len;
	uint64_t seed;
	bool seed_given;
	bool shaped;
	const char *hex;
	const char *file;
	const char *pcap;
	long pcap_index;
	long truncate;               /* -1: send everything */
	long count;
	long interval_ms;
	bool quiet;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: udpinject --to ADDR:PORT [--from-port N] [--count N] [--interval-ms N] [--quiet] SOURCE\n"
		"SOURCE is one of:\n"
		"  --random COUNT [--max-len N] [--seed S] [--shaped]\n"
		"                                           COUNT datagrams of random bytes, lengths 0..N\n"
		"                                           (default N %d); --shaped gives each a valid\n"
		"                                           meshd header (type 1-4 or random, version 1)\n"
		"                                           and mostly the exact length of its type, so it\n"
		"                                           reaches the authentication checks\n"
		"  --hex HEXSTRING [--truncate N]           one datagram (spaces and ':' are ignored)\n"
		"  --file F [--truncate N]                  one datagram: the raw bytes of F\n"
		"  --pcap F [--index K] [--truncate N]      UDP payload of the K-th (0-based) complete UDP\n"
		"                                           packet in a classic pcap file (Ethernet, Linux\n"
		"                                           cooked v1/v2 or raw IP); IP fragments are skipped\n"
		"--count repeats the datagram (not with --random). ADDR is IPv4 or [IPv6].\n"
		"Limits: at most %d datagrams and %d ms per run; ADDR must be in 192.0.2.0/24,\n"
		"198.51.100.0/24, 203.0.113.0/24, 127.0.0.0/8, 100.64.0.0/10 or ::1.\n",
		INJECT_DEFAULT_RANDOM_MAX_LEN, INJECT_MAX_COUNT, INJECT_MAX_RUNTIME_MS);
}

/* Parses a whole decimal argument in [min, max]; rejects trailing junk and overflow. */
static bool parse_long(const char *what, const char *s, long min, long max, long *out)
{
	char *end;

	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "udpinject: %s: '%s' is not a number in %ld..%ld\n", what, s, min, max);
		return false;
	}
	*out = v;
	return true;
}

/* The guard: only ranges that cannot route to the internet. */
static bool destination_allowed(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
		uint32_t a = ntohl(sin->sin_addr.s_addr);
		static const struct { uint32_t net, mask; } allowed[] = {
			{ 0xc0000200u, 0xffffff00u }, /* 192.0.2.0/24    TEST-NET-1 */
			{ 0xc6336400u, 0xffffff00u }, /* 198.51.100.0/24 TEST-NET-2 */
			{ 0xcb007100u, 0xffffff00u }, /* 203.0.113.0/24  TEST-NET-3 */
			{ 0x7f000000u, 0xff000000u }, /* 127.0.0.0/8     loopback */
			{ 0x64400000u, 0xffc00000u }, /* 100.64.0.0/10   the overlay (CGNAT range) */
		};
		for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++)
			if ((a & allowed[i].mask) == allowed[i].net)
				return true;
		return false;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
		return IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
	}
	return false;
}

/* "a.b.c.d:port" or "[v6]:port". Numeric only: no resolver, so no DNS traffic either. */
static bool parse_destination(const char *arg, struct sockaddr_storage *ss, socklen_t *ss_len)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port_str;
	size_t host_len;
	long port;

	memset(ss, 0, sizeof(*ss));
	if (arg[0] == '[') {
		const char *close = strchr(arg, ']');
		if (!close || close[1] != ':') {
			fprintf(stderr, "udpinject: --to: '%s' is not [IPv6]:PORT\n", arg);
			return false;
		}
		host_len = (size_t)(close - arg - 1);
		if (host_len >= sizeof(host)) {
			fprintf(stderr, "udpinject: --to: address too long\n");
			return false;
		}
		memcpy(host, arg + 1, host_len);
		host[host_len] = '\0';
		port_str = close + 2;
	} else {
		const char *colon = strrchr(arg, ':');
		if (!colon) {
			fprintf(stderr, "udpinject: --to: '%s' is not ADDR:PORT\n", arg);
			return false;
		}
		host_len = (size_t)(colon - arg);
		if (host_len >= sizeof(host)) {
			fprintf(stderr, "udpinject: --to: address too long\n");
			return false;
		}
		memcpy(host, arg, host_len);
		host[host_len] = '\0';
		port_str = colon + 1;
	}
	if (!parse_long("--to port", port_str, 1, 65535, &port))
		return false;

	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*ss_len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*ss_len = sizeof(*sin6);
	} else {
		fprintf(stderr, "udpinject: --to: '%s' is not a numeric IPv4 or IPv6 address\n", host);
		return false;
	}
	if (!destination_allowed(ss)) {
		fprintf(stderr,
			"udpinject: refusing to send to %s: only 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24,\n"
			"           127.0.0.0/8, 100.64.0.0/10 and ::1 are allowed (test networks only)\n",
			host);
		return false;
	}
	return true;
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool parse_hex(const char *s, uint8_t *buf, size_t cap, size_t *len_out)
{
	size_t len = 0;
	int high = -1;

	for (const char *p = s; *p; p++) {
		if (*p == ' ' || *p == ':' || *p == '\n' || *p == '\t')
			continue;
		int v = hex_value(*p);
		if (v < 0) {
			fprintf(stderr, "udpinject: --hex: '%c' is not a hex digit\n", *p);
			return false;
		}
		if (high < 0) {
			high = v;
			continue;
		}
		if (len >= cap) {
			fprintf(stderr, "udpinject: --hex: more than %zu bytes\n", cap);
			return false;
		}
		buf[len++] = (uint8_t)(high << 4 | v);
		high = -1;
	}
	if (high >= 0) {
		fprintf(stderr, "udpinject: --hex: odd number of hex digits\n");
		return false;
	}
	*len_out = len;
	return true;
}

/* Reads the whole file as one datagram; a file larger than a datagram is an error, not cut. */
static bool read_raw_file(const char *path, uint8_t *buf, size_t cap, size_t *len_out)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "udpinject: %s: %s\n", path, strerror(errno));
		return false;
	}
	size_t len = fread(buf, 1, cap, f);
	bool ok = !ferror(f);
	if (ok && len == cap && fgetc(f) != EOF) {
		fprintf(stderr, "udpinject: %s: larger than one datagram (%zu bytes)\n", path, cap);
		ok = false;
	} else if (!ok) {
		fprintf(stderr, "udpinject: %s: read error\n", path);
	}
	fclose(f);
	*len_out = len;
	return ok;
}

static uint16_t get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get_u32_order(const uint8_t *p, bool swapped)
{
	uint32_t le = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
	uint32_t be = (uint32_t)p[3] | (uint32_t)p[2] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[0] << 24;
	return swapped ? be : le;
}

/* Finds the UDP payload in an IPv4 packet. Returns false (no error) if it is not a whole
 * UDP datagram; *bad is set if the packet claims to be one but its lengths do not fit. */
static bool ipv4_udp_payload(const uint8_t *p, size_t len, const uint8_t **payload, size_t *payload_len,
			     bool *bad)
{
	if (len < IPV4_MIN_HEADER_LEN || p[0] >> 4 != 4)
		return false;
	size_t ihl = (size_t)(p[0] & 0x0f) * 4;
	size_t total = get_be16(p + IPV4_OFF_TOTAL_LEN);
	if (ihl < IPV4_MIN_HEADER_LEN || ihl > len || total < ihl)
		return false;
	if (p[IPV4_OFF_PROTOCOL] != IP_PROTO_UDP || (get_be16(p + IPV4_OFF_FRAG) & IPV4_FRAG_MASK))
		return false;
	if (total > len) {
		/* Snap length cut it: replaying a partial datagram would test the wrong thing. */
		*bad = true;
		return false;
	}
	const uint8_t *udp = p + ihl;
	size_t udp_avail = total - ihl;
	if (udp_avail < UDP_HEADER_LEN) {
		*bad = true;
		return false;
	}
	size_t udp_len = get_be16(udp + UDP_OFF_LEN);
	if (udp_len < UDP_HEADER_LEN || udp_len > udp_avail) {
		*bad = true;
		return false;
	}
	*payload = udp + UDP_HEADER_LEN;
	*payload_len = udp_len - UDP_HEADER_LEN;
	return true;
}

static bool ipv6_udp_payload(const uint8_t *p, size_t len, const uint8_t **payload, size_t *payload_len,
			     bool *bad)
{
	if (len < IPV6_HEADER_LEN || p[0] >> 4 != 6)
		return false;
	size_t plen = get_be16(p + IPV6_OFF_PAYLOAD_LEN);
	if (plen > len - IPV6_HEADER_LEN) {
		*bad = true;
		return false;
	}
	const uint8_t *cur = p + IPV6_HEADER_LEN;
	size_t avail = plen;
	uint8_t next = p[IPV6_OFF_NEXT_HEADER];

	for (int i = 0; i < IPV6_MAX_EXT_HEADERS && next != IP_PROTO_UDP; i++) {
		if (next != IPV6_EXT_HOP_BY_HOP && next != IPV6_EXT_ROUTING && next != IPV6_EXT_DEST_OPTS)
			return false; /* fragment, ESP, TCP, ...: not a whole UDP datagram */
		if (avail < IPV6_EXT_MIN_LEN)
			return false;
		size_t ext_len = ((size_t)cur[1] + 1) * 8;
		if (ext_len > avail)
			return false;
		next = cur[0];
		cur += ext_len;
		avail -= ext_len;
	}
	if (next != IP_PROTO_UDP)
		return false;
	if (avail < UDP_HEADER_LEN) {
		*bad = true;
		return false;
	}
	size_t udp_len = get_be16(cur + UDP_OFF_LEN);
	if (udp_len < UDP_HEADER_LEN || udp_len > avail) {
		*bad = true;
		return false;
	}
	*payload = cur + UDP_HEADER_LEN;
	*payload_len = udp_len - UDP_HEADER_LEN;
	return true;
}

/* Strips the link layer; false if the frame does not carry IPv4 or IPv6. */
static bool link_to_ip(uint32_t linktype, const uint8_t *p, size_t len, const uint8_t **ip, size_t *ip_len)
{
	size_t off;
	uint16_t proto;

	switch (linktype) {
	case LINKTYPE_ETHERNET:
		if (len < ETH_HEADER_LEN)
			return false;
		off = ETH_HEADER_LEN;
		proto = get_be16(p + ETH_OFF_TYPE);
		for (int i = 0; i < VLAN_MAX_TAGS && (proto == ETHERTYPE_VLAN || proto == ETHERTYPE_QINQ); i++) {
			if (len < off + VLAN_TAG_LEN)
				return false;
			proto = get_be16(p + off + 2);
			off += VLAN_TAG_LEN;
		}
		break;
	case LINKTYPE_LINUX_SLL:
		if (len < SLL_HEADER_LEN)
			return false;
		off = SLL_HEADER_LEN;
		proto = get_be16(p + SLL_OFF_PROTOCOL);
		break;
	case LINKTYPE_LINUX_SLL2:
		if (len < SLL2_HEADER_LEN)
			return false;
		off = SLL2_HEADER_LEN;
		proto = get_be16(p + SLL2_OFF_PROTOCOL);
		break;
	case LINKTYPE_RAW:
	case LINKTYPE_IPV4:
	case LINKTYPE_IPV6:
		*ip = p;
		*ip_len = len;
		return true;
	default:
		return false;
	}
	if (proto != ETHERTYPE_IPV4 && proto != ETHERTYPE_IPV6)
		return false;
	*ip = p + off;
	*ip_len = len - off;
	return true;
}

/* Copies the UDP payload of the index-th complete UDP packet of a classic pcap into buf. */
static bool read_pcap_payload(const char *path, long index, uint8_t *buf, size_t cap, size_t *len_out)
{
	uint8_t global[PCAP_GLOBAL_HEADER_LEN];
	uint8_t rec_hdr[PCAP_RECORD_HEADER_LEN];
	uint8_t *rec = NULL;
	bool ok = false;
	long udp_seen = 0;
	long record_no = 0;

	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "udpinject: %s: %s\n", path, strerror(errno));
		return false;
	}
	if (fread(global, 1, sizeof(global), f) != sizeof(global)) {
		fprintf(stderr, "udpinject: %s: too short for a pcap header\n", path);
		goto out;
	}
	uint32_t magic_le = get_u32_order(global, false);
	bool swapped;
	if (magic_le == PCAP_MAGIC_USEC || magic_le == PCAP_MAGIC_NSEC) {
		swapped = false;
	} else if (get_u32_order(global, true) == PCAP_MAGIC_USEC || get_u32_order(global, true) == PCAP_MAGIC_NSEC) {
		swapped = true;
	} else {
		fprintf(stderr, "udpinject: %s: not a classic pcap file (pcapng is not supported; "
			"tcpdump -w writes classic pcap)\n", path);
		goto out;
	}
	uint32_t linktype = get_u32_order(global + PCAP_OFF_LINKTYPE, swapped) & PCAP_LINKTYPE_MASK;
	if (linktype != LINKTYPE_ETHERNET && linktype != LINKTYPE_LINUX_SLL && linktype != LINKTYPE_LINUX_SLL2 &&
	    linktype != LINKTYPE_RAW && linktype != LINKTYPE_IPV4 && linktype != LINKTYPE_IPV6) {
		fprintf(stderr, "udpinject: %s: unsupported link type %" PRIu32 "\n", path, linktype);
		goto out;
	}
	rec = malloc(PCAP_MAX_RECORD);
	if (!rec) {
		fprintf(stderr, "udpinject: out of memory\n");
		goto out;
	}
	for (;;) {
		size_t got = fread(rec_hdr, 1, sizeof(rec_hdr), f);
		if (got == 0 && feof(f)) {
			fprintf(stderr, "udpinject: %s: only %ld complete UDP packet(s) in %ld record(s); "
				"no index %ld\n", path, udp_seen, record_no, index);
			goto out;
		}
		if (got != sizeof(rec_hdr)) {
			fprintf(stderr, "udpinject: %s: record %ld: truncated record header\n", path, record_no);
			goto out;
		}
		uint32_t incl = get_u32_order(rec_hdr + PCAP_REC_OFF_INCL_LEN, swapped);
		if (incl > PCAP_MAX_RECORD) {
			fprintf(stderr, "udpinject: %s: record %ld: length %" PRIu32 " exceeds %d\n", path,
				record_no, incl, PCAP_MAX_RECORD);
			goto out;
		}
		if (fread(rec, 1, incl, f) != incl) {
			fprintf(stderr, "udpinject: %s: record %ld: truncated data\n", path, record_no);
			goto out;
		}

		const uint8_t *ip = NULL, *payload = NULL;
		size_t ip_len = 0, payload_len = 0;
		bool bad = false;
		bool is_udp = link_to_ip(linktype, rec, incl, &ip, &ip_len) &&
			      (ipv4_udp_payload(ip, ip_len, &payload, &payload_len, &bad) ||
			       ipv6_udp_payload(ip, ip_len, &payload, &payload_len, &bad));
		if (bad && udp_seen == index) {
			fprintf(stderr, "udpinject: %s: record %ld: UDP packet cut short by the capture's "
				"snap length or malformed\n", path, record_no);
			goto out;
		}
		record_no++;
		if (!is_udp)
			continue;
		if (udp_seen++ < index)
			continue;
		if (payload_len > cap) {
			fprintf(stderr, "udpinject: %s: payload of %zu bytes is too large\n", path, payload_len);
			goto out;
		}
		memcpy(buf, payload, payload_len);
		*len_out = payload_len;
		ok = true;
		goto out;
	}
out:
	free(rec);
	fclose(f);
	return ok;
}

/* splitmix64: tiny, seedable, good enough for garbage and identical on every libc. */
static uint64_t prng_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void prng_fill(uint64_t *state, uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t r = prng_next(state);
		for (size_t j = 0; j < 8 && i + j < len; j++)
			buf[i + j] = (uint8_t)(r >> (8 * j));
	}
}

/* A random length in [lo, hi] (hi >= lo). */
static size_t prng_range(uint64_t *state, size_t lo, size_t hi)
{
	return lo + (size_t)(prng_next(state) % (uint64_t)(hi - lo + 1));
}

/* Exactly `exact` bytes most of the time, else one byte short or long: the length checks
 * and the authentication checks both get their share. */
static size_t shaped_len(uint64_t *state, size_t exact)
{
	switch (prng_next(state) % 4) {
	case 0: return exact - 1;
	case 1: return exact + 1;
	default: return exact;
	}
}

/* Random bytes behind a header meshd accepts as far as type and version. Returns the length. */
static size_t fill_shaped(uint64_t *state, uint8_t *buf, size_t max_len)
{
	uint8_t type;
	size_t len;

	switch (prng_next(state) % 8) {
	case 0:
	case 1:
		type = MESH_TYPE_INITIATION;
		len = shaped_len(state, MESH_INITIATION_LEN);
		break;
	case 2:
	case 3:
		type = MESH_TYPE_RESPONSE;
		len = shaped_len(state, MESH_RESPONSE_LEN);
		break;
	case 4:
		type = MESH_TYPE_COOKIE;
		len = shaped_len(state, MESH_COOKIE_LEN);
		break;
	case 5:
	case 6:
		type = MESH_TYPE_DATA;
		/* Mostly long enough (random receiver index: unknown), sometimes too short. */
		if (prng_next(state) % 8 == 0)
			len = prng_range(state, MESH_HEADER_LEN, MESH_DATA_MIN_LEN - 1);
		else
			len = prng_range(state, MESH_DATA_MIN_LEN,
					 max_len > MESH_DATA_MIN_LEN ? max_len : MESH_DATA_MIN_LEN);
		break;
	default:
		type = (uint8_t)prng_next(state);
		len = prng_range(state, MESH_HEADER_LEN, max_len > MESH_HEADER_LEN ? max_len : MESH_HEADER_LEN);
		break;
	}
	prng_fill(state, buf, len);
	buf[0] = type;
	buf[1] = 0; /* WireGuard's header: the type, then three zero bytes */
	buf[2] = 0;
	buf[3] = 0;
	return len;
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static bool parse_options(int argc, char **argv, struct options *o)
{
	enum { OPT_TO = 256, OPT_FROM_PORT, OPT_RANDOM, OPT_MAX_LEN, OPT_SEED, OPT_HEX, OPT_FILE,
	       OPT_PCAP, OPT_INDEX, OPT_TRUNCATE, OPT_COUNT, OPT_INTERVAL, OPT_QUIET, OPT_HELP, OPT_SHAPED };
	static const struct option longopts[] = {
		{ "to", required_argument, NULL, OPT_TO },
		{ "from-port", required_argument, NULL, OPT_FROM_PORT },
		{ "random", required_argument, NULL, OPT_RANDOM },
		{ "max-len", required_argument, NULL, OPT_MAX_LEN },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "shaped", no_argument, NULL, OPT_SHAPED },
		{ "hex", required_argument, NULL, OPT_HEX },
		{ "file", required_argument, NULL, OPT_FILE },
		{ "pcap", required_argument, NULL, OPT_PCAP },
		{ "index", required_argument, NULL, OPT_INDEX },
		{ "truncate", required_argument, NULL, OPT_TRUNCATE },
		{ "count", required_argument, NULL, OPT_COUNT },
		{ "interval-ms", required_argument, NULL, OPT_INTERVAL },
		{ "quiet", no_argument, NULL, OPT_QUIET },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 },
	};
	bool max_len_given = false, index_given = false, count_given = false;
	int sources = 0;
	long v;
	int c;

	*o = (struct options){ .from_port = -1, .max_len = INJECT_DEFAULT_RANDOM_MAX_LEN, .truncate = -1,
			       .count = 1 };
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_TO: o->to = optarg; break;
		case OPT_FROM_PORT:
			if (!parse_long("--from-port", optarg, 1, 65535, &o->from_port))
				return false;
			break;
		case OPT_RANDOM:
			if (!parse_long("--random", optarg, 1, INJECT_MAX_COUNT, &o->random_count))
				return false;
			o->source = SRC_RANDOM;
			sources++;
			break;
		case OPT_MAX_LEN:
			if (!parse_long("--max-len", optarg, 0, INJECT_MAX_DATAGRAM, &o->max_len))
				return false;
			max_len_given = true;
			break;
		case OPT_SEED:
			if (!parse_long("--seed", optarg, 0, LONG_MAX, &v))
				return false;
			o->seed = (uint64_t)v;
			o->seed_given = true;
			break;
		case OPT_SHAPED: o->shaped = true; break;
		case OPT_HEX: o->hex = optarg; o->source = SRC_HEX; sources++; break;
		case OPT_FILE: o->file = optarg; o->source = SRC_FILE; sources++; break;
		case OPT_PCAP: o->pcap = optarg; o->source = SRC_PCAP; sources++; break;
		case OPT_INDEX:
			if (!parse_long("--index", optarg, 0, PCAP_MAX_INDEX, &o->pcap_index))
				return false;
			index_given = true;
			break;
		case OPT_TRUNCATE:
			if (!parse_long("--truncate", optarg, 0, INJECT_MAX_DATAGRAM, &o->truncate))
				return false;
			break;
		case OPT_COUNT:
			if (!parse_long("--count", optarg, 1, INJECT_MAX_COUNT, &o->count))
				return false;
			count_given = true;
			break;
		case OPT_INTERVAL:
			if (!parse_long("--interval-ms", optarg, 0, INJECT_MAX_RUNTIME_MS, &o->interval_ms))
				return false;
			break;
		case OPT_QUIET: o->quiet = true; break;
		case OPT_HELP: usage(stdout); exit(0);
		default: return false;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "udpinject: unexpected argument '%s'\n", argv[optind]);
		return false;
	}
	if (!o->to) {
		fprintf(stderr, "udpinject: --to ADDR:PORT is required\n");
		return false;
	}
	if (sources != 1) {
		fprintf(stderr, "udpinject: give exactly one of --random, --hex, --file, --pcap\n");
		return false;
	}
	if (o->source == SRC_RANDOM) {
		if (count_given || o->truncate >= 0) {
			fprintf(stderr, "udpinject: --count and --truncate do not apply to --random\n");
			return false;
		}
		o->count = o->random_count;
	} else if (max_len_given || o->seed_given || o->shaped) {
		fprintf(stderr, "udpinject: --max-len, --seed and --shaped apply only to --random\n");
		return false;
	}
	if (index_given && o->source != SRC_PCAP) {
		fprintf(stderr, "udpinject: --index applies only to --pcap\n");
		return false;
	}
	/* Refuse up front rather than stop half way: a test must know what it sent. */
	if ((o->count - 1) * o->interval_ms > INJECT_MAX_RUNTIME_MS) {
		fprintf(stderr, "udpinject: %ld datagrams at %ld ms intervals exceed the %d ms runtime limit\n",
			o->count, o->interval_ms, INJECT_MAX_RUNTIME_MS);
		return false;
	}
	return true;
}

int main(int argc, char **argv)
{
	static uint8_t buf[INJECT_MAX_DATAGRAM];
	struct sockaddr_storage dst;
	socklen_t dst_len;
	struct options o;
	size_t len = 0;
	uint64_t state = 0;

	if (!parse_options(argc, argv, &o)) {
		fprintf(stderr, "udpinject: see udpinject --help\n");
		return 2;
	}
	if (!parse_destination(o.to, &dst, &dst_len))
		return 2;

	switch (o.source) {
	case SRC_HEX:
		if (!parse_hex(o.hex, buf, sizeof(buf), &len))
			return 2;
		break;
	case SRC_FILE:
		if (!read_raw_file(o.file, buf, sizeof(buf), &len))
			return 1;
		break;
	case SRC_PCAP:
		if (!read_pcap_payload(o.pcap, o.pcap_index, buf, sizeof(buf), &len))
			return 1;
		break;
	case SRC_RANDOM:
		state = o.seed_given ? o.seed : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
		if (!o.quiet)
			fprintf(stderr, "udpinject: random seed %" PRIu64 "\n", state);
		break;
	case SRC_NONE:
		return 2;
	}
	if (o.truncate >= 0) {
		if ((size_t)o.truncate > len) {
			fprintf(stderr, "udpinject: --truncate %ld is longer than the %zu-byte datagram\n",
				o.truncate, len);
			return 2;
		}
		len = (size_t)o.truncate;
	}

	int fd = socket(dst.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, "udpinject: socket: %s\n", strerror(errno));
		return 1;
	}
	if (o.from_port > 0) {
		struct sockaddr_storage src;
		memset(&src, 0, sizeof(src));
		src.ss_family = dst.ss_family;
		if (dst.ss_family == AF_INET)
			((struct sockaddr_in *)&src)->sin_port = htons((uint16_t)o.from_port);
		else
			((struct sockaddr_in6 *)&src)->sin6_port = htons((uint16_t)o.from_port);
		if (bind(fd, (struct sockaddr *)&src, dst_len) < 0) {
			fprintf(stderr, "udpinject: bind to port %ld: %s\n", o.from_port, strerror(errno));
			close(fd);
			return 1;
		}
	}

	uint64_t start = now_ms();
	long sent = 0, failed = 0;
	unsigned long long bytes = 0;
	for (long i = 0; i < o.count; i++) {
		if (now_ms() - start > INJECT_MAX_RUNTIME_MS) {
			fprintf(stderr, "udpinject: runtime limit of %d ms reached\n", INJECT_MAX_RUNTIME_MS);
			failed += o.count - i;
			break;
		}
		if (i > 0 && o.interval_ms > 0)
			sleep_ms(o.interval_ms);
		if (o.source == SRC_RANDOM && o.shaped) {
			len = fill_shaped(&state, buf, (size_t)o.max_len);
		} else if (o.source == SRC_RANDOM) {
			len = (size_t)(prng_next(&state) % (uint64_t)(o.max_len + 1));
			prng_fill(&state, buf, len);
		}
		ssize_t n = sendto(fd, buf, len, 0, (struct sockaddr *)&dst, dst_len);
		if (n < 0 || (size_t)n != len) {
			if (failed++ == 0)
				fprintf(stderr, "udpinject: sendto: %s\n", n < 0 ? strerror(errno) : "short send");
			continue;
		}
		sent++;
		bytes += len;
	}
	close(fd);
	if (!o.quiet)
		printf("udpinject: sent %ld datagram(s), %llu bytes, to %s\n", sent, bytes, o.to);
	if (failed) {
		fprintf(stderr, "udpinject: %ld of %ld datagram(s) not sent\n", failed, o.count);
		return 1;
	}
	return 0;
}
