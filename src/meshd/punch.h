/* The birthday punch: a direct path between a node behind a hard NAT (one that maps every
 * destination to a new port, so its peers cannot know the port to answer) and a node behind
 * an easy one (one mapping for all destinations).
 *
 * The hard side H opens PUNCH_SOCKETS sockets and sends a disco ping from each toward the
 * easy side E's public address: its NAT now holds that many mappings, each open to E alone.
 * It asks E (DISCO_PUNCH, through the relay) to probe: E sends PUNCH_PROBES disco pings from
 * its data socket to random ports of H's public address. A probe that lands on one of H's
 * mappings reaches H (E was its destination), and each probe also opened E's NAT toward the
 * port it tried. With 256 mappings among ~64,000 ports, 1,024 probes find one with odds of
 * about 98 % (49 of 50 lab tries), 2,048 with 99.97 %: the easy side sends up to 2,048, and
 * stops at the first answer (most tries need a few hundred). H answers through the socket the probe came in on, which becomes H's socket
 * for this peer; E pongs and pings back to the port that answered. Both sides now have a
 * confirmed direct path and traffic moves to it as for any other (path.h).
 *
 * Bounded everywhere: only a node that measured its own NAT as hard starts one, only toward
 * a peer that asked for a path and is not relayed-by-design (E refuses when it is hard too),
 * one attempt per peer per PUNCH_RETRY_MS, a limit on attempts at once, probes paced at
 * PUNCH_PROBE_INTERVAL_US, and everything stops after PUNCH_ATTEMPT_MS or at the first
 * answer. Probing random ports looks like a port scan to some networks (DESIGN.md): this is
 * why the easy side only probes on request of a peer it knows, and only the hard side's own
 * address. */
#ifndef MESHD_PUNCH_H
#define MESHD_PUNCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/disco.h"

enum {
	PUNCH_SOCKETS = 256,            /* hard side: mappings opened toward the easy side */
	PUNCH_PROBES = 2048,            /* easy side: random ports tried (99.97 % odds, see above) */
	PUNCH_PROBE_INTERVAL_US = 4000, /* 250 probes a second: all 2,048 take ~8 s */
	PUNCH_ATTEMPT_MS = 15000,       /* an attempt gives up after this (the goal is 20 s) */
	PUNCH_RETRY_MS = 60000,         /* and is not retried for a peer sooner than this */
	PUNCH_POLL_MS = 20,             /* the hard side reads its sockets this often */
	/* Wait this long of plain probing before punching: a hard NAT still reaches public
	 * nodes and full-cone NATs directly, and those need no sockets. */
	PUNCH_AFTER_PROBING_MS = 2000,
	PUNCH_MAX_HARD_ATTEMPTS = 1,    /* 256 descriptors each */
	PUNCH_MAX_EASY_ATTEMPTS = 4,
	PUNCH_MAX_TARGETS = 2,          /* public candidate addresses of the peer tried */
	PUNCH_PORT_MIN = 1024,          /* NATs allocate from the unprivileged range */
};

struct device;
struct peer;

struct punch_attempt {
	bool hard; /* we are the hard side (sockets), else the easy side (probes) */
	uint64_t started_ms;
	uint8_t txid[DISCO_TXID_LEN]; /* every ping of the attempt; a pong with it wins */
	struct sockaddr_storage targets[PUNCH_MAX_TARGETS];
	size_t n_targets;
	int fds[PUNCH_SOCKETS]; /* hard side */
	size_t n_fds;
	size_t probes_sent;     /* easy side */
	uint64_t probe_next_us;
};

/* Hard side: starts an attempt toward p if we are hard, p wants a path and has a public
 * candidate, and the limits allow. Called from probing. */
void punch_maybe_start(struct device *dev, struct peer *p, uint64_t now_ms);
/* Easy side: p asked us to probe (DISCO_PUNCH). */
void punch_on_request(struct device *dev, struct peer *p, uint64_t now_ms);
/* Easy side: a pong with txid from `from`: true if it answered one of our probes (the path
 * is then confirmed and the attempt ends). */
bool punch_on_pong(struct device *dev, struct peer *p, const uint8_t txid[DISCO_TXID_LEN],
		   const struct sockaddr_storage *from, uint64_t now_ms);
void punch_tick(struct device *dev, struct peer *p, uint64_t now_ms);
uint64_t punch_next_deadline(const struct peer *p, uint64_t now_ms);
/* Sends len bytes from buf to `to` through p's punch socket. */
void punch_send(struct device *dev, struct peer *p, const uint8_t *buf, size_t len,
		const struct sockaddr_storage *to);
/* The winning socket is readable. */
void punch_on_readable(struct device *dev, struct peer *p, uint64_t now_ms);
/* Ends any attempt and closes p's punch socket (peer removed, device closing). */
void punch_free(struct device *dev, struct peer *p);

#endif
