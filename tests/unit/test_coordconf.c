/* Unit tests for coord/coordconf: parsed values and defaults, every kind of refusal with its
 * exact "source:line:col" message, the state file paths, and coordconf_load on real files. */
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

#include "coord/coordconf.h"

#ifndef TEST_SRCDIR
#define TEST_SRCDIR "tests/unit"
#endif

#define PUB "public_address: 203.0.113.10:51821\n"

static bool parse(struct coord_config *cfg, const char *text, char *err, size_t err_len)
{
	return coordconf_parse(cfg, "coord.yaml", text, strlen(text), err, err_len);
}

static void assert_defaults(const struct coord_config *cfg)
{
	assert_string_equal(cfg->listen_host, "0.0.0.0");
	assert_int_equal(cfg->listen_port, 51821);
	assert_string_equal(cfg->stun_host, "0.0.0.0");
	assert_int_equal(cfg->stun_port, 3478);
	assert_string_equal(cfg->stun_alt_host, "0.0.0.0");
	assert_int_equal(cfg->stun_alt_port, 3479);
	assert_false(cfg->stun_alt_explicit);
	assert_int_equal(cfg->relay_rate_limit, 12500000);
	assert_int_equal(cfg->relay_burst, 12500000);
	assert_int_equal(cfg->relay_bind_fresh_s, 35);
	assert_string_equal(cfg->state_dir, COORDCONF_DEFAULT_STATE_DIR);
}

/* metrics_listen: off by default, a bare port on loopback, an address only when written out;
 * log_level. */
