/* `meshd netcheck` in the daemon: two STUN Binding requests from the data socket, one to the
 * coordinator's main STUN port and one to its second port, with transaction ids of their own
 * (coordclient's periodic STUN is untouched). Comparing the two answers says whether our NAT
 * maps the data socket to the same address and port whatever the destination (easy NAT) or
 * to a new one per destination (hard, symmetric NAT); the main answer's round trip is the
 * latency to the coordinator. Nothing blocks: ctl starts a check, feeds it datagrams and
 * ticks, and renders the result when it is done. */
#ifndef MESHD_NETCHECK_H
#define MESHD_NETCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/ipc.h"
#include "core/stun.h"

enum {
	NETCHECK_TIMEOUT_MS = 2000, /* a STUN server on a working path answers in well under this */
	NETCHECK_RETRY_MS = 500,    /* resend an unanswered request: one lost datagram is not "no UDP" */
	NETCHECK_MAIN = 0,
	NETCHECK_ALT = 1,
	NETCHECK_SERVERS = 2,
};

struct netcheck_probe {
	bool asked; /* a server to ask exists */
	struct sockaddr_storage server;
	uint8_t txid[STUN_TRANSACTION_ID_LEN];
	uint64_t sent_us;
	uint64_t last_sent_ms;
	bool answered;
	struct sockaddr_storage mapped;
	uint64_t rtt_us;
};

struct netcheck {
	bool running;
	uint64_t started_ms;
	bool coordinator_known; /* the device has a coordinator at all */
	bool have_info;         /* the coordinator told us its STUN/relay address */
	bool relay_udp_ok;      /* the relay acknowledged a UDP BIND recently */
	bool coordinator_ready;
	struct netcheck_probe probe[NETCHECK_SERVERS];
};

struct device;

/* Starts a check (sends the requests). Without a coordinator nothing is sent and the check is
 * done at once. */
void netcheck_start(struct device *dev, struct netcheck *nc, uint64_t now_ms);
/* Consumes a datagram that answers one of this check's requests. */
bool netcheck_on_datagram(struct netcheck *nc, const uint8_t *buf, size_t len, const struct sockaddr_storage *from);
/* Resends unanswered requests; true once every answer is in or the time is up. */
bool netcheck_tick(struct device *dev, struct netcheck *nc, uint64_t now_ms);
uint64_t netcheck_next_deadline(const struct netcheck *nc);
/* The result, for people or as JSON. */
void netcheck_render(const struct netcheck *nc, bool json, struct ipc_text *out);

#endif
