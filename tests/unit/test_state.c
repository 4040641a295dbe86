/* The node's remembered coordinator state: round trip through the file, and refusal of
 * damaged files with the line that is wrong. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "meshd/state.h"

static struct control_peer make_peer(uint8_t seed, size_t n_endpoints)
{
	struct control_peer p;
	memset(&p, 0, sizeof(p));
	memset(p.node_key, seed, sizeof(p.node_key));
	snprintf(p.name, sizeof(p.name), "node-%u", seed);
	p.ipv4[0] = 100; p.ipv4[1] = 64; p.ipv4[3] = seed;
	p.ipv6[0] = 0xfd; p.ipv6[15] = seed;
	for (size_t i = 0; i < n_endpoints; i++) {
		struct control_endpoint *e = &p.endpoints[p.n_endpoints++];
		e->family = i % 2 ? 6 : 4;
		e->addr[0] = e->family == 4 ? 192 : 0x20;
		e->addr[e->family == 4 ? 3 : 15] = (uint8_t)(i + 1);
		e->port = (uint16_t)(51820 + i);
	}
	return p;
}

static void test_round_trip(void **unused)
{
	char dir[] = "/tmp/meshd-state-XXXXXX", err[256];
	assert_non_null(mkdtemp(dir));

	struct node_state st, back;
	state_init(&st);
	st.has_coordinator = true;
	strcpy(st.coord_host, "192.0.2.10");
	st.coord_port = 51821;
	memset(st.coord_public, 7, sizeof(st.coord_public));
	st.registered = true;
	strcpy(st.name, "laptop");
	assert_true(ip_prefix_parse("100.64.0.5/10", &st.ipv4));
	assert_true(ip_prefix_parse("fd12:3456:789a::100.64.0.5/48", &st.ipv6));
	strcpy(st.dns_domain, "mesh.internal");
	for (uint8_t i = 1; i <= 3; i++) {
		struct control_peer p = make_peer(i, i == 3 ? CONTROL_MAX_ENDPOINTS : i);
		assert_true(state_add_peer(&st, &p));
	}
	/* a router's approved routes (the largest line: 32 IPv6 prefixes), and none at all */
	struct control_peer_routes r;
	memset(&r, 0, sizeof(r));
	memset(r.node_key, 1, WIRE_KEY_LEN);
	for (size_t i = 0; i < CONTROL_MAX_ROUTES; i++) {
		r.routes.list[i].family = 6;
		r.routes.list[i].bits = 128;
		memset(r.routes.list[i].addr, 0xfd, 16);
		r.routes.list[i].addr[15] = (uint8_t)i;
	}
	r.routes.n = CONTROL_MAX_ROUTES;
	assert_true(state_add_routes(&st, &r));
	memset(&r, 0, sizeof(r));
	memset(r.node_key, 2, WIRE_KEY_LEN);
	assert_true(state_add_routes(&st, &r));
	/* a gateway's satellites: every one it may serve, with and without a preshared key */
	for (size_t i = 0; i < CONTROL_MAX_SATELLITES; i++) {
		struct control_satellite *sat = &st.satellites.list[i];
		memset(sat->public_key, (int)(0x40 + i), WIRE_KEY_LEN);
		memset(sat->name, 'a', CONTROL_NAME_MAX);
		sat->name[0] = (char)('a' + i);
		sat->ipv4[0] = 100, sat->ipv4[1] = 64, sat->ipv4[3] = (uint8_t)(10 + i);
		memcpy(sat->ipv6, st.ipv6.addr, 16);
		sat->ipv6[15] = (uint8_t)(10 + i);
		sat->has_psk = i % 2 == 0;
		if (sat->has_psk)
			memset(sat->psk, (int)(0x80 + i), WIRE_KEY_LEN);
	}
	st.satellites.n = CONTROL_MAX_SATELLITES;
	assert_true(state_save(&st, dir, err, sizeof(err)));

	char path[512];
	struct stat sb;
	snprintf(path, sizeof(path), "%s/%s", dir, STATE_FILE_NAME);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);

	assert_true(state_load(&back, dir, err, sizeof(err)));
	assert_true(back.has_coordinator && back.registered);
	assert_string_equal(back.coord_host, "192.0.2.10");
	assert_int_equal(back.coord_port, 51821);
	assert_memory_equal(back.coord_public, st.coord_public, sizeof(st.coord_public));
	assert_string_equal(back.name, "laptop");
	assert_memory_equal(&back.ipv4, &st.ipv4, sizeof(st.ipv4));
	assert_memory_equal(&back.ipv6, &st.ipv6, sizeof(st.ipv6));
	assert_string_equal(back.dns_domain, "mesh.internal");
	assert_int_equal(back.n_peers, 3);
	for (size_t i = 0; i < 3; i++)
		assert_memory_equal(&back.peers[i], &st.peers[i], sizeof(st.peers[i]));
	assert_int_equal(back.n_routes, 2);
	assert_int_equal(back.routes[0].routes.n, CONTROL_MAX_ROUTES);
	assert_memory_equal(&back.routes[0], &st.routes[0], sizeof(st.routes[0]));
	assert_int_equal(back.routes[1].routes.n, 0);
	assert_int_equal(back.satellites.n, CONTROL_MAX_SATELLITES);
	assert_memory_equal(&back.satellites, &st.satellites, sizeof(st.satellites));

	state_free(&back);
	state_free(&st);
	unlink(path);
	rmdir(dir);
}

