/* Time sources. Protocol logic never reads a clock itself: callers pass "now" in,
 * so unit tests drive timers with an injected clock and run in milliseconds. */
#ifndef MESHD_CLOCK_H
#define MESHD_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Monotonic milliseconds, for timers. */
static inline uint64_t clock_monotonic_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Monotonic microseconds, for round-trip times and pacing finer than a millisecond. */
static inline uint64_t clock_monotonic_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Wall-clock time, used only for handshake timestamps (must grow across restarts). */
static inline struct timespec clock_realtime(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts;
}

#endif
