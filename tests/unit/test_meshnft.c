/* The nftables ruleset meshd gives libnftables (meshnft_format): one table of its own,
 * replaced whole (add + delete first), forwarding accepts, and masquerade rules for the
 * source-NATed LANs and the exit. No kernel needed: the text is checked. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <sys/socket.h>

#include "core/routes.h"
#include "meshd/meshnft.h"

static void spec_init(struct meshnft_spec *spec)
{
	memset(spec, 0, sizeof(*spec));
	assert_true(ip_prefix_parse("100.64.0.0/10", &spec->overlay4));
	assert_true(ip_prefix_parse("fd11:2233:4455::/48", &spec->overlay6));
	spec->have_overlay6 = true;
}

static void test_router(void **state)
{
	(void)state;
	struct meshnft_spec spec;
	char out[MESHNFT_RULESET_MAX];

	spec_init(&spec);
	assert_true(route_parse("192.168.1.0/24", &spec.snat.list[0]));
	assert_true(route_parse("fd99::/64", &spec.snat.list[1]));
	spec.snat.n = 2;
	assert_true(meshnft_format("mesh0", &spec, out, sizeof(out)));
	assert_non_null(strstr(out, "add table inet meshd_mesh0\ndelete table inet meshd_mesh0\n"));
	assert_non_null(strstr(out, "iifname \"mesh0\" accept"));
	assert_non_null(strstr(out, "oifname != \"mesh0\" ip saddr 100.64.0.0/10 ip daddr 192.168.1.0/24 masquerade"));
	assert_non_null(strstr(out, "oifname != \"mesh0\" ip6 saddr fd11:2233:4455::/48 ip6 daddr fd99::/64 masquerade"));
	assert_null(strstr(out, "ip saddr 100.64.0.0/10 masquerade")); /* no exit */
	/* nothing but our table */
	const char *p = out;
	size_t tables = 0;
	while ((p = strstr(p, "table ")) != NULL) {
		assert_true(strncmp(p, "table inet meshd_mesh0", 22) == 0);
		tables++;
		p += 6;
	}
	assert_int_equal(tables, 3);
}

static void test_exit_and_limits(void **state)
{
	(void)state;
	struct meshnft_spec spec;
	char out[MESHNFT_RULESET_MAX], tiny[64];

	spec_init(&spec);
	spec.exit = true;
	assert_true(meshnft_format("wg7", &spec, out, sizeof(out)));
	assert_non_null(strstr(out, "oifname != \"wg7\" ip saddr 100.64.0.0/10 masquerade"));
	assert_non_null(strstr(out, "oifname != \"wg7\" ip6 saddr fd11:2233:4455::/48 masquerade"));
	assert_false(meshnft_format("wg7", &spec, tiny, sizeof(tiny)));

	/* the largest spec fits */
	spec_init(&spec);
	spec.exit = true;
	for (size_t i = 0; i < CONTROL_MAX_ROUTES; i++) {
		spec.snat.list[i].family = 6;
		spec.snat.list[i].bits = 128;
		memset(spec.snat.list[i].addr, 0xfd, 16);
	}
	spec.snat.n = CONTROL_MAX_ROUTES;
	assert_true(meshnft_format("abcdefghijklmno", &spec, out, sizeof(out)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_router),
		cmocka_unit_test(test_exit_and_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
