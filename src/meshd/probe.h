/* Disco on the wire: sends the pings and call-me-maybes path.c asks for, answers the peer's,
 * and feeds pongs back into path choice. */
#ifndef MESHD_PROBE_H
#define MESHD_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/disco.h"

struct device;
struct peer;

/* Seals a disco message from us to p into out; its length, or 0. */
size_t probe_seal(struct device *dev, struct peer *p, const struct disco_message *m, uint8_t *out, size_t cap);

/* A disco message arrived, directly from `from`, or through the relay (from == NULL). */
void probe_on_disco(struct device *dev, const uint8_t *buf, size_t len, const struct sockaddr_storage *from,
		    uint64_t now_ms);
/* Runs what path_due says for p (probe rounds, heartbeats) and logs path changes. */
void probe_tick(struct device *dev, struct peer *p, uint64_t now_ms);
/* The path p is on as logs and status tell it: the trusted direct path with the lowest RTT
 * (*best: its candidate index), else the last direct one while the peer is idle or no relay
 * is there, else the relay, else none (*best -1 unless direct). */
enum path_kind probe_path_now(const struct device *dev, const struct peer *p, uint64_t now_ms, int *best);
/* Whether the peer's path changed since it was last reported (logged, and its endpoint
 * moved): probe_tick does that, so the device makes the peer due at once. */
bool probe_report_pending(const struct device *dev, const struct peer *p, uint64_t now_ms);
/* A disco ping to every candidate of p now, for `meshd ping`; returns how many were sent. */
size_t probe_ping_all(struct device *dev, struct peer *p, uint64_t now_ms);

#endif
