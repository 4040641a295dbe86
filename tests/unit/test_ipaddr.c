/* Unit tests for core/ipaddr: prefix parsing and matching, inner packet headers, endpoint
 * strings and socket address formatting. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "core/ipaddr.h"

static void test_prefix_parse(void **state)
{
	static const struct {
		const char *in;
		bool ok;
		int family;
		unsigned int bits;
		const char *formatted; /* ip_prefix_format of the result */
	} cases[] = {
		{ "100.64.0.1/10", true, AF_INET, 10, "100.64.0.1/10" },
		{ "10.0.0.1", true, AF_INET, 32, "10.0.0.1/32" },
		{ "0.0.0.0/0", true, AF_INET, 0, "0.0.0.0/0" },
		{ "255.255.255.255/32", true, AF_INET, 32, "255.255.255.255/32" },
		{ "fd00::1/64", true, AF_INET6, 64, "fd00::1/64" },
		{ "FD00:0:0::1/64", true, AF_INET6, 64, "fd00::1/64" },
		{ "::/0", true, AF_INET6, 0, "::/0" },
		{ "::1", true, AF_INET6, 128, "::1/128" },
		{ "::ffff:192.0.2.1/128", true, AF_INET6, 128, "::ffff:192.0.2.1/128" },
		{ "10.0.0.0/08", true, AF_INET, 8, "10.0.0.0/8" },
		{ "", false, 0, 0, NULL },
		{ "/8", false, 0, 0, NULL },
		{ "10.0.0.1/", false, 0, 0, NULL },
		{ "10.0.0.1/33", false, 0, 0, NULL },
		{ "10.0.0.1/100", false, 0, 0, NULL },
		{ "10.0.0.1/0032", false, 0, 0, NULL },
		{ "fd00::/129", false, 0, 0, NULL },
		{ "10.0.0.1/+8", false, 0, 0, NULL },
		{ "10.0.0.1/-1", false, 0, 0, NULL },
		{ "10.0.0.1/ 8", false, 0, 0, NULL },
		{ "10.0.0.1/8 ", false, 0, 0, NULL },
		{ " 10.0.0.1/8", false, 0, 0, NULL },
		{ "10.0.0.1 /8", false, 0, 0, NULL },
		{ "10.0.0.1/8/8", false, 0, 0, NULL },
		{ "10.0.0.1/8x", false, 0, 0, NULL },
		{ "10.0.0/8", false, 0, 0, NULL },
		{ "10.0.0.256/8", false, 0, 0, NULL },
		{ "010.0.0.1", false, 0, 0, NULL },
		{ "0x0a.0.0.1", false, 0, 0, NULL },
		{ "fe80::1%eth0/64", false, 0, 0, NULL },
		{ "fd00:::1/64", false, 0, 0, NULL },
		{ "example.com/8", false, 0, 0, NULL },
		{ "1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb:cccc:dddd/128", false, 0, 0, NULL },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ip_prefix p;
		char buf[IP_PREFIX_STR_MAX];
		bool ok;

		memset(&p, 0x5a, sizeof(p));
		ok = ip_prefix_parse(cases[i].in, &p);
		if (ok != cases[i].ok)
			fail_msg("case %zu '%s': expected %s", i, cases[i].in, cases[i].ok ? "ok" : "refusal");
		if (!ok)
			continue;
		assert_int_equal(p.family, cases[i].family);
		assert_int_equal(p.bits, cases[i].bits);
		assert_string_equal(ip_prefix_format(&p, buf, sizeof(buf)), cases[i].formatted);
		if (p.family == AF_INET) /* unused address bytes are zero, so prefixes compare */
			for (size_t j = 4; j < IP_ADDR_MAX_LEN; j++)
				assert_int_equal(p.addr[j], 0);
	}
	assert_false(ip_prefix_parse(NULL, &(struct ip_prefix){ 0 }));
}

static void test_prefix_format_small_buffer(void **state)
{
	struct ip_prefix p;
	char buf[8];

	assert_true(ip_prefix_parse("100.64.0.1/10", &p));
	assert_string_equal(ip_prefix_format(&p, buf, sizeof(buf)), "100.64.");
	assert_ptr_equal(ip_prefix_format(&p, buf, 0), buf);
}

