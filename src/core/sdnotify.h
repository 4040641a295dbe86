/* systemd's readiness protocol (sd_notify(3)) without libsystemd: one datagram of
 * "KEY=VALUE" lines to the AF_UNIX socket named by $NOTIFY_SOCKET ("@name": the abstract
 * namespace). READY=1 ends a Type=notify unit's start, STATUS= shows in systemctl status,
 * STOPPING=1 says shutdown began, WATCHDOG=1 is the keep-alive WatchdogSec= asks for.
 *
 * One per process, like the log: $NOTIFY_SOCKET is the process's. sdnotify_init connects
 * the socket once, so a daemon that then drops root (meshd's `user:`) still reaches a
 * socket only root could open. Without $NOTIFY_SOCKET (not under systemd, or a
 * Type=simple unit) every call does nothing. */
#ifndef MESHD_SDNOTIFY_H
#define MESHD_SDNOTIFY_H

#include <stdbool.h>
#include <stdint.h>

/* Reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID and connects the socket. False
 * (after a warning in the log) only when $NOTIFY_SOCKET is set but unusable: the daemon
 * runs on, systemd will time its start out and say so. Calling it again starts over. */
bool sdnotify_init(uint64_t now_ms);
/* Sends one message, e.g. "READY=1\nSTATUS=serving". False if it could not be sent (or
 * there is no socket). */
bool sdnotify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The watchdog's next deadline (UINT64_MAX: no watchdog), for an event loop's timeout. */
uint64_t sdnotify_watchdog_deadline(void);
/* Sends WATCHDOG=1 when due: every half of $WATCHDOG_USEC, as sd_watchdog_enabled(3)
 * advises, so one late turn of the loop does not get the daemon killed. */
void sdnotify_watchdog_tick(uint64_t now_ms);
void sdnotify_close(void);

#endif
