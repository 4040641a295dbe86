/* RFC 6479 anti-replay window, laid out as WireGuard's counter.c: a ring of 64-bit words
 * indexed by counter / 64. Moving the window forward only clears the words it skips, so the
 * cost per packet is bounded by the ring size, not by how far the counter jumped.
 *
 * Acceptance rule: with `greatest` the highest counter recorded, a counter is new if it is
 * above `greatest`, or within the REPLAY_WINDOW_SIZE counters ending at `greatest`
 * (greatest - counter < REPLAY_WINDOW_SIZE) and its bit is clear. Those counters span at
 * most REPLAY_RING_WORDS - 1 word boundaries, so the word of the oldest one can never share
 * a ring slot with the word of `greatest`. (WireGuard also accepts greatest - 8128; we stop
 * one short so the window holds exactly REPLAY_WINDOW_SIZE counters.)
 */
#include <stdlib.h>
#include <string.h>

#include "replay.h"

enum {
	REPLAY_WORD_SHIFT = 6,                         /* log2(REPLAY_BITS_PER_WORD) */
	REPLAY_BIT_MASK = REPLAY_BITS_PER_WORD - 1,     /* counter bits that pick the bit in a word */
	REPLAY_RING_MASK = REPLAY_RING_WORDS - 1,       /* word numbers wrap around the ring */
};

_Static_assert((1 << REPLAY_WORD_SHIFT) == REPLAY_BITS_PER_WORD, "word shift matches word size");
_Static_assert((REPLAY_RING_WORDS & REPLAY_RING_MASK) == 0, "ring size must be a power of two");

static inline uint64_t replay_word_of(uint64_t counter)
{
	return counter >> REPLAY_WORD_SHIFT;
}

static inline size_t replay_slot_of(uint64_t word)
{
	return (size_t)(word & REPLAY_RING_MASK);
}

static inline uint64_t replay_bit_of(uint64_t counter)
{
	return UINT64_C(1) << (counter & REPLAY_BIT_MASK);
}

void replay_init(struct replay_window *w)
{
	memset(w, 0, sizeof(*w));
}

void replay_free(struct replay_window *w)
{
	free(w->ring);
	replay_init(w);
}

bool replay_check(const struct replay_window *w, uint64_t counter)
{
	if (!w->any_seen || counter > w->greatest)
		return true;
	/* Written as a difference so counters near UINT64_MAX cannot overflow. */
	if (w->greatest - counter >= REPLAY_WINDOW_SIZE)
		return false;
	return !w->ring || !(w->ring[replay_slot_of(replay_word_of(counter))] & replay_bit_of(counter));
}

bool replay_update(struct replay_window *w, uint64_t counter)
{
	uint64_t *word;

	/* The caller checked before decrypting, but the window may have moved since. */
	if (!replay_check(w, counter))
		return false;
	if (!w->ring) {
		w->ring = calloc(REPLAY_RING_WORDS, sizeof(*w->ring));
		if (!w->ring)
			return false;
	}

	if (!w->any_seen) {
		/* replay_init left every word clear, so nothing needs clearing. */
		w->greatest = counter;
		w->any_seen = true;
	} else if (counter > w->greatest) {
		uint64_t current = replay_word_of(w->greatest);
		uint64_t skipped = replay_word_of(counter) - current;
		uint64_t i;

		/* Words between the old top and the new one describe counters never seen in this
		 * lap of the ring; beyond one full lap every word is stale, so stop there. */
		if (skipped > REPLAY_RING_WORDS)
			skipped = REPLAY_RING_WORDS;
		for (i = 1; i <= skipped; i++)
			w->ring[replay_slot_of(current + i)] = 0;
		w->greatest = counter;
	}

	word = &w->ring[replay_slot_of(replay_word_of(counter))];
	*word |= replay_bit_of(counter);
	return true;
}
