/* Fuzz target: the inner IP header parser (fed by decrypted, i.e. peer-controlled, data)
 * and the string parsers for prefixes and endpoints. Accepted results are checked for
 * consistency: in bounds, and a formatted prefix parses back to itself. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/ipaddr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { FUZZ_STRING_MAX = 512 }; /* longer than any endpoint or prefix string */

static void check_packet(const uint8_t *data, size_t size)
{
	struct ip_packet_info info;
	size_t addr_len;

	if (!ip_packet_parse(data, size, &info))
		return;
	if (info.family != AF_INET && info.family != AF_INET6)
		abort();
	addr_len = info.family == AF_INET ? 4 : 16;
	if (info.total_len > size || info.total_len < (info.family == AF_INET ? IPV4_HEADER_MIN_LEN : IPV6_HEADER_LEN))
		abort();
	if (info.src < data || info.src + addr_len > data + info.total_len)
		abort();
	if (info.dst < data || info.dst + addr_len > data + info.total_len)
		abort();
}

static void check_strings(const uint8_t *data, size_t size)
{
	char s[FUZZ_STRING_MAX + 1], host[ENDPOINT_HOST_MAX], buf[IP_PREFIX_STR_MAX];
	size_t n = size < FUZZ_STRING_MAX ? size : FUZZ_STRING_MAX;
	struct ip_prefix p, again;
	uint16_t port;

	memcpy(s, data, n);
	s[n] = '\0';

	if (endpoint_parse(s, host, sizeof(host), &port)) {
		if (port == 0 || host[0] == '\0' || !memchr(host, '\0', sizeof(host)))
			abort();
	}
	/* A host buffer too small for the host must be refused, not overrun. */
	endpoint_parse(s, host, 4, &port);

	if (ip_prefix_parse(s, &p)) {
		ip_prefix_format(&p, buf, sizeof(buf));
		if (!ip_prefix_parse(buf, &again) || again.family != p.family || again.bits != p.bits ||
		    memcmp(again.addr, p.addr, sizeof(p.addr)) != 0)
			abort();
		/* A prefix contains its own address. */
		if (!ip_prefix_contains(&p, p.family, p.addr))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_packet(data, size);
	check_strings(data, size);
	return 0;
}
