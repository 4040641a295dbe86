/* Unit tests for core/keys: base64 encoding, key derivation, key file reading and writing. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "testdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/keys.h"

/* RFC 7748 section 6.1: Alice's key pair. */
static const uint8_t rfc7748_priv[WIRE_KEY_LEN] = {
	0x77, 0x07, 0x6d, 0x0a, 0x73, 0x18, 0xa5, 0x7d, 0x3c, 0x16, 0xc1, 0x72, 0x51, 0xb2, 0x66, 0x45,
	0xdf, 0x4c, 0x2f, 0x87, 0xeb, 0xc0, 0x99, 0x2a, 0xb1, 0x77, 0xfb, 0xa5, 0x1d, 0xb9, 0x2c, 0x2a,
};
static const uint8_t rfc7748_pub[WIRE_KEY_LEN] = {
	0x85, 0x20, 0xf0, 0x09, 0x89, 0x30, 0xa7, 0x54, 0x74, 0x8b, 0x7d, 0xdc, 0xb4, 0x3e, 0xf7, 0x5a,
	0x0d, 0xbf, 0x3a, 0x0d, 0x26, 0x38, 0x1a, 0xf4, 0xeb, 0xa4, 0xa9, 0x8e, 0xaa, 0x9b, 0x4e, 0x6a,
};
/* base64 of rfc7748_priv */
static const char rfc7748_priv_b64[] = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=";

enum { TEST_PATH_MAX = 256, TEST_MSG_MAX = 1024 }; /* small, so snprintf cannot truncate */

static char tmpdir[64];

static int setup_dir(void **state)
{
	return testdir_create(tmpdir, sizeof(tmpdir), "test_keys");
}

static int teardown_dir(void **state)
{
	return testdir_remove(tmpdir);
}

static void path_in_dir(char *out, size_t cap, const char *name)
{
	assert_true((size_t)snprintf(out, cap, "%s/%s", tmpdir, name) < cap);
}

#define write_file testdir_write_file

static size_t count_dir_entries(void)
{
	DIR *d = opendir(tmpdir);
	struct dirent *e;
	size_t n = 0;

	assert_non_null(d);
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			n++;
	}
	closedir(d);
	return n;
}

static void test_base64_round_trip(void **state)
{
	for (int i = 0; i < 32; i++) {
		uint8_t key[WIRE_KEY_LEN], back[WIRE_KEY_LEN];
		char b64[KEY_BASE64_LEN + 1];

		randombytes_buf(key, sizeof(key));
		key_to_base64(b64, key);
		assert_int_equal(strlen(b64), KEY_BASE64_LEN);
		assert_int_equal(b64[KEY_BASE64_LEN - 1], '=');
		assert_true(key_from_base64(back, b64, strlen(b64)));
		assert_memory_equal(key, back, WIRE_KEY_LEN);
	}
}

static void test_base64_known(void **state)
{
	uint8_t key[WIRE_KEY_LEN];
	char b64[KEY_BASE64_LEN + 1];

	key_to_base64(b64, rfc7748_priv);
	assert_string_equal(b64, rfc7748_priv_b64);
	assert_true(key_from_base64(key, rfc7748_priv_b64, KEY_BASE64_LEN));
	assert_memory_equal(key, rfc7748_priv, WIRE_KEY_LEN);
}

