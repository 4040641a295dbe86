/* Unit tests for core/log: level names, line format (terminal and journald), sanitising,
 * truncation, and the rate limiter. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"

/* Runs fn with stderr redirected to a temporary file and returns what it wrote. */
static char captured[2 * LOG_LINE_MAX];

static const char *capture(void (*fn)(void), const char *journal_env_mode)
{
	char path[] = "/tmp/test_log.XXXXXX";
	int fd = mkstemp(path);
	int saved = dup(STDERR_FILENO);
	ssize_t n;

	assert_true(fd >= 0);
	assert_true(saved >= 0);
	unlink(path);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);

	if (journal_env_mode == NULL) {
		unsetenv("JOURNAL_STREAM");
	} else if (strcmp(journal_env_mode, "match") == 0) {
		struct stat st;
		char env[64];

		assert_int_equal(fstat(fd, &st), 0);
		snprintf(env, sizeof(env), "%llu:%llu", (unsigned long long)st.st_dev,
			 (unsigned long long)st.st_ino);
		setenv("JOURNAL_STREAM", env, 1);
	} else {
		setenv("JOURNAL_STREAM", journal_env_mode, 1);
	}

	fn();

	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	unsetenv("JOURNAL_STREAM");
	n = pread(fd, captured, sizeof(captured) - 1, 0);
	assert_true(n >= 0);
	captured[n] = '\0';
	close(fd);
	return captured;
}

static void test_level_parse(void **state)
{
	static const struct {
		const char *name;
		bool ok;
		enum log_level level;
	} cases[] = {
		{ "error", true, LOG_LEVEL_ERROR },
		{ "warn", true, LOG_LEVEL_WARN },
		{ "info", true, LOG_LEVEL_INFO },
		{ "debug", true, LOG_LEVEL_DEBUG },
		{ "ERROR", false, 0 },
		{ "warning", false, 0 },
		{ "info ", false, 0 },
		{ "", false, 0 },
		{ "trace", false, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum log_level level = (enum log_level)99;

		assert_int_equal(log_level_parse(cases[i].name, &level), cases[i].ok);
		if (cases[i].ok)
			assert_int_equal(level, cases[i].level);
		else
			assert_int_equal(level, 99);
	}
	assert_false(log_level_parse(NULL, &(enum log_level){ 0 }));
}

static void test_enabled(void **state)
{
	log_init("meshd", LOG_LEVEL_WARN);
	assert_true(log_enabled(LOG_LEVEL_ERROR));
	assert_true(log_enabled(LOG_LEVEL_WARN));
	assert_false(log_enabled(LOG_LEVEL_INFO));
	assert_false(log_enabled(LOG_LEVEL_DEBUG));
	log_init("meshd", LOG_LEVEL_DEBUG);
	assert_true(log_enabled(LOG_LEVEL_DEBUG));
}

static void emit_each_level(void)
{
	log_init("/usr/sbin/meshd", LOG_LEVEL_DEBUG);
	log_error("e %d", 1);
	log_warn("w %s", "x");
	log_info("i");
	log_debug("d");
}

static void test_terminal_format(void **state)
{
	assert_string_equal(capture(emit_each_level, NULL),
			    "meshd: error: e 1\nmeshd: warn: w x\nmeshd: info: i\nmeshd: debug: d\n");
}

static void test_journal_format(void **state)
{
	assert_string_equal(capture(emit_each_level, "match"), "<3>meshd: e 1\n<4>meshd: w x\n<6>meshd: i\n<7>meshd: d\n");
}

static void test_journal_env_not_our_stderr(void **state)
{
	/* Inherited from a parent whose stderr was the journal, but ours is a file. */
	assert_string_equal(capture(emit_each_level, "1:1"),
			    "meshd: error: e 1\nmeshd: warn: w x\nmeshd: info: i\nmeshd: debug: d\n");
	assert_string_equal(capture(emit_each_level, "garbage"),
			    "meshd: error: e 1\nmeshd: warn: w x\nmeshd: info: i\nmeshd: debug: d\n");
}

static void emit_filtered(void)
{
	log_init("meshd", LOG_LEVEL_WARN);
	log_info("hidden");
	log_debug("hidden");
	log_warn("shown");
}

static void test_filtered(void **state)
{
	assert_string_equal(capture(emit_filtered, NULL), "meshd: warn: shown\n");
}

static void emit_control_chars(void)
{
	log_init("meshd", LOG_LEVEL_INFO);
	log_info("peer said \"%s\"", "a\nmeshd: error: forged\x1b[2J\tend");
}

static void test_control_chars(void **state)
{
	assert_string_equal(capture(emit_control_chars, NULL),
			    "meshd: info: peer said \"a?meshd: error: forged?[2J end\"\n");
}

static void emit_long(void)
{
	char big[LOG_LINE_MAX + 2000];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_init("meshd", LOG_LEVEL_INFO);
	log_info("%s", big);
	log_info("after");
}

static void test_truncation(void **state)
{
	const char *out = capture(emit_long, NULL);
	const char *nl = strchr(out, '\n');

	assert_non_null(nl);
	/* One bounded line ending in "...", then the next line intact. */
	assert_true((size_t)(nl - out) < LOG_LINE_MAX);
	assert_memory_equal(nl - 3, "...", 3);
	assert_string_equal(nl + 1, "meshd: info: after\n");
}

static void emit_keeps_errno(void)
{
	log_init("meshd", LOG_LEVEL_INFO);
	errno = EADDRINUSE;
	log_info("x");
	assert_int_equal(errno, EADDRINUSE);
}

static void test_errno_preserved(void **state)
{
	capture(emit_keeps_errno, NULL);
}

static void test_ratelimit(void **state)
{
	static const struct {
		uint64_t now_ms;
		bool allowed;
		unsigned int suppressed; /* reported with an allowed line */
	} steps[] = {
		{ 1000, true, 0 }, /* the first call opens the window */
		{ 1001, true, 0 },
		{ 1002, true, 0 },
		{ 1003, true, 0 },
		{ 1004, true, 0 }, /* LOG_RATELIMIT_BURST = 5 */
		{ 1005, false, 0 },
		{ 2000, false, 0 },
		{ 5999, false, 0 }, /* still inside the 5000 ms window */
		{ 6000, true, 3 },  /* new window: says three were dropped */
		{ 6001, true, 0 },
		{ 6002, true, 0 },
		{ 6003, true, 0 },
		{ 6004, true, 0 },
		{ 6005, false, 0 },
		{ 100, true, 1 },   /* a clock that went backwards opens a window, never sticks */
		{ 60000, true, 0 },
	};
	struct log_ratelimit rl = { 0 };

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		unsigned int suppressed = 12345;
		bool allowed = log_ratelimit_allow(&rl, steps[i].now_ms, &suppressed);

		assert_int_equal(allowed, steps[i].allowed);
		if (allowed)
			assert_int_equal(suppressed, steps[i].suppressed);
	}
	/* The out-parameter is optional. */
	assert_true(log_ratelimit_allow(&rl, 200000, NULL));
}

