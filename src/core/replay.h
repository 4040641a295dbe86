/* Sliding anti-replay window over 64-bit counters (RFC 6479 bitmap, as WireGuard).
 * The window is only ever moved by a counter whose packet has already authenticated. */
#ifndef MESHD_REPLAY_H
#define MESHD_REPLAY_H

#include <stdbool.h>
#include <stdint.h>

enum {
	REPLAY_BITS_PER_WORD = 64,
	/* 128 words: 8192 bits, of which one word is kept as slack for the ring rotation,
	 * leaving REPLAY_WINDOW_SIZE usable (WireGuard's current window). */
	REPLAY_RING_WORDS = 128,
	REPLAY_WINDOW_SIZE = (REPLAY_RING_WORDS - 1) * REPLAY_BITS_PER_WORD, /* 8128 */
};

struct replay_window {
	uint64_t greatest;  /* highest counter accepted so far (valid when any_seen) */
	bool any_seen;
	/* REPLAY_RING_WORDS words, allocated when the first counter is recorded: a session
	 * that never receives (and every empty session slot of an idle peer) costs no 1 KB
	 * bitmap. NULL means every bit is clear. The window owns it: a copy moves it. */
	uint64_t *ring;
};

/* A fresh window (w must not hold a ring: replay_free first). */
void replay_init(struct replay_window *w);
/* Frees the ring; the window is fresh again. */
void replay_free(struct replay_window *w);
/* Checks whether `counter` is acceptable (new and not too old) without changing state. */
bool replay_check(const struct replay_window *w, uint64_t counter);
/* Records `counter` as seen; call only after the packet authenticated and replay_check()
 * said yes. Returns false (and changes nothing) if it turns out to be a replay, or when
 * out of memory for the ring (the packet is then dropped as if replayed). */
bool replay_update(struct replay_window *w, uint64_t counter);

#endif
