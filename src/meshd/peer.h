/* Peers: who they are (key, owned addresses, endpoint), their handshake, their three
 * sessions and timers, and the packets waiting for a session. */
#ifndef MESHD_PEER_H
#define MESHD_PEER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/control.h"
#include "core/cookie.h"
#include "core/handshake.h"
#include "core/session_set.h"
#include "core/log.h"
#include "core/timers.h"
#include "meshd/config.h"
#include "meshd/path.h"
#include "meshd/stage.h"

enum {
	/* Receiver indices a peer can hold at once: three sessions and one initiation, plus the
	 * one being handed out (dead ones are purged before a new one is added). */
	PEER_INDICES_MAX = 5,
};

struct device;

/* A large map holds one per peer, so the fields are ordered to leave no padding, and what
 * most peers lack (a preshared key, a handshake, sessions) is a pointer. */
struct peer {
	char *name; /* heap */
	uint8_t public_key[WIRE_KEY_LEN];
	/* The preshared key (heap, wiped before it is freed), or NULL for none (all zero, as
	 * Noise's IKpsk2 then mixes in): peer_psk gives the key either way. */
	uint8_t *psk;
	/* What it owns (heap array; also in the device's allowed-IPs table: change it only
	 * through peer_set_allowed_ips). */
	struct ip_prefix *allowed_ips;
	size_t n_allowed_ips;

	/* Static peers: the configured endpoint, moved by authenticated packets (roaming).
	 * Coordinator peers: the last direct path in use (the path below decides). */
	union sockaddr_inet endpoint; /* in the family of the device's socket */
	bool has_endpoint;
	bool disco_key_ready;
	bool from_coordinator; /* removed when the coordinator's map no longer has it */
	bool satellite;        /* a stock WireGuard device we serve as gateway (satellites.h) */
	bool coord_online;     /* as the coordinator's record says (see coord_endpoints) */
	/* Coordinator peers: candidate addresses, which of them work, and when to probe. */
	struct peer_path path;
	uint8_t disco_key[crypto_box_BEFORENMBYTES]; /* crypto_box key between our node keys */
	struct punch_attempt *punch; /* a birthday punch in progress (punch.h), or NULL */
	/* These two outlive an attempt (the retry pause, the winning socket that stays). */
	uint64_t punch_last_ms;      /* when the last one started */
	int punch_fd;                /* the punch's winning socket, or -1 */
	uint32_t map_generation; /* the coordinator session whose map last listed it */
	uint64_t rx_bytes, tx_bytes; /* inner packet bytes, for status */
	int64_t last_handshake_unix;  /* wall-clock seconds of the last completed handshake (as
				       * responder: when data confirmed it, as WireGuard); 0 never */
	/* What the coordinator's record says beyond name, key and addresses (which the fields
	 * above hold): coordmap.c rebuilds the record from these for the state file. */
	struct control_endpoint *coord_endpoints; /* heap, n_coord_endpoints long */
	/* Its approved routes and which we use (meshroutes.h): heap, NULL for most peers. */
	struct peer_routes *routes;
	/* A gateway's satellites, by name (PEER_SATELLITES, satellites.h): heap, NULL for most. */
	struct control_peer_satellites *behind;

	/* Our initiation in flight, or NULL (an idle peer holds none): heap, since it is needed
	 * only between sending an initiation and its response, retry or give-up. It holds
	 * secrets: peer_handshake_end wipes it. (As responder, the state lives on rx.c's stack.) */
	struct handshake *handshake;
	/* The cookie this peer gave us when under load (mac2) and our last message's mac1: heap
	 * from our first handshake message to it until the keys are wiped; NULL before. */
	struct cookie_jar *cookie_jar;
	uint64_t last_initiation_sent_ms;
	uint8_t latest_timestamp[WIRE_TIMESTAMP_LEN]; /* newest accepted initiation timestamp */
	bool no_response_warned;
	uint8_t n_coord_endpoints;
	uint8_t n_indices; /* of indices[] below */
	bool timer_touched; /* of the timer heap fields below */

	/* next / current / previous and how they rotate: core/session_set.h. Heap from the first
	 * session a handshake made until the keys are wiped (peer_wipe_keys); NULL before and
	 * after, so a peer that never completed a handshake does not carry three sessions. */
	struct session_set *sessions;
	struct peer_timers timers;

	/* Inner packets waiting for a session, in the device's shared pool (stage.h). */
	struct stage_queue staged;
	/* Our receiver indices handed out for this peer (its sessions' and initiation's, and
	 * perhaps dead ones until the next purge): the device's index table maps them here. */
	uint32_t indices[PEER_INDICES_MAX];
	/* The device's timer heap (timerq.h): the earliest deadline of any of its timers. */
	uint64_t due_ms;
	long timer_pos;

