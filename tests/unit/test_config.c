/* Unit tests for meshd/config: every kind of refusal with its exact "source:line:col"
 * message, parsed values and defaults, and config_load's file handling. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testdir.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/keys.h"
#include "core/control.h"
#include "meshd/config.h"

#ifndef TEST_SRCDIR
#define TEST_SRCDIR "tests/unit"
#endif

#define K1 "Ax3Nu0cyzVczvy/33U7tzr6TFT+iJcwA6vL1vh/hp5o="
#define K2 "dkifC/DaelqnwChELKEIhjCFG2N1Jd6gvh7sZP7kOo4="
#define PSK "mBWkMkWNWckzoXqTydzV4vbITb/YYpZRQoU32zjOTro="
/* The two settings every config needs, for tests about something else. */
#define BASE "private_key_file: /etc/meshd/private.key\naddress: 100.64.0.1/10\n"

static bool parse(struct config *cfg, const char *text, char *err, size_t err_len)
{
	return config_parse(cfg, "node.yaml", text, strlen(text), err, err_len);
}

static void test_errors(void **state)
{
	static const struct {
		const char *name;
		const char *yaml;
		const char *err;
	} cases[] = {
		{ "unknown key", BASE "listn_port: 51820\n",
		  "node.yaml:3:1: unknown key 'listn_port' (expected one of: interface, private_key_file, "
		  "listen_port, address, mtu, peers, state_dir, join_key_file, control_socket, control_group, cookie_threshold, max_peers, user, log_level, dns, dns_resolved, advertise_routes, advertise_exit_node, snat_routes, exit_node, exit_node_allow_lan, publish)" },
		{ "unknown peer key", BASE "peers:\n  - public_key: " K1 "\n    alowed_ips: 10.0.0.0/8\n",
		  "node.yaml:5:5: unknown peer key 'alowed_ips' (expected one of: public_key, preshared_key, "
		  "endpoint, allowed_ips, name, persistent_keepalive)" },
		{ "port too big", BASE "listen_port: 70000\n",
		  "node.yaml:3:14: 'listen_port' must be a whole number from 0 to 65535, got '70000'" },
		{ "port negative", BASE "listen_port: -1\n",
		  "node.yaml:3:14: 'listen_port' must be a whole number from 0 to 65535, got '-1'" },
		{ "port hex", BASE "listen_port: 0x50\n",
		  "node.yaml:3:14: 'listen_port' must be a whole number from 0 to 65535, got '0x50'" },
		{ "port octal-looking", BASE "listen_port: 0123\n",
		  "node.yaml:3:14: 'listen_port' must be a whole number from 0 to 65535, got '0123'" },
		{ "port empty", BASE "listen_port:\n",
		  "node.yaml:3:13: 'listen_port' must be a whole number from 0 to 65535, got ''" },
		{ "port huge", BASE "listen_port: 99999999999999999999999\n",
		  "node.yaml:3:14: 'listen_port' must be a whole number from 0 to 65535, got '99999999999999999999999'" },
		{ "port is a list", BASE "listen_port: [1, 2]\n",
		  "node.yaml:3:14: 'listen_port' must be a single value, not a list" },
		{ "max_peers zero", BASE "max_peers: 0\n",
		  "node.yaml:3:12: 'max_peers' must be a whole number from 1 to 100000, got '0'" },
		{ "max_peers above what the state file holds", BASE "max_peers: 100001\n",
		  "node.yaml:3:12: 'max_peers' must be a whole number from 1 to 100000, got '100001'" },
		{ "mtu too small", BASE "mtu: 500\n",
		  "node.yaml:3:6: 'mtu' must be a whole number from 576 to 8920, got '500'" },
		{ "mtu too small for IPv6", "private_key_file: k\naddress: [100.64.0.1/10, fd00::1/64]\nmtu: 1000\n",
		  "node.yaml:3:6: 'mtu' 1000 is below 1280, the IPv6 minimum, but address fd00::1/64 is IPv6" },
		{ "bad prefix", "private_key_file: k\naddress: 100.64.0.300/10\n",
		  "node.yaml:2:10: 'address': '100.64.0.300/10' is not an IP address or prefix (e.g. 100.64.0.1/10)" },
		{ "bad prefix length", "private_key_file: k\naddress:\n  - 100.64.0.1/10\n  - fd00::1/129\n",
		  "node.yaml:4:5: 'address': 'fd00::1/129' is not an IP address or prefix (e.g. 100.64.0.1/10)" },
		{ "duplicate address", "private_key_file: k\naddress: [10.0.0.1/8, 10.0.0.1/8]\n",
		  "node.yaml:2:23: 'address': 10.0.0.1/8 is listed twice" },
		{ "empty address list", "private_key_file: k\naddress: []\n",
		  "node.yaml:2:10: 'address' must list at least one prefix" },
		{ "address mapping", "private_key_file: k\naddress:\n  ip: 10.0.0.1\n",
		  "node.yaml:3:3: 'address' must be a prefix or a list of prefixes, not a mapping" },
		{ "nested address list", "private_key_file: k\naddress: [[10.0.0.1/8]]\n",
		  "node.yaml:2:11: 'address' entries must be single prefixes, not a list" },
		{ "too many addresses",
		  "private_key_file: k\naddress: [10.0.0.1/8, 10.0.0.2/8, 10.0.0.3/8, 10.0.0.4/8, 10.0.0.5/8, "
		  "10.0.0.6/8, 10.0.0.7/8, 10.0.0.8/8, 10.0.0.9/8]\n",
		  "node.yaml:2:107: 'address' has too many entries (at most 8)" },
		{ "bad base64 key", BASE "peers:\n  - public_key: not-a-key\n    allowed_ips: 10.0.0.0/8\n",
		  "node.yaml:4:17: 'public_key' is not a key (expected 44 characters of base64)" },
		{ "short key", BASE "peers:\n  - public_key: Ax3Nu0cyzVczvy/33U7tzr6TFT+iJcwA6vL1vh/hp5o\n"
				    "    allowed_ips: 10.0.0.0/8\n",
		  "node.yaml:4:17: 'public_key' is not a key (expected 44 characters of base64)" },
		{ "bad psk", BASE "peers:\n  - public_key: " K1 "\n    preshared_key: secret\n    allowed_ips: 10.0.0.0/8\n",
		  "node.yaml:5:20: 'preshared_key' is not a key (expected 44 characters of base64)" },
		{ "duplicate key", BASE "mtu: 1400\nlisten_port: 1\nmtu: 1300\n",
		  "node.yaml:5:1: duplicate key 'mtu' (first given at line 3)" },
		{ "duplicate peer key",
		  BASE "peers:\n  - public_key: " K1 "\n    allowed_ips: 10.0.0.0/8\n    public_key: " K2 "\n",
		  "node.yaml:6:5: duplicate key 'public_key' (first given at line 4)" },
		{ "missing private_key_file", "address: 10.0.0.1/8\n",
		  "node.yaml:1:1: missing required key 'private_key_file'" },
		{ "missing address", "interface: mesh1\nprivate_key_file: k\n",
		  "node.yaml:1:1: missing required key 'address'" },
		{ "peer missing public_key", BASE "peers:\n  - allowed_ips: 10.0.0.0/8\n",
		  "node.yaml:4:5: peer is missing required key 'public_key'" },
		{ "peer missing allowed_ips", BASE "peers:\n  - public_key: " K1 "\n",
		  "node.yaml:4:5: peer is missing required key 'allowed_ips'" },
		{ "empty allowed_ips", BASE "peers:\n  - public_key: " K1 "\n    allowed_ips: []\n",
		  "node.yaml:5:18: 'allowed_ips' must list at least one prefix" },
		{ "allowed_ips host bits", BASE "peers:\n  - public_key: " K1 "\n    allowed_ips: 10.1.2.3/24\n",
		  "node.yaml:5:18: 'allowed_ips': '10.1.2.3/24' has host bits set; did you mean 10.1.2.0/24 or 10.1.2.3/32?" },
		{ "duplicate peer public key",
		  BASE "peers:\n  - public_key: " K1 "\n    allowed_ips: 10.0.0.2/32\n"
		       "  - public_key: " K1 "\n    allowed_ips: 10.0.0.3/32\n",
		  "node.yaml:6:17: peer public_key is already used by peer 'Ax3Nu0cy' (line 4)" },
		{ "duplicate peer name",
		  BASE "peers:\n  - public_key: " K1 "\n    name: a\n    allowed_ips: 10.0.0.2/32\n"
		       "  - name: a\n    public_key: " K2 "\n    allowed_ips: 10.0.0.3/32\n",
		  "node.yaml:7:11: peer name 'a' is already used (line 5)" },
		{ "prefix claimed by two peers",
		  BASE "peers:\n  - public_key: " K1 "\n    allowed_ips: 10.0.0.2/32\n"
		       "  - public_key: " K2 "\n    allowed_ips: [10.0.0.3/32, 10.0.0.2/32]\n",
		  "node.yaml:7:32: 'allowed_ips': 10.0.0.2/32 is already claimed by peer 'Ax3Nu0cy' (line 5)" },
		{ "bad endpoint", BASE "peers:\n  - public_key: " K1 "\n    endpoint: 2001:db8::1:51820\n"
				       "    allowed_ips: 10.0.0.0/8\n",
		  "node.yaml:5:15: 'endpoint': '2001:db8::1:51820' is not host:port or [IPv6]:port with a port from 1 to 65535" },
		{ "endpoint port 0", BASE "peers:\n  - public_key: " K1 "\n    endpoint: 192.0.2.1:0\n"
					  "    allowed_ips: 10.0.0.0/8\n",
		  "node.yaml:5:15: 'endpoint': '192.0.2.1:0' is not host:port or [IPv6]:port with a port from 1 to 65535" },
		{ "keepalive too long", BASE "peers:\n  - public_key: " K1 "\n    allowed_ips: 10.0.0.0/8\n"
					     "    persistent_keepalive: 3601\n",
		  "node.yaml:6:27: 'persistent_keepalive' must be a whole number from 0 to 3600, got '3601'" },
		{ "bad peer name", BASE "peers:\n  - public_key: " K1 "\n    allowed_ips: 10.0.0.0/8\n    name: \"a b\"\n",
		  "node.yaml:6:11: 'name': 'a b' must be 1 to 63 letters, digits, '-', '_' or '.'" },
		{ "peers not a list", BASE "peers:\n  public_key: " K1 "\n",
		  "node.yaml:4:3: 'peers' must be a list of peers, not a mapping" },
		{ "peer not a mapping", BASE "peers:\n  - " K1 "\n",
		  "node.yaml:4:5: each peer must be a mapping (public_key: ..., allowed_ips: ...), not a single value" },
		{ "bad interface", "interface: eth/0\n" BASE,
		  "node.yaml:1:12: 'interface': 'eth/0' is not a valid interface name (1 to 15 characters, no '/', ':' or spaces)" },
		{ "interface too long", "interface: abcdefghijklmnop\n" BASE,
		  "node.yaml:1:12: 'interface': 'abcdefghijklmnop' is not a valid interface name (1 to 15 characters, no '/', ':' or spaces)" },
		{ "empty key file", "private_key_file: ''\naddress: 10.0.0.1/8\n",
		  "node.yaml:1:19: 'private_key_file' must not be empty" },
		{ "NUL in value", "private_key_file: \"key\\0x\"\naddress: 10.0.0.1/8\n",
		  "node.yaml:1:19: 'private_key_file' contains a NUL character" },
		{ "not a mapping", "- a\n- b\n",
		  "node.yaml:1:1: the configuration must be a mapping of settings ('key: value' lines), not a list" },
		{ "plain text", "hello\n",
		  "node.yaml:1:1: the configuration must be a mapping of settings ('key: value' lines), not a single value" },
		{ "empty", "", "node.yaml:1:1: the configuration is empty (expected settings such as 'address: ...')" },
		{ "comments only", "# nothing here\n",
		  "node.yaml:2:1: the configuration is empty (expected settings such as 'address: ...')" },
		{ "two documents", BASE "---\nmtu: 1400\n",
		  "node.yaml:3:1: only one YAML document is allowed in the configuration" },
		{ "alias", "private_key_file: &k k\naddress: *k\n",
		  "node.yaml:2:10: YAML aliases (*name) are not supported in this file" },
		{ "complex key", "? [a, b]\n: c\n", "node.yaml:1:3: expected a key name, found a list" },
		{ "syntax error", "private_key_file: k\naddress: [10.0.0.1/8\n",
		  "node.yaml:3:1: YAML syntax error: did not find expected ',' or ']' (while parsing a flow sequence "
		  "at line 2, column 10)" },
		{ "bad indentation", "private_key_file: k\n  address: 10.0.0.1/8\n",
		  "node.yaml:2:10: YAML syntax error: mapping values are not allowed in this context" },
		{ "invalid UTF-8", "private_key_file: k\naddress: \xff\n",
		  "node.yaml:2:10: invalid input: invalid leading UTF-8 octet (byte 0xff)" },
		{ "control character", "private_key_file: k\naddress: \x01\n",
		  "node.yaml:2:10: invalid input: control characters are not allowed (byte 0x01)" },
		{ "unknown key with control chars", BASE "\"a\\e[2Jb\": 1\n",
		  "node.yaml:3:1: unknown key 'a?[2Jb' (expected one of: interface, private_key_file, listen_port, "
		  "address, mtu, peers, state_dir, join_key_file, control_socket, control_group, cookie_threshold, max_peers, user, log_level, dns, dns_resolved, advertise_routes, advertise_exit_node, snat_routes, exit_node, exit_node_allow_lan, publish)" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config cfg;
		char err[1024] = "";

		if (parse(&cfg, cases[i].yaml, err, sizeof(err)))
			fail_msg("case '%s': accepted", cases[i].name);
		if (strcmp(err, cases[i].err) != 0)
			fail_msg("case '%s':\n  got:  %s\n  want: %s", cases[i].name, err, cases[i].err);
		/* A refused config holds no peers and can be freed again. */
		assert_null(cfg.peers);
		assert_int_equal(cfg.n_peers, 0);
		config_free(&cfg);
	}
}

static void test_full_config(void **state)
{
	static const char yaml[] =
		"# a full node\n"
		"interface: mesh7\n"
		"private_key_file: /var/lib/meshd/node.key\n"
		"listen_port: 0\n"
		"address:\n"
		"  - 100.64.0.1/10\n"
		"  - fd7a:6d65:7368::1/48\n"
		"mtu: 1380\n"
		"peers:\n"
		"  - name: gateway\n"
		"    public_key: " K1 "\n"
		"    preshared_key: \"" PSK "\"\n"
		"    endpoint: 192.0.2.10:51820\n"
		"    allowed_ips: [100.64.0.2/32, 10.10.0.0/16]\n"
		"    persistent_keepalive: 25\n"
		"  - public_key: " K2 "\n"
		"    endpoint: \"[2001:db8::7]:4500\"\n"
		"    allowed_ips: fd7a:6d65:7368::2/128\n";
	uint8_t k1[WIRE_KEY_LEN], k2[WIRE_KEY_LEN], psk[WIRE_KEY_LEN];
	struct config cfg;
	char err[1024] = "", buf[IP_PREFIX_STR_MAX];
	const struct config_peer *p;

	assert_true(key_from_base64(k1, K1, strlen(K1)));
	assert_true(key_from_base64(k2, K2, strlen(K2)));
	assert_true(key_from_base64(psk, PSK, strlen(PSK)));
	if (!parse(&cfg, yaml, err, sizeof(err)))
		fail_msg("%s", err);
	assert_string_equal(err, "");
	assert_string_equal(cfg.interface, "mesh7");
	assert_string_equal(cfg.private_key_file, "/var/lib/meshd/node.key");
	assert_int_equal(cfg.listen_port, 0);
	assert_int_equal(cfg.mtu, 1380);
	assert_int_equal(cfg.n_addresses, 2);
	assert_string_equal(ip_prefix_format(&cfg.addresses[0], buf, sizeof(buf)), "100.64.0.1/10");
	assert_string_equal(ip_prefix_format(&cfg.addresses[1], buf, sizeof(buf)), "fd7a:6d65:7368::1/48");
	assert_int_equal(cfg.n_peers, 2);

	p = &cfg.peers[0];
	assert_string_equal(p->name, "gateway");
	assert_memory_equal(p->public_key, k1, WIRE_KEY_LEN);
	assert_true(p->has_psk);
	assert_memory_equal(p->psk, psk, WIRE_KEY_LEN);
	assert_true(p->has_endpoint);
	assert_string_equal(p->endpoint_host, "192.0.2.10");
	assert_int_equal(p->endpoint_port, 51820);
	assert_int_equal(p->n_allowed_ips, 2);
	assert_string_equal(ip_prefix_format(&p->allowed_ips[0], buf, sizeof(buf)), "100.64.0.2/32");
	assert_string_equal(ip_prefix_format(&p->allowed_ips[1], buf, sizeof(buf)), "10.10.0.0/16");
	assert_int_equal(p->persistent_keepalive_s, 25);

	p = &cfg.peers[1];
	assert_string_equal(p->name, "dkifC/Da"); /* default: the key's first 8 characters */
	assert_memory_equal(p->public_key, k2, WIRE_KEY_LEN);
	assert_false(p->has_psk);
	assert_true(p->has_endpoint);
	assert_string_equal(p->endpoint_host, "2001:db8::7");
	assert_int_equal(p->endpoint_port, 4500);
	assert_int_equal(p->n_allowed_ips, 1);
	assert_string_equal(ip_prefix_format(&p->allowed_ips[0], buf, sizeof(buf)), "fd7a:6d65:7368::2/128");
	assert_int_equal(p->persistent_keepalive_s, 0);

	config_free(&cfg);
	assert_null(cfg.peers);
	assert_int_equal(cfg.n_peers, 0);
	config_free(&cfg); /* twice is harmless */
}

/* log_level: absent (info, not given), each level, and a refusal that names the levels. */
static void test_log_level(void **state)
{
	struct config cfg;
	char err[1024];

	(void)state;
	assert_true(parse(&cfg, BASE, err, sizeof(err)));
	assert_false(cfg.has_log_level);
	assert_int_equal(cfg.log_level, LOG_LEVEL_INFO);
	config_free(&cfg);
	assert_true(parse(&cfg, BASE "log_level: debug\n", err, sizeof(err)));
	assert_true(cfg.has_log_level);
	assert_int_equal(cfg.log_level, LOG_LEVEL_DEBUG);
	config_free(&cfg);
	assert_true(parse(&cfg, BASE "log_level: error\n", err, sizeof(err)));
	assert_int_equal(cfg.log_level, LOG_LEVEL_ERROR);
	config_free(&cfg);
	assert_false(parse(&cfg, BASE "log_level: verbose\n", err, sizeof(err)));
	assert_string_equal(err, "node.yaml:3:12: 'log_level': 'verbose' is not one of error, warn, info, debug");
}

/* dns: on (default) or off; dns_resolved: auto (default) or off. */
static void test_dns_keys(void **state)
{
	struct config cfg;
	char err[1024];

	(void)state;
	assert_true(parse(&cfg, BASE, err, sizeof(err)));
	assert_true(cfg.dns);
	assert_true(cfg.dns_resolved);
	config_free(&cfg);
	assert_true(parse(&cfg, BASE "dns: off\ndns_resolved: off\n", err, sizeof(err)));
	assert_false(cfg.dns);
	assert_false(cfg.dns_resolved);
	config_free(&cfg);
	assert_true(parse(&cfg, BASE "dns: on\ndns_resolved: auto\n", err, sizeof(err)));
	assert_true(cfg.dns && cfg.dns_resolved);
	config_free(&cfg);
	assert_false(parse(&cfg, BASE "dns: yes\n", err, sizeof(err)));
	assert_string_equal(err, "node.yaml:3:6: 'dns': 'yes' is not on or off");
	assert_false(parse(&cfg, BASE "dns_resolved: on\n", err, sizeof(err)));
	assert_string_equal(err, "node.yaml:3:15: 'dns_resolved': 'on' is not auto or off");
}

static void test_defaults(void **state)
{
	struct config cfg;
	char err[1024];

	assert_true(parse(&cfg, BASE, err, sizeof(err)));
	assert_string_equal(cfg.interface, "mesh0");
	assert_int_equal(cfg.listen_port, CONFIG_DEFAULT_LISTEN_PORT);
	assert_int_equal(cfg.mtu, CONFIG_DEFAULT_MTU);
	assert_int_equal(cfg.n_peers, 0);
	assert_null(cfg.peers);
	config_free(&cfg);

	/* "peers:" with every peer commented out means no peers. */
	assert_true(parse(&cfg, BASE "peers:\n#  - public_key: ...\n", err, sizeof(err)));
	assert_int_equal(cfg.n_peers, 0);
	assert_true(parse(&cfg, BASE "peers: []\n", err, sizeof(err)));
	assert_int_equal(cfg.n_peers, 0);
}

static void test_address_forms(void **state)
{
	static const struct {
		const char *yaml;
		size_t n;
		const char *first, *last;
	} cases[] = {
		{ "private_key_file: k\naddress: 100.64.0.1/10\n", 1, "100.64.0.1/10", "100.64.0.1/10" },
		{ "private_key_file: k\naddress: 100.64.0.1\n", 1, "100.64.0.1/32", "100.64.0.1/32" },
		{ "private_key_file: k\naddress: \"fd00::1/64\"\n", 1, "fd00::1/64", "fd00::1/64" },
		{ "private_key_file: k\naddress: [100.64.0.1/10]\n", 1, "100.64.0.1/10", "100.64.0.1/10" },
		{ "private_key_file: k\naddress:\n  - 100.64.0.1/10\n  - fd00::1/64\n", 2, "100.64.0.1/10", "fd00::1/64" },
		{ "{private_key_file: k, address: [10.0.0.1/8, 10.0.0.2/8]}\n", 2, "10.0.0.1/8", "10.0.0.2/8" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config cfg;
		char err[1024] = "", buf[IP_PREFIX_STR_MAX];

		if (!parse(&cfg, cases[i].yaml, err, sizeof(err)))
			fail_msg("case %zu: %s", i, err);
		assert_int_equal(cfg.n_addresses, cases[i].n);
		assert_string_equal(ip_prefix_format(&cfg.addresses[0], buf, sizeof(buf)), cases[i].first);
		assert_string_equal(ip_prefix_format(&cfg.addresses[cfg.n_addresses - 1], buf, sizeof(buf)),
				    cases[i].last);
		config_free(&cfg);
	}
}

static void test_number_forms(void **state)
{
	static const struct {
		const char *value;
		bool ok;
		unsigned int port;
	} cases[] = {
		{ "0", true, 0 },      { "1", true, 1 },       { "65535", true, 65535 }, { "\"51820\"", true, 51820 },
		{ "65536", false, 0 }, { "+1", false, 0 },     { "1.0", false, 0 },      { "1e3", false, 0 },
		{ "1_000", false, 0 }, { "00", false, 0 },     { "~", false, 0 },        { "\" 1\"", false, 0 },
		{ "true", false, 0 },  { "4294967297", false, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char yaml[256], err[512];
		struct config cfg;

		snprintf(yaml, sizeof(yaml), BASE "listen_port: %s\n", cases[i].value);
		if (parse(&cfg, yaml, err, sizeof(err)) != cases[i].ok)
			fail_msg("listen_port: %s: expected %s (%s)", cases[i].value, cases[i].ok ? "ok" : "refusal", err);
		if (cases[i].ok)
			assert_int_equal(cfg.listen_port, cases[i].port);
		config_free(&cfg);
	}
}

static void test_explicit_length(void **state)
{
	/* The parser reads exactly len bytes: no NUL needed, nothing after len looked at. */
	static const char text[] = BASE "mtu: 1400\n";
	size_t len = strlen(BASE);
	char *exact = malloc(len);
	struct config cfg;
	char err[1024];

	assert_non_null(exact);
	memcpy(exact, text, len);
	assert_true(config_parse(&cfg, "node.yaml", exact, len, err, sizeof(err)));
	assert_int_equal(cfg.mtu, CONFIG_DEFAULT_MTU); /* the mtu line was beyond len */
	config_free(&cfg);
	free(exact);

	/* A tiny error buffer truncates the message but never overflows. */
	assert_false(config_parse(&cfg, "node.yaml", "x: 1\n", 5, err, 8));
	assert_string_equal(err, "node.ya");
	assert_false(config_parse(&cfg, "node.yaml", "x: 1\n", 5, err, 0));
}

/* Appends to a growing text buffer. */
struct text {
	char *buf;
	size_t len, cap;
};

static void text_add(struct text *t, const char *s)
{
	size_t n = strlen(s);

	if (t->len + n + 1 > t->cap) {
		t->cap = (t->len + n + 1) * 2;
		t->buf = realloc(t->buf, t->cap);
		assert_non_null(t->buf);
	}
	memcpy(t->buf + t->len, s, n + 1);
	t->len += n;
}

static void make_peers(struct text *t, size_t n_peers)
{
	text_add(t, BASE "peers:\n");
	for (size_t i = 0; i < n_peers; i++) {
		uint8_t key[WIRE_KEY_LEN] = { 0 };
		char b64[KEY_BASE64_LEN + 1], line[256];

		key[0] = (uint8_t)i;
		key[1] = (uint8_t)(i >> 8);
		key[2] = 1;
		key_to_base64(b64, key);
		snprintf(line, sizeof(line), "  - {name: p%zu, public_key: %s, allowed_ips: 10.%zu.%zu.0/24}\n", i, b64,
			 i >> 8, i & 0xff);
		text_add(t, line);
	}
}

static void test_limits(void **state)
{
	struct text t = { 0 };
	struct config cfg;
	char err[1024] = "", want[1024];

	make_peers(&t, CONFIG_MAX_PEERS);
	if (!parse(&cfg, t.buf, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(cfg.n_peers, CONFIG_MAX_PEERS);
	assert_string_equal(cfg.peers[CONFIG_MAX_PEERS - 1].name, "p1023");
	config_free(&cfg);
	free(t.buf);

	t = (struct text){ 0 };
	make_peers(&t, CONFIG_MAX_PEERS + 1);
	assert_false(parse(&cfg, t.buf, err, sizeof(err)));
	snprintf(want, sizeof(want), "node.yaml:%d:5: too many peers (at most %d)", CONFIG_MAX_PEERS + 4,
		 CONFIG_MAX_PEERS);
	assert_string_equal(err, want);
	free(t.buf);

	/* private_key_file: CONFIG_PATH_MAX - 1 characters fit, one more does not. */
	for (int extra = 0; extra <= 1; extra++) {
		size_t n = CONFIG_PATH_MAX - 1 + (size_t)extra;
		char *name = malloc(n + 1);

		assert_non_null(name);
		memset(name, 'k', n);
		name[n] = '\0';
		t = (struct text){ 0 };
		text_add(&t, "address: 10.0.0.1/8\nprivate_key_file: ");
		text_add(&t, name);
		text_add(&t, "\n");
		assert_int_equal(parse(&cfg, t.buf, err, sizeof(err)), !extra);
		if (extra)
			assert_string_equal(err, "node.yaml:2:19: 'private_key_file' is too long (at most 4095 characters)");
		else
			assert_int_equal(strlen(cfg.private_key_file), n);
		config_free(&cfg);
		free(name);
		free(t.buf);
	}

	/* allowed_ips: 64 entries fit, 65 do not. */
	for (int extra = 0; extra <= 1; extra++) {
		t = (struct text){ 0 };
		text_add(&t, BASE "peers:\n  - public_key: " K1 "\n    allowed_ips:\n");
		for (int i = 0; i < CONFIG_MAX_ALLOWED_IPS + extra; i++) {
			char line[64];

			snprintf(line, sizeof(line), "      - 10.0.%d.0/24\n", i);
			text_add(&t, line);
		}
		if (!extra) {
			assert_true(parse(&cfg, t.buf, err, sizeof(err)));
			assert_int_equal(cfg.peers[0].n_allowed_ips, CONFIG_MAX_ALLOWED_IPS);
			config_free(&cfg);
		} else {
			assert_false(parse(&cfg, t.buf, err, sizeof(err)));
			assert_string_equal(err, "node.yaml:70:9: 'allowed_ips' has too many entries (at most 64)");
		}
		free(t.buf);
	}
}

/* --- config_load --- */

static char tmpdir[64];

static int setup_dir(void **state)
{
	return testdir_create(tmpdir, sizeof(tmpdir), "test_config");
}

static int teardown_dir(void **state)
{
	return testdir_remove(tmpdir);
}

#define write_file testdir_write_file

static void test_load(void **state)
{
	char path[256], err[1024], want[1024];
	struct config cfg;

	snprintf(path, sizeof(path), "%s/node.yaml", tmpdir);

	/* Missing file. */
	assert_false(config_load(&cfg, path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", path);
	assert_string_equal(err, want);

	/* Errors carry the path as source name. */
	write_file(path, BASE "bogus: 1\n", strlen(BASE "bogus: 1\n"), 0644);
	assert_false(config_load(&cfg, path, err, sizeof(err)));
	snprintf(want, sizeof(want),
		 "%s:3:1: unknown key 'bogus' (expected one of: interface, private_key_file, listen_port, address, mtu, "
		 "peers, state_dir, join_key_file, control_socket, control_group, cookie_threshold, max_peers, user, log_level, dns, dns_resolved, advertise_routes, advertise_exit_node, snat_routes, exit_node, exit_node_allow_lan, publish)",
		 path);
	assert_string_equal(err, want);

	/* A relative private_key_file is relative to the config's directory. */
	write_file(path, "private_key_file: keys/node.key\naddress: 10.0.0.1/8\n", 52, 0644);
	assert_true(config_load(&cfg, path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s/keys/node.key", tmpdir);
	assert_string_equal(cfg.private_key_file, want);
	config_free(&cfg);

	/* Preshared keys in a world-readable file are refused, with the fix. */
	{
		static const char yaml[] = BASE "peers:\n  - public_key: " K1 "\n    preshared_key: " PSK
						"\n    allowed_ips: 10.0.0.0/8\n";

		write_file(path, yaml, strlen(yaml), 0644);
		assert_false(config_load(&cfg, path, err, sizeof(err)));
		snprintf(want, sizeof(want),
			 "%s: holds preshared keys but is readable by group or others (mode 0644); run: chmod 600 %s", path,
			 path);
		assert_string_equal(err, want);
		assert_null(cfg.peers);
		assert_int_equal(chmod(path, 0600), 0);
		assert_true(config_load(&cfg, path, err, sizeof(err)));
		assert_true(cfg.peers[0].has_psk);
		config_free(&cfg);
	}

	/* A directory is not a config file. */
	assert_false(config_load(&cfg, tmpdir, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: not a regular file", tmpdir);
	assert_string_equal(err, want);
	unlink(path);
}

static void test_load_too_large(void **state)
{
	char path[256], err[1024], want[1024];
	struct config cfg;
	int fd;

	snprintf(path, sizeof(path), "%s/big.yaml", tmpdir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (1 << 20) + 1), 0); /* sparse: costs no disk */
	close(fd);
	assert_false(config_load(&cfg, path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: file is too large (1048577 bytes; at most 1048576)", path);
	assert_string_equal(err, want);
	unlink(path);
}

/* A coordinator-managed node: state_dir stands in for private_key_file and address. */
static void test_state_dir_config(void **state)
{
	struct config cfg;
	char err[256];
	static const char yaml[] = "state_dir: /var/lib/meshd\njoin_key_file: /etc/meshd/join.key\n";

	assert_true(config_parse(&cfg, "node.yaml", yaml, sizeof(yaml) - 1, err, sizeof(err)));
	assert_string_equal(cfg.state_dir, "/var/lib/meshd");
	assert_string_equal(cfg.join_key_file, "/etc/meshd/join.key");
	assert_string_equal(cfg.private_key_file, "");
	assert_int_equal(cfg.n_addresses, 0);
	config_free(&cfg);

	static const char no_state[] = "join_key_file: /etc/meshd/join.key\n";
	assert_false(config_parse(&cfg, "node.yaml", no_state, sizeof(no_state) - 1, err, sizeof(err)));
	assert_string_equal(err, "node.yaml:1:1: missing required key 'private_key_file'");
}

/* The control socket: defaults by interface, an absolute path of bounded length, a group name. */
static void test_control_socket(void **state)
{
	struct config cfg;
	char err[256];
	(void)state;

	assert_true(config_parse(&cfg, "node.yaml", BASE, strlen(BASE), err, sizeof(err)));
	assert_string_equal(cfg.control_socket, "/run/meshd/mesh0.sock");
	assert_string_equal(cfg.control_group, "");
	config_free(&cfg);

	static const char named[] = BASE "interface: wg7\ncontrol_group: meshd-ops\n";
	assert_true(config_parse(&cfg, "node.yaml", named, sizeof(named) - 1, err, sizeof(err)));
	assert_string_equal(cfg.control_socket, "/run/meshd/wg7.sock");
	assert_string_equal(cfg.control_group, "meshd-ops");
	config_free(&cfg);

	static const char custom[] = BASE "control_socket: /tmp/x/m.sock\n";
	assert_true(config_parse(&cfg, "node.yaml", custom, sizeof(custom) - 1, err, sizeof(err)));
	assert_string_equal(cfg.control_socket, "/tmp/x/m.sock");
	config_free(&cfg);

	static const struct {
		const char *yaml;
		const char *err;
	} bad[] = {
		{ BASE "control_socket: run/m.sock\n",
		  "node.yaml:3:17: 'control_socket': 'run/m.sock' must be an absolute path of at most 107 bytes" },
		{ BASE "control_socket: /" "0123456789012345678901234567890123456789012345678901234567890123456789"
		       "0123456789012345678901234567890123456789\n",
		  NULL },
		{ BASE "control_group: -x\n",
		  "node.yaml:3:16: 'control_group': '-x' is not a group name (1 to 32 letters, digits, '.', '_', '-')" },
		{ BASE "control_group: a b\n", NULL },
		{ BASE "control_group: ''\n", NULL },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (config_parse(&cfg, "node.yaml", bad[i].yaml, strlen(bad[i].yaml), err, sizeof(err)))
			fail_msg("case %zu: accepted", i);
		if (bad[i].err)
			assert_string_equal(err, bad[i].err);
	}
}

static void test_example_config(void **state)
{
	/* The shipped example must always parse. */
	struct config cfg;
	char err[1024] = "";

	if (!config_load(&cfg, TEST_SRCDIR "/../../conf/meshd.yaml", err, sizeof(err)))
		fail_msg("%s", err);
	assert_string_equal(cfg.interface, "mesh0");
	assert_string_equal(cfg.private_key_file, "/etc/meshd/private.key");
	assert_true(cfg.n_addresses >= 1);
	assert_true(cfg.n_peers >= 1);
	config_free(&cfg);
}

/* publish: a list of services; defaults (tcp, no PROXY header) and every refusal. */
static void test_publish(void **state)
{
	(void)state;
	struct config cfg;
	char err[1024];

	assert_true(parse(&cfg, BASE "publish:\n"
				 "  - {name: web, local: 127.0.0.1:8080, public_port: 20080}\n"
				 "  - {name: game, local: '[::1]:27015', public_port: 20015, protocol: udp}\n"
				 "  - {name: app, local: 10.0.0.5:80, public_port: 20081, proxy_protocol: true}\n",
			  err, sizeof(err)));
	assert_int_equal(cfg.n_publish, 3);
	assert_string_equal(cfg.publish[0].name, "web");
	assert_string_equal(cfg.publish[0].local_host, "127.0.0.1");
	assert_int_equal(cfg.publish[0].local_port, 8080);
	assert_int_equal(cfg.publish[0].public_port, 20080);
	assert_int_equal(cfg.publish[0].proto, CONTROL_PROTO_TCP);
	assert_false(cfg.publish[0].proxy_protocol);
	assert_string_equal(cfg.publish[1].local_host, "::1");
	assert_int_equal(cfg.publish[1].proto, CONTROL_PROTO_UDP);
	assert_true(cfg.publish[2].proxy_protocol);
	config_free(&cfg);

	static const struct {
		const char *yaml, *err;
	} bad[] = {
		{ "  - {name: web, local: 127.0.0.1:8080}\n", "needs 'name', 'local' and 'public_port'" },
		{ "  - {name: web, local: localhost:8080, public_port: 1}\n", "'local': 'localhost:8080' is not an IP address" },
		{ "  - {name: 'a b', local: 127.0.0.1:1, public_port: 1}\n", "'name': 'a b' must be" },
		{ "  - {name: w, local: 127.0.0.1:1, public_port: 0}\n", "public_port" },
		{ "  - {name: w, local: 127.0.0.1:1, public_port: 1, protocol: sctp}\n", "'protocol': 'sctp' is not tcp or udp" },
		{ "  - {name: w, local: 127.0.0.1:1, public_port: 1, protocol: udp, proxy_protocol: true}\n",
		  "'proxy_protocol' is for tcp services only" },
		{ "  - {name: w, local: 127.0.0.1:1, public_port: 1}\n  - {name: x, local: 127.0.0.1:2, public_port: 1}\n",
		  "repeats the name or the public port of 'w'" },
		{ "  - {name: w, local: 127.0.0.1:1, public_port: 1, lokal: 1}\n", "unknown publish key 'lokal'" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char yaml[512];
		snprintf(yaml, sizeof(yaml), BASE "publish:\n%s", bad[i].yaml);
		if (parse(&cfg, yaml, err, sizeof(err)))
			fail_msg("publish case %zu accepted", i);
		if (!strstr(err, bad[i].err))
			fail_msg("publish case %zu:\n  got:  %s\n  want: ...%s...", i, err, bad[i].err);
		config_free(&cfg);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_publish),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_full_config),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_log_level),
		cmocka_unit_test(test_dns_keys),
		cmocka_unit_test(test_address_forms),
		cmocka_unit_test(test_number_forms),
		cmocka_unit_test(test_explicit_length),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_load_too_large),
		cmocka_unit_test(test_state_dir_config),
		cmocka_unit_test(test_control_socket),
		cmocka_unit_test(test_example_config),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