static void test_prefix_contains(void **state)
{
	static const struct {
		const char *prefix;
		const char *addr;
		bool inside;
	} cases[] = {
		{ "100.64.0.0/10", "100.64.0.0", true },
		{ "100.64.0.0/10", "100.127.255.255", true },
		{ "100.64.0.0/10", "100.128.0.0", false },
		{ "100.64.0.0/10", "100.63.255.255", false },
		{ "100.64.0.1/10", "100.100.1.1", true }, /* host bits of the prefix are ignored */
		{ "10.0.0.2/32", "10.0.0.2", true },
		{ "10.0.0.2/32", "10.0.0.3", false },
		{ "10.0.0.0/31", "10.0.0.1", true },
		{ "10.0.0.0/31", "10.0.0.2", false },
		{ "0.0.0.0/0", "203.0.113.9", true },
		{ "10.0.0.0/8", "fd00::1", false },       /* other family */
		{ "fd00::/8", "10.0.0.1", false },
		{ "fd00::/64", "fd00::ffff", true },
		{ "fd00::/64", "fd00:0:0:1::", false },
		{ "fd7a:6d65:7368::/48", "fd7a:6d65:7368:ffff::1", true },
		{ "fd7a:6d65:7368::/47", "fd7a:6d65:7369::1", true },
		{ "fd7a:6d65:7368::/48", "fd7a:6d65:7369::1", false },
		{ "fd00::1/127", "fd00::", true },
		{ "fd00::1/128", "fd00::", false },
		{ "::/0", "2001:db8::1", true },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ip_prefix p;
		uint8_t addr[16];
		int family = strchr(cases[i].addr, ':') ? AF_INET6 : AF_INET;

		assert_true(ip_prefix_parse(cases[i].prefix, &p));
		assert_int_equal(inet_pton(family, cases[i].addr, addr), 1);
		if (ip_prefix_contains(&p, family, addr) != cases[i].inside)
			fail_msg("case %zu: %s in %s: expected %s", i, cases[i].addr, cases[i].prefix,
				 cases[i].inside ? "inside" : "outside");
	}
}

static void test_prefix_contains_bad_bits(void **state)
{
	/* A corrupted prefix length must not index past the address. */
	struct ip_prefix p = { .family = AF_INET, .bits = 200 };
	uint8_t addr[16] = { 0 };

	assert_false(ip_prefix_contains(&p, AF_INET, addr));
}

/* Builds a header in buf: version, IHL (v4), total/payload length. */
static void make_v4(uint8_t *buf, size_t buf_len, unsigned int ihl, unsigned int total_len)
{
	memset(buf, 0, buf_len);
	buf[0] = (uint8_t)(0x40 | (ihl & 0x0f));
	buf[2] = (uint8_t)(total_len >> 8);
	buf[3] = (uint8_t)total_len;
	buf[12] = 10, buf[13] = 0, buf[14] = 0, buf[15] = 1;  /* src 10.0.0.1 */
	buf[16] = 10, buf[17] = 0, buf[18] = 0, buf[19] = 2;  /* dst 10.0.0.2 */
}

static void make_v6(uint8_t *buf, size_t buf_len, unsigned int payload_len)
{
	memset(buf, 0, buf_len);
	buf[0] = 0x60;
	buf[4] = (uint8_t)(payload_len >> 8);
	buf[5] = (uint8_t)payload_len;
	buf[8] = 0xfd, buf[23] = 1;  /* src fd00::1 */
	buf[24] = 0xfd, buf[39] = 2; /* dst fd00::2 */
}