static void test_base64_table(void **state)
{
	static const struct {
		const char *in;
		bool ok;
	} cases[] = {
		{ "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=", true },
		{ "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=\n", true },    /* file with newline */
		{ "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo= \t\r\n", true }, /* trailing whitespace */
		{ "", false },
		{ "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo", false },      /* padding missing */
		{ "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LC=", false },      /* 43 characters */
		{ "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo==", false },    /* extra padding */
		{ " dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=", false },    /* leading space */
		{ "dwdtCnMYpX08FsFyUbJm Rd9ML4frwJkqsXf7pR25LCo=", false },    /* space inside */
		{ "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCp=", false },     /* non-zero padding bits */
		{ "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=x", false },    /* trailing junk */
		{ "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=\nAAAA", false }, /* a second line */
		{ "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=\ndwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=\n",
		  false },                                                     /* two keys */
		{ "dwdt-nMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=", false },     /* URL-safe alphabet */
		{ "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", false }, /* 36 bytes */
		{ "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==", false },     /* 31 bytes */
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t key[WIRE_KEY_LEN];

		memset(key, 0xaa, sizeof(key));
		if (key_from_base64(key, cases[i].in, strlen(cases[i].in)) != cases[i].ok)
			fail_msg("case %zu: '%s' expected %s", i, cases[i].in, cases[i].ok ? "ok" : "refused");
		if (cases[i].ok)
			assert_memory_equal(key, rfc7748_priv, WIRE_KEY_LEN);
	}
	assert_false(key_from_base64((uint8_t[WIRE_KEY_LEN]){ 0 }, NULL, 0));
}

static void test_base64_explicit_length(void **state)
{
	/* The decoder must stop at len: a valid key followed by junk beyond len is fine, a
	 * cut-short length is not. */
	char buf[] = "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=JUNK";
	uint8_t key[WIRE_KEY_LEN];

	assert_true(key_from_base64(key, buf, KEY_BASE64_LEN));
	assert_false(key_from_base64(key, buf, KEY_BASE64_LEN - 1));
	assert_false(key_from_base64(key, buf, strlen(buf)));
}

static void test_public_from_private(void **state)
{
	uint8_t pub[WIRE_KEY_LEN], zero[WIRE_KEY_LEN] = { 0 };

	assert_true(key_public_from_private(pub, rfc7748_priv));
	assert_memory_equal(pub, rfc7748_pub, WIRE_KEY_LEN);
	assert_false(key_public_from_private(pub, zero));
}

static void test_generate_private(void **state)
{
	uint8_t a[WIRE_KEY_LEN], b[WIRE_KEY_LEN], pub[WIRE_KEY_LEN];

	for (int i = 0; i < 64; i++) {
		key_generate_private(a);
		assert_int_equal(a[0] & 7, 0);
		assert_int_equal(a[31] & 0x80, 0);
		assert_int_equal(a[31] & 0x40, 0x40);
		assert_true(key_public_from_private(pub, a));
	}
	key_generate_private(b);
	assert_memory_not_equal(a, b, WIRE_KEY_LEN);
}

static void test_file_read_ok(void **state)
{
	char path[TEST_PATH_MAX], link[TEST_PATH_MAX], err[512] = "";
	uint8_t key[WIRE_KEY_LEN];

	path_in_dir(path, sizeof(path), "ok.key");
	write_file(path, rfc7748_priv_b64, strlen(rfc7748_priv_b64), 0600);
	assert_true(key_file_read(path, key, err, sizeof(err)));
	assert_memory_equal(key, rfc7748_priv, WIRE_KEY_LEN);

	write_file(path, "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=\n\n", 46, 0400);
	memset(key, 0, sizeof(key));
	assert_true(key_file_read(path, key, err, sizeof(err)));
	assert_memory_equal(key, rfc7748_priv, WIRE_KEY_LEN);

	/* Symlinks are followed; the checks apply to the file they lead to. */
	path_in_dir(link, sizeof(link), "link.key");
	assert_int_equal(symlink(path, link), 0);
	memset(key, 0, sizeof(key));
	assert_true(key_file_read(link, key, err, sizeof(err)));
	assert_memory_equal(key, rfc7748_priv, WIRE_KEY_LEN);
	assert_int_equal(chmod(path, 0640), 0);
	assert_false(key_file_read(link, key, err, sizeof(err)));
	unlink(link);
	unlink(path);
}

