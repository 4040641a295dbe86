/* The connection table of access rules: flows this node opened, so that their replies pass
 * a filter that would not let the same packets in as new connections.
 *
 * The TX path notes every outgoing packet's 5-tuple (filter active only); the RX path looks
 * the reversed tuple up. No TCP state machine: an entry lives for its protocol's idle
 * timeout after the last outgoing packet (a TCP connection that only receives still sends
 * ACKs). The table is fixed in size and set-associative: a tuple hashes to one bucket of
 * CONNTRACK_WAYS slots; inserting into a full bucket replaces its entry closest to
 * expiry, so memory and time per packet are bounded whatever the traffic. The hash is keyed
 * (SipHash), so no sender can aim many flows at one bucket. */
#ifndef MESHD_CONNTRACK_H
#define MESHD_CONNTRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "filter.h"

enum {
	CONNTRACK_WAYS = 4,
	/* 4,096 flows (~200 KiB): a busy home node has a few hundred open at once. */
	CONNTRACK_DEFAULT_BUCKETS = 1024,
	/* Idle timeouts after the last outgoing packet. TCP: long, as there is no FIN tracking
	 * and interactive sessions idle for minutes (keepalives refresh it). UDP: Linux
	 * conntrack's stream timeout. ICMP: Linux's, an echo exchange is over in seconds. */
	CONNTRACK_TCP_TIMEOUT_MS = 3600 * 1000,
	CONNTRACK_UDP_TIMEOUT_MS = 120 * 1000,
	CONNTRACK_OTHER_TIMEOUT_MS = 30 * 1000,
};

struct conntrack_entry {
	uint64_t expires_ms; /* 0: free */
	uint8_t family, proto;
	uint16_t lport, rport; /* ICMP echo: the identifier in lport, rport 0 */
	uint8_t local[16], remote[16];
};

struct conntrack {
	struct conntrack_entry *slots; /* n_buckets * CONNTRACK_WAYS */
	size_t n_buckets;              /* a power of two */
	uint8_t hash_key[16];
	uint64_t inserted, evicted;    /* counters: new flows, live flows pushed out when full */
};

/* n_buckets a power of two; false if out of memory. */
bool conntrack_init(struct conntrack *ct, size_t n_buckets);
void conntrack_free(struct conntrack *ct);
/* Forgets every flow. */
void conntrack_clear(struct conntrack *ct);
/* Live entries (a scan: for status, not the data path). */
size_t conntrack_count(const struct conntrack *ct, uint64_t now_ms);

/* An outgoing packet: remembers or refreshes its flow. */
void conntrack_note_tx(struct conntrack *ct, const struct filter_flow *f, uint64_t now_ms);
/* An incoming packet: true when it answers a flow this node opened (same protocol, its
 * source our remote and its destination our local side), or is an echo reply to our
 * echo request, or an ICMP error about one of our flows. */
bool conntrack_rx_related(const struct conntrack *ct, const struct filter_flow *f, uint64_t now_ms);

#endif
