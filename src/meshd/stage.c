/* The shared staging pool (see stage.h). */
#include "meshd/stage.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

bool stage_pool_init(struct stage_pool *pool, size_t slot_size)
{
	memset(pool, 0, sizeof(*pool));
	/* calloc of this size maps fresh zero pages: only slots ever used become resident. */
	pool->buffers = calloc(STAGE_POOL_SLOTS, slot_size);
	pool->next = calloc(STAGE_POOL_SLOTS, sizeof(*pool->next));
	pool->len = calloc(STAGE_POOL_SLOTS, sizeof(*pool->len));
	if (!pool->buffers || !pool->next || !pool->len) {
		stage_pool_free(pool);
		return false;
	}
	pool->slot_size = slot_size;
	for (unsigned int i = 0; i < STAGE_POOL_SLOTS; i++)
		pool->next[i] = (uint16_t)(i + 1 < STAGE_POOL_SLOTS ? i + 1 : STAGE_NONE);
	pool->free_head = 0;
	pool->n_free = STAGE_POOL_SLOTS;
	return true;
}

void stage_pool_free(struct stage_pool *pool)
{
	if (pool->buffers)
		sodium_memzero(pool->buffers, (size_t)STAGE_POOL_SLOTS * pool->slot_size);
	free(pool->buffers);
	free(pool->next);
	free(pool->len);
	memset(pool, 0, sizeof(*pool));
}

void stage_queue_init(struct stage_queue *q)
{
	q->head = q->tail = STAGE_NONE;
	q->count = 0;
}

static uint8_t *slot_data(const struct stage_pool *pool, uint16_t slot)
{
	return pool->buffers + (size_t)slot * pool->slot_size;
}

const uint8_t *stage_front(const struct stage_pool *pool, const struct stage_queue *q, size_t *len)
{
	if (q->count == 0)
		return NULL;
	*len = pool->len[q->head];
	return slot_data(pool, q->head);
}

void stage_pop(struct stage_pool *pool, struct stage_queue *q)
{
	if (q->count == 0)
		return;
	uint16_t slot = q->head;
	sodium_memzero(slot_data(pool, slot), pool->len[slot]);
	q->head = pool->next[slot];
	if (--q->count == 0)
		q->tail = STAGE_NONE;
	pool->next[slot] = pool->free_head;
	pool->free_head = slot;
	pool->n_free++;
}

unsigned int stage_clear(struct stage_pool *pool, struct stage_queue *q)
{
	unsigned int n = q->count;
	while (q->count > 0)
		stage_pop(pool, q);
	return n;
}

void stage_push(struct stage_pool *pool, struct stage_queue *q, const uint8_t *pkt, size_t len, uint64_t *dropped)
{
	if (len > pool->slot_size || len > UINT16_MAX) {
		(*dropped)++;
		return;
	}
	if (q->count >= STAGE_PEER_MAX || (pool->n_free == 0 && q->count > 0)) {
		stage_pop(pool, q); /* the oldest of this peer makes room */
		(*dropped)++;
	}
	if (pool->n_free == 0) {
		(*dropped)++; /* other peers hold the whole pool */
		return;
	}
	uint16_t slot = pool->free_head;
	pool->free_head = pool->next[slot];
	pool->n_free--;
	memcpy(slot_data(pool, slot), pkt, len);
	pool->len[slot] = (uint16_t)len;
	pool->next[slot] = STAGE_NONE;
	if (q->count == 0)
		q->head = slot;
	else
		pool->next[q->tail] = slot;
	q->tail = slot;
	q->count++;
}