static void test_file_read_refused(void **state)
{
	static const struct {
		const char *content; /* NULL: special file set up below */
		mode_t mode;
		const char *expect; /* after "PATH: " */
		bool chmod_hint;    /* followed by "; run: chmod 600 PATH" */
	} cases[] = {
		{ "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=\n", 0644,
		  "key file is readable by group or others (mode 0644)", true },
		{ "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=\n", 0604,
		  "key file is readable by group or others (mode 0604)", true },
		{ "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=\n", 0620,
		  "key file is accessible by group or others (mode 0620)", true },
		{ "", 0600, "key file does not hold exactly one base64 key of 44 characters (it is empty)", false },
		{ "not a key\n", 0600, "key file does not hold exactly one base64 key of 44 characters", false },
		{ "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=\ndwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=\n",
		  0600, "key file does not hold exactly one base64 key of 44 characters", false },
	};
	char path[TEST_PATH_MAX], err[TEST_MSG_MAX], want[TEST_MSG_MAX];
	uint8_t key[WIRE_KEY_LEN];

	path_in_dir(path, sizeof(path), "bad.key");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		write_file(path, cases[i].content, strlen(cases[i].content), cases[i].mode);
		err[0] = '\0';
		assert_false(key_file_read(path, key, err, sizeof(err)));
		if (cases[i].chmod_hint)
			snprintf(want, sizeof(want), "%s: %s; run: chmod 600 %s", path, cases[i].expect, path);
		else
			snprintf(want, sizeof(want), "%s: %s", path, cases[i].expect);
		assert_string_equal(err, want);
		unlink(path);
	}
}

