/* Token bucket (ratelimit.h). */
#include "core/ratelimit.h"

void ratelimit_init(struct ratelimit *b, uint32_t burst, uint64_t now_ms)
{
	b->tokens = (uint64_t)burst * RATELIMIT_SCALE;
	b->last_ms = now_ms;
}

bool ratelimit_take(struct ratelimit *b, uint32_t rate, uint32_t burst, uint64_t now_ms, size_t len)
{
	if (rate == 0)
		return true;
	uint64_t cap = (uint64_t)burst * RATELIMIT_SCALE;
	if (now_ms > b->last_ms) {
		uint64_t elapsed = now_ms - b->last_ms;
		if (elapsed > RATELIMIT_MAX_ELAPSED_MS)
			elapsed = RATELIMIT_MAX_ELAPSED_MS;
		uint64_t add = (uint64_t)rate * elapsed; /* bytes/s * ms = bytes * RATELIMIT_SCALE */
		b->tokens = add >= cap || b->tokens >= cap - add ? cap : b->tokens + add;
		b->last_ms = now_ms;
	}
	/* A clock that went back (it does not: monotonic) just refills nothing. */
	if (len > UINT32_MAX || (uint64_t)len * RATELIMIT_SCALE > b->tokens)
		return false;
	b->tokens -= (uint64_t)len * RATELIMIT_SCALE;
	return true;
}
