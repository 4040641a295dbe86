/* Per-peer timer policy (WireGuard's proven set). Pure logic: the data path reports
 * events with the current time, asks which timers expired, and acts on the returned
 * actions. No clock is read here, so tests inject time and run instantly.
 *
 *   retransmit_handshake  initiation sent, no response after REKEY_TIMEOUT + jitter: send again,
 *                         give up after REKEY_ATTEMPT_TIME
 *   send_keepalive        data received and nothing sent back for KEEPALIVE_TIMEOUT: send keepalive
 *   new_handshake         data sent and nothing authenticated received for KEEPALIVE + REKEY_TIMEOUT:
 *                         the peer may have lost its keys, start a new handshake
 *   zero_keys             no new session for REJECT_AFTER_TIME * 3: wipe all key material
 *   persistent_keepalive  optional: keep NAT mappings open while idle
 */
#ifndef MESHD_TIMERS_H
#define MESHD_TIMERS_H

#include <stdbool.h>
#include <stdint.h>

#include "session.h"

enum {
	TIMER_REKEY_TIMEOUT_MS = 5000,        /* retry a handshake that got no answer after 5 s */
	TIMER_REKEY_TIMEOUT_JITTER_MS = 333,  /* spread retries so peers do not collide in lockstep */
	TIMER_REKEY_ATTEMPT_TIME_MS = 90000,  /* stop retrying after 90 s; new data restarts it */
	TIMER_MAX_HANDSHAKE_ATTEMPTS = TIMER_REKEY_ATTEMPT_TIME_MS / TIMER_REKEY_TIMEOUT_MS, /* 18 */
	TIMER_KEEPALIVE_TIMEOUT_MS = 10000,   /* passive keepalive: acknowledge received data within 10 s */
	/* Sent data but heard nothing for 15 s: our keys may be stale on the other side. */
	TIMER_NEW_HANDSHAKE_AFTER_MS = TIMER_KEEPALIVE_TIMEOUT_MS + TIMER_REKEY_TIMEOUT_MS,
	/* Wipe keys after 540 s without a new session: no key outlives three reject periods. */
	TIMER_ZERO_KEYS_AFTER_MS = 3 * SESSION_REJECT_AFTER_TIME_MS,
};

enum timer_action {
	TIMER_ACTION_NONE = 0,
	TIMER_ACTION_SEND_INITIATION = 1 << 0, /* (re)send a handshake initiation */
	TIMER_ACTION_SEND_KEEPALIVE = 1 << 1,  /* send an empty data message */
	TIMER_ACTION_GIVE_UP = 1 << 2,         /* handshake attempts exhausted: drop queued packets */
	TIMER_ACTION_WIPE_KEYS = 1 << 3,       /* wipe every session and handshake of this peer */
};

/* Deadlines in monotonic ms; 0 means the timer is not armed. */
struct peer_timers { /* every peer holds one: the deadlines first, so nothing pads */
	uint64_t retransmit_handshake_at;
	uint64_t send_keepalive_at;
	uint64_t new_handshake_at;
	uint64_t zero_keys_at;
	uint64_t persistent_keepalive_at;
	unsigned int handshake_attempts;
	unsigned int persistent_keepalive_ms; /* 0 = off */
	bool another_keepalive_needed; /* data arrived while the keepalive timer was already armed */
};

void timers_init(struct peer_timers *t, unsigned int persistent_keepalive_ms);
/* A new persistent keepalive interval (0: off), as SIGHUP's config gives it. */
void timers_set_persistent_keepalive(struct peer_timers *t, unsigned int persistent_keepalive_ms, uint64_t now_ms);

/* Events, reported by the data path. */
void timers_on_data_sent(struct peer_timers *t, uint64_t now_ms);       /* a non-empty data message */
void timers_on_data_received(struct peer_timers *t, uint64_t now_ms);   /* authenticated, non-empty */
void timers_on_authenticated_sent(struct peer_timers *t, uint64_t now_ms);     /* any data or keepalive */
void timers_on_authenticated_received(struct peer_timers *t, uint64_t now_ms); /* any, after AEAD/mac */
/* An initiation went out. jitter_ms (0..TIMER_REKEY_TIMEOUT_JITTER_MS) comes from the caller's RNG.
 * `is_retry` is true when the retransmit timer caused it (counts towards giving up). */
void timers_on_handshake_initiated(struct peer_timers *t, uint64_t now_ms, unsigned int jitter_ms, bool is_retry);
void timers_on_handshake_complete(struct peer_timers *t, uint64_t now_ms);
void timers_on_session_derived(struct peer_timers *t, uint64_t now_ms);

/* Returns the actions of every timer that expired at or before now_ms and disarms them. */
unsigned int timers_expire(struct peer_timers *t, uint64_t now_ms);
/* Earliest armed deadline, or UINT64_MAX when none is armed. */
uint64_t timers_next_deadline(const struct peer_timers *t);

#endif
