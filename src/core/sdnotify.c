/* sd_notify(3) over $NOTIFY_SOCKET: see sdnotify.h. */
#include "core/sdnotify.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"

enum {
	SDNOTIFY_MESSAGE_MAX = 512, /* a few short lines; a longer STATUS= is cut */
	/* Below this the watchdog would wake a loop more often than its own work does. */
	SDNOTIFY_WATCHDOG_MIN_MS = 100,
};

/* Set by sdnotify_init from the main thread before the loop runs, then only that loop. */
static int notify_fd = -1;
static uint64_t watchdog_period_ms; /* half of $WATCHDOG_USEC; 0: no watchdog */
static uint64_t watchdog_due_ms;

/* $WATCHDOG_USEC, unless $WATCHDOG_PID names another process (the variables were meant
 * for a parent that exec'd us). 0 when unset or unusable. */
static uint64_t watchdog_usec_from_env(void)
{
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	char *end;

	if (pid && (strtol(pid, &end, 10) != (long)getpid() || *end != '\0'))
		return 0;
	if (!usec || !*usec)
		return 0;
	errno = 0;
	unsigned long long v = strtoull(usec, &end, 10);
	return errno || *end != '\0' ? 0 : (uint64_t)v;
}

bool sdnotify_init(uint64_t now_ms)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	sdnotify_close();
	if (!path || !*path)
		return true;
	size_t len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sun.sun_path)) {
		log_warn("NOTIFY_SOCKET '%.120s' is not a socket path; systemd will not hear that we are ready", path);
		return false;
	}
	memcpy(sun.sun_path, path, len);
	if (path[0] == '@')
		sun.sun_path[0] = '\0'; /* abstract: the name is the bytes after the NUL, no terminator */
	socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));
	/* Non-blocking: if systemd stops reading, a lost message beats a stalled data path. */
	notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (notify_fd < 0 || connect(notify_fd, (struct sockaddr *)&sun, alen) < 0) {
		log_warn("cannot connect to NOTIFY_SOCKET %.120s: %s; systemd will not hear that we are ready", path,
			 strerror(errno));
		sdnotify_close();
		return false;
	}
	uint64_t usec = watchdog_usec_from_env();
	if (usec / 2000 >= SDNOTIFY_WATCHDOG_MIN_MS) {
		watchdog_period_ms = usec / 2000;
		watchdog_due_ms = now_ms; /* the first one at the first turn of the loop */
	}
	return true;
}

bool sdnotify_send(const char *fmt, ...)
{
	char msg[SDNOTIFY_MESSAGE_MAX];
	va_list ap;

	if (notify_fd < 0)
		return false;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		return false;
	size_t len = (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1;
	return send(notify_fd, msg, len, MSG_NOSIGNAL) == (ssize_t)len;
}

uint64_t sdnotify_watchdog_deadline(void)
{
	return notify_fd >= 0 && watchdog_period_ms ? watchdog_due_ms : UINT64_MAX;
}

void sdnotify_watchdog_tick(uint64_t now_ms)
{
	if (now_ms < sdnotify_watchdog_deadline())
		return;
	sdnotify_send("WATCHDOG=1");
	watchdog_due_ms = now_ms + watchdog_period_ms;
}

void sdnotify_close(void)
{
	if (notify_fd >= 0)
		close(notify_fd);
	notify_fd = -1;
	watchdog_period_ms = 0;
}
