/* Path choice for one peer (see path.h). No I/O and no clock of its own. */
#include "meshd/path.h"

#include <stdlib.h>
#include <string.h>

#include "core/ipaddr.h"

static int find(const struct peer_path *pp, const struct sockaddr_storage *addr, bool via_punch)
{
	for (size_t i = 0; i < pp->n; i++)
		if (pp->cand[i].via_punch == via_punch && sockaddr_inet_equal(&pp->cand[i].addr, addr))
			return (int)i;
	return -1;
}

static void candidate_init(struct path_candidate *c, const struct sockaddr_storage *addr, bool via_punch,
			   bool from_map, uint64_t now_ms)
{
	memset(c, 0, sizeof(*c));
	sockaddr_inet_set(&c->addr, addr);
	c->via_punch = via_punch;
	c->from_map = from_map;
	c->learned_ms = now_ms;
	c->rtt_ms = PATH_RTT_UNKNOWN;
}

static void remove_at(struct peer_path *pp, size_t i)
{
	if (pp->reported_best == (int)i)
		pp->reported_best = -1;
	else if (pp->reported_best > (int)i)
		pp->reported_best--;
	memmove(&pp->cand[i], &pp->cand[i + 1], (pp->n - i - 1) * sizeof(pp->cand[0]));
	pp->n--;
}

void path_init(struct peer_path *pp)
{
	memset(pp, 0, sizeof(*pp));
	pp->reported = PATH_NONE;
	pp->reported_best = -1;
}

void path_free(struct peer_path *pp)
{
	free(pp->cand);
	path_init(pp);
}

/* Room for one more candidate (below PATH_MAX_CANDIDATES); false when out of memory. */
static bool room_for_one(struct peer_path *pp)
{
	if (pp->n < pp->cap)
		return true;
	size_t cap = pp->cap + 1; /* few candidates, grown seldom: exact fit */
	struct path_candidate *grown = realloc(pp->cand, cap * sizeof(*grown));
	if (!grown)
		return false;
	pp->cand = grown;
	pp->cap = cap;
	return true;
}

void path_set_announced(struct peer_path *pp, const struct sockaddr_storage *addrs, size_t n, uint64_t now_ms)
{
	bool news = false;

	/* Announced candidates the map no longer lists go, unless they proved themselves (a
	 * working path stays until it stops answering). */
	for (size_t i = 0; i < pp->n;) {
		struct path_candidate *c = &pp->cand[i];
		bool listed = false;
		for (size_t j = 0; j < n && !listed; j++)
			listed = sockaddr_inet_equal(&c->addr, &addrs[j]);
		if (c->from_map && !listed && c->confirmed_ms == 0)
			remove_at(pp, i);
		else
			i++;
	}
	for (size_t j = 0; j < n; j++) {
		int i = find(pp, &addrs[j], false);
		if (i >= 0) {
			pp->cand[i].from_map = true;
			continue;
		}
		news = true;
		if (pp->n < PATH_MAX_CANDIDATES && room_for_one(pp)) {
			candidate_init(&pp->cand[pp->n++], &addrs[j], false, true, now_ms);
			continue;
		}
		/* Full: an announced address beats the oldest learned one. */
		size_t victim = PATH_MAX_CANDIDATES;
		for (size_t k = 0; k < pp->n; k++)
			if (!pp->cand[k].from_map && (victim == PATH_MAX_CANDIDATES ||
						      pp->cand[k].learned_ms < pp->cand[victim].learned_ms))
				victim = k;
		if (victim == PATH_MAX_CANDIDATES)
			break;
		remove_at(pp, victim);
		candidate_init(&pp->cand[pp->n++], &addrs[j], false, true, now_ms);
	}
	if (news)
		path_probe_now(pp, now_ms);
}

