/* Leveled logging to stderr. Under systemd (JOURNAL_STREAM set) each line carries a
 * "<N>" syslog priority prefix so journald records the level. Per-packet events must go
 * through a log_ratelimit so a flood of bad packets cannot flood the log. */
#ifndef MESHD_LOG_H
#define MESHD_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum log_level { LOG_LEVEL_ERROR = 0, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

enum {
	/* Longer lines are cut with "...": a log line is for a human, and a bounded stack buffer
	 * means logging never allocates. PIPE_BUF on Linux, so one write(2) of a whole line to
	 * journald's pipe is atomic; the counter lines (SIGUSR1) need ~1.5 KiB. */
	LOG_LINE_MAX = 4096,
};

/* Process-wide settings, set at start-up from the command line. */
void log_init(const char *program_name, enum log_level level);
/* The threshold again (SIGHUP's log_level); called from the thread that runs the loop,
 * between events (threads that only read it see the old or the new value). */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
bool log_level_parse(const char *name, enum log_level *out);
const char *log_level_name(enum log_level level);
bool log_enabled(enum log_level level);
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) do { if (log_enabled(LOG_LEVEL_DEBUG)) log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__); } while (0)

/* At most LOG_RATELIMIT_BURST lines per LOG_RATELIMIT_INTERVAL_MS per limiter; the
 * number suppressed is reported with the next line that gets through. */
enum {
	LOG_RATELIMIT_INTERVAL_MS = 5000, /* long enough that a flood costs a few lines a minute */
	LOG_RATELIMIT_BURST = 5,          /* enough to see the pattern of a problem */
};
struct log_ratelimit {
	uint64_t window_start_ms;
	unsigned int printed;
	unsigned int suppressed;
};
/* Returns true if a line may be printed now; *suppressed_out gets how many were dropped
 * since the last printed line (so the caller can say so). */
bool log_ratelimit_allow(struct log_ratelimit *rl, uint64_t now_ms, unsigned int *suppressed_out);
/* A window that has ended with lines suppressed in it: returns how many (and forgets them),
 * so a flood that stops is still summed up; 0 otherwise. Call it now and then (a timer). */
unsigned int log_ratelimit_expire(struct log_ratelimit *rl, uint64_t now_ms);
/* When log_ratelimit_expire will have something to sum up: UINT64_MAX if nothing is held. */
uint64_t log_ratelimit_deadline(const struct log_ratelimit *rl);

#endif
