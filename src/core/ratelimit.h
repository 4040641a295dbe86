/* A token bucket in bytes, for the relay's per-node limit. Pure: the caller passes the time
 * in, so unit tests drive it with an injected clock (tests/unit/test_ratelimit.c). */
#ifndef MESHD_RATELIMIT_H
#define MESHD_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
	/* Tokens are kept in byte-milliseconds per second (bytes * 1000), so a refill after
	 * 1 ms at 1,000 bytes/s is one whole byte, not rounded away. */
	RATELIMIT_SCALE = 1000,
	/* An idle bucket is full after burst / rate seconds; refills beyond this many ms at
	 * once are clipped so rate * elapsed cannot overflow (u32 rate * 2^20 ms < 2^63). */
	RATELIMIT_MAX_ELAPSED_MS = 1 << 20,
};

struct ratelimit {
	uint64_t tokens; /* bytes * RATELIMIT_SCALE */
	uint64_t last_ms;
};

/* A full bucket at now_ms. */
void ratelimit_init(struct ratelimit *b, uint32_t burst, uint64_t now_ms);
/* Takes len bytes if the bucket holds them after refilling at rate bytes/s (capped at
 * burst); false (nothing taken) if not. rate 0 means unlimited. */
bool ratelimit_take(struct ratelimit *b, uint32_t rate, uint32_t burst, uint64_t now_ms, size_t len);

#endif