/* The longest lines the format can hold (a peer map is written by the coordinator and the
 * other nodes' reported endpoints: every field at its limit must still save and load). */
static void test_worst_case_lines(void **unused)
{
	char dir[] = "/tmp/meshd-state-XXXXXX", err[256];
	assert_non_null(mkdtemp(dir));

	struct node_state st, back;
	state_init(&st);
	st.has_coordinator = true;
	memset(st.coord_host, 'h', 253); /* the longest DNS name */
	st.coord_port = 65535;
	memset(st.coord_public, 7, sizeof(st.coord_public));
	st.registered = true;
	memset(st.name, 'n', CONTROL_NAME_MAX);
	assert_true(ip_prefix_parse("100.127.255.254/10", &st.ipv4));
	assert_true(ip_prefix_parse("fdff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/48", &st.ipv6));
	for (unsigned int i = 0; i < 200; i++) {
		struct control_peer p;
		memset(&p, 0, sizeof(p));
		memset(p.node_key, (int)i + 1, sizeof(p.node_key));
		memset(p.name, 'p', CONTROL_NAME_MAX);
		p.name[0] = (char)('a' + i % 26);
		p.name[1] = (char)('a' + i / 26);
		p.ipv4[0] = 100; p.ipv4[1] = 127; p.ipv4[2] = 255; p.ipv4[3] = 255;
		memset(p.ipv6, 0xff, sizeof(p.ipv6));
		for (size_t j = 0; j < CONTROL_MAX_ENDPOINTS; j++) {
			struct control_endpoint *e = &p.endpoints[p.n_endpoints++];
			e->family = 6;
			memset(e->addr, 0xfe, sizeof(e->addr));
			e->addr[15] = (uint8_t)j;
			e->port = 65535;
		}
		assert_true(state_add_peer(&st, &p));
	}
	/* a router's approved routes (the largest line: 32 IPv6 prefixes), and none at all */
	struct control_peer_routes r;
	memset(&r, 0, sizeof(r));
	memset(r.node_key, 1, WIRE_KEY_LEN);
	for (size_t i = 0; i < CONTROL_MAX_ROUTES; i++) {
		r.routes.list[i].family = 6;
		r.routes.list[i].bits = 128;
		memset(r.routes.list[i].addr, 0xfd, 16);
		r.routes.list[i].addr[15] = (uint8_t)i;
	}
	r.routes.n = CONTROL_MAX_ROUTES;
	assert_true(state_add_routes(&st, &r));
	memset(&r, 0, sizeof(r));
	memset(r.node_key, 2, WIRE_KEY_LEN);
	assert_true(state_add_routes(&st, &r));
	assert_true(state_save(&st, dir, err, sizeof(err)));
	assert_true(state_load(&back, dir, err, sizeof(err)));
	assert_int_equal(back.n_peers, 200);
	assert_string_equal(back.coord_host, st.coord_host);
	for (size_t i = 0; i < back.n_peers; i++)
		assert_memory_equal(&back.peers[i], &st.peers[i], sizeof(st.peers[i]));
	state_free(&back);
	state_free(&st);

	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, STATE_FILE_NAME);
	unlink(path);
	rmdir(dir);
}

static void test_missing_file_is_empty(void **unused)
{
	char err[256];
	struct node_state st;
	assert_true(state_load(&st, "/nonexistent-meshd-dir", err, sizeof(err)));
	assert_false(st.has_coordinator);
	assert_false(st.registered);
	assert_int_equal(st.n_peers, 0);
	state_free(&st);
}

