/* Peers by their next deadline, so a loop turn costs O(log n) per due peer, not O(n).
 *
 * Strategy: a binary min-heap of peers keyed by peer->due_ms (the earliest of its timers,
 * path and punch deadlines, computed by the device from the pure policies in core/timers.c,
 * path.c and punch.c). Deadlines move only when a peer is touched: its packets, handshakes,
 * disco, map changes, timers. Whoever touches a peer marks it (timerq_touch: O(1), once per
 * turn); before the loop sleeps or runs timers, every marked peer's deadline is recomputed
 * and its heap place fixed. A deadline computed too early is harmless (the peer is checked
 * and re-queued); one never recomputed after a change would be late, hence the marks. */
#ifndef MESHD_TIMERQ_H
#define MESHD_TIMERQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct peer;

enum {
	TIMERQ_NOT_QUEUED = -1, /* peer->timer_pos of a peer that is in no heap */
};

struct timerq {
	struct peer **heap;
	size_t n, cap;
	struct peer **touched; /* peers marked since the last timerq_take_touched */
	size_t n_touched, touched_cap;
	struct peer **due; /* the last timerq_take_due's peers */
	size_t due_cap;
};

void timerq_init(struct timerq *q);
void timerq_free(struct timerq *q);
/* Marks a peer whose deadline may have moved. False only when out of memory: the peer keeps
 * its old place, so its timers may run late (the caller counts it). */
bool timerq_touch(struct timerq *q, struct peer *p);
/* Hands the marked peers to the caller (valid until the next touch) and clears the marks. */
struct peer **timerq_take_touched(struct timerq *q, size_t *n);
/* Puts p at its place for p->due_ms (UINT64_MAX: out of the heap). */
bool timerq_update(struct timerq *q, struct peer *p);
/* Removes p from the heap and from the marks (a peer being freed). */
void timerq_remove(struct timerq *q, struct peer *p);
/* The peer with the earliest deadline, or NULL. */
struct peer *timerq_first(const struct timerq *q);
/* Takes every peer due at now_ms out of the heap and hands them to the caller (valid until
 * the next call), who acts on each once and puts it back (timerq_update). */
struct peer **timerq_take_due(struct timerq *q, uint64_t now_ms, size_t *n);

#endif
