/* Path choice for one peer: its candidate addresses, which of them have proven to work, and
 * when to probe. A pure policy with injected time (like core/timers): it decides, probe.c
 * and tx.c act.
 *
 * A candidate is an address the coordinator announced for the peer, or one we learned (a
 * disco ping or an authenticated packet arrived from it: the peer's NAT mapping toward us).
 * A candidate is confirmed by a pong to our ping or by an authenticated packet from it, and
 * trusted for PATH_TRUST_MS after that. The direct path is the trusted candidate with the
 * lowest round-trip time; without one, traffic goes through the relay, so a path change
 * never waits for a handshake and TCP connections survive both moves.
 *
 * Probing starts whenever we want the peer (traffic, a new or changed peer): a round pings
 * every candidate and asks the peer (call-me-maybe, through the coordinator) to ping ours, so
 * both NATs open. Rounds repeat fast for PATH_FAST_WINDOW_MS, then slowly, while we still
 * want a direct path. A trusted path in use is pinged every PATH_HEARTBEAT_MS. */
#ifndef MESHD_PATH_H
#define MESHD_PATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/disco.h"
#include "core/ipaddr.h"

enum {
	/* Announced endpoints (CONTROL_MAX_ENDPOINTS) plus a few learned ones. */
	PATH_MAX_CANDIDATES = CONTROL_MAX_ENDPOINTS + 4,
	/* A confirmed path is trusted this long: with a ping a second while in use, two lost
	 * pongs in a row hand traffic to the relay, within the 3 s the design promises. */
	PATH_TRUST_MS = 2500,
	PATH_HEARTBEAT_MS = 1000,
	/* Keep an idle direct path's NAT mappings open: under Linux conntrack's 30 s for an
	 * unreplied UDP flow and every home router measured (RFC 4787 asks for >= 120 s). */
	PATH_KEEPALIVE_MS = 25000,
	/* Traffic within this long makes a peer "in use" (heartbeats, probing). */
	PATH_ACTIVE_MS = 5000,
	/* Probe rounds: fast right after we start wanting a path, then slow, so a path that
	 * opens later (UDP restored, a NAT rebooted) is found within PATH_PROBE_SLOW_MS. */
	PATH_PROBE_FAST_MS = 1000,
	PATH_FAST_WINDOW_MS = 10000,
	PATH_PROBE_SLOW_MS = 5000,
	/* A ping unanswered this long is forgotten (its pong would be too late to rank). */
	PATH_PING_TIMEOUT_MS = 5000,
	/* Answering call-me-maybe: at most one burst of pings per peer this often, so a peer
	 * (or a replayed message) cannot make us ping in a loop. */
	PATH_CMM_ANSWER_MIN_MS = 500,
	PATH_RTT_UNKNOWN = UINT32_MAX,
};

enum path_kind {
	PATH_NONE,   /* no way to reach the peer now */
	PATH_DIRECT, /* UDP straight to a confirmed candidate */
	PATH_RELAY,  /* through the coordinator */
};

/* Every peer holds one or more: fields ordered so that none pads (72 bytes). */
struct path_candidate {
	union sockaddr_inet addr; /* in the data socket's family */
	uint32_t rtt_ms;
	uint64_t ping_sent_ms;
	uint64_t confirmed_ms; /* last pong or authenticated packet from it; 0: never */
	uint64_t learned_ms;   /* learned candidates: when last seen (oldest is replaced) */
	uint8_t ping_txid[DISCO_TXID_LEN];
	bool ping_outstanding;
	bool from_map;         /* announced by the coordinator, else learned */
	/* Reached through the peer's punch socket (a birthday punch's winner, punch.h), not
	 * the data socket: the same address through another socket is another path. */
	bool via_punch;
};