int path_learn(struct peer_path *pp, const struct sockaddr_storage *addr, bool via_punch, uint64_t now_ms)
{
	int i = find(pp, addr, via_punch);
	if (i >= 0) {
		if (!pp->cand[i].from_map)
			pp->cand[i].learned_ms = now_ms;
		return i;
	}
	if (pp->n == PATH_MAX_CANDIDATES || !room_for_one(pp)) {
		if (pp->n == 0)
			return -1; /* out of memory, nothing to replace */
		/* Replace the least recently seen learned candidate, else the last announced one. */
		size_t victim = pp->n - 1;
		for (size_t k = 0; k < pp->n; k++)
			if (!pp->cand[k].from_map && (pp->cand[victim].from_map ||
						      pp->cand[k].learned_ms < pp->cand[victim].learned_ms))
				victim = k;
		remove_at(pp, victim);
	}
	candidate_init(&pp->cand[pp->n], addr, via_punch, false, now_ms);
	return (int)pp->n++;
}

void path_confirm_from(struct peer_path *pp, const struct sockaddr_storage *addr, bool via_punch, uint64_t now_ms)
{
	/* The common case, once per data packet: it came on the path in use. */
	int in_use = pp->reported_best;
	if (in_use >= 0 && pp->cand[in_use].via_punch == via_punch && sockaddr_inet_equal(&pp->cand[in_use].addr, addr)) {
		pp->cand[in_use].confirmed_ms = now_ms;
		return;
	}
	int i = path_learn(pp, addr, via_punch, now_ms);
	if (i >= 0)
		pp->cand[i].confirmed_ms = now_ms;
}

bool path_on_pong(struct peer_path *pp, const uint8_t txid[DISCO_TXID_LEN], const struct sockaddr_storage *from,
		  bool via_punch, uint64_t now_ms)
{
	int i = find(pp, from, via_punch);
	if (i < 0)
		return false;
	struct path_candidate *c = &pp->cand[i];
	if (!c->ping_outstanding || memcmp(c->ping_txid, txid, DISCO_TXID_LEN) != 0 ||
	    now_ms - c->ping_sent_ms > PATH_PING_TIMEOUT_MS)
		return false;
	c->ping_outstanding = false;
	c->confirmed_ms = now_ms;
	c->rtt_ms = (uint32_t)(now_ms - c->ping_sent_ms);
	return true;
}

void path_ping_sent(struct peer_path *pp, size_t i, const uint8_t txid[DISCO_TXID_LEN], uint64_t now_ms)
{
	struct path_candidate *c = &pp->cand[i];
	/* One ping in flight per candidate: a newer one replaces the older, whose pong is then
	 * refused; a round-trip time is always measured against the ping it answers. */
	c->ping_outstanding = true;
	memcpy(c->ping_txid, txid, DISCO_TXID_LEN);
	c->ping_sent_ms = now_ms;
}

static bool trusted(const struct path_candidate *c, uint64_t now_ms)
{
	return c->confirmed_ms != 0 && now_ms - c->confirmed_ms < PATH_TRUST_MS;
}

int path_best(const struct peer_path *pp, uint64_t now_ms)
{
	int best = -1;
	for (size_t i = 0; i < pp->n; i++) {
		const struct path_candidate *c = &pp->cand[i];
		if (!trusted(c, now_ms))
			continue;
		/* Unknown RTT (confirmed by a packet, not a pong) ranks last among the trusted. */
		if (best < 0 || c->rtt_ms < pp->cand[best].rtt_ms)
			best = (int)i;
	}
	return best;
}

static bool active(const struct peer_path *pp, uint64_t now_ms)
{
	return pp->last_active_ms != 0 && now_ms - pp->last_active_ms < PATH_ACTIVE_MS;
}

bool path_silence_counts(const struct peer_path *pp, uint64_t now_ms)
{
	return active(pp, now_ms) && now_ms - pp->resumed_ms >= PATH_TRUST_MS;
}

void path_want(struct peer_path *pp, uint64_t now_ms)
{
	if (pp->want_since_ms == 0) {
		pp->want_since_ms = now_ms;
		pp->last_round_ms = 0; /* a round at once */
	}
}