static void test_bad_files(void **unused)
{
	static const struct {
		const char *text;
		const char *err;
	} cases[] = {
		{ "hello\n", "line 1: not a meshd state file (version 1 expected)" },
		{ "meshd-state 1\ncoordinator 192.0.2.1 AAAA\n", "line 2: bad coordinator line" },
		{ "meshd-state 1\nself a 100.64.0.1/10\n", "line 2: bad self line" },
		{ "meshd-state 1\nself a fd00::1/48 100.64.0.1/10\n", "line 2: bad self line" },
		{ "meshd-state 1\npeer x y\n", "line 2: bad peer line" },
		{ "meshd-state 1\npeer AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE= a 100.64.0.1 fd00::1 192.0.2.1\n",
		  "line 2: bad peer endpoint '192.0.2.1'" },
		{ "meshd-state 1\nbogus\n", "line 2: unknown line type 'bogus'" },
		{ "meshd-state 1\nroutes x\n", "line 2: bad routes line" },
		{ "meshd-state 1\nroutes AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE= 10.1.0.1/24\n",
		  "line 2: bad route '10.1.0.1/24'" },
		{ "meshd-state 1\npeer AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE= a 100.64.0.1 fd00::1"
		  " 1.1.1.1:1 1.1.1.1:1 1.1.1.1:1 1.1.1.1:1 1.1.1.1:1 1.1.1.1:1 1.1.1.1:1 1.1.1.1:1"
		  " 1.1.1.1:1 1.1.1.1:1 1.1.1.1:1 1.1.1.1:1 1.1.1.1:1 1.1.1.1:1 1.1.1.1:1 1.1.1.1:1 1.1.1.1:1\n",
		  "line 2: too many fields" },
		{ "meshd-state 1\nself a\0b 100.64.0.1/10 fd00::1/48\n", "line 2: line too long or holds a NUL byte" },
		{ "meshd-state 1\npin 100.64.0.0/10\n", "line 2: bad pin line" },
		{ "meshd-state 1\nsatellite AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE= phone 100.64.0.9\n",
		  "line 2: bad satellite line" },
		{ "meshd-state 1\nsatellite AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE= phone 100.64.0.9 fd00::9 x\n",
		  "line 2: bad satellite line" },
		{ "meshd-state 1\ndns\n", "line 2: bad dns line" },
		{ "meshd-state 1\ndns Mesh.internal\n", "line 2: bad dns line" },
		{ "meshd-state 1\ndns a..b\n", "line 2: bad dns line" },
		{ "meshd-state 1\ndns a b\n", "line 2: bad dns line" },
		{ "meshd-state 1\npin fd00::/48 100.64.0.0/10\n", "line 2: bad pin line" },
		/* A self line outside the pinned overlay: the IPv6 network, or the IPv4 one, moved. */
		{ "meshd-state 1\nself a 100.64.0.1/10 fd01::1/48\npin 100.64.0.0/10 fd00::/48\n",
		  "the self line's addresses lie outside the pinned overlay (pin line): refused" },
		{ "meshd-state 1\npin 100.64.0.0/10 fd00::/48\nself a 10.0.0.5/8 fd00::1/48\n",
		  "the self line's addresses lie outside the pinned overlay (pin line): refused" },
		/* Wider than the pin, though it contains it: refused too. */
		{ "meshd-state 1\npin 100.64.0.0/10 fd00::/48\nself a 100.64.0.1/9 fd00::1/48\n",
		  "the self line's addresses lie outside the pinned overlay (pin line): refused" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct node_state st;
		char err[256];
		size_t len = strlen(cases[i].text);
		if (strstr(cases[i].err, "NUL"))
			len = sizeof("meshd-state 1\nself a\0b 100.64.0.1/10 fd00::1/48\n") - 1;
		assert_false(state_parse(&st, cases[i].text, len, err, sizeof(err)));
		assert_string_equal(err, cases[i].err);
		assert_null(st.peers);
	}
}

/* Trust pinned at first join: the pin line round-trips with host bits cleared; a file from
 * before pinning is pinned to its self line; only assignments inside the pin are accepted. */
static void test_pinned_overlay(void **unused)
{
	(void)unused;
	struct node_state st;
	char err[256];
	static const char old_file[] = "meshd-state 1\nself laptop 100.64.0.5/10 fd12:3456:789a::5/48\n";
	assert_true(state_parse(&st, old_file, sizeof(old_file) - 1, err, sizeof(err)));
	assert_true(st.pinned);
	char a[IP_PREFIX_STR_MAX], b[IP_PREFIX_STR_MAX];
	assert_string_equal(ip_prefix_format(&st.pin_ipv4, a, sizeof(a)), "100.64.0.0/10");
	assert_string_equal(ip_prefix_format(&st.pin_ipv6, b, sizeof(b)), "fd12:3456:789a::/48");

	struct ip_prefix v4, v6;
	assert_true(ip_prefix_parse("100.127.1.2/10", &v4));
	assert_true(ip_prefix_parse("fd12:3456:789a:1::9/64", &v6));
	assert_true(state_inside_pin(&st, &v4, &v6)); /* renumbered inside the overlay: fine */
	assert_true(ip_prefix_parse("10.0.0.5/8", &v4));
	assert_false(state_inside_pin(&st, &v4, &v6)); /* a LAN prefix */
	assert_true(ip_prefix_parse("100.64.0.5/10", &v4));
	assert_true(ip_prefix_parse("2001::5/16", &v6));
	assert_false(state_inside_pin(&st, &v4, &v6)); /* the Internet */
	assert_true(ip_prefix_parse("fd12:3456:789b::5/48", &v6));
	assert_false(state_inside_pin(&st, &v4, &v6)); /* another network's ULA */

	/* The first registration pins; a later one does not move the pin. */
	struct node_state fresh;
	state_init(&fresh);
	assert_true(state_inside_pin(&fresh, &v4, &v6)); /* nothing pinned yet */
	fresh.registered = true;
	fresh.ipv4 = v4;
	fresh.ipv6 = v6;
	state_pin_overlay(&fresh);
	assert_true(fresh.pinned);
	struct ip_prefix before = fresh.pin_ipv6;
	assert_true(ip_prefix_parse("fd99::1/48", &fresh.ipv6));
	state_pin_overlay(&fresh);
	assert_memory_equal(&fresh.pin_ipv6, &before, sizeof(before));
	state_free(&fresh);

	/* Saved and loaded back with the pin line. */
	char dir[] = "/tmp/meshd-state-XXXXXX";
	assert_non_null(mkdtemp(dir));
	assert_true(state_save(&st, dir, err, sizeof(err)));
	struct node_state back;
	assert_true(state_load(&back, dir, err, sizeof(err)));
	assert_true(back.pinned);
	assert_memory_equal(&back.pin_ipv4, &st.pin_ipv4, sizeof(st.pin_ipv4));
	assert_memory_equal(&back.pin_ipv6, &st.pin_ipv6, sizeof(st.pin_ipv6));
	state_free(&back);
	state_free(&st);
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, STATE_FILE_NAME);
	unlink(path);
	rmdir(dir);
}

