/* Leveled logging to stderr, one write(2) per line. */
#include "core/log.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum {
	LOG_PROGRAM_MAX = 32, /* program names are short ("meshd"); longer ones are cut */
};

/* syslog(3) priorities; journald reads them from the "<N>" prefix. */
enum {
	SYSLOG_PRIO_ERR = 3,
	SYSLOG_PRIO_WARNING = 4,
	SYSLOG_PRIO_INFO = 6,
	SYSLOG_PRIO_DEBUG = 7,
};

static const struct {
	const char *name;  /* accepted by log_level_parse and printed on a terminal */
	int syslog_prio;
} log_levels[] = {
	[LOG_LEVEL_ERROR] = { "error", SYSLOG_PRIO_ERR },
	[LOG_LEVEL_WARN] = { "warn", SYSLOG_PRIO_WARNING },
	[LOG_LEVEL_INFO] = { "info", SYSLOG_PRIO_INFO },
	[LOG_LEVEL_DEBUG] = { "debug", SYSLOG_PRIO_DEBUG },
};

/* Set by log_init before any thread starts; log_set_level changes the threshold from the
 * loop's thread (SIGHUP). */
static char log_program[LOG_PROGRAM_MAX] = "meshd";
static enum log_level log_threshold = LOG_LEVEL_INFO;
static bool log_to_journal;

/* systemd sets JOURNAL_STREAM to "DEV:INODE" of the stream it connected to stderr. A child
 * whose stderr was redirected elsewhere inherits the variable, so it only counts when it
 * names the file stderr really is (as sd-daemon(3) recommends). */
static bool stderr_is_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	int consumed = 0;

	if (!env || !*env)
		return false;
	if (sscanf(env, "%llu:%llu%n", &dev, &ino, &consumed) != 2 || env[consumed] != '\0')
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(const char *program_name, enum log_level level)
{
	if (program_name && *program_name) {
		const char *slash = strrchr(program_name, '/');

		snprintf(log_program, sizeof(log_program), "%s", slash ? slash + 1 : program_name);
	}
	if ((unsigned int)level <= LOG_LEVEL_DEBUG)
		log_threshold = level;
	log_to_journal = stderr_is_journal();
}

void log_set_level(enum log_level level)
{
	if ((unsigned int)level <= LOG_LEVEL_DEBUG)
		log_threshold = level;
}

enum log_level log_get_level(void)
{
	return log_threshold;
}

const char *log_level_name(enum log_level level)
{
	return (unsigned int)level <= LOG_LEVEL_DEBUG ? log_levels[level].name : "?";
}

bool log_level_parse(const char *name, enum log_level *out)
{
	if (!name)
		return false;
	for (size_t i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++) {
		if (strcmp(name, log_levels[i].name) == 0) {
			*out = (enum log_level)i;
			return true;
		}
	}
	return false;
}

bool log_enabled(enum log_level level)
{
	return (unsigned int)level <= (unsigned int)log_threshold;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	size_t prefix_len, len;
	va_list ap;
	int n;
	int saved_errno = errno; /* callers log strerror(errno) and then still look at errno */

	if ((unsigned int)level > LOG_LEVEL_DEBUG)
		level = LOG_LEVEL_ERROR;
	if (!log_enabled(level))
		return;

	if (log_to_journal)
		n = snprintf(line, sizeof(line), "<%d>%s: ", log_levels[level].syslog_prio, log_program);
	else
		n = snprintf(line, sizeof(line), "%s: %s: ", log_program, log_levels[level].name);
	if (n < 0)
		goto out;
	prefix_len = (size_t)n; /* < LOG_PROGRAM_MAX + 16, so it always fits */

	/* Keep one byte for the newline. */
	va_start(ap, fmt);
	n = vsnprintf(line + prefix_len, sizeof(line) - prefix_len - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		goto out;
	len = prefix_len + (size_t)n;
	if (len > sizeof(line) - 2) {
		static const char cut[] = "...";

		len = sizeof(line) - 2;
		memcpy(line + len - (sizeof(cut) - 1), cut, sizeof(cut) - 1);
	}
	/* Messages can quote peer-supplied or file-supplied text: never let it start a new
	 * line (forged log entries) or send terminal escape sequences. */
	for (size_t i = prefix_len; i < len; i++) {
		unsigned char c = (unsigned char)line[i];

		if (c < 0x20 || c == 0x7f)
			line[i] = (c == '\t') ? ' ' : '?';
	}
	line[len++] = '\n';

	/* One write: lines from several threads never interleave (stderr pipes to journald
	 * take writes up to PIPE_BUF atomically, and our lines are no longer). */
	for (;;) {
		ssize_t w = write(STDERR_FILENO, line, len);

		if (w >= 0 || errno != EINTR)
			break;
	}
out:
	errno = saved_errno;
}

unsigned int log_ratelimit_expire(struct log_ratelimit *rl, uint64_t now_ms)
{
	unsigned int n = rl->suppressed;

	if (n == 0 || (now_ms >= rl->window_start_ms && now_ms - rl->window_start_ms < LOG_RATELIMIT_INTERVAL_MS))
		return 0;
	rl->suppressed = 0;
	rl->printed = 0; /* the next line opens a new window */
	return n;
}

uint64_t log_ratelimit_deadline(const struct log_ratelimit *rl)
{
	return rl->suppressed ? rl->window_start_ms + LOG_RATELIMIT_INTERVAL_MS : UINT64_MAX;
}

bool log_ratelimit_allow(struct log_ratelimit *rl, uint64_t now_ms, unsigned int *suppressed_out)
{
	/* A fresh limiter opens its first window at the first call. A clock that went
	 * backwards (a caller mixing clocks) also starts a new window, so a limiter can never
	 * get stuck closed. */
	if (rl->printed == 0 || now_ms < rl->window_start_ms ||
	    now_ms - rl->window_start_ms >= LOG_RATELIMIT_INTERVAL_MS) {
		rl->window_start_ms = now_ms;
		rl->printed = 0;
	}
	if (rl->printed < LOG_RATELIMIT_BURST) {
		rl->printed++;
		if (suppressed_out)
			*suppressed_out = rl->suppressed;
		rl->suppressed = 0;
		return true;
	}
	if (rl->suppressed < UINT_MAX)
		rl->suppressed++;
	if (suppressed_out)
		*suppressed_out = 0;
	return false;
}