void path_probe_now(struct peer_path *pp, uint64_t now_ms)
{
	path_want(pp, now_ms);
	pp->last_round_ms = 0;
}

void path_note_activity(struct peer_path *pp, uint64_t now_ms)
{
	if (!active(pp, now_ms))
		pp->resumed_ms = now_ms;
	pp->last_active_ms = now_ms;
	if (path_best(pp, now_ms) < 0)
		path_want(pp, now_ms);
}

bool path_answer_cmm(struct peer_path *pp, uint64_t now_ms)
{
	if (pp->last_cmm_answered_ms != 0 && now_ms - pp->last_cmm_answered_ms < PATH_CMM_ANSWER_MIN_MS)
		return false;
	pp->last_cmm_answered_ms = now_ms;
	return true;
}

static uint64_t round_interval(const struct peer_path *pp, uint64_t now_ms)
{
	return now_ms - pp->want_since_ms < PATH_FAST_WINDOW_MS ? PATH_PROBE_FAST_MS : PATH_PROBE_SLOW_MS;
}

/* The direct path to keep alive: the one in use, or the last one used while a session lasts. */
static int heartbeat_target(const struct peer_path *pp, uint64_t now_ms, bool session_alive, uint64_t *interval)
{
	int best = path_best(pp, now_ms);
	if (best < 0 && session_alive)
		best = pp->reported_best;
	if (best < 0)
		return -1;
	if (active(pp, now_ms))
		*interval = PATH_HEARTBEAT_MS;
	else if (session_alive)
		*interval = PATH_KEEPALIVE_MS;
	else
		return -1;
	return best;
}

unsigned int path_due(struct peer_path *pp, uint64_t now_ms, bool session_alive)
{
	unsigned int acts = 0;
	bool have_direct = path_best(pp, now_ms) >= 0;

	/* Stop wanting once direct, or once idle after the fast window. */
	if (pp->want_since_ms != 0 && (have_direct || (!active(pp, now_ms) &&
						       now_ms - pp->want_since_ms >= PATH_FAST_WINDOW_MS)))
		pp->want_since_ms = 0;
	if (!have_direct && active(pp, now_ms))
		path_want(pp, now_ms);
	if (pp->want_since_ms != 0 && (pp->last_round_ms == 0 || now_ms - pp->last_round_ms >= round_interval(pp, now_ms))) {
		pp->last_round_ms = now_ms;
		acts |= PATH_ACT_PROBE_ROUND;
	}
	uint64_t interval;
	if (!(acts & PATH_ACT_PROBE_ROUND) && heartbeat_target(pp, now_ms, session_alive, &interval) >= 0 &&
	    now_ms - pp->last_heartbeat_ms >= interval) {
		pp->last_heartbeat_ms = now_ms;
		acts |= PATH_ACT_HEARTBEAT;
	}
	return acts;
}

uint64_t path_next_deadline(const struct peer_path *pp, uint64_t now_ms, bool session_alive)
{
	uint64_t next = UINT64_MAX;
	if (pp->want_since_ms != 0)
		next = pp->last_round_ms == 0 ? now_ms : pp->last_round_ms + round_interval(pp, now_ms);
	uint64_t interval;
	if (heartbeat_target(pp, now_ms, session_alive, &interval) >= 0 && pp->last_heartbeat_ms + interval < next)
		next = pp->last_heartbeat_ms + interval;
	/* The moment the direct path stops being trusted: the change is logged then. */
	int best = path_best(pp, now_ms);
	if (best >= 0 && pp->cand[best].confirmed_ms + PATH_TRUST_MS < next)
		next = pp->cand[best].confirmed_ms + PATH_TRUST_MS;
	/* Traffic stopping ends the fast heartbeat. */
	if (active(pp, now_ms) && pp->last_active_ms + PATH_ACTIVE_MS < next)
		next = pp->last_active_ms + PATH_ACTIVE_MS;
	return next;
}