/* A flood that stops is summed up once its window ends, and only then; the next line after
 * that opens a new window and reports nothing twice. */
static void test_ratelimit_expire(void **state)
{
	struct log_ratelimit rl = { 0 };
	unsigned int suppressed;

	(void)state;
	assert_int_equal(log_ratelimit_expire(&rl, 0), 0);
	assert_true(log_ratelimit_deadline(&rl) == UINT64_MAX);
	for (int i = 0; i < LOG_RATELIMIT_BURST + 7; i++)
		log_ratelimit_allow(&rl, 1000, &suppressed);
	assert_true(log_ratelimit_deadline(&rl) == 1000 + LOG_RATELIMIT_INTERVAL_MS);
	assert_int_equal(log_ratelimit_expire(&rl, 1000 + LOG_RATELIMIT_INTERVAL_MS - 1), 0);
	assert_int_equal(log_ratelimit_expire(&rl, 1000 + LOG_RATELIMIT_INTERVAL_MS), 7);
	assert_int_equal(log_ratelimit_expire(&rl, 1000 + 2 * LOG_RATELIMIT_INTERVAL_MS), 0);
	assert_true(log_ratelimit_allow(&rl, 1000 + LOG_RATELIMIT_INTERVAL_MS + 1, &suppressed));
	assert_int_equal(suppressed, 0);
}

static void test_ratelimit_zero_time(void **state)
{
	struct log_ratelimit rl = { 0 };
	unsigned int suppressed;

	/* A fresh limiter at time 0 must still allow a burst, then close. */
	for (int i = 0; i < LOG_RATELIMIT_BURST; i++)
		assert_true(log_ratelimit_allow(&rl, 0, &suppressed));
	assert_false(log_ratelimit_allow(&rl, 0, &suppressed));
	assert_true(log_ratelimit_allow(&rl, LOG_RATELIMIT_INTERVAL_MS, &suppressed));
	assert_int_equal(suppressed, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_level_parse),
		cmocka_unit_test(test_enabled),
		cmocka_unit_test(test_terminal_format),
		cmocka_unit_test(test_journal_format),
		cmocka_unit_test(test_journal_env_not_our_stderr),
		cmocka_unit_test(test_filtered),
		cmocka_unit_test(test_control_chars),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_errno_preserved),
		cmocka_unit_test(test_ratelimit),
		cmocka_unit_test(test_ratelimit_expire),
		cmocka_unit_test(test_ratelimit_zero_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
