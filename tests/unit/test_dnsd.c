/* meshd's DNS pieces that need no network: resolv.conf's nameservers (what is kept, what is
 * skipped as a loop or not an address) and the arguments of systemd-resolved's calls. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <string.h>

#include "meshd/dnsd.h"
#include "meshd/resolved.h"

static const uint8_t service6[16] = { 0xfd, 0x12, 0x34, 0x56, 0x78, 0x9a, [12] = 0x64, 0x64, 0x64, 0x64 };

static const char *upstream(const struct dnsd *d, size_t i, char *buf, size_t len)
{
	const struct sockaddr_storage *u = &d->upstream[i];
	const void *a = u->ss_family == AF_INET ? (const void *)&((const struct sockaddr_in *)u)->sin_addr
						: (const void *)&((const struct sockaddr_in6 *)u)->sin6_addr;
	uint16_t port = ntohs(u->ss_family == AF_INET ? ((const struct sockaddr_in *)u)->sin_port
						      : ((const struct sockaddr_in6 *)u)->sin6_port);
	assert_int_equal(port, 53);
	return inet_ntop(u->ss_family, a, buf, (socklen_t)len);
}

static void test_resolv_conf(void **state)
{
	static const struct {
		const char *text;
		const char *want[DNSD_UPSTREAMS_MAX];
	} cases[] = {
		{ "nameserver 192.0.2.53\n", { "192.0.2.53" } },
		{ "# comment\nsearch example.org\nnameserver 127.0.0.53\noptions edns0 trust-ad\n", { "127.0.0.53" } },
		{ "nameserver 2001:db8::53\nnameserver\tfe80::1%eth0\n", { "2001:db8::53", "fe80::1" } },
		/* ourselves: a loop, skipped; so is a name or garbage */
		{ "nameserver 100.100.100.100\nnameserver fd12:3456:789a::6464:6464\nnameserver dns.example\n"
		  "nameserver 192.0.2.1", { "192.0.2.1" } },
		/* glibc's limit of three */
		{ "nameserver 192.0.2.1\nnameserver 192.0.2.2\nnameserver 192.0.2.3\nnameserver 192.0.2.4\n",
		  { "192.0.2.1", "192.0.2.2", "192.0.2.3" } },
		{ "", { NULL } },
		{ "nameserver192.0.2.1\nname server 192.0.2.2\n", { NULL } },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		static struct dnsd d;
		size_t want = 0;
		memset(&d, 0, sizeof(d));
		dnsfwd_parse_resolv(&d, cases[i].text, strlen(cases[i].text), service6, true);
		while (want < DNSD_UPSTREAMS_MAX && cases[i].want[want])
			want++;
		if (d.n_upstreams != want)
			fail_msg("case %zu: %zu upstreams, want %zu", i, d.n_upstreams, want);
		for (size_t k = 0; k < want; k++) {
			char buf[INET6_ADDRSTRLEN];
			assert_string_equal(upstream(&d, k, buf, sizeof(buf)), cases[i].want[k]);
		}
	}
	/* a NUL inside a line does not end the file early, and the line is skipped */
	static struct dnsd d;
	static const char nul[] = "nameserver 192.0.2.9\0x\nnameserver 192.0.2.8\n";
	dnsfwd_parse_resolv(&d, nul, sizeof(nul) - 1, service6, true);
	assert_int_equal(d.n_upstreams, 1);
}

static void test_resolved_args(void **state)
{
	struct resolved_args a;
	(void)state;
	assert_true(resolved_args_build(&a, 7, service6, "mesh.internal"));
	assert_int_equal(a.ifindex, 7);
	assert_int_equal(a.family4, AF_INET);
	assert_memory_equal(a.addr4, "\x64\x64\x64\x64", 4);
	assert_true(a.have6);
	assert_memory_equal(a.addr6, service6, 16);
	assert_string_equal(a.domain, "mesh.internal");

	assert_true(resolved_args_build(&a, 7, NULL, NULL)); /* before the first registration */
	assert_false(a.have6);
	assert_string_equal(a.domain, "");

	assert_false(resolved_args_build(&a, 0, NULL, NULL));
	assert_false(resolved_args_build(&a, 7, NULL, "Mesh.Internal"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resolv_conf),
		cmocka_unit_test(test_resolved_args),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
