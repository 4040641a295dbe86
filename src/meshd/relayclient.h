/* meshd's side of the coordinator's relay. Datagrams for a peer with no direct path go to the
 * coordinator wrapped in a relay frame (core/relay.h): over UDP from the data socket once the
 * coordinator has acknowledged a BIND of our source address, otherwise inside the TCP control
 * connection (UDP blocked, or not known to work yet). What comes back is handed to rx as a
 * relayed datagram. The relay only ever carries what is already encrypted end to end. */
#ifndef MESHD_RELAYCLIENT_H
#define MESHD_RELAYCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/control.h"
#include "core/relay.h"

enum {
	/* Re-BIND this often: keeps our NAT's mapping toward the relay open (under conntrack's
	 * 30 s) and the coordinator's binding fresh. */
	RELAYCLIENT_BIND_INTERVAL_MS = 15000,
	/* Until the first ACK, BIND this often: UDP may just be slow to open. */
	RELAYCLIENT_BIND_RETRY_MS = 2000,
	/* UDP to the relay counts as working while an ACK came this recently (two BINDs lost
	 * in a row and the TCP connection carries relayed traffic instead). */
	RELAYCLIENT_ACK_FRESH_MS = 2 * RELAYCLIENT_BIND_INTERVAL_MS + RELAYCLIENT_BIND_RETRY_MS,
};

struct device;

struct relayclient {
	bool have_info; /* the coordinator sent RELAY_INFO on this connection */
	uint8_t token[RELAY_TOKEN_LEN];
	struct sockaddr_storage addr; /* the coordinator's STUN/relay port, in the socket's family */
	struct sockaddr_storage alt_stun_addr;
	bool have_alt_stun;
	uint64_t bind_counter; /* last BIND sent; strictly growing across reconnects */
	uint64_t next_bind_ms;
	uint64_t last_ack_ms;  /* 0: UDP relay not confirmed */
	uint64_t rx_frames, tx_udp_frames, tx_tcp_frames;
};

/* A RELAY_INFO arrived on a connection to coordinator `coord` (its control address). */
void relayclient_on_info(struct device *dev, const struct control_relay_info *info,
			 const struct sockaddr_storage *coord, uint64_t now_ms);
/* The control connection is gone: the token dies with it. */
void relayclient_reset(struct device *dev);
void relayclient_tick(struct device *dev, uint64_t now_ms);
uint64_t relayclient_next_deadline(const struct device *dev);

/* Whether datagrams can be relayed now (UDP confirmed, or the control connection is up). */
bool relayclient_available(const struct device *dev, uint64_t now_ms);
/* UDP to the relay is confirmed. */
bool relayclient_udp_ok(const struct device *dev, uint64_t now_ms);
/* Relays the datagram of `len` bytes just written at device_outbox_slot() to the node with
 * key `to`. False if there is no relay now (the datagram is dropped). */
bool relayclient_send(struct device *dev, const uint8_t to[WIRE_KEY_LEN], size_t len, uint64_t now_ms);
/* A datagram from the data socket: consumes it (true) if it came from the relay. */
bool relayclient_on_datagram(struct device *dev, const uint8_t *buf, size_t len, const struct sockaddr_storage *from,
			     uint64_t now_ms);
/* A relayed datagram arrived over the control connection. */
void relayclient_on_tcp(struct device *dev, const struct control_relay *r, uint64_t now_ms);

#endif
