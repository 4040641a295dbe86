/* Unit tests for coord/admin, meshcoord's authkey and nodes subcommands: --expires parsing,
 * the command line, and what each action prints (stdout, one line on stderr) and returns, on a
 * real registry in a temporary directory. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <fcntl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "coord/admin.h"
#include "coord/db.h"
#include "core/joinkey.h"
#include "db_fixtures.h"

enum {
	OUTPUT_MAX = 1 << 16, /* one call's stdout or stderr: a list of a few keys and nodes */
};

/* ------------------------------------------------------------------ helpers */

/* Runs fn with stdout and stderr captured into out/err. */
struct captured {
	char out[OUTPUT_MAX];
	char err[OUTPUT_MAX];
	int rc;
};

static void read_file(int fd, char *buf, size_t cap)
{
	ssize_t r = pread(fd, buf, cap - 1, 0);
	buf[r > 0 ? r : 0] = '\0';
}

static void capture(struct captured *c, int (*fn)(void *), void *arg)
{
	char out_path[TEST_PATH_MAX], err_path[TEST_PATH_MAX];
	snprintf(out_path, sizeof(out_path), "%s/stdout", tmpdir);
	snprintf(err_path, sizeof(err_path), "%s/stderr", tmpdir);
	int out_fd = open(out_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	int err_fd = open(err_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	assert_true(out_fd >= 0 && err_fd >= 0);
	fflush(stdout);
	fflush(stderr);
	int saved_out = dup(STDOUT_FILENO), saved_err = dup(STDERR_FILENO);
	dup2(out_fd, STDOUT_FILENO);
	dup2(err_fd, STDERR_FILENO);
	c->rc = fn(arg);
	fflush(stdout);
	fflush(stderr);
	dup2(saved_out, STDOUT_FILENO);
	dup2(saved_err, STDERR_FILENO);
	close(saved_out);
	close(saved_err);
	read_file(out_fd, c->out, sizeof(c->out));
	read_file(err_fd, c->err, sizeof(c->err));
	close(out_fd);
	close(err_fd);
}

struct admin_call {
	struct db *db;
	const struct coord_config *cfg;
	const uint8_t *coord_public;
	bool nodes;
	bool routes;
	bool publish;
	bool satellite;
	char *argv[12];
};

static int run_admin(void *arg)
{
	struct admin_call *a = arg;
	int argc = 0;
	while (a->argv[argc])
		argc++;
	if (a->satellite)
		return admin_satellite(a->db, a->cfg, argc, a->argv);
	if (a->routes)
		return admin_routes(a->db, argc, a->argv);
	if (a->publish)
		return admin_publish(a->db, a->cfg, argc, a->argv);
	if (a->nodes)
		return admin_nodes(a->db, argc, a->argv);
	return admin_authkey(a->db, a->cfg, a->coord_public, argc, a->argv);
}

#define ADMIN(cap, call_db, is_nodes, ...)                                                               \
	do {                                                                                             \
		struct admin_call call_ = { .db = (call_db), .cfg = &cfg, .coord_public = coord_public,  \
					    .nodes = (is_nodes), .argv = { __VA_ARGS__, NULL } };        \
		capture((cap), run_admin, &call_);                                                       \
	} while (0)

static void test_duration_parse(void **state)
{
	static const struct {
		const char *s;
		bool ok;
		int64_t seconds;
	} cases[] = {
		{ "30m", true, 1800 },     { "24h", true, 86400 },   { "7d", true, 604800 },
		{ "3600s", true, 3600 },   { "1s", true, 1 },        { "3650d", true, 3650 * 86400 },
		{ "3651d", false, 0 },     { "0s", false, 0 },       { "0d", false, 0 },
		{ "", false, 0 },          { "h", false, 0 },        { "10", false, 0 },
		{ "10x", false, 0 },       { "10hh", false, 0 },     { "1h30m", false, 0 },
		{ "-5m", false, 0 },       { "+5m", false, 0 },      { " 5m", false, 0 },
		{ "5m ", false, 0 },       { "5 m", false, 0 },      { "5M", false, 0 },
		{ "99999999999999999999999d", false, 0 },            { "315360001s", false, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t s = -1;
		bool ok = admin_duration_parse(cases[i].s, &s);
		if (ok != cases[i].ok || (ok && s != cases[i].seconds))
			fail_msg("'%s': got %d/%" PRId64, cases[i].s, ok, s);
	}
	assert_false(admin_duration_parse(NULL, &(int64_t){ 0 }));
}

static void test_admin_command_line(void **state)
{
	char *help1[] = { "authkey", "--help", NULL };
	char *help2[] = { "nodes", NULL };
	char *help3[] = { "authkey", "create", "-h", NULL };
	char *work1[] = { "authkey", "list", NULL };
	char *work2[] = { "nodes", "-c", "/x.yaml", "list", NULL };
	char *bad[] = { "nodes", "--bogus", "list", NULL };
	char *cfg1[] = { "authkey", "create", "--config=/etc/a.yaml", NULL };
	char *cfg2[] = { "authkey", "-c/etc/b.yaml", "list", NULL };
	char *cfg3[] = { "authkey", "--", "-c", NULL };

	assert_true(admin_wants_help(2, help1));
	assert_true(admin_wants_help(1, help2));
	assert_true(admin_wants_help(3, help3));
	assert_false(admin_wants_help(2, work1));
	assert_false(admin_wants_help(4, work2));
	assert_false(admin_wants_help(3, bad));
	assert_string_equal(admin_config_path(4, work2), "/x.yaml");
	assert_string_equal(admin_config_path(3, cfg1), "/etc/a.yaml");
	assert_string_equal(admin_config_path(3, cfg2), "/etc/b.yaml");
	assert_null(admin_config_path(3, cfg3));
	assert_null(admin_config_path(2, work1));
}

static void test_admin(void **state)
{
	struct coord_config cfg;
	uint8_t coord_public[WIRE_KEY_LEN];
	struct captured *c = calloc(1, sizeof(*c));
	struct db *db = open_db();
	struct joinkey k;
	char err[ERR_MAX];

	assert_non_null(c);
	memset(&cfg, 0, sizeof(cfg));
	snprintf(cfg.public_host, sizeof(cfg.public_host), "203.0.113.7");
	cfg.public_port = 51821;
	random_key(coord_public);

	/* Help works without a database. */
	struct admin_call help = { .argv = { "authkey", "--help", NULL } };
	capture(c, run_admin, &help);
	assert_int_equal(c->rc, 0);
	assert_non_null(strstr(c->out, "Usage: meshcoord authkey"));
	struct admin_call nhelp = { .nodes = true, .argv = { "nodes", "--help", NULL } };
	capture(c, run_admin, &nhelp);
	assert_int_equal(c->rc, 0);
	assert_non_null(strstr(c->out, "Usage: meshcoord nodes"));

	/* create: the key on stdout, one note line on stderr. */
	ADMIN(c, db, false, "authkey", "create", "-c", "/ignored.yaml");
	assert_int_equal(c->rc, 0);
	assert_non_null(strstr(c->err, "created one-time join key 1, never expires"));
	assert_non_null(strchr(c->err, '\n'));
	assert_null(strchr(strchr(c->err, '\n') + 1, '\n'));
	assert_true(strncmp(c->out, JOINKEY_PREFIX, strlen(JOINKEY_PREFIX)) == 0);
	if (!joinkey_parse(c->out, strlen(c->out), &k, err, sizeof(err)))
		fail_msg("joinkey_parse: %s", err);
	assert_memory_equal(k.coord_public, coord_public, WIRE_KEY_LEN);
	assert_string_equal(k.host, "203.0.113.7");
	assert_int_equal(k.port, 51821);
	uint8_t node[WIRE_KEY_LEN];
	random_key(node);
	assert_int_equal(reg(db, node, k.secret, "admin-test", NOW, NULL), DB_REGISTER_OK);
	joinkey_clear(&k);

	ADMIN(c, db, false, "authkey", "create", "--reusable", "--expires", "7d");
	assert_int_equal(c->rc, 0);
	assert_non_null(strstr(c->err, "created reusable join key 2, expires 20"));
	ADMIN(c, db, false, "authkey", "create", "--expires=1s", "--reusable");
	assert_int_equal(c->rc, 0);
	/* Key 4 expired ten seconds ago (the admin reads the real clock). */
	assert_true(db_authkey_create(db, true, (int64_t)time(NULL) - 10, NOW, (uint8_t[JOINKEY_SECRET_LEN]){ 0 },
				      &(int64_t){ 0 }));

	ADMIN(c, db, false, "authkey", "revoke", "2");
	assert_int_equal(c->rc, 0);
	assert_non_null(strstr(c->err, "revoked join key 2"));
	ADMIN(c, db, false, "authkey", "list");
	assert_int_equal(c->rc, 0);
	assert_non_null(strstr(c->out, "ID"));
	assert_non_null(strstr(c->out, "STATUS"));
	assert_non_null(strstr(c->out, "1      one-time"));
	assert_non_null(strstr(c->out, "used     1"));
	assert_non_null(strstr(c->out, "revoked  0"));
	assert_non_null(strstr(c->out, "expired  0"));
	assert_non_null(strstr(c->out, "Z "));        /* ISO-8601 UTC times */
	assert_non_null(strstr(c->out, " never "));   /* key 1 never expires */

	/* Errors: one line, non-zero. */
	static const struct {
		const char *argv[5];
		int rc;
		const char *needle;
	} errors[] = {
		{ { "authkey", "revoke", "99" }, 1, "no join key with ID 99" },
		{ { "authkey", "revoke", "x1" }, ADMIN_EXIT_USAGE, "'x1' is not a key ID" },
		{ { "authkey", "revoke" }, ADMIN_EXIT_USAGE, "needs exactly one key ID" },
		{ { "authkey", "create", "--expires", "3 days" }, ADMIN_EXIT_USAGE, "bad --expires '3 days'" },
		{ { "authkey", "create", "--expires" }, ADMIN_EXIT_USAGE, "needs a value" },
		{ { "authkey", "create", "--expires", "1h", "--expires" }, ADMIN_EXIT_USAGE, "needs a value" },
		{ { "authkey", "list", "--reusable" }, ADMIN_EXIT_USAGE, "options of 'create'" },
		{ { "authkey", "list", "extra" }, ADMIN_EXIT_USAGE, "takes no arguments" },
		{ { "authkey", "frobnicate" }, ADMIN_EXIT_USAGE, "unknown action 'frobnicate'" },
		{ { "authkey", "--reus", "create" }, ADMIN_EXIT_USAGE, "unknown option '--reus'" },
		{ { "authkey" }, ADMIN_EXIT_USAGE, "Usage: meshcoord authkey" },
		{ { "nodes", "remove", "ghost" }, 1, "no node named 'ghost'" },
		{ { "nodes", "remove" }, ADMIN_EXIT_USAGE, "needs exactly one node NAME" },
		{ { "nodes", "delete", "x" }, ADMIN_EXIT_USAGE, "unknown action 'delete'" },
		{ { "nodes", "list", "--expires", "1h" }, ADMIN_EXIT_USAGE, "belong to 'meshcoord authkey create'" },
	};
	for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
		struct admin_call call = { .db = db, .cfg = &cfg, .coord_public = coord_public,
					   .nodes = strcmp(errors[i].argv[0], "nodes") == 0 };
		for (int j = 0; j < 5 && errors[i].argv[j]; j++)
			call.argv[j] = (char *)errors[i].argv[j];
		capture(c, run_admin, &call);
		if (c->rc != errors[i].rc || !strstr(c->err, errors[i].needle))
			fail_msg("error case %zu: rc %d, stderr '%s'", i, c->rc, c->err);
		assert_string_equal(c->out, "");
		if (errors[i].argv[1]) /* one line, except the usage text for no action */
			assert_int_equal(strchr(c->err, '\n') - c->err + 1, (long)strlen(c->err));
	}

	/* A config without public_host cannot make keys. */
	struct coord_config empty;
	memset(&empty, 0, sizeof(empty));
	struct admin_call nohost = { .db = db, .cfg = &empty, .coord_public = coord_public,
				     .argv = { "authkey", "create", NULL } };
	capture(c, run_admin, &nohost);
	assert_int_equal(c->rc, 1);
	assert_non_null(strstr(c->err, "public_host"));

	/* nodes list and remove. */
	struct control_endpoint eps[2] = {
		{ .family = 4, .addr = { 198, 51, 100, 1 }, .port = 51820 },
		{ .family = 6, .addr = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 }, .port = 4000 },
	};
	assert_true(db_node_set_endpoints(db, node, eps, 2));
	assert_true(db_node_touch(db, node, (int64_t)time(NULL)));
	uint8_t idle[WIRE_KEY_LEN];
	uint8_t secret[JOINKEY_SECRET_LEN];
	random_key(idle);
	make_key(db, false, 0, secret, NULL);
	assert_int_equal(reg(db, idle, secret, "idle", (int64_t)time(NULL) - 3600, NULL), DB_REGISTER_OK);

	ADMIN(c, db, true, "nodes", "list");
	assert_int_equal(c->rc, 0);
	assert_non_null(strstr(c->out, "NAME"));
	assert_non_null(strstr(c->out, "LAST SEEN"));
	const char *row = strstr(c->out, "admin-test");
	assert_non_null(row);
	assert_non_null(strstr(row, "100.64.0.1 "));
	assert_non_null(strstr(row, " yes "));
	assert_non_null(strstr(row, "198.51.100.1:51820,[2001:db8::1]:4000"));
	row = strstr(c->out, "idle");
	assert_non_null(row);
	assert_non_null(strstr(row, " no "));
	assert_non_null(strstr(row, " -\n"));

	ADMIN(c, db, true, "nodes", "remove", "admin-test");
	assert_int_equal(c->rc, 0);
	assert_non_null(strstr(c->err, "removed node 'admin-test' (100.64.0.1)"));
	assert_int_equal(reg(db, node, NULL, "x", NOW, NULL), DB_REGISTER_NODE_REMOVED);
	ADMIN(c, db, true, "nodes", "list");
	assert_null(strstr(c->out, "admin-test"));

	db_close(db);
	free(c);
}

#define ROUTES(cap, call_db, ...)                                                                        \
	do {                                                                                             \
		struct admin_call call_ = { .db = (call_db), .routes = true, .argv = { __VA_ARGS__, NULL } }; \
		capture((cap), run_admin, &call_);                                                       \
	} while (0)

/* meshcoord routes: approve (with the collision checks), list, revoke, and their mistakes. */
static void test_admin_routes(void **state)
{
	struct captured *c = calloc(1, sizeof(*c));
	struct db *db = open_db();
	uint8_t secret[JOINKEY_SECRET_LEN], k1[WIRE_KEY_LEN], k2[WIRE_KEY_LEN];
	(void)state;

	assert_non_null(c);
	make_key(db, true, 0, secret, NULL);
	random_key(k1);
	random_key(k2);
	assert_int_equal(reg(db, k1, secret, "gw", NOW, NULL), DB_REGISTER_OK);
	assert_int_equal(reg(db, k2, secret, "gw2", NOW, NULL), DB_REGISTER_OK);

	ROUTES(c, NULL, "routes", "--help");
	assert_int_equal(c->rc, 0);
	assert_non_null(strstr(c->out, "Usage: meshcoord routes"));
	ROUTES(c, db, "routes", "approve", "gw", "10.9.0.0/16", "-c", "/ignored.yaml");
	assert_int_equal(c->rc, 0);
	assert_non_null(strstr(c->err, "approved 10.9.0.0/16 for gw"));
	ROUTES(c, db, "routes", "approve", "gw2", "10.9.1.0/24");
	assert_int_equal(c->rc, 1);
	assert_non_null(strstr(c->err, "not approving 10.9.1.0/24 for gw2: it overlaps a route already approved for another node"));
	ROUTES(c, db, "routes", "approve", "gw2", "100.64.5.0/24");
	assert_int_equal(c->rc, 1);
	assert_non_null(strstr(c->err, "overlaps the mesh's own addresses"));
	ROUTES(c, db, "routes", "approve", "gw", "exit");
	assert_int_equal(c->rc, 0);
	assert_non_null(strstr(c->err, "approved 0.0.0.0/0 for gw"));
	assert_non_null(strstr(c->err, "approved ::/0 for gw"));
	ROUTES(c, db, "routes", "approve", "gw2", "exit"); /* two exits: clients pick one */
	assert_int_equal(c->rc, 0);
	ROUTES(c, db, "routes", "approve", "gw", "10.9.0.1/16");
	assert_int_equal(c->rc, ADMIN_EXIT_USAGE);
	ROUTES(c, db, "routes", "approve", "nobody", "10.7.0.0/16");
	assert_int_equal(c->rc, 1);

	ROUTES(c, db, "routes", "list");
	assert_int_equal(c->rc, 0);
	assert_non_null(strstr(c->out, "NODE"));
	assert_non_null(strstr(c->out, "10.9.0.0/16"));
	assert_non_null(strstr(c->out, "approved"));
	ROUTES(c, db, "routes", "list", "--json");
	assert_int_equal(c->rc, 0);
	assert_non_null(strstr(c->out, "{\"node\": \"gw\", \"prefix\": \"10.9.0.0/16\", \"exit\": false, "
					"\"advertised\": false, \"approved\": true, \"state\": \"approved\"}"));

	ROUTES(c, db, "routes", "revoke", "gw", "10.9.0.0/16");
	assert_int_equal(c->rc, 0);
	ROUTES(c, db, "routes", "revoke", "gw", "10.9.0.0/16");
	assert_int_equal(c->rc, 1);
	assert_non_null(strstr(c->err, "has no approved 10.9.0.0/16 to revoke"));
	ROUTES(c, db, "routes", "approve", "gw2", "10.9.1.0/24"); /* free now */
	assert_int_equal(c->rc, 0);
	ROUTES(c, db, "routes", "bogus");
	assert_int_equal(c->rc, ADMIN_EXIT_USAGE);
	db_close(db);
	free(c);
}

/* meshcoord satellite: add (the endpoint it picks or refuses, the file it prints), config,
 * list, remove, and their mistakes. */
#define SAT(cap, call_db, ...)                                                                           \
	do {                                                                                             \
		struct admin_call call_ = { .db = (call_db), .cfg = &cfg, .satellite = true,             \
					    .argv = { "satellite", __VA_ARGS__, NULL } };                \
		capture((cap), run_admin, &call_);                                                       \
	} while (0)

static void test_admin_satellites(void **state)
{
	struct captured *c = calloc(1, sizeof(*c));
	struct db *db = open_db();
	struct coord_config cfg;
	uint8_t secret[JOINKEY_SECRET_LEN], gk[WIRE_KEY_LEN];
	(void)state;

	assert_non_null(c);
	memset(&cfg, 0, sizeof(cfg));
	strcpy(cfg.dns_domain, "mesh.internal");
	make_key(db, true, 0, secret, NULL);
	random_key(gk);
	assert_int_equal(reg(db, gk, secret, "gw", NOW, NULL), DB_REGISTER_OK);

	SAT(c, NULL, "--help");
	assert_int_equal(c->rc, 0);
	assert_non_null(strstr(c->out, "Usage: meshcoord satellite"));
	SAT(c, db, "add", "phone");
	assert_int_equal(c->rc, ADMIN_EXIT_USAGE);
	assert_non_null(strstr(c->err, "--via"));
	/* no endpoint known, then only a private one: refused, nothing stored */
	SAT(c, db, "add", "phone", "--via", "gw");
	assert_int_equal(c->rc, 1);
	assert_non_null(strstr(c->err, "gateway gw has reported no public address; give --endpoint"));
	struct control_endpoint eps[2] = { { .family = 4, .addr = { 10, 0, 0, 2 }, .port = 51820 },
					   { .family = 4, .addr = { 192, 0, 2, 7 }, .port = 41641 } };
	assert_true(db_node_set_endpoints(db, gk, eps, 1));
	SAT(c, db, "add", "phone", "--via", "gw");
	assert_int_equal(c->rc, 1);
	SAT(c, db, "list");
	assert_null(strstr(c->out, "phone"));
	/* a public candidate (the NAT's mapping: a note says so) */
	assert_true(db_node_set_endpoints(db, gk, eps, 2));
	SAT(c, db, "add", "phone", "--via", "gw", "--tag", "tag:mobile");
	assert_int_equal(c->rc, 0);
	assert_non_null(strstr(c->err, "shown this once"));
	assert_non_null(strstr(c->err, "note: gateway gw is behind a NAT"));
	assert_non_null(strstr(c->out, "\nPrivateKey = "));
	assert_non_null(strstr(c->out, "\nAddress = 100.64.0.2/32, fd"));
	assert_non_null(strstr(c->out, "\nDNS = 100.100.100.100, mesh.internal\n"));
	assert_non_null(strstr(c->out, "\nPresharedKey = "));
	assert_non_null(strstr(c->out, "\nEndpoint = 192.0.2.7:41641\n"));
	assert_non_null(strstr(c->out, "\nAllowedIPs = 100.64.0.0/10, fd"));
	assert_non_null(strstr(c->out, "\nPersistentKeepalive = 25\n"));
	SAT(c, db, "config", "phone");
	assert_int_equal(c->rc, 1);
	assert_non_null(strstr(c->err, "shown once"));
	assert_null(strstr(c->out, "PrivateKey"));
	/* the device's own key, and an endpoint given */
	SAT(c, db, "add", "tablet", "--via", "gw", "--public-key", "bad");
	assert_int_equal(c->rc, ADMIN_EXIT_USAGE);
	SAT(c, db, "add", "tablet", "--via", "gw", "--endpoint", "nope");
	assert_int_equal(c->rc, ADMIN_EXIT_USAGE);
	SAT(c, db, "add", "tablet", "--via", "gw", "--public-key", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
	assert_int_equal(c->rc, ADMIN_EXIT_USAGE); /* all zero: no key */
	SAT(c, db, "add", "tablet", "--via", "gw", "--public-key", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
	    "--endpoint", "[2001:db8::1]:51820");
	assert_int_equal(c->rc, 0);
	assert_non_null(strstr(c->out, "\n# PrivateKey = (the private key made on the device"));
	assert_non_null(strstr(c->out, "\nEndpoint = [2001:db8::1]:51820\n"));
	SAT(c, db, "config", "tablet");
	assert_int_equal(c->rc, 0);
	assert_non_null(strstr(c->out, "\nEndpoint = [2001:db8::1]:51820\n"));
	SAT(c, db, "add", "tablet", "--via", "gw");
	assert_int_equal(c->rc, ADMIN_EXIT_USAGE);
	assert_non_null(strstr(c->err, "is taken"));
	SAT(c, db, "list", "--json");
	assert_int_equal(c->rc, 0);
	assert_non_null(strstr(c->out, "\"name\": \"phone\", \"gateway\": \"gw\", \"ipv4\": \"100.64.0.2\""));
	assert_non_null(strstr(c->out, "\"tags\": \"tag:mobile\""));
	assert_null(strstr(c->out, "PresharedKey")); /* no secret in a listing */
	SAT(c, db, "remove", "phone");
	assert_int_equal(c->rc, 0);
	SAT(c, db, "remove", "phone");
	assert_int_equal(c->rc, 1);
	SAT(c, db, "bogus");
	assert_int_equal(c->rc, ADMIN_EXIT_USAGE);
	db_close(db);
	free(c);
}

#define PUBLISH(cap, call_db, call_cfg, ...)                                                             \
	do {                                                                                             \
		struct admin_call call_ = { .db = (call_db), .cfg = (call_cfg), .publish = true,           \
					    .argv = { __VA_ARGS__, NULL } };                             \
		capture((cap), run_admin, &call_);                                                       \
	} while (0)

/* Writes the server's status file into tmpdir, dated `written`. */
static void write_status(long long written, const char *rows)
{
	char path[TEST_PATH_MAX + 32];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, PUBLISH_STATUS_FILE);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "# meshcoord publish status v1 written %lld\n%s", written, rows);
	assert_int_equal(fclose(f), 0);
}