	struct log_ratelimit log_limit;
};

/* A peer as configured, without its allowed IPs: device_peer_add enters it in the device's
 * tables and gives it those (peer_set_allowed_ips). False when out of memory: peer_free
 * then frees what it took. */
bool peer_init(struct peer *p, const struct config_peer *cp);
void peer_free(struct peer *p);
/* Renames p (a copy is kept); false when out of memory: p keeps its name. */
bool peer_set_name(struct peer *p, const char *name);

/* The key Noise mixes in for p: its preshared key, or all zero without one. */
const uint8_t *peer_psk(const struct peer *p);
/* Wipes sessions and handshake state and frees them (keys expired or peer gave up). */
void peer_wipe_keys(struct peer *p);

/* p's handshake for a new initiation: the one in flight, or a new zeroed one. NULL when out
 * of memory: then p does not handshake this turn (its retry timer tries again). */
struct handshake *peer_handshake_start(struct peer *p);
/* Wipes and frees p's handshake (completed, given up, or failed). */
void peer_handshake_end(struct peer *p);
/* p's sessions, allocated (all three empty) when p has none yet; NULL when out of memory. */
struct session_set *peer_sessions_get(struct peer *p);

/* cookie_jar_stamp on a handshake message to p: remembers its mac1, sets mac2 (with a fresh
 * cookie) or zeroes it. Out of memory: mac2 zeroed, nothing remembered (a cookie reply to the
 * message is then refused and the next retry tries again). */
void peer_cookie_stamp(struct peer *p, uint8_t *msg, size_t len, uint64_t now_ms);

static inline bool peer_cookie_fresh(const struct peer *p, uint64_t now_ms)
{
	return p->cookie_jar && cookie_jar_fresh(p->cookie_jar, now_ms);
}

/* The session p sends with, or NULL while p has none. */
static inline struct session *peer_current_session(struct peer *p)
{
	return p->sessions ? &p->sessions->current : NULL;
}

static inline bool peer_session_usable(const struct peer *p, uint64_t now_ms)
{
	return p->sessions && session_usable(&p->sessions->current, now_ms);
}

/* An initiation of ours is waiting for its response. */
static inline bool peer_initiation_in_flight(const struct peer *p)
{
	return p->handshake && p->handshake->state == HANDSHAKE_INITIATION_SENT;
}

/* The lookups are hash tables and a trie (peertable.h, core/allowedips.h): their cost does
 * not grow with the number of peers. A peer they find is marked for the timer heap
 * (device_peer_touch), since whoever looked it up may now change its timers. */
struct peer *peer_by_public_key(struct device *dev, const uint8_t key[WIRE_KEY_LEN]);
/* Longest-prefix match of an address over every peer's allowed IPs. */
struct peer *peer_by_address(struct device *dev, int family, const uint8_t *addr);
/* Finds the session (current, previous or next of any peer) whose local index is `index`. */
struct session *peer_session_by_index(struct device *dev, uint32_t index, struct peer **peer_out);
/* Finds the peer with an initiation in flight under local index `index`. */
struct peer *peer_by_handshake_index(struct device *dev, uint32_t index);
/* A local index for a new handshake or session of p, used by nothing else of the device,
 * and registered for p in the device's index table. */
uint32_t peer_new_local_index(struct device *dev, struct peer *p);
/* Registers an index chosen elsewhere (tests, fuzzing) for p. */
bool peer_index_add(struct device *dev, struct peer *p, uint32_t index);
/* Drops p's registered indices that no session or handshake of p uses any more (all of
 * them with `all`: the peer is going away). */
void peer_purge_indices(struct device *dev, struct peer *p, bool all);

/* Replaces what p owns (a copy is kept), in p and in the device's trie. False when out of
 * memory: p keeps what it had. */
bool peer_set_allowed_ips(struct device *dev, struct peer *p, const struct ip_prefix *ips, size_t n);
/* Takes p's prefixes out of the device's trie (before the peer goes). */
void peer_unroute(struct device *dev, struct peer *p);


/* Staging while no session is usable (in the device's shared pool). */
void peer_stage_packet(struct device *dev, struct peer *p, const uint8_t *pkt, size_t len, uint64_t *dropped);
/* Wipes and drops every staged packet of p; returns how many there were. */
unsigned int peer_drop_staged(struct device *dev, struct peer *p);

bool peer_endpoint_equal(const struct peer *p, const struct sockaddr_storage *addr);

#endif
