/* Packets held for peers whose handshake is pending, in one pool the device owns: an idle
 * peer holds no buffer at all, only an empty queue (a few bytes). The pool is bounded
 * (STAGE_POOL_SLOTS slots shared by every peer) and so is each peer's share
 * (STAGE_PEER_MAX): one peer that never answers cannot take the room of the others.
 * When a peer's share or the pool is full, the peer's oldest packet makes room (the newest
 * is the most useful after a handshake); a peer with nothing staged and a full pool has its
 * packet dropped. Every drop is counted by the caller's counter. Slots are wiped when
 * they are freed: they hold plaintext. */
#ifndef MESHD_STAGE_H
#define MESHD_STAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
	/* Per peer: as many as one peer's ring held before (WireGuard keeps more, but a
	 * handshake takes one round trip and TCP resends what is lost). */
	STAGE_PEER_MAX = 32,
	/* Shared: a burst toward 32 peers at once at the per-peer limit; at a 1420 MTU,
	 * ~1.5 MB, touched (resident) only as far as it is used. */
	STAGE_POOL_SLOTS = 1024,
	STAGE_NONE = UINT16_MAX, /* end of a slot chain */
};
_Static_assert(STAGE_POOL_SLOTS < STAGE_NONE, "slot numbers fit in 16 bits with room for STAGE_NONE");

/* A peer's staged packets: a chain of pool slots, oldest first. */
struct stage_queue {
	uint16_t head, tail;
	uint16_t count;
};

struct stage_pool {
	uint8_t *buffers;   /* STAGE_POOL_SLOTS * slot_size */
	size_t slot_size;
	uint16_t *next;     /* per slot: the next slot of its chain (queue or free list) */
	uint16_t *len;      /* per slot: the packet's length */
	uint16_t free_head;
	unsigned int n_free;
};

bool stage_pool_init(struct stage_pool *pool, size_t slot_size);
void stage_pool_free(struct stage_pool *pool);

void stage_queue_init(struct stage_queue *q);
/* Stages a copy of pkt for the queue's peer; drops (and counts in *dropped) as above. */
void stage_push(struct stage_pool *pool, struct stage_queue *q, const uint8_t *pkt, size_t len, uint64_t *dropped);
/* The oldest staged packet (NULL if none) and its length. */
const uint8_t *stage_front(const struct stage_pool *pool, const struct stage_queue *q, size_t *len);
/* Wipes and frees the oldest staged packet. */
void stage_pop(struct stage_pool *pool, struct stage_queue *q);
/* Wipes and frees every staged packet of the queue; returns how many there were. */
unsigned int stage_clear(struct stage_pool *pool, struct stage_queue *q);

#endif
