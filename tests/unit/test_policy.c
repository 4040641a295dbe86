/* Unit tests for coord/policy: a table of good and bad policy files (each bad one with its
 * exact "file:line:col: message"), and the per-node compiler (who reaches whom, on what),
 * with tags and with destinations behind subnet routers and exit nodes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord/policy.h"

static bool parse(struct policy *p, const char *text, char *err, size_t cap)
{
	return policy_parse(p, "p.yaml", text, strlen(text), err, cap);
}

static void test_good(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		size_t hosts, groups, rules;
	} cases[] = {
		{ "rules: []\n", 0, 0, 0 },
		{ "rules:\n", 0, 0, 0 },
		{ "hosts:\n  nas: home\n  lab: 100.64.0.0/24\n  v6: fd00::/64\nrules: []\n", 3, 0, 0 },
		{ "groups:\n  group:fam: [a, b]\n  group:one: c\nrules:\n  - {from: [group:fam], to: [\"group:one:22\"]}\n",
		  0, 2, 1 },
		{ "rules:\n  - {from: [\"*\"], to: [\"*:*\"], proto: icmp}\n  - {from: [a], to: [\"b:80,443,8000-8100\"], proto: tcp}\n"
		  "  - {from: [100.64.0.1], to: [\"[fd00::1]:53\"], proto: udp}\n  - {from: [a], to: [\"100.64.0.0/10:1\"], proto: any}\n",
		  0, 0, 4 },
		/* tags wherever a node name may be; the internet as a destination */
		{ "hosts:\n  web: tag:web\ngroups:\n  group:ops: [a, tag:ops-1]\nrules:\n"
		  "  - {from: [tag:admin, group:ops], to: [\"tag:server:22\", \"web:443\"], proto: tcp}\n"
		  "  - {from: [a], to: [\"autogroup:internet:*\", \"192.168.1.0/24:*\"]}\n",
		  1, 1, 2 },
		/* rules before the hosts and groups they use: names resolve after the file is read */
		{ "rules:\n  - {from: [group:g], to: [\"h:1\"]}\ngroups:\n  group:g: [a]\nhosts:\n  h: b\n", 1, 1, 1 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct policy p;
		char err[256] = "";
		if (!parse(&p, cases[i].text, err, sizeof(err)))
			fail_msg("case %zu: %s", i, err);
		assert_int_equal(p.n_hosts, cases[i].hosts);
		assert_int_equal(p.n_groups, cases[i].groups);
		assert_int_equal(p.n_rules, cases[i].rules);
		policy_free(&p);
	}
}