/* meshcoord publish: allow inside the range only, one node per port, list with and without
 * the server's status file (fresh, stale, malformed lines skipped), revoke, and mistakes. */
static void test_admin_publish(void **state)
{
	struct captured *c = calloc(1, sizeof(*c));
	struct db *db = open_db();
	struct coord_config cfg, off;
	uint8_t secret[JOINKEY_SECRET_LEN], k1[WIRE_KEY_LEN], k2[WIRE_KEY_LEN];
	(void)state;

	assert_non_null(c);
	memset(&cfg, 0, sizeof(cfg));
	cfg.publish.enabled = true;
	cfg.publish.port_lo = 20000;
	cfg.publish.port_hi = 20099;
	snprintf(cfg.publish.bind_host, sizeof(cfg.publish.bind_host), "0.0.0.0");
	snprintf(cfg.state_dir, sizeof(cfg.state_dir), "%s", tmpdir);
	off = cfg;
	off.publish.enabled = false;
	make_key(db, true, 0, secret, NULL);
	random_key(k1);
	random_key(k2);
	assert_int_equal(reg(db, k1, secret, "home", NOW, NULL), DB_REGISTER_OK);
	assert_int_equal(reg(db, k2, secret, "other", NOW, NULL), DB_REGISTER_OK);

	PUBLISH(c, NULL, NULL, "publish", "--help");
	assert_int_equal(c->rc, 0);
	assert_non_null(strstr(c->out, "Usage: meshcoord publish"));
	PUBLISH(c, db, &cfg, "publish", "allow", "home", "20080", "-c", "/ignored.yaml");
	assert_int_equal(c->rc, 0);
	assert_non_null(strstr(c->err, "allowed publishing tcp/20080 for home"));
	PUBLISH(c, db, &cfg, "publish", "allow", "home", "20080", "--protocol", "udp");
	assert_int_equal(c->rc, 0);
	PUBLISH(c, db, &cfg, "publish", "allow", "other", "20080");
	assert_int_equal(c->rc, 1);
	assert_non_null(strstr(c->err, "tcp/20080 is granted to home; revoke it there first"));
	PUBLISH(c, db, &cfg, "publish", "allow", "home", "20100");
	assert_int_equal(c->rc, 1);
	assert_non_null(strstr(c->err, "port 20100 is outside 'publish: ports' (20000-20099)"));
	PUBLISH(c, db, &off, "publish", "allow", "home", "20081");
	assert_int_equal(c->rc, 1);
	assert_non_null(strstr(c->err, "publishing is off"));
	PUBLISH(c, db, &cfg, "publish", "allow", "home", "0");
	assert_int_equal(c->rc, ADMIN_EXIT_USAGE);
	PUBLISH(c, db, &cfg, "publish", "allow", "home", "20081", "--protocol", "sctp");
	assert_int_equal(c->rc, ADMIN_EXIT_USAGE);
	PUBLISH(c, db, &cfg, "publish", "allow", "nobody", "20081");
	assert_int_equal(c->rc, 1);
	assert_non_null(strstr(c->err, "no node named 'nobody'"));

	/* no status file: grants only, and a line saying the live state is unknown */
	PUBLISH(c, db, &cfg, "publish", "list");
	assert_int_equal(c->rc, 0);
	assert_non_null(strstr(c->out, "live state unknown"));
	assert_non_null(strstr(c->out, "granted"));
	/* a fresh file: its counts; a malformed line is skipped */
	write_status((long long)time(NULL),
		     "home\ttcp\t20080\tweb\t0.0.0.0\t3\t17\t100\t2000\n"
		     "garbage line\n"
		     "home\tudp\t99999\tx\t0.0.0.0\t1\t1\t1\t1\n");
	PUBLISH(c, db, &cfg, "publish", "list");
	assert_int_equal(c->rc, 0);
	assert_null(strstr(c->out, "live state unknown"));
	assert_non_null(strstr(c->out, "web              published     3      17          100         2000"));
	PUBLISH(c, db, &cfg, "publish", "list", "--json");
	assert_int_equal(c->rc, 0);
	assert_non_null(strstr(c->out, "{\"node\": \"home\", \"protocol\": \"tcp\", \"port\": 20080, \"service\": \"web\", "
					"\"published\": true, \"connections\": 3, \"total\": 17, \"bytes_in\": 100, \"bytes_out\": 2000}"));
	assert_non_null(strstr(c->out, "\"status_known\": true"));
	/* a stale file (a stopped server's) is not believed */
	write_status((long long)time(NULL) - 3600, "home\ttcp\t20080\tweb\t0.0.0.0\t3\t17\t100\t2000\n");
	PUBLISH(c, db, &cfg, "publish", "list");
	assert_non_null(strstr(c->out, "live state unknown"));
	assert_null(strstr(c->out, "published"));

	PUBLISH(c, db, &cfg, "publish", "revoke", "home", "20080");
	assert_int_equal(c->rc, 0);
	PUBLISH(c, db, &cfg, "publish", "revoke", "home", "20080");
	assert_int_equal(c->rc, 1);
	assert_non_null(strstr(c->err, "home holds no grant for tcp/20080"));
	PUBLISH(c, db, &cfg, "publish", "allow", "other", "20080"); /* free now */
	assert_int_equal(c->rc, 0);
	PUBLISH(c, db, &cfg, "publish", "bogus");
	assert_int_equal(c->rc, ADMIN_EXIT_USAGE);
	db_close(db);
	free(c);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_parse),
		cmocka_unit_test(test_admin_command_line),
		cmocka_unit_test_setup_teardown(test_admin, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_admin_routes, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_admin_publish, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_admin_satellites, setup_dir, teardown_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