static void test_prefix_network_and_within(void **state)
{
	static const struct {
		const char *prefix, *network;
	} nets[] = {
		{ "100.64.0.5/10", "100.64.0.0/10" }, { "100.127.255.255/10", "100.64.0.0/10" },
		{ "10.1.2.3/32", "10.1.2.3/32" },     { "10.1.2.3/0", "0.0.0.0/0" },
		{ "fd12:3456:789a:1::5/48", "fd12:3456:789a::/48" }, { "fd12::ff/127", "fd12::fe/127" },
		{ "fd12::1/128", "fd12::1/128" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(nets) / sizeof(nets[0]); i++) {
		struct ip_prefix p, n;
		char buf[IP_PREFIX_STR_MAX];
		assert_true(ip_prefix_parse(nets[i].prefix, &p));
		n = ip_prefix_network(&p);
		assert_string_equal(ip_prefix_format(&n, buf, sizeof(buf)), nets[i].network);
	}
	static const struct {
		const char *inner, *outer;
		bool within;
	} cases[] = {
		{ "100.64.0.5/10", "100.64.0.0/10", true },   { "100.64.0.5/32", "100.64.0.0/10", true },
		{ "100.128.0.1/10", "100.64.0.0/10", false }, { "100.64.0.0/9", "100.64.0.0/10", false },
		{ "fd00::1/48", "100.64.0.0/10", false },     { "fd00:0:0:1::/64", "fd00::/48", true },
		{ "fd01::/48", "fd00::/48", false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ip_prefix in, out;
		assert_true(ip_prefix_parse(cases[i].inner, &in));
		assert_true(ip_prefix_parse(cases[i].outer, &out));
		if (ip_prefix_within(&in, &out) != cases[i].within)
			fail_msg("%s within %s: expected %d", cases[i].inner, cases[i].outer, cases[i].within);
	}
}

static void test_packet_parse(void **state)
{
	static const struct {
		int version;
		unsigned int ihl;     /* v4 only */
		unsigned int hdr_len; /* v4: total length; v6: payload length */
		size_t buf_len;
		bool ok;
		size_t total_len;
	} cases[] = {
		{ 4, 5, 20, 20, true, 20 },      /* header only */
		{ 4, 5, 84, 84, true, 84 },      /* a ping */
		{ 4, 5, 28, 32, true, 28 },      /* padded by the sender: total_len wins */
		{ 4, 15, 60, 60, true, 60 },     /* maximal options */
		{ 4, 15, 60, 59, false, 0 },     /* options run past the buffer */
		{ 4, 15, 59, 64, false, 0 },     /* total shorter than the header */
		{ 4, 4, 20, 20, false, 0 },      /* IHL below 5 */
		{ 4, 0, 20, 20, false, 0 },
		{ 4, 5, 19, 20, false, 0 },      /* total below the minimal header */
		{ 4, 5, 85, 84, false, 0 },      /* claims more than we have */
		{ 4, 5, 65535, 84, false, 0 },
		{ 4, 5, 20, 19, false, 0 },      /* truncated header */
		{ 6, 0, 0, 40, true, 40 },       /* header only */
		{ 6, 0, 64, 104, true, 104 },
		{ 6, 0, 10, 64, true, 50 },      /* padded */
		{ 6, 0, 11, 50, false, 0 },      /* payload past the buffer */
		{ 6, 0, 65535, 1500, false, 0 },
		{ 6, 0, 0, 39, false, 0 },       /* truncated header */
	};
	uint8_t buf[1500];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ip_packet_info info;
		bool ok;

		if (cases[i].version == 4)
			make_v4(buf, sizeof(buf), cases[i].ihl, cases[i].hdr_len);
		else
			make_v6(buf, sizeof(buf), cases[i].hdr_len);
		memset(&info, 0, sizeof(info));
		ok = ip_packet_parse(buf, cases[i].buf_len, &info);
		if (ok != cases[i].ok)
			fail_msg("case %zu: expected %s", i, cases[i].ok ? "ok" : "refusal");
		if (!ok)
			continue;
		assert_int_equal(info.total_len, cases[i].total_len);
		if (cases[i].version == 4) {
			assert_int_equal(info.family, AF_INET);
			assert_ptr_equal(info.src, buf + 12);
			assert_ptr_equal(info.dst, buf + 16);
			assert_int_equal(info.src[3], 1);
			assert_int_equal(info.dst[3], 2);
		} else {
			assert_int_equal(info.family, AF_INET6);
			assert_ptr_equal(info.src, buf + 8);
			assert_ptr_equal(info.dst, buf + 24);
			assert_int_equal(info.src[15], 1);
			assert_int_equal(info.dst[15], 2);
		}
	}
}

static void test_packet_parse_other(void **state)
{
	struct ip_packet_info info;
	uint8_t buf[64] = { 0 };

	assert_false(ip_packet_parse(buf, 0, &info));
	assert_false(ip_packet_parse(NULL, 20, &info));
	for (unsigned int v = 0; v < 16; v++) {
		if (v == 4 || v == 6)
			continue;
		buf[0] = (uint8_t)(v << 4 | 5);
		assert_false(ip_packet_parse(buf, sizeof(buf), &info));
	}
	/* A v6 version nibble on a v4-sized buffer. */
	buf[0] = 0x60;
	assert_false(ip_packet_parse(buf, 20, &info));
}

static void test_endpoint_parse(void **state)
{
	static const struct {
		const char *in;
		bool ok;
		const char *host;
		uint16_t port;
	} cases[] = {
		{ "192.0.2.1:51820", true, "192.0.2.1", 51820 },
		{ "[2001:db8::1]:443", true, "2001:db8::1", 443 },
		{ "[::ffff:192.0.2.1]:1", true, "::ffff:192.0.2.1", 1 },
		{ "node-1.example.com:65535", true, "node-1.example.com", 65535 },
		{ "my_host:80", true, "my_host", 80 },
		{ "h:080", true, "h", 80 },
		{ "host:0", false, NULL, 0 },
		{ "host:65536", false, NULL, 0 },
		{ "host:99999999999999999999", false, NULL, 0 },
		{ "host:", false, NULL, 0 },
		{ "host", false, NULL, 0 },
		{ ":80", false, NULL, 0 },
		{ "", false, NULL, 0 },
		{ "host:+80", false, NULL, 0 },
		{ "host:-1", false, NULL, 0 },
		{ "host: 80", false, NULL, 0 },
		{ "host:80 ", false, NULL, 0 },
		{ "host:0x50", false, NULL, 0 },
		{ "ho st:80", false, NULL, 0 },
		{ "host\n:80", false, NULL, 0 },
		{ "2001:db8::1:80", false, NULL, 0 },   /* IPv6 needs brackets */
		{ "[2001:db8::1]80", false, NULL, 0 },
		{ "[2001:db8::1]", false, NULL, 0 },
		{ "[2001:db8::1]:", false, NULL, 0 },
		{ "[]:80", false, NULL, 0 },
		{ "[example.com]:80", false, NULL, 0 }, /* brackets only for IPv6 */
		{ "[192.0.2.1]:80", false, NULL, 0 },
		{ "[2001:db8::1:80", false, NULL, 0 },
		{ "[fe80::1%eth0]:80", false, NULL, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char host[ENDPOINT_HOST_MAX];
		uint16_t port = 7;
		bool ok;

		strcpy(host, "untouched");
		ok = endpoint_parse(cases[i].in, host, sizeof(host), &port);
		if (ok != cases[i].ok)
			fail_msg("case %zu '%s': expected %s", i, cases[i].in, cases[i].ok ? "ok" : "refusal");
		if (ok) {
			assert_string_equal(host, cases[i].host);
			assert_int_equal(port, cases[i].port);
		} else {
			assert_string_equal(host, "untouched");
		}
	}
	assert_false(endpoint_parse(NULL, (char[8]){ 0 }, 8, &(uint16_t){ 0 }));
}

static void test_endpoint_host_length(void **state)
{
	char in[ENDPOINT_HOST_MAX + 16], host[ENDPOINT_HOST_MAX], small[6];
	uint16_t port;

	/* 253 characters: the longest DNS name. */
	memset(in, 'a', 253);
	strcpy(in + 253, ":80");
	assert_true(endpoint_parse(in, host, sizeof(host), &port));
	assert_int_equal(strlen(host), 253);
	/* 254 is too long. */
	memset(in, 'a', 254);
	strcpy(in + 254, ":80");
	assert_false(endpoint_parse(in, host, sizeof(host), &port));
	/* The caller's buffer bounds the host too. */
	assert_true(endpoint_parse("abcde:1", (char[6]){ 0 }, 6, &port));
	assert_false(endpoint_parse("abcdef:1", small, sizeof(small), &port));
	assert_false(endpoint_parse("a:1", small, 0, &port));
}

static void test_sockaddr_format(void **state)
{
	struct sockaddr_in in4 = { .sin_family = AF_INET, .sin_port = htons(51820) };
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(443) };
	struct sockaddr sa_other = { .sa_family = AF_UNIX };
	char buf[128], small[6];

	inet_pton(AF_INET, "192.0.2.1", &in4.sin_addr);
	inet_pton(AF_INET6, "2001:db8::1", &in6.sin6_addr);
	assert_string_equal(sockaddr_format((struct sockaddr *)&in4, buf, sizeof(buf)), "192.0.2.1:51820");
	assert_string_equal(sockaddr_format((struct sockaddr *)&in6, buf, sizeof(buf)), "[2001:db8::1]:443");
	inet_pton(AF_INET6, "::ffff:192.0.2.7", &in6.sin6_addr);
	assert_string_equal(sockaddr_format((struct sockaddr *)&in6, buf, sizeof(buf)), "192.0.2.7:443");
	inet_pton(AF_INET6, "fe80::1", &in6.sin6_addr);
	in6.sin6_scope_id = 3;
	assert_string_equal(sockaddr_format((struct sockaddr *)&in6, buf, sizeof(buf)), "[fe80::1%3]:443");
	assert_string_equal(sockaddr_format(&sa_other, buf, sizeof(buf)), "(address family 1)");
	assert_string_equal(sockaddr_format(NULL, buf, sizeof(buf)), "(none)");
	assert_string_equal(sockaddr_format((struct sockaddr *)&in4, small, sizeof(small)), "192.0");
	assert_ptr_equal(sockaddr_format((struct sockaddr *)&in4, small, 0), small);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prefix_parse),
		cmocka_unit_test(test_prefix_network_and_within),
		cmocka_unit_test(test_prefix_format_small_buffer),
		cmocka_unit_test(test_prefix_contains),
		cmocka_unit_test(test_prefix_contains_bad_bits),
		cmocka_unit_test(test_packet_parse),
		cmocka_unit_test(test_packet_parse_other),
		cmocka_unit_test(test_endpoint_parse),
		cmocka_unit_test(test_endpoint_host_length),
		cmocka_unit_test(test_sockaddr_format),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