static void test_file_read_special(void **state)
{
	char path[TEST_PATH_MAX], err[TEST_MSG_MAX], want[TEST_MSG_MAX], big[300];
	uint8_t key[WIRE_KEY_LEN];

	/* Missing file. */
	path_in_dir(path, sizeof(path), "missing.key");
	assert_false(key_file_read(path, key, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: cannot open key file: %s", path, strerror(ENOENT));
	assert_string_equal(err, want);

	/* A directory. */
	assert_false(key_file_read(tmpdir, key, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: key file is not a regular file", tmpdir);
	assert_string_equal(err, want);

	/* A FIFO: refused at once, no blocking open. */
	path_in_dir(path, sizeof(path), "fifo.key");
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_false(key_file_read(path, key, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: key file is not a regular file", path);
	assert_string_equal(err, want);
	unlink(path);

	/* Larger than any key file: a key followed by lots of whitespace. */
	path_in_dir(path, sizeof(path), "big.key");
	memset(big, ' ', sizeof(big));
	memcpy(big, rfc7748_priv_b64, KEY_BASE64_LEN);
	write_file(path, big, sizeof(big), 0600);
	assert_false(key_file_read(path, key, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: key file is too large (expected one base64 key of 44 characters)", path);
	assert_string_equal(err, want);
	/* 256 bytes is still accepted. */
	write_file(path, big, 256, 0600);
	assert_true(key_file_read(path, key, err, sizeof(err)));
	unlink(path);
}

/* A secret file owned by someone else (who could read or replace it) is refused, whoever
 * we are; root's own files are fine for any user (a key installed by root for a service). */
static void test_file_read_owner(void **state)
{
	char path[TEST_PATH_MAX], err[TEST_MSG_MAX], want[TEST_MSG_MAX], buf[64];
	uint8_t key[WIRE_KEY_LEN];
	const uid_t stranger = 54321; /* no account needed: only the number is stored */

	(void)state;
	if (geteuid() != 0)
		skip(); /* only root can give a file away (CI runs as root) */
	path_in_dir(path, sizeof(path), "theirs.key");
	write_file(path, rfc7748_priv_b64, KEY_BASE64_LEN, 0600);
	assert_true(key_file_read(path, key, err, sizeof(err)));
	assert_int_equal(chown(path, stranger, (gid_t)-1), 0);
	assert_false(key_file_read(path, key, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: key file belongs to uid %u, not to us (uid 0) or root; run: chown 0 %s", path,
		 (unsigned int)stranger, path);
	assert_string_equal(err, want);
	/* The same rule for other secrets (the join key file), named in the message. */
	assert_int_equal(secret_file_read(path, "join_key_file", buf, sizeof(buf), err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s: join_key_file belongs to uid %u, not to us (uid 0) or root; run: chown 0 %s",
		 path, (unsigned int)stranger, path);
	assert_string_equal(err, want);
	unlink(path);
}

static void test_file_write(void **state)
{
	char path[TEST_PATH_MAX], err[TEST_MSG_MAX] = "", content[128];
	uint8_t key[WIRE_KEY_LEN], back[WIRE_KEY_LEN];
	struct stat st;
	mode_t old_umask;
	int fd;
	ssize_t n;

	path_in_dir(path, sizeof(path), "node.key");
	key_generate_private(key);
	/* A umask that would strip the owner's write bit must not matter. */
	old_umask = umask(0277);
	assert_true(key_file_write(path, key, err, sizeof(err)));
	umask(old_umask);

	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, content, sizeof(content) - 1);
	close(fd);
	assert_int_equal(n, KEY_BASE64_LEN + 1);
	content[n] = '\0';
	assert_int_equal(content[KEY_BASE64_LEN], '\n');

	assert_true(key_file_read(path, back, err, sizeof(err)));
	assert_memory_equal(key, back, WIRE_KEY_LEN);
	/* No temporary file left behind. */
	assert_int_equal(count_dir_entries(), 1);

	/* Replacing an existing key works and leaves one file. */
	key_generate_private(key);
	assert_true(key_file_write(path, key, err, sizeof(err)));
	assert_true(key_file_read(path, back, err, sizeof(err)));
	assert_memory_equal(key, back, WIRE_KEY_LEN);
	assert_int_equal(count_dir_entries(), 1);
	unlink(path);
}

static void test_file_write_relative(void **state)
{
	char cwd[TEST_PATH_MAX], err[TEST_MSG_MAX] = "";
	uint8_t key[WIRE_KEY_LEN], back[WIRE_KEY_LEN];

	assert_non_null(getcwd(cwd, sizeof(cwd)));
	assert_int_equal(chdir(tmpdir), 0);
	key_generate_private(key);
	assert_true(key_file_write("rel.key", key, err, sizeof(err)));
	assert_true(key_file_read("rel.key", back, err, sizeof(err)));
	assert_memory_equal(key, back, WIRE_KEY_LEN);
	unlink("rel.key");
	assert_int_equal(chdir(cwd), 0);
}

static void test_file_write_errors(void **state)
{
	char path[TEST_PATH_MAX], err[TEST_MSG_MAX], want[TEST_MSG_MAX], dir[TEST_PATH_MAX];
	uint8_t key[WIRE_KEY_LEN];

	key_generate_private(key);
	/* The directory does not exist. */
	path_in_dir(dir, sizeof(dir), "nodir");
	path_in_dir(path, sizeof(path), "nodir/node.key");
	assert_false(key_file_write(path, key, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s: cannot create temporary file in %s: %s", path, dir, strerror(ENOENT));
	assert_string_equal(err, want);

	/* The target is a directory: rename fails, and the temporary file is removed. */
	path_in_dir(path, sizeof(path), "isdir");
	assert_int_equal(mkdir(path, 0700), 0);
	assert_false(key_file_write(path, key, err, sizeof(err)));
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "cannot rename"));
	assert_int_equal(count_dir_entries(), 1);
	rmdir(path);

	/* A path ending in '/' names no file. */
	snprintf(path, sizeof(path), "%s/", tmpdir);
	assert_false(key_file_write(path, key, err, sizeof(err)));
	assert_int_equal(count_dir_entries(), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64_round_trip),
		cmocka_unit_test(test_base64_known),
		cmocka_unit_test(test_base64_table),
		cmocka_unit_test(test_base64_explicit_length),
		cmocka_unit_test(test_public_from_private),
		cmocka_unit_test(test_generate_private),
		cmocka_unit_test(test_file_read_ok),
		cmocka_unit_test(test_file_read_refused),
		cmocka_unit_test(test_file_read_special),
		cmocka_unit_test(test_file_read_owner),
		cmocka_unit_test(test_file_write),
		cmocka_unit_test(test_file_write_relative),
		cmocka_unit_test(test_file_write_errors),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