static void test_metrics_and_log_level(void **state)
{
	static const struct {
		const char *yaml;
		const char *host;
		uint16_t port;
		bool has_level;
		enum log_level level;
	} cases[] = {
		{ PUB, "", 0, false, LOG_LEVEL_INFO },
		{ PUB "metrics_listen: off\n", "", 0, false, LOG_LEVEL_INFO },
		{ PUB "metrics_listen:\n", "", 0, false, LOG_LEVEL_INFO },
		{ PUB "metrics_listen: 9464\n", "127.0.0.1", 9464, false, LOG_LEVEL_INFO },
		{ PUB "metrics_listen: '[::1]:9464'\n", "::1", 9464, false, LOG_LEVEL_INFO },
		{ PUB "metrics_listen: 192.0.2.10:9100\nlog_level: debug\n", "192.0.2.10", 9100, true, LOG_LEVEL_DEBUG },
		{ PUB "log_level: error\n", "", 0, true, LOG_LEVEL_ERROR },
	};
	static const struct {
		const char *yaml, *err;
	} bad[] = {
		{ PUB "metrics_listen: 0\n", "coord.yaml:2:17: 'metrics_listen': port '0' is not from 1 to 65535" },
		{ PUB "metrics_listen: 65536\n", "coord.yaml:2:17: 'metrics_listen': port '65536' is not from 1 to 65535" },
		{ PUB "metrics_listen: localhost:9464\n",
		  "coord.yaml:2:17: 'metrics_listen': 'localhost:9464' is not an IP address and port (e.g. 127.0.0.1:9464, or [::]:9464 for IPv6 too)" },
		{ PUB "log_level: loud\n", "coord.yaml:2:12: 'log_level': 'loud' is not one of error, warn, info, debug" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct coord_config cfg;
		char err[1024];
		if (!parse(&cfg, cases[i].yaml, err, sizeof(err)))
			fail_msg("%s: %s", cases[i].yaml, err);
		assert_string_equal(cfg.metrics_host, cases[i].host);
		assert_int_equal(cfg.metrics_port, cases[i].port);
		assert_int_equal(cfg.has_log_level, cases[i].has_level);
		assert_int_equal(cfg.log_level, cases[i].level);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct coord_config cfg;
		char err[1024];
		assert_false(parse(&cfg, bad[i].yaml, err, sizeof(err)));
		if (strcmp(err, bad[i].err) != 0)
			fail_msg("got \"%s\", expected \"%s\"", err, bad[i].err);
	}
}

/* dns_domain: mesh.internal unless set; a lower-case DNS domain only. */
static void test_dns_domain(void **state)
{
	static const struct {
		const char *yaml, *want;
	} cases[] = {
		{ PUB, "mesh.internal" },
		{ PUB "dns_domain: home.arpa\n", "home.arpa" },
		{ PUB "dns_domain: corp\n", "corp" },
	};
	static const struct {
		const char *yaml, *err;
	} bad[] = {
		{ PUB "dns_domain: Mesh.Internal\n",
		  "coord.yaml:2:13: 'dns_domain': 'Mesh.Internal' is not a DNS domain in lower case: labels of a-z, 0-9 and "
		  "'-' joined by dots, at most 253 characters, no final dot (e.g. mesh.internal)" },
		{ PUB "dns_domain: mesh.internal.\n",
		  "coord.yaml:2:13: 'dns_domain': 'mesh.internal.' is not a DNS domain in lower case: labels of a-z, 0-9 and "
		  "'-' joined by dots, at most 253 characters, no final dot (e.g. mesh.internal)" },
		{ PUB "dns_domain:\n",
		  "coord.yaml:2:12: 'dns_domain': '' is not a DNS domain in lower case: labels of a-z, 0-9 and "
		  "'-' joined by dots, at most 253 characters, no final dot (e.g. mesh.internal)" },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct coord_config cfg;
		char err[1024];
		if (!parse(&cfg, cases[i].yaml, err, sizeof(err)))
			fail_msg("%s: %s", cases[i].yaml, err);
		assert_string_equal(cfg.dns_domain, cases[i].want);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct coord_config cfg;
		char err[1024];
		assert_false(parse(&cfg, bad[i].yaml, err, sizeof(err)));
		if (strcmp(err, bad[i].err) != 0)
			fail_msg("got \"%s\", expected \"%s\"", err, bad[i].err);
	}
}

/* The relay's keys and the second STUN port, whose defaults follow stun_listen. */
static void test_relay_keys(void **state)
{
	static const struct {
		const char *yaml;
		const char *alt_host;
		uint16_t alt_port;
		uint32_t rate, burst, fresh;
	} cases[] = {
		{ PUB "stun_listen: 192.0.2.10:3478\n", "192.0.2.10", 3479, 12500000, 12500000, 35 },
		{ PUB "stun_listen: 192.0.2.10:3479\n", "192.0.2.10", 3478, 12500000, 12500000, 35 },
		{ PUB "stun_listen_alt: 192.0.2.11:4000\n", "192.0.2.11", 4000, 12500000, 12500000, 35 },
		{ PUB "stun_listen_alt: off\n", "", 0, 12500000, 12500000, 35 },
		{ PUB "stun_listen_alt: ''\n", "", 0, 12500000, 12500000, 35 },
		{ PUB "stun_listen_alt:\n", "", 0, 12500000, 12500000, 35 },
		{ PUB "relay_rate_limit: 0\n", "0.0.0.0", 3479, 0, 4004, 35 },
		{ PUB "relay_rate_limit: 1000\n", "0.0.0.0", 3479, 1000, 4004, 35 },
		{ PUB "relay_rate_limit: 100000\nrelay_burst: 5000\nrelay_bind_fresh: 2\n", "0.0.0.0", 3479, 100000,
		  5000, 2 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct coord_config cfg;
		char err[256];
		if (!parse(&cfg, cases[i].yaml, err, sizeof(err)))
			fail_msg("case %zu: %s", i, err);
		assert_string_equal(cfg.stun_alt_host, cases[i].alt_host);
		assert_int_equal(cfg.stun_alt_port, cases[i].alt_port);
		assert_int_equal(cfg.relay_rate_limit, cases[i].rate);
		assert_int_equal(cfg.relay_burst, cases[i].burst);
		assert_int_equal(cfg.relay_bind_fresh_s, cases[i].fresh);
	}
	static const char *const bad[] = {
		PUB "relay_burst: 100\n",               /* below one relay frame */
		PUB "relay_rate_limit: -1\n",
		PUB "relay_rate_limit: 4294967296\n",   /* above the wire's u32 */
		PUB "relay_bind_fresh: 0\n",
		PUB "stun_listen_alt: nowhere\n",
		PUB "stun_listen_alt: 0.0.0.0:3478\n", /* the main STUN port itself */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct coord_config cfg;
		char err[256];
		if (parse(&cfg, bad[i], err, sizeof(err)))
			fail_msg("bad case %zu parsed", i);
	}
}

static void test_minimal(void **state)
{
	struct coord_config cfg;
	char err[256];

	if (!parse(&cfg, PUB, err, sizeof(err)))
		fail_msg("%s", err);
	assert_defaults(&cfg);
	assert_string_equal(cfg.public_host, "203.0.113.10");
	assert_int_equal(cfg.public_port, 51821);
	assert_string_equal(err, "");
}

static void test_values(void **state)
{
	static const struct {
		const char *yaml;
		const char *listen_host;
		uint16_t listen_port;
		const char *stun_host;
		uint16_t stun_port;
		const char *public_host;
		uint16_t public_port;
		const char *state_dir;
	} cases[] = {
		{ "listen: \"[::]:51821\"\nstun_listen: 127.0.0.1:3479\npublic_address: coord.example.net:443\n"
		  "state_dir: /srv/meshcoord\n",
		  "::", 51821, "127.0.0.1", 3479, "coord.example.net", 443, "/srv/meshcoord" },
		{ "# comment\npublic_address: '[2001:db8::10]:51821'   # trailing comment\nstate_dir: /srv/mc///\n",
		  "0.0.0.0", 51821, "0.0.0.0", 3478, "2001:db8::10", 51821, "/srv/mc" },
		{ "{public_address: 198.51.100.1:1, listen: 192.0.2.1:65535, state_dir: /}\n",
		  "192.0.2.1", 65535, "0.0.0.0", 3478, "198.51.100.1", 1, "/" },
		{ "---\nstun_listen: '[::1]:3478'\npublic_address: 203.0.113.10:51821\n...\n",
		  "0.0.0.0", 51821, "::1", 3478, "203.0.113.10", 51821, COORDCONF_DEFAULT_STATE_DIR },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct coord_config cfg;
		char err[256];

		if (!parse(&cfg, cases[i].yaml, err, sizeof(err)))
			fail_msg("case %zu: %s", i, err);
		assert_string_equal(cfg.listen_host, cases[i].listen_host);
		assert_int_equal(cfg.listen_port, cases[i].listen_port);
		assert_string_equal(cfg.stun_host, cases[i].stun_host);
		assert_int_equal(cfg.stun_port, cases[i].stun_port);
		assert_string_equal(cfg.public_host, cases[i].public_host);
		assert_int_equal(cfg.public_port, cases[i].public_port);
		assert_string_equal(cfg.state_dir, cases[i].state_dir);
	}
}

static void test_errors(void **state)
{
	static const struct {
		const char *name;
		const char *yaml;
		const char *err;
	} cases[] = {
		{ "empty", "", "coord.yaml:1:1: the configuration is empty (expected settings such as 'public_address: ...')" },
		{ "comments only", "# nothing\n\n",
		  "coord.yaml:3:1: the configuration is empty (expected settings such as 'public_address: ...')" },
		{ "a list", "- public_address\n",
		  "coord.yaml:1:1: the configuration must be a mapping of settings ('key: value' lines), not a list" },
		{ "unknown key", PUB "listn: 0.0.0.0:51821\n",
		  "coord.yaml:2:1: unknown key 'listn' (expected one of: listen, stun_listen, stun_listen_alt, public_address, state_dir, relay_rate_limit, relay_burst, relay_bind_fresh, metrics_listen, log_level, dns_domain, auto_approve_routes, policy_file, publish)" },
		{ "meshd key", PUB "listen_port: 51821\n",
		  "coord.yaml:2:1: unknown key 'listen_port' (expected one of: listen, stun_listen, stun_listen_alt, public_address, state_dir, relay_rate_limit, relay_burst, relay_bind_fresh, metrics_listen, log_level, dns_domain, auto_approve_routes, policy_file, publish)" },
		{ "duplicate", PUB "state_dir: /a\npublic_address: 203.0.113.11:51821\n",
		  "coord.yaml:3:1: duplicate key 'public_address' (first given at line 1)" },
		{ "missing public_address", "listen: 0.0.0.0:51821\n",
		  "coord.yaml:1:1: missing required key 'public_address' (the host:port nodes connect to, e.g. 203.0.113.10:51821)" },
		{ "listen name", PUB "listen: localhost:51821\n",
		  "coord.yaml:2:9: 'listen': 'localhost:51821' is not an IP address and port (e.g. 0.0.0.0:51821, or [::]:51821 for IPv6 too)" },
		{ "listen without port", PUB "listen: 0.0.0.0\n",
		  "coord.yaml:2:9: 'listen': '0.0.0.0' is not an IP address and port (e.g. 0.0.0.0:51821, or [::]:51821 for IPv6 too)" },
		{ "listen port 0", PUB "listen: 0.0.0.0:0\n",
		  "coord.yaml:2:9: 'listen': '0.0.0.0:0' is not an IP address and port (e.g. 0.0.0.0:51821, or [::]:51821 for IPv6 too)" },
		{ "listen unbracketed IPv6", PUB "listen: ::1:51821\n",
		  "coord.yaml:2:9: 'listen': '::1:51821' is not an IP address and port (e.g. 0.0.0.0:51821, or [::]:51821 for IPv6 too)" },
		{ "stun_listen bad", PUB "stun_listen: '[::1]'\n",
		  "coord.yaml:2:14: 'stun_listen': '[::1]' is not an IP address and port (e.g. 0.0.0.0:3478, or [::]:3478 for IPv6 too)" },
		{ "stun_listen list", PUB "stun_listen: [0.0.0.0:3478]\n",
		  "coord.yaml:2:14: 'stun_listen' must be a single value, not a list" },
		{ "public_address no port", "public_address: coord.example.net\n",
		  "coord.yaml:1:17: 'public_address': 'coord.example.net' is not host:port or [IPv6]:port with a port from 1 to 65535 (e.g. 203.0.113.10:51821)" },
		{ "public_address bad port", "public_address: 203.0.113.10:65536\n",
		  "coord.yaml:1:17: 'public_address': '203.0.113.10:65536' is not host:port or [IPv6]:port with a port from 1 to 65535 (e.g. 203.0.113.10:51821)" },
		{ "public_address wildcard", "public_address: 0.0.0.0:51821\n",
		  "coord.yaml:1:17: 'public_address': '0.0.0.0:51821' is not an address nodes can connect to; give this server's public address or name" },
		{ "public_address IPv6 wildcard", "public_address: '[::]:51821'\n",
		  "coord.yaml:1:17: 'public_address': '[::]:51821' is not an address nodes can connect to; give this server's public address or name" },
		{ "public_address empty", "public_address:\n",
		  "coord.yaml:1:16: 'public_address': '' is not host:port or [IPv6]:port with a port from 1 to 65535 (e.g. 203.0.113.10:51821)" },
		{ "public_address NUL", "public_address: \"a\\0b:1\"\n",
		  "coord.yaml:1:17: 'public_address' contains a NUL character" },
		{ "public_address mapping", "public_address:\n  host: a\n",
		  "coord.yaml:2:3: 'public_address' must be a single value, not a mapping" },
		{ "state_dir relative", PUB "state_dir: var/lib/meshcoord\n",
		  "coord.yaml:2:12: 'state_dir': 'var/lib/meshcoord' must be an absolute path (starting with '/')" },
		{ "state_dir home", PUB "state_dir: ~/meshcoord\n",
		  "coord.yaml:2:12: 'state_dir': '~/meshcoord' must be an absolute path (starting with '/')" },
		{ "state_dir empty", PUB "state_dir:\n", "coord.yaml:2:11: 'state_dir' must not be empty" },
		{ "two documents", PUB "---\nstate_dir: /a\n",
		  "coord.yaml:2:1: only one YAML document is allowed in the configuration" },
		{ "alias", "public_address: &a 203.0.113.10:51821\nlisten: *a\n",
		  "coord.yaml:2:9: YAML aliases (*name) are not supported in this file" },
		{ "missing colon", PUB "listen 0.0.0.0:1\nstate_dir: /a\n",
		  "coord.yaml:3:1: YAML syntax error: could not find expected ':' (while scanning a simple key at line 2, column 1)" },
		{ "unterminated quote", PUB "listen: \"0.0.0.0:1\n",
		  "coord.yaml:3:1: YAML syntax error: found unexpected end of stream (while scanning a quoted scalar at line 2, column 9)" },
		{ "tab indent", PUB "\tlisten: 0.0.0.0:1\n",
		  "coord.yaml:2:1: YAML syntax error: found a tab character that violates indentation (while scanning a plain scalar at line 1, column 17)" },
		{ "invalid UTF-8", "public_address: \xff\n", "coord.yaml:1:17: invalid input: invalid leading UTF-8 octet (byte 0xff)" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct coord_config cfg;
		char err[1024];

		if (parse(&cfg, cases[i].yaml, err, sizeof(err)))
			fail_msg("%s: accepted", cases[i].name);
		if (strcmp(err, cases[i].err) != 0)
			fail_msg("%s:\n  got      \"%s\"\n  expected \"%s\"", cases[i].name, err, cases[i].err);
		/* A refused file leaves the defaults, never half a config. */
		assert_defaults(&cfg);
		assert_string_equal(cfg.public_host, "");
	}
}

/* A long state_dir: the string limit, then the room the file names need. */
static void test_state_dir_length(void **state)
{
	static char yaml[2 * COORDCONF_PATH_MAX];
	struct coord_config cfg;
	char err[1024], want[1024];
	size_t n, d;

	/* 4095 characters fit the field, but not with "/registry.db" after them. */
	n = (size_t)snprintf(yaml, sizeof(yaml), PUB "state_dir: /");
	memset(yaml + n, 'd', COORDCONF_PATH_MAX - 2);
	yaml[n + COORDCONF_PATH_MAX - 2] = '\n';
	yaml[n + COORDCONF_PATH_MAX - 1] = '\0';
	assert_false(parse(&cfg, yaml, err, sizeof(err)));
	snprintf(want, sizeof(want), "coord.yaml:2:12: 'state_dir' is too long (the files in it need paths under %d characters)",
		 COORDCONF_PATH_MAX);
	assert_string_equal(err, want);

	/* One more and the field itself is too small. */
	yaml[n + COORDCONF_PATH_MAX - 2] = 'd';
	yaml[n + COORDCONF_PATH_MAX - 1] = '\n';
	yaml[n + COORDCONF_PATH_MAX] = '\0';
	assert_false(parse(&cfg, yaml, err, sizeof(err)));
	snprintf(want, sizeof(want), "coord.yaml:2:12: 'state_dir' is too long (at most %d characters)",
		 COORDCONF_PATH_MAX - 1);
	assert_string_equal(err, want);

	/* The longest that works: "/" + d... + "/registry.db" is 4095 characters. */
	n = (size_t)snprintf(yaml, sizeof(yaml), PUB "state_dir: /");
	d = COORDCONF_PATH_MAX - 1 - strlen("/registry.db") - 1;
	memset(yaml + n, 'd', d);
	strcpy(yaml + n + d, "\n");
	if (!parse(&cfg, yaml, err, sizeof(err)))
		fail_msg("%s", err);
	{
		char path[COORDCONF_PATH_MAX];

		assert_true(coordconf_db_path(&cfg, path, sizeof(path)));
		assert_int_equal(strlen(path), COORDCONF_PATH_MAX - 1);
	}
}

static void test_paths(void **state)
{
	static const struct {
		const char *dir;
		const char *key;
		const char *db;
	} cases[] = {
		{ "/var/lib/meshcoord", "/var/lib/meshcoord/coord.key", "/var/lib/meshcoord/registry.db" },
		{ "/", "/coord.key", "/registry.db" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct coord_config cfg;
		char yaml[256], err[256], path[COORDCONF_PATH_MAX];
		size_t need = strlen(cases[i].key) + 1;

		snprintf(yaml, sizeof(yaml), PUB "state_dir: %s\n", cases[i].dir);
		assert_true(parse(&cfg, yaml, err, sizeof(err)));
		assert_true(coordconf_key_path(&cfg, path, sizeof(path)));
		assert_string_equal(path, cases[i].key);
		assert_true(coordconf_db_path(&cfg, path, sizeof(path)));
		assert_string_equal(path, cases[i].db);
		/* Exactly enough room, then one byte short. */
		assert_true(coordconf_key_path(&cfg, path, need));
		assert_false(coordconf_key_path(&cfg, path, need - 1));
		assert_false(coordconf_db_path(&cfg, path, strlen(cases[i].db)));
		assert_false(coordconf_key_path(&cfg, path, 0));
	}
}

/* coordconf_load: the file's name in every message, and the reader's refusals. */
static void test_load(void **state)
{
	char dir[] = "/tmp/test_coordconf.XXXXXX";
	char path[256], err[512], want[1024];
	struct coord_config cfg;
	FILE *f;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/coord.yaml", dir);

	/* Missing. */
	assert_false(coordconf_load(&cfg, path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", path);
	assert_string_equal(err, want);
	assert_defaults(&cfg);

	/* Valid. */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(PUB "state_dir: /srv/meshcoord\n", f);
	fclose(f);
	if (!coordconf_load(&cfg, path, err, sizeof(err)))
		fail_msg("%s", err);
	assert_string_equal(cfg.public_host, "203.0.113.10");
	assert_string_equal(cfg.state_dir, "/srv/meshcoord");

	/* A mistake is reported against the file's path. */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(PUB "stun: 0.0.0.0:3478\n", f);
	fclose(f);
	assert_false(coordconf_load(&cfg, path, err, sizeof(err)));
	snprintf(want, sizeof(want),
		 "%s:2:1: unknown key 'stun' (expected one of: listen, stun_listen, stun_listen_alt, public_address, state_dir, relay_rate_limit, relay_burst, relay_bind_fresh, metrics_listen, log_level, dns_domain, auto_approve_routes, policy_file, publish)", path);
	assert_string_equal(err, want);

	/* Over the 1 MiB limit. */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(PUB, f);
	for (size_t i = 0; i < (1u << 20); i += 8)
		fputs("#######\n", f);
	fclose(f);
	assert_false(coordconf_load(&cfg, path, err, sizeof(err)));
	assert_non_null(strstr(err, "file is too large"));
	assert_int_equal(strncmp(err, path, strlen(path)), 0);
	unlink(path);

	/* A directory. */
	assert_int_equal(mkdir(path, 0700), 0);
	assert_false(coordconf_load(&cfg, path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: not a regular file", path);
	assert_string_equal(err, want);
	rmdir(path);
	rmdir(dir);
}

/* The shipped example must load as it is (public_address is filled in there). */
static void test_example(void **state)
{
	struct coord_config cfg;
	char err[1024];

	if (!coordconf_load(&cfg, TEST_SRCDIR "/../../conf/meshcoord.yaml", err, sizeof(err)))
		fail_msg("%s", err);
	assert_string_equal(cfg.public_host, "203.0.113.10");
	assert_int_equal(cfg.public_port, 51821);
}

/* auto_approve_routes: rules parse, and each mistake is named where it is. */
static void test_auto_approve_routes(void **state)
{
	(void)state;
	struct coord_config cfg;
	char err[1024];

	assert_true(parse(&cfg,
			  PUB "auto_approve_routes:\n"
			      "  - prefix: 192.168.0.0/16\n"
			      "    nodes: ['*']\n"
			      "  - {prefix: 0.0.0.0/0, nodes: [gw, gw-2]}\n",
			  err, sizeof(err)));
	assert_int_equal(cfg.n_auto_approve, 2);
	assert_int_equal(cfg.auto_approve[0].prefix.bits, 16);
	assert_string_equal(cfg.auto_approve[0].nodes[0], "*");
	assert_int_equal(cfg.auto_approve[1].n_nodes, 2);
	assert_string_equal(cfg.auto_approve[1].nodes[1], "gw-2");

	assert_false(parse(&cfg, PUB "auto_approve_routes:\n  - {prefix: 192.168.1.1/24, nodes: ['*']}\n", err, sizeof(err)));
	assert_non_null(strstr(err, "'prefix': '192.168.1.1/24' is not a network"));
	assert_false(parse(&cfg, PUB "auto_approve_routes:\n  - {prefix: 10.0.0.0/8}\n", err, sizeof(err)));
	assert_non_null(strstr(err, "needs 'prefix' and 'nodes'"));
	assert_false(parse(&cfg, PUB "auto_approve_routes:\n  - {prefix: 10.0.0.0/8, nodes: ['a b']}\n", err, sizeof(err)));
	assert_non_null(strstr(err, "is not a node name"));
	assert_false(parse(&cfg, PUB "auto_approve_routes: 10.0.0.0/8\n", err, sizeof(err)));
	assert_non_null(strstr(err, "must be a list of rules"));
}

/* publish: off when absent; ports as a range or one port; bind, limits, their bounds. */
static void test_publish(void **state)
{
	(void)state;
	struct coord_config cfg;
	char err[1024];

	assert_true(parse(&cfg, PUB, err, sizeof(err)));
	assert_false(cfg.publish.enabled);
	assert_true(parse(&cfg, PUB "publish:\n  ports: 20000-20099\n", err, sizeof(err)));
	assert_true(cfg.publish.enabled);
	assert_int_equal(cfg.publish.port_lo, 20000);
	assert_int_equal(cfg.publish.port_hi, 20099);
	assert_string_equal(cfg.publish.bind_host, "0.0.0.0");
	assert_int_equal(cfg.publish.max_connections, COORDCONF_PUBLISH_DEFAULT_MAX_CONNECTIONS);
	assert_int_equal(cfg.publish.idle_timeout_s, COORDCONF_PUBLISH_DEFAULT_IDLE_S);
	assert_int_equal(cfg.publish.udp_timeout_s, COORDCONF_PUBLISH_DEFAULT_UDP_IDLE_S);
	assert_true(parse(&cfg, PUB "publish: {ports: 8080, bind: '::', max_connections: 5, idle_timeout: 30, udp_timeout: 9}\n",
			  err, sizeof(err)));
	assert_int_equal(cfg.publish.port_lo, 8080);
	assert_int_equal(cfg.publish.port_hi, 8080);
	assert_string_equal(cfg.publish.bind_host, "::");
	assert_int_equal(cfg.publish.max_connections, 5);
	assert_int_equal(cfg.publish.idle_timeout_s, 30);
	assert_int_equal(cfg.publish.udp_timeout_s, 9);

	assert_false(parse(&cfg, PUB "publish: {bind: 0.0.0.0}\n", err, sizeof(err)));
	assert_non_null(strstr(err, "'publish' needs 'ports'"));
	assert_false(parse(&cfg, PUB "publish: {ports: 20099-20000}\n", err, sizeof(err)));
	assert_non_null(strstr(err, "'ports': '20099-20000' is not a port or a range"));
	assert_false(parse(&cfg, PUB "publish: {ports: 0-10}\n", err, sizeof(err)));
	assert_false(parse(&cfg, PUB "publish: {ports: 1-65536}\n", err, sizeof(err)));
	assert_false(parse(&cfg, PUB "publish: {ports: 80, bind: example.org}\n", err, sizeof(err)));
	assert_non_null(strstr(err, "'bind': 'example.org' is not an IP address"));
	assert_false(parse(&cfg, PUB "publish: {ports: 80, max_connections: 0}\n", err, sizeof(err)));
	assert_false(parse(&cfg, PUB "publish: {ports: 80, prots: 1}\n", err, sizeof(err)));
	assert_non_null(strstr(err, "unknown publish key 'prots'"));
	assert_false(parse(&cfg, PUB "publish: 20000-20099\n", err, sizeof(err)));
	assert_non_null(strstr(err, "'publish' must be a mapping"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_relay_keys),
		cmocka_unit_test(test_metrics_and_log_level),
		cmocka_unit_test(test_dns_domain),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_auto_approve_routes),
		cmocka_unit_test(test_publish),
		cmocka_unit_test(test_state_dir_length),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_example),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
