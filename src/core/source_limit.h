/* A token bucket per source address, for handshake messages a responder under load has
 * already checked the cookie (mac2) of: the cookie proves the sender owns the address, and
 * this bounds what one owned address may then cost (WireGuard's ratelimiter: 20 a second,
 * bursts of 5). Keyed by the whole IPv4 address, or an IPv6 /64 (one host's share of a
 * network; v4-mapped addresses count as IPv4), in a fixed table found by a keyed hash, so
 * neither memory nor lookup time grows with the number of sources an attacker uses.
 * Pure: callers pass the time in (unit tests drive it). */
#ifndef MESHD_SOURCE_LIMIT_H
#define MESHD_SOURCE_LIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum {
	SOURCE_LIMIT_PER_SECOND = 20, /* WireGuard's PACKETS_PER_SECOND: ample for real peers */
	SOURCE_LIMIT_BURST = 5,       /* WireGuard's PACKETS_BURSTABLE: a retry storm after roaming */
	SOURCE_LIMIT_SLOTS = 4096,    /* sources tracked at once (~100 KiB, made at first use) */
	SOURCE_LIMIT_PROBES = 8,      /* slots looked at per source before giving up */
	/* A source not seen for this long has a full bucket again: its slot may be reused. */
	SOURCE_LIMIT_IDLE_MS = (SOURCE_LIMIT_BURST * 1000) / SOURCE_LIMIT_PER_SECOND,
	SOURCE_LIMIT_KEY_LEN = 9, /* family tag, then 4 (IPv4) or 8 (IPv6 /64) address bytes */
};

struct source_limit_slot {
	uint8_t key[SOURCE_LIMIT_KEY_LEN];
	bool used;
	uint64_t last_ms;
	uint32_t tokens_ms; /* credit in milliseconds; one message costs 1000 / PER_SECOND */
};

struct source_limit {
	struct source_limit_slot *slots; /* NULL until the first source is seen */
	uint8_t hash_key[16];            /* random: an attacker cannot aim sources at one slot */
	uint64_t refused_full;           /* refused because every probed slot was busy */
};

void source_limit_init(struct source_limit *l);
void source_limit_free(struct source_limit *l);
/* True when the source (a sockaddr_in or sockaddr_in6) may send one more message now;
 * false when its bucket is empty, its address family is unknown, the table has no room
 * for it, or memory for the table could not be had. */
bool source_limit_take(struct source_limit *l, const struct sockaddr *source, uint64_t now_ms);

#endif
