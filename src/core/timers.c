/* WireGuard's per-peer timer rules as plain deadlines. Each event arms or disarms deadlines;
 * timers_expire turns the ones that passed into actions for the caller. A deadline of 0
 * means disarmed, so an armed deadline is always at least 1. */
#include <string.h>

#include "timers.h"

static uint64_t timers_deadline(uint64_t now_ms, uint64_t delay_ms)
{
	uint64_t at = now_ms + delay_ms;

	if (at < now_ms) /* saturate rather than wrap into the past */
		at = UINT64_MAX;
	return at ? at : 1;
}

static bool timers_due(uint64_t at, uint64_t now_ms)
{
	return at != 0 && at <= now_ms;
}

void timers_init(struct peer_timers *t, unsigned int persistent_keepalive_ms)
{
	memset(t, 0, sizeof(*t));
	t->persistent_keepalive_ms = persistent_keepalive_ms;
}

void timers_set_persistent_keepalive(struct peer_timers *t, unsigned int persistent_keepalive_ms, uint64_t now_ms)
{
	t->persistent_keepalive_ms = persistent_keepalive_ms;
	/* On: the first one an interval from now, as after a send; off: none pending. */
	t->persistent_keepalive_at = persistent_keepalive_ms ? timers_deadline(now_ms, persistent_keepalive_ms) : 0;
}

void timers_on_data_sent(struct peer_timers *t, uint64_t now_ms)
{
	/* Measured from the first unanswered packet: later ones must not push it back. */
	if (!t->new_handshake_at)
		t->new_handshake_at = timers_deadline(now_ms, TIMER_NEW_HANDSHAKE_AFTER_MS);
}

void timers_on_data_received(struct peer_timers *t, uint64_t now_ms)
{
	if (!t->send_keepalive_at)
		t->send_keepalive_at = timers_deadline(now_ms, TIMER_KEEPALIVE_TIMEOUT_MS);
	else
		t->another_keepalive_needed = true;
}

void timers_on_authenticated_sent(struct peer_timers *t, uint64_t now_ms)
{
	/* Anything we send acknowledges what we received, so no keepalive is owed. */
	t->send_keepalive_at = 0;
	if (t->persistent_keepalive_ms)
		t->persistent_keepalive_at = timers_deadline(now_ms, t->persistent_keepalive_ms);
}

void timers_on_authenticated_received(struct peer_timers *t, uint64_t now_ms)
{
	/* The peer still has working keys: no reason to suspect them. */
	t->new_handshake_at = 0;
}

void timers_on_handshake_initiated(struct peer_timers *t, uint64_t now_ms, unsigned int jitter_ms, bool is_retry)
{
	if (jitter_ms > TIMER_REKEY_TIMEOUT_JITTER_MS)
		jitter_ms = TIMER_REKEY_TIMEOUT_JITTER_MS;
	/* Only retries count towards giving up; a fresh reason to connect starts over. */
	if (is_retry)
		t->handshake_attempts++;
	else
		t->handshake_attempts = 0;
	t->retransmit_handshake_at = timers_deadline(now_ms, (uint64_t)TIMER_REKEY_TIMEOUT_MS + jitter_ms);
}

void timers_on_handshake_complete(struct peer_timers *t, uint64_t now_ms)
{
	t->retransmit_handshake_at = 0;
	t->handshake_attempts = 0;
}

void timers_on_session_derived(struct peer_timers *t, uint64_t now_ms)
{
	/* Every new session restarts the countdown: keys are wiped only after a long silence. */
	t->zero_keys_at = timers_deadline(now_ms, TIMER_ZERO_KEYS_AFTER_MS);
}

unsigned int timers_expire(struct peer_timers *t, uint64_t now_ms)
{
	unsigned int actions = TIMER_ACTION_NONE;

	if (timers_due(t->retransmit_handshake_at, now_ms)) {
		t->retransmit_handshake_at = 0;
		if (t->handshake_attempts >= TIMER_MAX_HANDSHAKE_ATTEMPTS) {
			actions |= TIMER_ACTION_GIVE_UP;
			/* No session to send it on, so as WireGuard, owe no keepalive. */
			t->send_keepalive_at = 0;
			t->another_keepalive_needed = false;
			/* Whatever partial key material remains must not outlive the usual limit. */
			if (!t->zero_keys_at)
				t->zero_keys_at = timers_deadline(now_ms, TIMER_ZERO_KEYS_AFTER_MS);
		} else {
			actions |= TIMER_ACTION_SEND_INITIATION;
		}
	}
	if (timers_due(t->send_keepalive_at, now_ms)) {
		t->send_keepalive_at = 0;
		actions |= TIMER_ACTION_SEND_KEEPALIVE;
		if (t->another_keepalive_needed) {
			t->another_keepalive_needed = false;
			t->send_keepalive_at = timers_deadline(now_ms, TIMER_KEEPALIVE_TIMEOUT_MS);
		}
	}
	if (timers_due(t->new_handshake_at, now_ms)) {
		t->new_handshake_at = 0;
		actions |= TIMER_ACTION_SEND_INITIATION;
	}
	if (timers_due(t->zero_keys_at, now_ms)) {
		t->zero_keys_at = 0;
		actions |= TIMER_ACTION_WIPE_KEYS;
	}
	if (timers_due(t->persistent_keepalive_at, now_ms)) {
		/* Re-armed by the caller's timers_on_authenticated_sent when the keepalive goes out. */
		t->persistent_keepalive_at = 0;
		actions |= TIMER_ACTION_SEND_KEEPALIVE;
	}
	return actions;
}

uint64_t timers_next_deadline(const struct peer_timers *t)
{
	const uint64_t deadlines[] = {
		t->retransmit_handshake_at, t->send_keepalive_at, t->new_handshake_at,
		t->zero_keys_at,            t->persistent_keepalive_at,
	};
	uint64_t next = UINT64_MAX;
	size_t i;

	for (i = 0; i < sizeof(deadlines) / sizeof(deadlines[0]); i++)
		if (deadlines[i] && deadlines[i] < next)
			next = deadlines[i];
	return next;
}