/* A state larger than load reads back (STATE_FILE_MAX) is refused at save, and the file
 * already there is kept: the node would otherwise lose everything at its next start. */
static void test_save_refuses_what_load_refuses(void **unused)
{
	(void)unused;
	char dir[] = "/tmp/meshd-state-XXXXXX", err[256], path[512];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/%s", dir, STATE_FILE_NAME);
	struct node_state st;
	state_init(&st);
	st.registered = true;
	strcpy(st.name, "big");
	assert_true(ip_prefix_parse("100.64.0.5/10", &st.ipv4));
	assert_true(ip_prefix_parse("fd12:3456:789a::5/48", &st.ipv6));
	assert_true(state_save(&st, dir, err, sizeof(err))); /* a small one first */
	/* Peers with every endpoint: ~800 bytes a line, so 22,000 pass 16 MiB. */
	size_t n = (size_t)STATE_FILE_MAX / 760 + 1;
	for (size_t i = 0; i < n; i++) {
		struct control_peer p = make_peer((uint8_t)i, CONTROL_MAX_ENDPOINTS);
		p.ipv4[2] = (uint8_t)(i >> 8);
		for (size_t e = 0; e < p.n_endpoints; e++) {
			p.endpoints[e].family = 6;
			memset(p.endpoints[e].addr, 0xab, 16);
			p.endpoints[e].port = 65535;
		}
		assert_true(state_add_peer(&st, &p));
	}
	assert_false(state_save(&st, dir, err, sizeof(err)));
	assert_non_null(strstr(err, "is larger than meshd reads back (16 MiB); not saved"));
	struct node_state back;
	assert_true(state_load(&back, dir, err, sizeof(err)));
	assert_int_equal(back.n_peers, 0); /* the earlier file is intact */
	state_free(&back);
	state_free(&st);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_worst_case_lines),
		cmocka_unit_test(test_missing_file_is_empty),
		cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_pinned_overlay),
		cmocka_unit_test(test_save_refuses_what_load_refuses),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