struct peer_path {
	/* Grown as candidates come (at most PATH_MAX_CANDIDATES): an idle peer with one
	 * announced address holds one, not the whole table. */
	struct path_candidate *cand;
	uint64_t want_since_ms; /* probing for a direct path since; 0: not probing */
	uint64_t last_round_ms;
	uint64_t last_heartbeat_ms;
	uint64_t last_active_ms;
	uint64_t resumed_ms;    /* when traffic last started after an idle spell */
	uint64_t last_cmm_answered_ms;
	enum path_kind reported; /* the last path logged, to log changes once */
	uint8_t n, cap;          /* at most PATH_MAX_CANDIDATES */
	int8_t reported_best;    /* a candidate index, or -1 */
};
_Static_assert(PATH_MAX_CANDIDATES <= INT8_MAX, "candidate counts and indices fit in a byte");

/* An empty path: no candidates, nothing in use. */
void path_init(struct peer_path *pp);
/* Frees the candidates (the path is empty afterwards). */
void path_free(struct peer_path *pp);
/* The coordinator's list of candidates replaces the announced ones; what we knew about an
 * address that stays is kept, learned ones stay. Starts probing if anything is new. */
void path_set_announced(struct peer_path *pp, const struct sockaddr_storage *addrs, size_t n, uint64_t now_ms);
/* Adds addr (through the punch socket if via_punch) as a learned candidate (if not known)
 * and returns its index; -1 only when out of memory with no candidate to replace. */
int path_learn(struct peer_path *pp, const struct sockaddr_storage *addr, bool via_punch, uint64_t now_ms);
/* An authenticated packet came from addr: it is confirmed (learned if new). */
void path_confirm_from(struct peer_path *pp, const struct sockaddr_storage *addr, bool via_punch, uint64_t now_ms);
/* A pong with this transaction id came from `from`: true if it answers one of our pings sent
 * to that address (then it is confirmed, with its round-trip time). */
bool path_on_pong(struct peer_path *pp, const uint8_t txid[DISCO_TXID_LEN], const struct sockaddr_storage *from,
		  bool via_punch, uint64_t now_ms);
/* Records a ping sent to candidate i. */
void path_ping_sent(struct peer_path *pp, size_t i, const uint8_t txid[DISCO_TXID_LEN], uint64_t now_ms);

/* The direct path to use now (lowest RTT among trusted candidates), or -1. */
int path_best(const struct peer_path *pp, uint64_t now_ms);
/* Whether a lapsed confirmation now means the path went silent: the peer has had traffic
 * (so heartbeats) for at least PATH_TRUST_MS. An idle peer's confirmation lapses by itself,
 * and traffic that resumes gets one trust window for a ping to confirm it again. */
bool path_silence_counts(const struct peer_path *pp, uint64_t now_ms);
/* Traffic to or from the peer: it is in use; without a direct path, probing starts. */
void path_note_activity(struct peer_path *pp, uint64_t now_ms);
/* Start probing now (new or changed peer, or the peer asked us to). */
void path_want(struct peer_path *pp, uint64_t now_ms);
/* A probe round at the next tick, wanting or not (new candidates on either side: the last
 * round's pings and call-me-maybe went to, or named, the old ones). */
void path_probe_now(struct peer_path *pp, uint64_t now_ms);
/* Whether a call-me-maybe from the peer should be answered now (rate limit); records it. */
bool path_answer_cmm(struct peer_path *pp, uint64_t now_ms);

enum path_action {
	PATH_ACT_PROBE_ROUND = 1, /* ping every candidate and send call-me-maybe */
	PATH_ACT_HEARTBEAT = 2,   /* ping the direct path in use */
};
/* What is due now (session_alive: a data session with the peer exists, so an idle direct
 * path is worth keeping open). Marks what it returns as done. */
unsigned int path_due(struct peer_path *pp, uint64_t now_ms, bool session_alive);
/* When path_due may next have something to do (UINT64_MAX: nothing planned). */
uint64_t path_next_deadline(const struct peer_path *pp, uint64_t now_ms, bool session_alive);

#endif
