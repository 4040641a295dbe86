/* The device's timer heap (see timerq.h). */
#include "meshd/timerq.h"

#include <stdlib.h>
#include <string.h>

#include "meshd/peer.h"

enum {
	TIMERQ_MIN_CAP = 16, /* first allocation of either array */
};

void timerq_init(struct timerq *q)
{
	memset(q, 0, sizeof(*q));
}

void timerq_free(struct timerq *q)
{
	free(q->heap);
	free(q->touched);
	free(q->due);
	timerq_init(q);
}

static bool grow(struct peer ***arr, size_t *cap, size_t need)
{
	if (need <= *cap)
		return true;
	size_t cap2 = *cap ? *cap * 2 : TIMERQ_MIN_CAP;
	while (cap2 < need)
		cap2 *= 2;
	struct peer **grown = realloc(*arr, cap2 * sizeof(*grown));
	if (!grown)
		return false;
	*arr = grown;
	*cap = cap2;
	return true;
}

bool timerq_touch(struct timerq *q, struct peer *p)
{
	if (p->timer_touched)
		return true;
	if (!grow(&q->touched, &q->touched_cap, q->n_touched + 1))
		return false;
	q->touched[q->n_touched++] = p;
	p->timer_touched = true;
	return true;
}

struct peer **timerq_take_touched(struct timerq *q, size_t *n)
{
	*n = q->n_touched;
	for (size_t i = 0; i < q->n_touched; i++)
		q->touched[i]->timer_touched = false;
	q->n_touched = 0;
	return q->touched;
}

static void place(struct timerq *q, size_t i, struct peer *p)
{
	q->heap[i] = p;
	p->timer_pos = (long)i;
}

static void sift_up(struct timerq *q, size_t i)
{
	struct peer *p = q->heap[i];
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (q->heap[parent]->due_ms <= p->due_ms)
			break;
		place(q, i, q->heap[parent]);
		i = parent;
	}
	place(q, i, p);
}

static void sift_down(struct timerq *q, size_t i)
{
	struct peer *p = q->heap[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= q->n)
			break;
		if (c + 1 < q->n && q->heap[c + 1]->due_ms < q->heap[c]->due_ms)
			c++;
		if (q->heap[c]->due_ms >= p->due_ms)
			break;
		place(q, i, q->heap[c]);
		i = c;
	}
	place(q, i, p);
}

static void heap_remove(struct timerq *q, struct peer *p)
{
	size_t i = (size_t)p->timer_pos;
	p->timer_pos = TIMERQ_NOT_QUEUED;
	struct peer *last = q->heap[--q->n];
	if (last == p)
		return;
	place(q, i, last);
	sift_down(q, i);
	sift_up(q, (size_t)last->timer_pos);
}

bool timerq_update(struct timerq *q, struct peer *p)
{
	if (p->due_ms == UINT64_MAX) {
		if (p->timer_pos != TIMERQ_NOT_QUEUED)
			heap_remove(q, p);
		return true;
	}
	if (p->timer_pos == TIMERQ_NOT_QUEUED) {
		if (!grow(&q->heap, &q->cap, q->n + 1))
			return false;
		place(q, q->n++, p);
		sift_up(q, q->n - 1);
		return true;
	}
	size_t i = (size_t)p->timer_pos;
	sift_up(q, i);
	sift_down(q, (size_t)p->timer_pos);
	return true;
}

void timerq_remove(struct timerq *q, struct peer *p)
{
	if (p->timer_pos != TIMERQ_NOT_QUEUED)
		heap_remove(q, p);
	if (!p->timer_touched)
		return;
	for (size_t i = 0; i < q->n_touched; i++)
		if (q->touched[i] == p) {
			q->touched[i] = q->touched[--q->n_touched];
			break;
		}
	p->timer_touched = false;
}

struct peer *timerq_first(const struct timerq *q)
{
	return q->n ? q->heap[0] : NULL;
}

struct peer **timerq_take_due(struct timerq *q, uint64_t now_ms, size_t *n)
{
	*n = 0;
	while (q->n > 0 && q->heap[0]->due_ms <= now_ms) {
		if (!grow(&q->due, &q->due_cap, *n + 1))
			break; /* out of memory: the rest stay due for the next turn */
		struct peer *p = q->heap[0];
		heap_remove(q, p);
		q->due[(*n)++] = p;
	}
	return q->due;
}