static void test_bad(void **state)
{
	(void)state;
	static const struct {
		const char *text, *err;
	} cases[] = {
		{ "", "p.yaml:1:1: the policy is empty (expected settings such as 'rules: [...]')" },
		{ "hosts: {}\n", "p.yaml:1:1: the policy has no 'rules' (write 'rules: []' to allow nothing)" },
		{ "rule: []\n", "p.yaml:1:1: unknown policy key 'rule' (expected one of: hosts, groups, rules)" },
		{ "rules: []\nrules: []\n", NULL },
		{ "rules: 5\n", "p.yaml:1:8: 'rules' must be a list of rules, not a single value" },
		{ "rules:\n  - 5\n", NULL },
		{ "rules:\n  - {from: [a]}\n", "p.yaml:2:5: rule is missing required key 'to'" },
		{ "rules:\n  - {to: [\"a:1\"]}\n", "p.yaml:2:5: rule is missing required key 'from'" },
		{ "rules:\n  - {from: [a], to: [\"b:1\"], prot: tcp}\n",
		  "p.yaml:2:30: unknown rule key 'prot' (expected one of: from, to, proto)" },
		{ "rules:\n  - {from: [a], to: [\"b:1\"], proto: sctp}\n",
		  "p.yaml:2:37: 'proto': 'sctp' is not one of tcp, udp, icmp, any" },
		{ "rules:\n  - {from: [a], to: [\"b:99999\"]}\n",
		  "p.yaml:2:22: ports '99999': '99999' is not a port (0-65535) or a range LOW-HIGH" },
		{ "rules:\n  - {from: [a], to: [\"b:90-80\"]}\n",
		  "p.yaml:2:22: ports '90-80': '90-80' is not a port (0-65535) or a range LOW-HIGH" },
		{ "rules:\n  - {from: [a], to: [\"b:80,,81\"]}\n",
		  "p.yaml:2:22: ports '80,,81': '' is not a port (0-65535) or a range LOW-HIGH" },
		{ "rules:\n  - {from: [a], to: [\"b:080\"]}\n",
		  "p.yaml:2:22: ports '080': '080' is not a port (0-65535) or a range LOW-HIGH" },
		{ "rules:\n  - {from: [a], to: [b]}\n",
		  "p.yaml:2:22: destination 'b' needs ports: NAME:PORTS, e.g. 'nas:*' or 'nas:80,443'" },
		{ "rules:\n  - {from: [a], to: [\"group:x\"]}\n",
		  "p.yaml:2:22: destination 'group:x' needs ports: NAME:PORTS, e.g. 'nas:*' or 'nas:80,443'" },
		{ "rules:\n  - {from: [group:nope], to: [\"b:1\"]}\n",
		  "p.yaml:2:13: unknown group 'group:nope' (define it under 'groups')" },
		{ "rules:\n  - {from: [a], to: [\"group:nope:1\"]}\n",
		  "p.yaml:2:22: unknown group 'group:nope' (define it under 'groups')" },
		{ "rules:\n  - {from: [a], to: [\"b:80\"], proto: icmp}\n",
		  "p.yaml:2:22: ICMP has no ports: write the destination with ':*' for proto icmp" },
		{ "rules:\n  - {from: [\"a b\"], to: [\"b:1\"]}\n",
		  "p.yaml:2:13: source 'a b' is not '*', a host, a group:NAME, a tag:NAME, a node name or an address" },
		{ "rules:\n  - {from: [100.64.0.1/10], to: [\"b:1\"]}\n",
		  "p.yaml:2:13: '100.64.0.1/10' has host bits set; did you mean 100.64.0.0/10?" },
		{ "rules:\n  - {from: [300.1.1.1], to: [\"b:1\"]}\n",
		  "p.yaml:2:13: '300.1.1.1' is not an IP address or prefix" },
		{ "rules:\n  - {from: [tag:Web], to: [\"b:1\"]}\n",
		  "p.yaml:2:13: 'tag:Web' is not a tag: 'tag:' then 1 to 63 of a-z, 0-9 and '-'" },
		{ "rules:\n  - {from: [a], to: [\"tag:web\"]}\n",
		  "p.yaml:2:22: destination 'tag:web' needs ports: NAME:PORTS, e.g. 'nas:*' or 'nas:80,443'" },
		{ "rules:\n  - {from: [autogroup:internet], to: [\"b:1\"]}\n",
		  "p.yaml:2:13: 'autogroup:internet' is a destination only (the internet does not send from the mesh)" },
		{ "rules:\n  - {from: [a], to: [\"autogroup:self:1\"]}\n",
		  "p.yaml:2:22: unknown autogroup 'autogroup:self' (the one there is: autogroup:internet)" },
		{ "groups:\n  group:f: [autogroup:internet]\nrules: []\n",
		  "p.yaml:2:13: group member 'autogroup:internet': autogroups are for rule destinations only" },
		{ "hosts:\n  nas: home\n  nas: other\nrules: []\n", "p.yaml:3:3: host 'nas' is defined twice" },
		{ "hosts:\n  10.0.0.1: home\nrules: []\n",
		  "p.yaml:2:3: host name '10.0.0.1' must be 1 to 63 letters, digits, '-', '_' or '.'" },
		{ "hosts:\n  nas: [a, b]\nrules: []\n", "p.yaml:2:8: 'nas' must be a single value, not a list" },
		{ "groups:\n  fam: [a]\nrules: []\n",
		  "p.yaml:2:3: group name 'fam' must be 'group:' then 1 to 63 letters, digits, '-', '_' or '.'" },
		{ "groups:\n  group:f: [group:g]\nrules: []\n",
		  "p.yaml:2:13: group member 'group:g': groups do not nest; list its members instead" },
		{ "groups:\n  group:f: []\nrules: []\n", "p.yaml:2:12: 'group:f' must list at least one node name" },
		{ "hosts: [a]\nrules: []\n", "p.yaml:1:8: 'hosts' must be a mapping (name: value lines), not a list" },
		{ "rules: []\n---\nrules: []\n", "p.yaml:2:1: only one YAML document is allowed in the policy" },
		{ "x: &a 1\nrules: []\n", NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct policy p;
		char err[512] = "";
		if (parse(&p, cases[i].text, err, sizeof(err)))
			fail_msg("case %zu parsed: %s", i, cases[i].text);
		if (cases[i].err && strcmp(err, cases[i].err) != 0)
			fail_msg("case %zu:\n  got      \"%s\"\n  expected \"%s\"", i, err, cases[i].err);
		if (!cases[i].err && strncmp(err, "p.yaml:", 7) != 0)
			fail_msg("case %zu: no position in \"%s\"", i, err);
		assert_int_equal(p.n_rules, 0); /* nothing left to free */
	}
}

/* ---------------------------------------------------------------- the compiler */

static struct policy_node nodes[3];

static void setup_nodes(void)
{
	static const char *names[3] = { "a", "b", "c" };
	for (int i = 0; i < 3; i++) {
		nodes[i].name = names[i];
		uint8_t v4[4] = { 100, 64, 0, (uint8_t)(i + 1) };
		memcpy(nodes[i].ipv4, v4, 4);
		inet_pton(AF_INET6, i == 0 ? "fd00::1" : i == 1 ? "fd00::2" : "fd00::3", nodes[i].ipv6);
	}
}

static size_t compile(const char *text, size_t self, struct filter_rule **rules)
{
	struct policy p;
	char err[256];
	size_t n;
	if (!parse(&p, text, err, sizeof(err)))
		fail_msg("%s", err);
	if (!policy_compile(&p, nodes, 3, self, rules, &n, err, sizeof(err)))
		fail_msg("%s", err);
	policy_free(&p);
	return n;
}

static void assert_rule(const struct filter_rule *r, const char *text)
{
	char buf[FILTER_RULE_STR_MAX];
	assert_string_equal(filter_rule_format(r, buf, sizeof(buf)), text);
	assert_true(filter_rule_valid(r));
}

static void test_compile(void **state)
{
	(void)state;
	struct filter_rule *r;
	const char *pol = "hosts:\n  nas: b\ngroups:\n  group:fam: [a, c]\nrules:\n"
			  "  - {from: [group:fam], to: [\"nas:80,443\"], proto: tcp}\n"
			  "  - {from: [a], to: [\"b:80\"], proto: tcp}\n" /* a duplicate of one above */
			  "  - {from: [\"*\"], to: [\"*:*\"], proto: icmp}\n"
			  "  - {from: [100.64.0.0/24], to: [\"100.64.0.3:53\"], proto: udp}\n"
			  "  - {from: [ghost], to: [\"b:1\"]}\n"; /* not joined: no addresses, no rules */
	/* b (index 1) is reached by a and c on tcp 80 and 443, and by anyone with ICMP */
	size_t n = compile(pol, 1, &r);
	assert_int_equal(n, 10);
	assert_rule(&r[0], "100.64.0.1/32 -> 100.64.0.2/32 tcp 80");
	assert_rule(&r[1], "100.64.0.1/32 -> 100.64.0.2/32 tcp 443");
	assert_rule(&r[2], "fd00::1/128 -> fd00::2/128 tcp 80");
	assert_rule(&r[3], "fd00::1/128 -> fd00::2/128 tcp 443");
	assert_rule(&r[4], "100.64.0.3/32 -> 100.64.0.2/32 tcp 80");
	assert_rule(&r[7], "fd00::3/128 -> fd00::2/128 tcp 443");
	assert_rule(&r[8], "0.0.0.0/0 -> 100.64.0.2/32 icmp *");
	assert_rule(&r[9], "::/0 -> fd00::2/128 icmp *");
	free(r);
	/* c: ICMP from anyone, and UDP 53 from the /24 on its IPv4 address only */
	n = compile(pol, 2, &r);
	assert_int_equal(n, 3);
	assert_rule(&r[2], "100.64.0.0/24 -> 100.64.0.3/32 udp 53");
	free(r);
	/* no rule names a as a destination but ICMP */
	n = compile("rules:\n  - {from: [a], to: [\"b:22\"]}\n", 0, &r);
	assert_int_equal(n, 0);
	assert_null(r);
}

static void test_compile_limit(void **state)
{
	(void)state;
	/* 33 port ranges from 2 families x ... : build a policy over FILTER_MAX_RULES for b */
	char *text = malloc(1 << 20);
	size_t off = (size_t)sprintf(text, "rules:\n");
	for (int i = 0; i < 1100; i++)
		off += (size_t)sprintf(text + off, "  - {from: [a, c], to: [\"b:%d\"], proto: tcp}\n", i + 1);
	struct policy p;
	char err[256];
	struct filter_rule *r;
	size_t n;
	assert_true(policy_parse(&p, "p.yaml", text, off, err, sizeof(err)));
	assert_false(policy_compile(&p, nodes, 3, 1, &r, &n, err, sizeof(err)));
	assert_string_equal(err, "node b: the policy gives it more than 4096 rules; use prefixes or fewer port ranges");
	assert_false(policy_check_nodes(&p, nodes, 3, err, sizeof(err)));
	policy_free(&p);
	free(text);
}

static size_t n_warned;
static void count_warn(const struct policy_ref *ref, void *ctx)
{
	(void)ctx;
	assert_string_equal(ref->node, "ghost");
	assert_int_equal(ref->line, 2);
	n_warned++;
}

static void test_unknown_nodes(void **state)
{
	(void)state;
	struct policy p;
	char err[256];
	const char *t = "rules:\n  - {from: [a, ghost], to: [\"ghost:1\", \"b:2\"]}\n";
	assert_true(parse(&p, t, err, sizeof(err)));
	policy_unknown_nodes(&p, nodes, 3, count_warn, NULL);
	assert_int_equal(n_warned, 2);
	policy_free(&p);
}

/* Tags, and destinations behind a subnet router and an exit node: a (tag:admin), b
 * (tag:server), c routing 192.168.1.0/24 and offering itself as an exit. */
static const char tags_a[1][TAG_MAX + 1] = { "tag:admin" }, tags_b[1][TAG_MAX + 1] = { "tag:server" };
static struct control_route routes_c[3];

static size_t compile_routed(const char *text, size_t self, struct filter_rule **rules)
{
	struct policy_node saved[3];
	memcpy(saved, nodes, sizeof(saved));
	nodes[0].tags = tags_a;
	nodes[0].n_tags = 1;
	nodes[1].tags = tags_b;
	nodes[1].n_tags = 1;
	memset(routes_c, 0, sizeof(routes_c));
	routes_c[0] = (struct control_route){ .family = 4, .bits = 24, .addr = { 192, 168, 1 } };
	routes_c[1] = (struct control_route){ .family = 4, .bits = 0 };
	routes_c[2] = (struct control_route){ .family = 6, .bits = 0 };
	nodes[2].routes = routes_c;
	nodes[2].n_routes = 3;
	size_t n = compile(text, self, rules);
	memcpy(nodes, saved, sizeof(saved));
	return n;
}

/* True when the v4 rule's destination holds the address. */
static bool dst_holds(const struct filter_rule *r, const char *addr)
{
	struct ip_prefix p = { .family = AF_INET, .bits = r->dst_bits };
	uint8_t a[4];
	memcpy(p.addr, r->dst, 4);
	inet_pton(AF_INET, addr, a);
	return r->family == FILTER_FAMILY_IPV4 && ip_prefix_contains(&p, AF_INET, a);
}

static void test_compile_tags_routes(void **state)
{
	(void)state;
	struct filter_rule *r;
	const char *pol = "hosts:\n  nas: 192.168.1.50/32\nrules:\n"
			  "  - {from: [tag:admin], to: [\"tag:server:22\"], proto: tcp}\n"
			  "  - {from: [a], to: [\"nas:80\"], proto: tcp}\n"
			  "  - {from: [b], to: [\"autogroup:internet:443\"], proto: tcp}\n";

	/* b: ssh from the admin-tagged a */
	size_t n = compile_routed(pol, 1, &r);
	assert_int_equal(n, 2);
	assert_rule(&r[0], "100.64.0.1/32 -> 100.64.0.2/32 tcp 22");
	assert_rule(&r[1], "fd00::1/128 -> fd00::2/128 tcp 22");
	free(r);
	/* a: nobody; the NAS and the internet are c's to enforce */
	assert_int_equal(compile_routed(pol, 0, &r), 0);

	/* c: a to the NAS behind it; b to the internet: 0/0 without the overlay (9 prefixes
	 * in 0/1) and the LAN (23 in 128/1), ::/0 without fc00::/7 (7) */
	n = compile_routed(pol, 2, &r);
	assert_int_equal(n, 1 + 32 + 7);
	assert_rule(&r[0], "100.64.0.1/32 -> 192.168.1.50/32 tcp 80");
	size_t eight = 0;
	for (size_t i = 1; i < n; i++) {
		assert_true(filter_rule_valid(&r[i]));
		assert_false(dst_holds(&r[i], "100.64.0.3"));   /* not c itself */
		assert_false(dst_holds(&r[i], "100.127.255.1")); /* nor any node */
		assert_false(dst_holds(&r[i], "192.168.1.50"));  /* nor the LAN */
		eight += dst_holds(&r[i], "8.8.8.8");
		eight += dst_holds(&r[i], "192.168.2.1");
	}
	assert_int_equal(eight, 2); /* the internet, each address once */
	free(r);

	/* "*" on c: itself, its LAN and the internet; a literal public prefix on the exit;
	 * an overlay prefix names c's own address only */
	n = compile_routed("rules:\n  - {from: [a], to: [\"*:*\"], proto: icmp}\n", 2, &r);
	assert_int_equal(n, 2 + 1 + 32 + 7);
	assert_rule(&r[0], "100.64.0.1/32 -> 100.64.0.3/32 icmp *");
	assert_rule(&r[1], "100.64.0.1/32 -> 192.168.1.0/24 icmp *");
	free(r);
	n = compile_routed("rules:\n  - {from: [a], to: [\"198.51.100.0/24:53\", \"100.64.0.0/10:53\"]}\n", 2, &r);
	assert_int_equal(n, 2);
	assert_rule(&r[0], "100.64.0.1/32 -> 198.51.100.0/24 any 53");
	assert_rule(&r[1], "100.64.0.1/32 -> 100.64.0.3/32 any 53");
	free(r);
	/* a wider prefix than the LAN: the router enforces its own part */
	n = compile_routed("rules:\n  - {from: [b], to: [\"192.168.0.0/16:22\"], proto: tcp}\n", 2, &r);
	assert_int_equal(n, 1 + 8); /* the LAN, then the rest of the /16 (8 prefixes) through the exit */
	assert_rule(&r[0], "100.64.0.2/32 -> 192.168.1.0/24 tcp 22");
	free(r);
	/* without routes c would enforce none of it (the behaviour before) */
	assert_int_equal(compile(pol, 2, &r), 0);
}

static size_t n_tag_warned;
static void count_tag_warn(const struct policy_ref *ref, void *ctx)
{
	(void)ctx;
	assert_int_equal(ref->kind, POLICY_REF_TAG);
	assert_string_equal(ref->tag, "tag:ghost");
	n_tag_warned++;
}

static void test_unknown_tags(void **state)
{
	(void)state;
	struct policy p;
	char err[256];
	nodes[0].tags = tags_a;
	nodes[0].n_tags = 1;
	assert_true(parse(&p, "rules:\n  - {from: [tag:admin, tag:ghost], to: [\"tag:ghost:1\"]}\n", err, sizeof(err)));
	policy_unknown_nodes(&p, nodes, 3, count_tag_warn, NULL);
	assert_int_equal(n_tag_warned, 2);
	nodes[0].tags = NULL;
	nodes[0].n_tags = 0;
	policy_free(&p);
}

int main(void)
{
	setup_nodes();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_compile),
		cmocka_unit_test(test_compile_limit),
		cmocka_unit_test(test_unknown_nodes),
		cmocka_unit_test(test_compile_tags_routes),
		cmocka_unit_test(test_unknown_tags),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
