/* core/endpoint_check: which candidate endpoints are dialable, as a table. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <setjmp.h>
#include <cmocka.h>

#include "core/endpoint_check.h"

static const struct {
	const char *addr;
	uint16_t port;
	bool dialable;
} cases[] = {
	{ "203.0.113.7", 51820, true },
	{ "10.1.2.3", 51820, true },        /* a LAN candidate: peers on the same LAN use it */
	{ "100.64.0.9", 51820, true },      /* CGNAT space */
	{ "192.168.1.1", 1, true },
	{ "203.0.113.7", 0, false },        /* port 0 */
	{ "0.0.0.0", 51820, false },        /* unspecified */
	{ "0.1.2.3", 51820, false },        /* "this network" */
	{ "127.0.0.1", 53, false },         /* loopback */
	{ "127.255.255.254", 53, false },
	{ "169.254.169.254", 80, false },   /* link-local (cloud metadata) */
	{ "224.0.0.1", 51820, false },      /* multicast */
	{ "239.255.255.250", 1900, false },
	{ "240.0.0.1", 51820, false },      /* reserved */
	{ "255.255.255.255", 51820, false },/* broadcast */
	{ "2001:db8::1", 51820, true },
	{ "fd12:3456::1", 51820, true },
	{ "2001:db8::1", 0, false },
	{ "::", 51820, false },
	{ "::1", 51820, false },
	{ "fe80::1", 51820, false },
	{ "febf::1", 51820, false },
	{ "fec0::1", 51820, true },         /* deprecated site-local, not link-local */
	{ "ff02::1", 51820, false },
	{ "::ffff:127.0.0.1", 51820, false },
	{ "::ffff:203.0.113.7", 51820, true },
	{ "::ffff:169.254.169.254", 80, false },
};

static void test_sockaddr_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
		const struct sockaddr *sa;

		memset(&in, 0, sizeof(in));
		memset(&in6, 0, sizeof(in6));
		if (inet_pton(AF_INET, cases[i].addr, &in.sin_addr) == 1) {
			in.sin_family = AF_INET;
			in.sin_port = htons(cases[i].port);
			sa = (const struct sockaddr *)&in;
		} else {
			assert_int_equal(inet_pton(AF_INET6, cases[i].addr, &in6.sin6_addr), 1);
			in6.sin6_family = AF_INET6;
			in6.sin6_port = htons(cases[i].port);
			sa = (const struct sockaddr *)&in6;
		}
		if (endpoint_is_dialable(sa) != cases[i].dialable)
			fail_msg("%s port %u: expected %s", cases[i].addr, cases[i].port,
				 cases[i].dialable ? "dialable" : "refused");
	}
}

static void test_control_endpoint_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct control_endpoint ep;

		memset(&ep, 0, sizeof(ep));
		ep.port = cases[i].port;
		if (inet_pton(AF_INET, cases[i].addr, ep.addr) == 1) {
			ep.family = 4;
		} else {
			assert_int_equal(inet_pton(AF_INET6, cases[i].addr, ep.addr), 1);
			ep.family = 6;
		}
		if (control_endpoint_is_dialable(&ep) != cases[i].dialable)
			fail_msg("%s port %u: expected %s", cases[i].addr, cases[i].port,
				 cases[i].dialable ? "dialable" : "refused");
	}
}

static void test_other_families(void **state)
{
	struct sockaddr sa;
	struct control_endpoint ep;
	(void)state;

	memset(&sa, 0, sizeof(sa));
	sa.sa_family = AF_UNIX;
	assert_false(endpoint_is_dialable(&sa));
	assert_false(endpoint_is_dialable(NULL));
	memset(&ep, 0, sizeof(ep));
	ep.family = 5;
	ep.port = 1;
	ep.addr[0] = 203;
	assert_false(control_endpoint_is_dialable(&ep));
	assert_false(control_endpoint_is_dialable(NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sockaddr_table),
		cmocka_unit_test(test_control_endpoint_table),
		cmocka_unit_test(test_other_families),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
